//! `Window`: a half-open time interval `[start, end)` (availability of a resource, the slot of
//! a booking, the span of a usage report).

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// `[start, end)` in protocol time. Constructed through [`Window::new`], so `start < end`
/// holds for every window built here; deserialised windows are re-checked by the validators
/// of what carries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    start_ms: u64,
    end_ms: u64,
}

impl Window {
    /// `[start, end)`, or `None` unless `start < end`.
    pub fn new(start: Timestamp, end: Timestamp) -> Option<Window> {
        (start < end).then_some(Window {
            start_ms: start.as_millis(),
            end_ms: end.as_millis(),
        })
    }

    pub fn start(&self) -> Timestamp {
        Timestamp::from_millis(self.start_ms)
    }

    pub fn end(&self) -> Timestamp {
        Timestamp::from_millis(self.end_ms)
    }

    /// `start < end` (false only for a window decoded from hostile bytes).
    pub fn is_valid(&self) -> bool {
        self.start_ms < self.end_ms
    }

    /// Whether `t` is inside.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start() <= t && t < self.end()
    }

    /// Whether `other` lies entirely inside this window.
    pub fn covers(&self, other: &Window) -> bool {
        self.start_ms <= other.start_ms && other.end_ms <= self.end_ms
    }

    /// Whether the two windows share an instant (touching ends do not).
    pub fn overlaps(&self, other: &Window) -> bool {
        self.start_ms < other.end_ms && other.start_ms < self.end_ms
    }

    /// The common part, if any.
    pub fn intersect(&self, other: &Window) -> Option<Window> {
        Window::new(self.start().max(other.start()), self.end().min(other.end()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(a: u64, b: u64) -> Window {
        Window::new(Timestamp::from_millis(a), Timestamp::from_millis(b)).unwrap()
    }

    #[test]
    fn windows_are_half_open() {
        assert!(Window::new(Timestamp::from_millis(5), Timestamp::from_millis(5)).is_none());
        assert!(w(0, 10).contains(Timestamp::from_millis(0)));
        assert!(!w(0, 10).contains(Timestamp::from_millis(10)));
        assert!(!w(0, 10).overlaps(&w(10, 20)));
        assert!(w(0, 10).overlaps(&w(9, 20)));
        assert!(w(0, 10).covers(&w(2, 10)));
        assert!(!w(0, 10).covers(&w(2, 11)));
        assert_eq!(w(0, 10).intersect(&w(5, 20)), Some(w(5, 10)));
        assert_eq!(w(0, 10).intersect(&w(10, 20)), None);
    }
}
