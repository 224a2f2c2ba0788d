mod defects;
mod escrow_offers;
mod model;
mod settle;
mod suite;
