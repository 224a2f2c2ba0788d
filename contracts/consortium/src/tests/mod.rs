mod capture;
mod emergency_endorse;
mod governance;
mod suite;
