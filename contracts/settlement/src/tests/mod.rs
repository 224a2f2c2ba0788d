mod defects;
mod escrow_offers;
mod settle;
mod suite;
