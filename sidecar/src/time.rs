//! Protocol time: the one clock of the sidecar.
//!
//! Decision modules (`membership`, `discovery`, the gater) never read a clock: they take a
//! [`Timestamp`] argument. The swarm glue reads [`Clock::now`] and hands it down. Records and
//! heartbeats carry absolute wall-clock times that peers compare, so protocol time is wall
//! time in milliseconds since the Unix epoch.
//!
//! A [`Clock`] can also run *faster* than the wall clock and be *skewed*: the simulation
//! harness runs hours of protocol time in minutes (every node of one run shares the speed),
//! and tests give a node a clock minutes off. It counts elapsed time with
//! `tokio::time::Instant`, so a test that pauses tokio's time (`tokio::time::pause`) moves
//! protocol time with it.

use std::time::Duration;

/// Wall-clock time in milliseconds since the Unix epoch.
///
/// Milliseconds (not `Instant`) because several values cross the wire and are compared between
/// peers (record expiry, `born_at` equality, `last_seen` freshness).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The zero time; used on the wire for "unset" (like Go's zero `time.Time`).
    pub const ZERO: Timestamp = Timestamp(0);

    /// From milliseconds since the Unix epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// True for the zero ("unset") time.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self − earlier`, zero if `earlier` is later (clock skew never yields a negative age).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating.
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(millis(d)))
    }

    /// `self − d`, saturating at zero.
    pub fn minus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(millis(d)))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The system's wall clock, in milliseconds since the Unix epoch.
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(millis)
        .unwrap_or(0)
}

/// Where protocol time comes from. Cheap to clone; every clone reads the same time.
#[derive(Clone, Debug)]
pub struct Clock {
    /// Protocol time at `origin`.
    origin_ms: u64,
    origin: tokio::time::Instant,
    /// Protocol milliseconds per real millisecond (1 in production).
    speed: u32,
    /// Constant offset added to this clock's readings (skewed-clock tests).
    skew_ms: i64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The wall clock, at normal speed.
    pub fn system() -> Self {
        Self::scaled(1, 0)
    }

    /// A clock that starts at the wall clock, runs `speed` times faster and reads `skew_ms`
    /// off. Clocks of one simulation must share `speed`; see [`Clock::shared_origin`].
    pub fn scaled(speed: u32, skew_ms: i64) -> Self {
        Clock {
            origin_ms: wall_ms(),
            origin: tokio::time::Instant::now(),
            speed: speed.max(1),
            skew_ms,
        }
    }

    /// Another clock with the same origin and speed, read `skew_ms` off (one simulated node).
    pub fn shared_origin(&self, skew_ms: i64) -> Self {
        Clock {
            skew_ms,
            ..self.clone()
        }
    }

    /// Protocol time now.
    pub fn now(&self) -> Timestamp {
        let elapsed = millis(self.origin.elapsed()).saturating_mul(u64::from(self.speed));
        let t = self.origin_ms.saturating_add(elapsed);
        Timestamp(t.saturating_add_signed(self.skew_ms))
    }

    /// How many protocol milliseconds pass per real millisecond.
    pub fn speed(&self) -> u32 {
        self.speed
    }

    /// The real duration that lasts `protocol` of protocol time (timers, store expiry).
    pub fn real(&self, protocol: Duration) -> Duration {
        protocol / self.speed
    }

    /// The protocol duration that passes during `real`.
    pub fn protocol(&self, real: Duration) -> Duration {
        real.saturating_mul(self.speed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_clock_follows_paused_tokio_time_at_its_speed_and_skew() {
        let c = Clock::scaled(100, 0);
        let skewed = c.shared_origin(-300_000);
        let t0 = c.now();
        tokio::time::advance(Duration::from_secs(3)).await;
        // 3 real seconds at ×100 are 5 protocol minutes.
        assert_eq!(c.now().since(t0), Duration::from_secs(300));
        assert_eq!(c.now().since(skewed.now()), Duration::from_secs(300));
        assert_eq!(c.real(Duration::from_secs(20)), Duration::from_millis(200));
        assert_eq!(
            c.protocol(Duration::from_millis(200)),
            Duration::from_secs(20)
        );
    }

    #[test]
    fn timestamps_saturate() {
        let t = Timestamp::from_millis(5);
        assert_eq!(t.minus(Duration::from_secs(1)), Timestamp::ZERO);
        assert_eq!(
            Timestamp::from_millis(u64::MAX)
                .plus(Duration::from_secs(1))
                .as_millis(),
            u64::MAX
        );
        assert_eq!(t.since(Timestamp::from_millis(9)), Duration::ZERO);
    }
}
