//! The bounded queue of outbound events waiting for NATS (pure).
//!
//! Events wait here until the server confirmed them (a JetStream publish acknowledgement, or
//! a flushed core publish). When the queue is full the *oldest* event is dropped and counted:
//! a long outage costs the oldest events, reported in [`Queue::dropped`] and in the logs,
//! never the bridge's memory.

use std::collections::VecDeque;

/// An event to publish: its subject, an id (JetStream's `Nats-Msg-Id`, so a retried publish
/// is stored once) and its JSON body; `seq` orders it in the journal.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pending {
    pub seq: u64,
    pub subject: String,
    pub id: String,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// See the module docs.
#[derive(Debug)]
pub struct Queue {
    items: VecDeque<Pending>,
    capacity: usize,
    dropped: u64,
}

impl Queue {
    pub fn new(capacity: usize) -> Queue {
        Queue {
            items: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    /// Queues `p`; returns the event dropped to make room, if any.
    pub fn push(&mut self, p: Pending) -> Option<Pending> {
        let gone = if self.items.len() >= self.capacity {
            self.dropped += 1;
            self.items.pop_front()
        } else {
            None
        };
        self.items.push_back(p);
        gone
    }

    /// The event [`Queue::push`] would drop now (the oldest, when full).
    pub fn would_drop(&self) -> Option<&Pending> {
        (self.items.len() >= self.capacity)
            .then(|| self.items.front())
            .flatten()
    }

    /// The newest event.
    pub fn back(&self) -> Option<&Pending> {
        self.items.back()
    }

    /// The oldest event, left in place until [`Queue::confirm`].
    pub fn front(&self) -> Option<&Pending> {
        self.items.front()
    }

    /// The server confirmed the event with this id: it leaves the queue (if it is still the
    /// oldest; an event dropped meanwhile is not touched twice).
    pub fn confirm(&mut self, id: &str) {
        if self.items.front().is_some_and(|p| p.id == id) {
            self.items.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Events dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(i: u32) -> Pending {
        Pending {
            seq: u64::from(i),
            subject: "s".into(),
            id: i.to_string(),
            body: vec![],
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let mut q = Queue::new(2);
        assert_eq!(q.push(p(1)), None);
        assert_eq!(q.push(p(2)), None);
        assert_eq!(q.push(p(3)), Some(p(1)));
        assert_eq!(q.dropped(), 1);
        assert_eq!(q.front(), Some(&p(2)));
        q.confirm("9");
        assert_eq!(q.len(), 2, "only the oldest is confirmed");
        q.confirm("2");
        assert_eq!(q.front(), Some(&p(3)));
        q.confirm("3");
        assert!(q.is_empty());
    }
}
