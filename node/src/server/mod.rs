//! The runtime that drives the Raft core: today its deterministic half, [`replica::Replica`].

pub mod replica;
