//! Connectivity profiles: how a peer says it is connected, so that planned absences are
//! neither suspected nor penalised, and unplanned ones still are.
//!
//! * `continuous`: always reachable (ground stations, data centres);
//! * `intermittent`: out of contact at unknown times, each time for at most `max_absence`
//!   (field units on poor links);
//! * `orbital`: in contact for `window` every `period`, the first window opening at `epoch`
//!   (a satellite passing over its ground stations).
//!
//! A peer declares its profile in its signed record and in its heartbeats. Decisions here are
//! pure and take explicit times: when a silent peer becomes overdue ([`Profile::deadline`]),
//! how much of a silence was planned ([`Profile::planned_absence`]), how long records must
//! live ([`Profile::record_ttl`]), and when to refresh them before a planned cut
//! ([`Profile::refresh_due`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::membership::wire::{DecodeError, Reader, Result, Writer};
use crate::membership::Timestamp;

/// Longest absence a profile may declare (the longest record lifetime).
pub const MAX_ABSENCE: Duration = Duration::from_secs(24 * 3600);
/// Shortest contact window an orbital profile may declare.
pub const MIN_WINDOW: Duration = Duration::from_secs(60);

/// How a peer is connected (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Profile {
    #[default]
    Continuous,
    Intermittent {
        /// Longest planned absence, ms.
        max_absence_ms: u64,
    },
    Orbital {
        /// Time from one contact window's start to the next, ms.
        period_ms: u64,
        /// Length of each contact window, ms.
        window_ms: u64,
        /// Start of one contact window (any one), ms since the Unix epoch.
        epoch_ms: u64,
    },
}

/// Why a declared profile is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("absence {0:?} exceeds the {MAX_ABSENCE:?} maximum")]
    TooLong(Duration),
    #[error("an orbital window must be at least {MIN_WINDOW:?} and no longer than the period")]
    Window,
}

impl Profile {
    /// Checks the declared figures (records and heartbeats carrying others are refused).
    pub fn validate(&self) -> std::result::Result<(), Invalid> {
        match *self {
            Profile::Continuous => Ok(()),
            Profile::Intermittent { .. } => self.check_absence(),
            Profile::Orbital {
                period_ms,
                window_ms,
                ..
            } => {
                if window_ms < MIN_WINDOW.as_millis() as u64 || window_ms > period_ms {
                    return Err(Invalid::Window);
                }
                self.check_absence()
            }
        }
    }

    fn check_absence(&self) -> std::result::Result<(), Invalid> {
        let a = self.max_absence();
        if a > MAX_ABSENCE {
            Err(Invalid::TooLong(a))
        } else {
            Ok(())
        }
    }

    /// The longest planned absence.
    pub fn max_absence(&self) -> Duration {
        match *self {
            Profile::Continuous => Duration::ZERO,
            Profile::Intermittent { max_absence_ms } => Duration::from_millis(max_absence_ms),
            Profile::Orbital {
                period_ms,
                window_ms,
                ..
            } => Duration::from_millis(period_ms.saturating_sub(window_ms)),
        }
    }

    /// Whether the peer plans to be in contact at `t` (always, unless orbital).
    pub fn in_contact(&self, t: Timestamp) -> bool {
        match *self {
            Profile::Orbital {
                period_ms,
                window_ms,
                epoch_ms,
            } => phase(t, period_ms, epoch_ms) < window_ms,
            _ => true,
        }
    }

    /// The start of the first contact window opening after `t` (orbital), else `t`.
    pub fn next_contact(&self, t: Timestamp) -> Timestamp {
        match *self {
            Profile::Orbital {
                period_ms,
                epoch_ms,
                ..
            } => {
                let into = phase(t, period_ms, epoch_ms);
                Timestamp::from_millis(t.as_millis() - into + period_ms)
            }
            _ => t,
        }
    }

    /// When a peer last heard at `last_seen` becomes overdue, with `grace` the silence any
    /// connected peer is allowed (a few heartbeat intervals): while in contact it must be heard
    /// within `grace`; an absence the profile plans for is added.
    pub fn deadline(&self, last_seen: Timestamp, grace: Duration) -> Timestamp {
        match *self {
            Profile::Continuous => last_seen.plus(grace),
            Profile::Intermittent { max_absence_ms } => {
                last_seen.plus(grace + Duration::from_millis(max_absence_ms))
            }
            Profile::Orbital {
                period_ms,
                window_ms,
                epoch_ms,
            } => {
                let into = phase(last_seen, period_ms, epoch_ms);
                let window_left = window_ms.saturating_sub(into);
                if Duration::from_millis(window_left) > grace {
                    last_seen.plus(grace)
                } else {
                    self.next_contact(last_seen).plus(grace)
                }
            }
        }
    }

