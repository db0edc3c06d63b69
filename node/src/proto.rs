//! Wire types generated from `node/proto`: etcd's v3 API and kvorum's replicated commands.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// etcd's data model: `KeyValue`, `Event`.
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
    include!(concat!(env!("OUT_DIR"), "/mvccpb.serde.rs"));
}

/// etcd's v3 client API: KV, Watch, Lease, Cluster, Maintenance.
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.serde.rs"));
}

/// etcd's election service.
pub mod v3electionpb {
    tonic::include_proto!("v3electionpb");
    include!(concat!(env!("OUT_DIR"), "/v3electionpb.serde.rs"));
}

/// etcd's lock service.
pub mod v3lockpb {
    tonic::include_proto!("v3lockpb");
    include!(concat!(env!("OUT_DIR"), "/v3lockpb.serde.rs"));
}

/// kvorum's own messages.
pub mod kvorum {
    /// The commands kvorum replicates through Raft.
    pub mod internal {
        tonic::include_proto!("kvorum.internal");
    }
}
