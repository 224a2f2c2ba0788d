//! Garden e2e harness (in progress).
