//! The simulated network: every message gets a delivery time drawn from the seed's latency
//! profile, may be dropped or duplicated, and is blocked by partitions (which may be one-way).
//! Delivery order follows delivery time, so random delays reorder messages.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use kvorum_raft::{Message, NodeId};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::node::SmState;
use crate::rng::Draw;

/// Latency and loss profile of one run, drawn from its seed.
#[derive(Clone, Debug)]
pub struct NetProfile {
    pub min_delay_us: u64,
    pub max_delay_us: u64,
    /// Per message, in parts per million.
    pub drop_ppm: u64,
    pub duplicate_ppm: u64,
}

/// A message on the wire. An InstallSnapshot carries the sender's snapshot data with it, as the
/// transport would stream it.
#[derive(Debug)]
pub struct InFlight {
    pub deliver_at_us: u64,
    pub seq: u64,
    pub msg: Message,
    pub snapshot_data: Option<SmState>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.deliver_at_us, self.seq) == (other.deliver_at_us, other.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deliver_at_us, self.seq).cmp(&(other.deliver_at_us, other.seq))
    }
}

/// What happened to a message handed to the network.
pub enum Sent {
    Queued,
    Dropped,
}

pub struct Network {
    pub profile: NetProfile,
    queue: BinaryHeap<Reverse<InFlight>>,
    /// Directed links that drop everything: (from, to).
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// Faults are over: nothing is dropped or duplicated any more (delays remain).
    pub reliable: bool,
    seq: u64,
}

impl Network {
    pub fn new(profile: NetProfile) -> Self {
        Network {
            profile,
            queue: BinaryHeap::new(),
            blocked: BTreeSet::new(),
            reliable: false,
            seq: 0,
        }
    }

    pub fn send(&mut self, rng: &mut Xoshiro256PlusPlus, now_us: u64, msg: Message, data: Option<SmState>) -> Sent {
        if self.blocked.contains(&(msg.from, msg.to)) || (!self.reliable && rng.chance_ppm(self.profile.drop_ppm)) {
            return Sent::Dropped;
        }
        let copies = if !self.reliable && data.is_none() && rng.chance_ppm(self.profile.duplicate_ppm) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = rng.between(self.profile.min_delay_us, self.profile.max_delay_us + 1);
            self.seq += 1;
            self.queue.push(Reverse(InFlight {
                deliver_at_us: now_us + delay,
                seq: self.seq,
                msg: msg.clone(),
                snapshot_data: data,
            }));
        }
        Sent::Queued
    }

    /// Re-queues a message for later (its recipient is paused).
    pub fn defer(&mut self, mut m: InFlight, until_us: u64) {
        self.seq += 1;
        m.deliver_at_us = until_us;
        m.seq = self.seq;
        self.queue.push(Reverse(m));
    }

    pub fn next_delivery_us(&self) -> Option<u64> {
        self.queue.peek().map(|Reverse(m)| m.deliver_at_us)
    }

    pub fn pop(&mut self) -> Option<InFlight> {
        self.queue.pop().map(|Reverse(m)| m)
    }

    /// Splits `nodes` into `side` and the rest; both directions are cut.
    pub fn partition(&mut self, side: &[NodeId], nodes: &[NodeId]) {
        for &a in side {
            for &b in nodes.iter().filter(|b| !side.contains(b)) {
                self.blocked.insert((a, b));
                self.blocked.insert((b, a));
            }
        }
    }

    /// Cuts one direction of one link.
    pub fn block_one_way(&mut self, from: NodeId, to: NodeId) {
        self.blocked.insert((from, to));
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    pub fn blocked_links(&self) -> usize {
        self.blocked.len()
    }
}
