//! kvorum's sans-IO Raft consensus core.
