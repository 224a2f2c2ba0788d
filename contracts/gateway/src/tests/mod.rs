mod channel;
mod flows;
mod model;
mod pair;