    /// How much of the silence between `from` and `to` the profile planned (not held against
    /// the peer's uptime): none for continuous peers, up to the declared maximum for
    /// intermittent ones, the out-of-contact time for orbital ones.
    pub fn planned_absence(&self, from: Timestamp, to: Timestamp) -> Duration {
        let gap = to.since(from);
        match *self {
            Profile::Continuous => Duration::ZERO,
            Profile::Intermittent { max_absence_ms } => {
                gap.min(Duration::from_millis(max_absence_ms))
            }
            Profile::Orbital {
                period_ms,
                window_ms,
                epoch_ms,
            } => {
                // Out-of-contact time in [from, to): whole periods, then the partial ends.
                let out = |t: Timestamp| {
                    // Out-of-contact ms in [epoch-aligned period start, t).
                    let p = phase(t, period_ms, epoch_ms);
                    p.saturating_sub(window_ms)
                };
                let periods = gap.as_millis() as u64 / period_ms.max(1);
                let whole = periods * (period_ms - window_ms);
                let rest_from = Timestamp::from_millis(from.as_millis() + periods * period_ms);
                let a = out(rest_from);
                let b = out(to);
                let partial =
                    if phase(to, period_ms, epoch_ms) >= phase(rest_from, period_ms, epoch_ms) {
                        b.saturating_sub(a)
                    } else {
                        (period_ms - window_ms - a) + b
                    };
                Duration::from_millis(whole + partial)
            }
        }
    }

    /// Lifetime our records need: the configured one, or the longest planned absence plus
    /// `margin` when longer (a record must outlive the absence it covers), at most a day.
    pub fn record_ttl(&self, configured: Duration, margin: Duration) -> Duration {
        match self.max_absence() {
            Duration::ZERO => configured,
            absence => configured.max(absence + margin).min(MAX_ABSENCE),
        }
    }

    /// Whether to re-sign and publish our records now, `lead` before a planned loss of contact,
    /// when the last publication was at `last`: so that records live through the absence from
    /// its very start.
    pub fn refresh_due(&self, now: Timestamp, last: Timestamp, lead: Duration) -> bool {
        match *self {
            Profile::Orbital {
                period_ms,
                window_ms,
                epoch_ms,
            } => {
                let into = phase(now, period_ms, epoch_ms);
                let left = window_ms.saturating_sub(into);
                // Inside the last `lead` of a window, and not published since that lead
                // began (once per window: `since >= left` re-published at every halving of
                // the time left, six times in the last minute).
                let left = Duration::from_millis(left);
                into < window_ms && left <= lead && now.since(last) > lead - left
            }
            _ => false,
        }
    }

    /// Positional encoding (tag, then the figures as varints).
    pub fn encode(&self, w: &mut Writer) {
        match *self {
            Profile::Continuous => w.u8(0),
            Profile::Intermittent { max_absence_ms } => {
                w.u8(1);
                w.varint(max_absence_ms);
            }
            Profile::Orbital {
                period_ms,
                window_ms,
                epoch_ms,
            } => {
                w.u8(2);
                w.varint(period_ms);
                w.varint(window_ms);
                w.varint(epoch_ms);
            }
        }
    }

    /// Decodes and validates.
    pub fn decode(r: &mut Reader<'_>) -> Result<Profile> {
        let p = match r.u8("profile.kind")? {
            0 => Profile::Continuous,
            1 => Profile::Intermittent {
                max_absence_ms: r.varint("profile.max_absence")?,
            },
            2 => Profile::Orbital {
                period_ms: r.varint("profile.period")?,
                window_ms: r.varint("profile.window")?,
                epoch_ms: r.varint("profile.epoch")?,
            },
            _ => {
                return Err(DecodeError::Invalid {
                    field: "profile.kind",
                })
            }
        };
        p.validate()
            .map_err(|_| DecodeError::Invalid { field: "profile" })?;
        Ok(p)
    }
}

