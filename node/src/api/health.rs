//! `/healthz` (the process serves), `/readyz` (a leader is known and this member has caught
//! up), `/metrics` (Prometheus), and `/v1/node` (what the operator reads: identity, phase,
//! role, indexes, and whether the member waits to be added after losing its data).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;

use super::service::Api;
use crate::server::Phase;

/// A member this far behind the commit index is not ready.
const READY_MAX_LAG: u64 = 1000;

/// The health routes.
pub fn router(api: Api) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/node", get(node))
        .with_state(api)
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Why the member is not ready, if it is not.
pub fn not_ready(api: &Api) -> Option<String> {
    let Some(node) = api.state().node() else {
        return Some(match api.state().phase() {
            Phase::AwaitingMembership { reason } => reason,
            Phase::Stopped { reason } => format!("stopped: {reason}"),
            _ => "starting".into(),
        });
    };
    let s = node.status();
    if s.stopped {
        return Some("stopped".into());
    }
    if s.leader.is_none() {
        return Some("no leader".into());
    }
    if s.applied + READY_MAX_LAG < s.commit {
        return Some(format!("catching up: applied {} of {}", s.applied, s.commit));
    }
    None
}

async fn readyz(State(api): State<Api>) -> impl IntoResponse {
    match not_ready(&api) {
        None => (StatusCode::OK, "ok\n".to_string()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
    }
}

async fn metrics(State(api): State<Api>) -> impl IntoResponse {
    let m = &api.state().metrics;
    if let Some(node) = api.state().node() {
        let store = node.store();
        m.db_logical_bytes.set(store.logical_bytes() as i64);
        if let Ok(s) = store.db().stats() {
            m.db_size_bytes.set(s.file_bytes as i64);
        }
        m.watchers.set(store.watch_hub().watcher_count() as i64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        m.encode(),
    )
}

/// The member as `/v1/node` describes it.
#[derive(Debug, Serialize)]
pub struct NodeView {
    /// Member name.
    pub name: String,
    /// `starting`, `awaiting-membership`, `running` or `stopped`.
    pub phase: &'static str,
    /// Human-readable detail of the phase.
    pub detail: Option<String>,
    /// True when the member started with an empty data directory in an existing cluster and
    /// waits to be added as a new member (the operator's cue to replace it).
    pub data_dir_empty: bool,
    /// Member ID (hex), once known.
    pub member_id: Option<String>,
    /// Cluster ID (hex), once known.
    pub cluster_id: Option<String>,
    /// `leader`, `follower`, `candidate`, `learner`.
    pub role: Option<String>,
    /// Leader's member ID (hex).
    pub leader: Option<String>,
    /// Raft term.
    pub term: u64,
    /// Commit index.
    pub commit_index: u64,
    /// Applied index.
    pub applied_index: u64,
    /// Whether `/readyz` passes.
    pub ready: bool,
    /// Leader only: each member's replicated index (hex ID → index).
    pub progress: std::collections::BTreeMap<String, u64>,
}

async fn node(State(api): State<Api>) -> Json<NodeView> {
    let ready = not_ready(&api).is_none();
    let cfg = &api.state().config;
    let (phase, detail, data_dir_empty) = match api.state().phase() {
        Phase::Starting => ("starting", None, false),
        Phase::AwaitingMembership { reason } => ("awaiting-membership", Some(reason), true),
        Phase::Running => ("running", None, false),
        Phase::Stopped { reason } => ("stopped", Some(reason), false),
    };
    let mut view = NodeView {
        name: cfg.name.clone(),
        phase,
        detail,
        data_dir_empty,
        member_id: None,
        cluster_id: None,
        role: None,
        leader: None,
        term: 0,
        commit_index: 0,
        applied_index: 0,
        ready,
        progress: Default::default(),
    };
    if let Some(node) = api.state().node() {
        let s = node.status();
        let me = node.info().id;
        view.member_id = Some(format!("{me:x}"));
        view.cluster_id = Some(format!("{:x}", node.info().cluster_id));
        view.role = Some(
            if s.learners.contains(&me) {
                "learner"
            } else {
                match s.role {
                    Some(kvorum_raft::Role::Leader) => "leader",
                    Some(kvorum_raft::Role::Candidate | kvorum_raft::Role::PreCandidate) => "candidate",
                    _ => "follower",
                }
            }
            .into(),
        );
        view.leader = s.leader.map(|l| format!("{l:x}"));
        view.term = s.term;
        view.commit_index = s.commit;
        view.applied_index = s.applied;
        view.progress = s.progress.iter().map(|(id, m)| (format!("{id:x}"), *m)).collect();
    }
    Json(view)
}
