//! Membership: heartbeats, scoring, SWIM, witnesses, probes.
