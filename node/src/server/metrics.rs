//! Prometheus metrics of a node, served at `/metrics`. Labels are low-cardinality: method
//! names and status codes, never keys or member names.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::driver::NodeStatus;

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The RPC or HTTP route, e.g. `KV/Put`.
    pub method: String,
    /// The gRPC status code name, e.g. `Ok`, `Unavailable`.
    pub code: String,
}

/// Every metric of a node.
pub struct Metrics {
    registry: Registry,
    /// Raft term.
    pub term: Gauge,
    /// 1 when this member leads.
    pub is_leader: Gauge,
    /// Leader changes seen.
    pub leader_changes: Counter,
    /// Commit index.
    pub commit_index: Gauge,
    /// Applied index.
    pub applied_index: Gauge,
    /// Time to persist one Ready (write transaction + fsync).
    pub fsync_seconds: Histogram,
    /// Time to carry out one batch of Readies.
    pub ready_seconds: Histogram,
    /// Time from a proposal to its applied result.
    pub proposal_seconds: Histogram,
    /// Requests by method and code.
    pub requests: Family<RequestLabels, Counter>,
    /// Raft messages handed to the transport.
    pub messages_sent: Counter,
    /// Registered watchers.
    pub watchers: Gauge,
    /// Database file size.
    pub db_size_bytes: Gauge,
    /// Logical size the quota counts.
    pub db_logical_bytes: Gauge,
    /// Pauses of online database compaction.
    pub db_compaction_pause: Histogram,
}

fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("kvorum");
        let m = Metrics {
            term: Gauge::default(),
            is_leader: Gauge::default(),
            leader_changes: Counter::default(),
            commit_index: Gauge::default(),
            applied_index: Gauge::default(),
            fsync_seconds: latency(),
            ready_seconds: latency(),
            proposal_seconds: latency(),
            requests: Family::default(),
            messages_sent: Counter::default(),
            watchers: Gauge::default(),
            db_size_bytes: Gauge::default(),
            db_logical_bytes: Gauge::default(),
            db_compaction_pause: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            registry: Registry::default(),
        };
        registry.register("raft_term", "Current Raft term", m.term.clone());
        registry.register("raft_is_leader", "1 if this member is the leader", m.is_leader.clone());
        registry.register("raft_leader_changes", "Leader changes seen", m.leader_changes.clone());
        registry.register("raft_commit_index", "Raft commit index", m.commit_index.clone());
        registry.register("raft_applied_index", "Raft applied index", m.applied_index.clone());
        registry.register(
            "disk_fsync_seconds",
            "Time to persist one Ready (write transaction with fsync)",
            m.fsync_seconds.clone(),
        );
        registry.register(
            "raft_ready_seconds",
            "Time to carry out a batch of Readies",
            m.ready_seconds.clone(),
        );
        registry.register(
            "proposal_seconds",
            "Time from proposal to applied result",
            m.proposal_seconds.clone(),
        );
        registry.register(
            "requests",
            "Client requests by method and status code",
            m.requests.clone(),
        );
        registry.register(
            "raft_messages_sent",
            "Raft messages sent to peers",
            m.messages_sent.clone(),
        );
        registry.register("watchers", "Registered watchers", m.watchers.clone());
        registry.register("db_size_bytes", "Database file size", m.db_size_bytes.clone());
        registry.register(
            "db_logical_bytes",
            "Logical data size counted against the space quota",
            m.db_logical_bytes.clone(),
        );
        registry.register(
            "db_compaction_pause_seconds",
            "Pause of online database compaction",
            m.db_compaction_pause.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts one request.
    pub fn request(&self, method: &str, code: tonic::Code) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                code: format!("{code:?}"),
            })
            .inc();
    }

    /// Updates the Raft gauges.
    pub fn observe_status(&self, s: &NodeStatus) {
        self.term.set(s.term as i64);
        self.is_leader.set(i64::from(s.leader == Some(s.id)));
        self.commit_index.set(s.commit as i64);
        self.applied_index.set(s.applied as i64);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
