//! garden-settlement contract (in progress).