/// Where `t` falls in the period that started at `epoch` (ms, in `[0, period)`).
fn phase(t: Timestamp, period_ms: u64, epoch_ms: u64) -> u64 {
    let period = period_ms.max(1);
    let t = t.as_millis();
    if t >= epoch_ms {
        (t - epoch_ms) % period
    } else {
        (period - (epoch_ms - t) % period) % period
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    fn t(min: u64) -> Timestamp {
        Timestamp::from_millis(1_000 * MIN + min * MIN)
    }

    /// 90-minute orbit, 20-minute passes, a pass opening at minute 0.
    fn orbit() -> Profile {
        Profile::Orbital {
            period_ms: 90 * MIN,
            window_ms: 20 * MIN,
            epoch_ms: t(0).as_millis(),
        }
    }

    #[test]
    fn an_orbital_peer_is_overdue_only_after_its_next_pass_opens() {
        let p = orbit();
        let grace = Duration::from_secs(120);
        assert!(p.in_contact(t(5)) && !p.in_contact(t(30)) && p.in_contact(t(95)));
        // Heard at minute 5: more than the grace left in the pass, so it must keep talking.
        assert_eq!(p.deadline(t(5), grace), t(7));
        // Heard at minute 19, as the pass closes: due two minutes into the next pass.
        assert_eq!(p.deadline(t(19), grace), t(92));
        assert_eq!(p.next_contact(t(19)), t(90));
        assert_eq!(p.next_contact(t(100)), t(180));
        // Before the epoch works too.
        assert!(p.in_contact(Timestamp::from_millis(t(0).as_millis() - 85 * MIN)));
    }

    #[test]
    fn planned_absence_is_the_out_of_contact_time() {
        let p = orbit();
        assert_eq!(
            p.planned_absence(t(19), t(90)),
            Duration::from_secs(70 * 60)
        );
        assert_eq!(p.planned_absence(t(0), t(20)), Duration::ZERO);
        assert_eq!(
            p.planned_absence(t(0), t(180)),
            Duration::from_secs(140 * 60),
            "two periods"
        );
        assert_eq!(
            p.planned_absence(t(50), t(100)),
            Duration::from_secs(40 * 60),
            "wraps the period"
        );
        let i = Profile::Intermittent {
            max_absence_ms: 30 * MIN,
        };
        assert_eq!(i.planned_absence(t(0), t(45)), Duration::from_secs(30 * 60));
        assert_eq!(
            Profile::Continuous.planned_absence(t(0), t(45)),
            Duration::ZERO
        );
    }

    #[test]
    fn records_outlive_the_absence_and_are_refreshed_before_a_pass_ends() {
        let p = orbit();
        let ttl = p.record_ttl(Duration::from_secs(120), Duration::from_secs(300));
        assert_eq!(ttl, Duration::from_secs(75 * 60));
        assert_eq!(
            Profile::Continuous.record_ttl(Duration::from_secs(120), Duration::from_secs(300)),
            Duration::from_secs(120)
        );
        let lead = Duration::from_secs(60);
        assert!(!p.refresh_due(t(10), t(9), lead));
        assert!(p.refresh_due(
            Timestamp::from_millis(t(19).as_millis() + 10_000),
            t(10),
            lead
        ));
        assert!(
            !p.refresh_due(
                Timestamp::from_millis(t(19).as_millis() + 10_000),
                t(19),
                lead
            ),
            "just refreshed"
        );
        // Once per window: published as the lead began, not again as the time left halves.
        let lead_start = Timestamp::from_millis(t(20).as_millis() - 60_000);
        assert!(p.refresh_due(lead_start, t(10), lead));
        for later_s in [1, 30, 45, 59] {
            let now = Timestamp::from_millis(lead_start.as_millis() + later_s * 1000);
            assert!(!p.refresh_due(now, lead_start, lead), "{later_s} s later");
        }
        assert!(
            !p.refresh_due(t(30), t(10), lead),
            "out of contact: nothing to send it with"
        );
    }

    #[test]
    fn profiles_round_trip_and_absurd_ones_are_refused() {
        for p in [
            Profile::Continuous,
            Profile::Intermittent {
                max_absence_ms: 3_600_000,
            },
            orbit(),
        ] {
            let mut w = Writer::with_version();
            p.encode(&mut w);
            let b = w.into_bytes();
            let mut r = Reader::new(&b);
            r.version().unwrap();
            assert_eq!(Profile::decode(&mut r).unwrap(), p);
        }
        assert_eq!(
            Profile::Intermittent {
                max_absence_ms: 2 * 86_400_000
            }
            .validate(),
            Err(Invalid::TooLong(Duration::from_secs(2 * 86_400)))
        );
        assert_eq!(
            Profile::Orbital {
                period_ms: 10 * MIN,
                window_ms: 11 * MIN,
                epoch_ms: 0
            }
            .validate(),
            Err(Invalid::Window)
        );
        assert_eq!(
            Profile::Orbital {
                period_ms: 10 * MIN,
                window_ms: 1_000,
                epoch_ms: 0
            }
            .validate(),
            Err(Invalid::Window)
        );
    }
}
