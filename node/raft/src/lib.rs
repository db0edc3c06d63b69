//! kvorum's Raft consensus core, sans IO.
//!
//! This crate decides; it never does. It has no threads, no sockets, no disk, no clock and no
//! global randomness: time advances when the driver calls [`Raft::tick`], randomness comes from
//! the RNG the driver passes in, and every effect — persisting, sending, applying — is handed
//! back as a [`Ready`]. That makes the core deterministic: the simulator in `tests/sim` runs
//! whole clusters from one seed and replays any failure exactly.
//!
//! # Driving a node
//!
//! Inputs: [`Raft::tick`], [`Raft::step`] (a message from a peer), [`Raft::propose`],
//! [`Raft::propose_conf_change`], [`Raft::read_index`], [`Raft::transfer_leader`],
//! [`Raft::compact`], [`Raft::report_snapshot`]. Outputs: [`Raft::ready`], carried out in the
//! order the [`ready`] module documents (persist, then send, apply, serve reads), then
//! acknowledged with [`Raft::advance`].
//!
//! Here is a three-node cluster driven by hand, with an instant network:
//!
//! ```
//! use bytes::Bytes;
//! use kvorum_raft::{Config, EntryPayload, PersistedState, Raft, Role};
//!
//! /// A tiny deterministic RNG; any `rand_core::Rng` will do.
//! struct Counter(u64);
//! impl rand_core::TryRng for Counter {
//!     type Error = std::convert::Infallible;
//!     fn try_next_u32(&mut self) -> Result<u32, Self::Error> { Ok(self.try_next_u64()? as u32) }
//!     fn try_next_u64(&mut self) -> Result<u64, Self::Error> { self.0 += 7; Ok(self.0) }
//!     fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
//!         dst.fill(self.0 as u8);
//!         Ok(())
//!     }
//! }
//!
//! let mut nodes: Vec<Raft> = (1..=3)
//!     .map(|id| {
//!         let state = PersistedState::bootstrap([1, 2, 3]);
//!         Raft::new(Config::new(id), state, Box::new(Counter(id))).unwrap()
//!     })
//!     .collect();
//! let mut applied: Vec<Vec<Bytes>> = vec![Vec::new(); 3];
//!
//! // One round of the driver loop on every node: persist (a real driver writes to disk
//! // here), send, apply, acknowledge. Messages are delivered instantly.
//! fn pump(nodes: &mut [Raft], applied: &mut [Vec<Bytes>]) {
//!     loop {
//!         let mut inbox = Vec::new();
//!         for (i, node) in nodes.iter_mut().enumerate() {
//!             if !node.has_ready() {
//!                 continue;
//!             }
//!             let ready = node.ready();
//!             // 1. persist ready.snapshot, ready.entries, ready.hard_state durably …
//!             // 2. … only then send the messages.
//!             inbox.extend(ready.messages.iter().cloned());
//!             // 3. apply committed entries.
//!             for entry in &ready.committed_entries {
//!                 if let EntryPayload::Command(data) = &entry.payload {
//!                     applied[i].push(data.clone());
//!                 }
//!             }
//!             node.advance(ready.ack());
//!         }
//!         if inbox.is_empty() {
//!             return;
//!         }
//!         for m in inbox {
//!             nodes[(m.to - 1) as usize].step(m);
//!         }
//!     }
//! }
//!
//! // Node 1 times out first: it runs a pre-vote, then an election, and wins.
//! while nodes[0].role() != Role::Leader {
//!     nodes[0].tick();
//!     pump(&mut nodes, &mut applied);
//! }
//! nodes[0].propose(Bytes::from_static(b"x=5")).unwrap();
//! pump(&mut nodes, &mut applied);
//! // Heartbeats tell the followers the entry committed.
//! for _ in 0..nodes[0].config().heartbeat_interval_ticks {
//!     nodes[0].tick();
//! }
//! pump(&mut nodes, &mut applied);
//! assert!(applied.iter().all(|a| a == &vec![Bytes::from_static(b"x=5")]));
//! ```
//!
//! # What the core guarantees, and what it assumes
//!
//! It guarantees the safety properties of the Raft paper (Figure 3) provided the driver keeps
//! the ordering contract of [`ready`]. A broken internal invariant panics with the node, term
//! and index: continuing would risk the data. Requests that cannot be served now return a
//! [`RaftError`] saying whether to retry or whom to redirect to.

#![deny(missing_docs)]

mod config;
mod error;
pub mod log;
pub mod membership;
mod message;
pub mod progress;
mod raft;
pub mod ready;
mod types;

pub use config::{Config, ConfigError};
pub use error::RaftError;
pub use message::{MalformedMessage, Message, MessageBody, ReadId, RejectHint};
pub use raft::{BOOTSTRAP_INDEX, Compaction, Proposed, Raft, Role, SnapshotStatus};
pub use ready::{ReadState, Ready, ReadyAck};
pub use types::{
    ConfChange, ConfState, ENTRY_OVERHEAD_BYTES, Entry, EntryPayload, HardState, Index, NodeId, PersistedState,
    SnapshotMeta, Term,
};
