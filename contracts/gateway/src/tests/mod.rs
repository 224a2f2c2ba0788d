mod channel;
mod flows;
mod pair;
