//! Garden wire formats (filled in by the contracts work).
