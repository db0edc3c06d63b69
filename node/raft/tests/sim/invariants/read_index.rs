//! Linearizable reads (thesis §6.4): a read served at index i must observe every write that was
//! acknowledged before the read was issued, i.e. i ≥ the highest acknowledged index at issue.
//! The stale-round reuse of tikv#7971 would break exactly this.

use std::collections::HashMap;

use kvorum_raft::{Index, ReadId};

#[derive(Default)]
pub struct ReadIndexSafety {
    /// Outstanding reads: id → highest acknowledged write index when issued.
    issued: HashMap<ReadId, Index>,
    pub served: u64,
}

impl ReadIndexSafety {
    pub fn issue(&mut self, id: ReadId, acked_index: Index) {
        self.issued.insert(id, acked_index);
    }

    pub fn on_ready(&mut self, id: ReadId, index: Index) {
        if let Some(must_see) = self.issued.remove(&id) {
            assert!(
                index >= must_see,
                "ReadIndex: read {id} got index {index} but a write at {must_see} was acknowledged before it was issued"
            );
            self.served += 1;
        }
    }

    pub fn on_dropped(&mut self, id: ReadId) {
        self.issued.remove(&id);
    }
}
