//! Replies waiting to go out, one queue per client, so that a client that reads nothing
//! holds up only itself and never the answers to everyone else.
//!
//! Pure: the daemon passes the clock and a `send` function; no sockets here.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// What became of one datagram handed to `send`.
pub enum Sent {
    Ok,
    /// The client's queue is full: try again later.
    Full,
    /// The client is gone: drop everything queued for it.
    Gone,
}

struct Queue {
    frames: VecDeque<Vec<u8>>,
    /// When this client last took a datagram (or got its first one queued).
    progress: u64,
}

pub struct Outbox<K> {
    queues: HashMap<K, Queue>,
    /// Clients with something queued, oldest first.
    order: VecDeque<K>,
}

impl<K> Default for Outbox<K> {
    fn default() -> Self {
        Outbox {
            queues: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> Outbox<K> {
    pub fn push(&mut self, to: &K, frames: Vec<Vec<u8>>, now: u64) {
        if frames.is_empty() {
            return;
        }
        match self.queues.get_mut(to) {
            Some(q) => q.frames.extend(frames),
            None => {
                self.queues.insert(
                    to.clone(),
                    Queue {
                        frames: frames.into(),
                        progress: now,
                    },
                );
                self.order.push_back(to.clone());
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Has `to` something queued?
    pub fn holds(&self, to: &K) -> bool {
        self.queues.contains_key(to)
    }

    /// Sends, for each client in turn, what it takes, and hands each datagram sent to
    /// `sent` (its buffer can be reused). A client that took nothing for `patience` ms
    /// loses its queue. Returns the clients given up on that way.
    /// Cost: O(clients with something queued + datagrams sent).
    pub fn flush(
        &mut self,
        now: u64,
        patience: u64,
        mut send: impl FnMut(&K, &[u8]) -> Sent,
        mut sent: impl FnMut(Vec<u8>),
    ) -> Vec<K> {
        let mut stalled = Vec::new();
        let queues = &mut self.queues;
        self.order.retain(|to| {
            let Some(q) = queues.get_mut(to) else {
                return false;
            };
            let keep = loop {
                let Some(d) = q.frames.front() else {
                    break false;
                };
                match send(to, d) {
                    Sent::Ok => {
                        if let Some(d) = q.frames.pop_front() {
                            sent(d);
                        }
                        q.progress = now;
                    }
                    Sent::Full if now.saturating_sub(q.progress) > patience => {
                        stalled.push(to.clone());
                        break false;
                    }
                    Sent::Full => break true,
                    Sent::Gone => break false,
                }
            };
            if !keep {
                queues.remove(to);
            }
            keep
        });
        stalled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stuck_client_holds_up_only_itself() {
        let mut o: Outbox<&str> = Outbox::default();
        o.push(&"stuck", vec![b"s1".to_vec(), b"s2".to_vec()], 0);
        o.push(&"ok", vec![b"o1".to_vec()], 0);
        let mut sent = Vec::new();
        let n = o.flush(
            1,
            100,
            |to, d| {
                if *to == "stuck" {
                    Sent::Full
                } else {
                    sent.push(d.to_vec());
                    Sent::Ok
                }
            },
            |_| {},
        );
        assert!(n.is_empty());
        assert_eq!(sent, vec![b"o1".to_vec()]);
        assert!(!o.is_empty());
        // More for the stuck client does not buy it time.
        o.push(&"stuck", vec![b"s3".to_vec()], 50);
        assert_eq!(o.flush(101, 100, |_, _| Sent::Full, |_| {}), ["stuck"]);
        assert!(o.is_empty());
    }

    #[test]
    fn order_is_kept_per_client_and_gone_clients_are_dropped() {
        let mut o: Outbox<u8> = Outbox::default();
        o.push(&1, vec![vec![1], vec![2], vec![3]], 0);
        o.push(&2, vec![vec![9]], 0);
        let mut budget = 2;
        let mut got = Vec::new();
        let mut back = Vec::new();
        o.flush(
            0,
            100,
            |to, d| {
                if *to == 2 {
                    return Sent::Gone;
                }
                if budget == 0 {
                    return Sent::Full;
                }
                budget -= 1;
                got.push(d[0]);
                Sent::Ok
            },
            |d| back.push(d),
        );
        assert_eq!(got, [1, 2]);
        o.flush(
            0,
            100,
            |_, d| {
                got.push(d[0]);
                Sent::Ok
            },
            |d| back.push(d),
        );
        assert_eq!(got, [1, 2, 3]);
        // What was sent comes back for reuse, in order; what a gone client had queued
        // does not.
        assert_eq!(back, [vec![1], vec![2], vec![3]]);
        assert!(o.is_empty());
    }
}
