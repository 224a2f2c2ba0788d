//! garden-consortium contract (in progress).
