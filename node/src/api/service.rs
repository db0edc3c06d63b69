//! The operations behind every client API, written once: gRPC, the JSON gateway and the REST
//! API all call these. Each returns etcd's response type with its header filled in, or a
//! `tonic::Status` with etcd's code and message.

use std::sync::Arc;
use std::time::Duration;

use tonic::Status;

use crate::mvcc::Response;
use crate::proto::etcdserverpb::{
    AlarmMember, AlarmRequest, AlarmResponse, AlarmType, CompactionRequest, CompactionResponse, DeleteRangeRequest,
    DeleteRangeResponse, HashKvRequest, HashKvResponse, HashResponse, LeaseGrantRequest, LeaseGrantResponse,
    LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus, LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse, Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse, MemberUpdateRequest,
    MemberUpdateResponse, MoveLeaderRequest, MoveLeaderResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
    ResponseHeader, StatusResponse, TxnRequest, TxnResponse, alarm_request,
};
use crate::proto::kvorum::internal::{MemberChange, command::Op, member_change};
use crate::server::node::Node;
use crate::server::{Phase, ServerState};

/// The version reported in `Status`: the etcd API level kvorum speaks.
pub const ETCD_API_VERSION: &str = "3.5.0";

/// Shared entry point of the client APIs.
#[derive(Clone)]
pub struct Api {
    state: Arc<ServerState>,
}

fn unexpected(r: Response) -> Status {
    Status::internal(format!("unexpected state machine response {r:?}"))
}

impl Api {
    /// An API over a (possibly not yet running) member.
    pub fn new(state: Arc<ServerState>) -> Api {
        Api { state }
    }

    /// The shared server state.
    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// The running member, or Unavailable saying why not.
    pub fn node(&self) -> Result<&Node, Status> {
        self.state.node().ok_or_else(|| {
            let why = match self.state.phase() {
                Phase::AwaitingMembership { reason } => reason,
                Phase::Stopped { reason } => format!("stopped: {reason}"),
                _ => "starting".into(),
            };
            Status::unavailable(format!("etcdserver: member not serving: {why}"))
        })
    }

    /// A response header at `revision` (0: the current revision).
    pub fn header(&self, revision: i64) -> Option<ResponseHeader> {
        let node = self.state.node()?;
        let status = node.status();
        Some(ResponseHeader {
            cluster_id: node.info().cluster_id,
            member_id: node.info().id,
            revision: if revision > 0 {
                revision
            } else {
                node.store().current_revision()
            },
            raft_term: status.term,
        })
    }

    fn with_header(&self, h: &mut Option<ResponseHeader>) {
        let rev = h.as_ref().map_or(0, |h| h.revision);
        *h = self.header(rev);
    }

    fn is_learner(&self, node: &Node) -> bool {
        node.status().learners.contains(&node.info().id)
    }

    // ---- KV ----

    /// Range: linearizable unless `serializable`.
    pub async fn range(&self, r: RangeRequest) -> Result<RangeResponse, Status> {
        let node = self.node()?;
        if !r.serializable {
            if self.is_learner(node) {
                return Err(Status::failed_precondition("etcdserver: rpc not supported for learner"));
            }
            node.read_barrier().await?;
        }
        let mut resp = node.store().range(&r).map_err(crate::server::error::NodeError::from)?;
        self.with_header(&mut resp.header);
        Ok(resp)
    }

    async fn propose(&self, op: Op) -> Result<Response, Status> {
        let node = self.node()?;
        if self.is_learner(node) {
            return Err(Status::failed_precondition("etcdserver: rpc not supported for learner"));
        }
        Ok(node.propose(op).await?)
    }

    /// Put.
    pub async fn put(&self, r: PutRequest) -> Result<PutResponse, Status> {
        match self.propose(Op::Put(r)).await? {
            Response::Put(mut p) => {
                self.with_header(&mut p.header);
                Ok(p)
            }
            other => Err(unexpected(other)),
        }
    }

    /// DeleteRange.
    pub async fn delete_range(&self, r: DeleteRangeRequest) -> Result<DeleteRangeResponse, Status> {
        match self.propose(Op::DeleteRange(r)).await? {
            Response::DeleteRange(mut d) => {
                self.with_header(&mut d.header);
                Ok(d)
            }
            other => Err(unexpected(other)),
        }
    }

    /// Txn.
    pub async fn txn(&self, r: TxnRequest) -> Result<TxnResponse, Status> {
        match self.propose(Op::Txn(r)).await? {
            Response::Txn(mut t) => {
                self.with_header(&mut t.header);
                Ok(t)
            }
            other => Err(unexpected(other)),
        }
    }

    /// Compact; with `physical`, waits until this member has purged the compacted history.
    pub async fn compact(&self, r: CompactionRequest) -> Result<CompactionResponse, Status> {
        let physical = r.physical;
        let mut resp = match self.propose(Op::Compaction(r)).await? {
            Response::Compaction(c) => c,
            other => return Err(unexpected(other)),
        };
        if physical {
            let store = self.node()?.store().clone();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while store.purge_backlog() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.with_header(&mut resp.header);
        Ok(resp)
    }

    // ---- leases ----

    /// LeaseGrant.
    pub async fn lease_grant(&self, r: LeaseGrantRequest) -> Result<LeaseGrantResponse, Status> {
        match self.node()?.lease_grant(r.ttl, r.id).await? {
            Response::LeaseGrant(mut g) => {
                self.with_header(&mut g.header);
                Ok(g)
            }
            other => Err(unexpected(other)),
        }
    }

    /// LeaseRevoke.
    pub async fn lease_revoke(&self, r: LeaseRevokeRequest) -> Result<LeaseRevokeResponse, Status> {
        match self.node()?.lease_revoke(r.id).await? {
            Response::LeaseRevoke(mut g) => {
                self.with_header(&mut g.header);
                Ok(g)
            }
            other => Err(unexpected(other)),
        }
    }

    /// One keepalive: the new TTL (0 when the lease is gone).
    pub async fn lease_keepalive(&self, id: i64) -> Result<i64, Status> {
        Ok(self.node()?.lease_keepalive(id).await?)
    }

    /// LeaseTimeToLive: TTL −1 when the lease does not exist (etcd's answer).
    pub async fn lease_time_to_live(&self, r: LeaseTimeToLiveRequest) -> Result<LeaseTimeToLiveResponse, Status> {
        let node = self.node()?;
        node.read_barrier().await?;
        let Some(lease) = node.store().lease(r.id) else {
            return Ok(LeaseTimeToLiveResponse {
                header: self.header(0),
                id: r.id,
                ttl: -1,
                granted_ttl: 0,
                keys: vec![],
            });
        };
        let remaining = node.lease_remaining(r.id).await?;
        Ok(LeaseTimeToLiveResponse {
            header: self.header(0),
            id: r.id,
            ttl: remaining,
            granted_ttl: lease.ttl,
            keys: if r.keys { lease.keys } else { vec![] },
        })
    }

    /// LeaseLeases.
    pub async fn lease_leases(&self) -> Result<LeaseLeasesResponse, Status> {
        let node = self.node()?;
        node.read_barrier().await?;
        Ok(LeaseLeasesResponse {
            header: self.header(0),
            leases: node
                .store()
                .leases()
                .into_iter()
                .map(|l| LeaseStatus { id: l.id })
                .collect(),
        })
    }

    // ---- cluster ----

    fn members(&self) -> Result<Vec<Member>, Status> {
        Ok(self.node()?.members())
    }

    /// MemberAdd. A voting add joins as a learner and is promoted once caught up.
    pub async fn member_add(&self, r: MemberAddRequest) -> Result<MemberAddResponse, Status> {
        for u in &r.peer_ur_ls {
            if crate::config::split_url(u).is_none() {
                return Err(Status::invalid_argument(format!(
                    "etcdserver: invalid peer URL {u:?}: expected http(s)://host:port"
                )));
            }
        }
        let reply = self
            .node()?
            .member_change(MemberChange {
                kind: member_change::Kind::Add as i32,
                id: 0,
                peer_urls: r.peer_ur_ls.clone(),
                is_learner: r.is_learner,
            })
            .await?;
        let added = reply.member.unwrap_or_default();
        Ok(MemberAddResponse {
            header: self.header(0),
            member: Some(Member {
                id: added.id,
                name: added.name,
                peer_ur_ls: added.peer_urls,
                client_ur_ls: added.client_urls,
                is_learner: true,
            }),
            members: self.members()?,
        })
    }

    async fn change(&self, kind: member_change::Kind, id: u64, peer_urls: Vec<String>) -> Result<(), Status> {
        self.node()?
            .member_change(MemberChange {
                kind: kind as i32,
                id,
                peer_urls,
                is_learner: false,
            })
            .await?;
        Ok(())
    }

    /// MemberRemove.
    pub async fn member_remove(&self, r: MemberRemoveRequest) -> Result<MemberRemoveResponse, Status> {
        self.change(member_change::Kind::Remove, r.id, vec![]).await?;
        Ok(MemberRemoveResponse {
            header: self.header(0),
            members: self.members()?,
        })
    }

    /// MemberUpdate (peer URLs).
    pub async fn member_update(&self, r: MemberUpdateRequest) -> Result<MemberUpdateResponse, Status> {
        self.change(member_change::Kind::Update, r.id, r.peer_ur_ls).await?;
        Ok(MemberUpdateResponse {
            header: self.header(0),
            members: self.members()?,
        })
    }

    /// MemberPromote.
    pub async fn member_promote(&self, r: MemberPromoteRequest) -> Result<MemberPromoteResponse, Status> {
        self.change(member_change::Kind::Promote, r.id, vec![]).await?;
        Ok(MemberPromoteResponse {
            header: self.header(0),
            members: self.members()?,
        })
    }

    /// MemberList.
    pub async fn member_list(&self, r: MemberListRequest) -> Result<MemberListResponse, Status> {
        if r.linearizable {
            self.node()?.read_barrier().await?;
        }
        Ok(MemberListResponse {
            header: self.header(0),
            members: self.members()?,
        })
    }

    // ---- maintenance ----

    /// Status of this member.
    pub async fn status(&self) -> Result<StatusResponse, Status> {
        let node = self.node()?;
        let s = node.status();
        let store = node.store();
        let file_bytes = store.db().stats().map(|s| s.file_bytes).unwrap_or(0);
        let mut errors = Vec::new();
        if !store.quota_allows(0) {
            errors.push("NOSPACE: the logical size exceeds the quota; delete and compact to free space".into());
        }
        Ok(StatusResponse {
            header: self.header(0),
            version: ETCD_API_VERSION.into(),
            db_size: file_bytes as i64,
            leader: s.leader.unwrap_or(0),
            raft_index: s.commit,
            raft_term: s.term,
            raft_applied_index: s.applied,
            errors,
            db_size_in_use: store.logical_bytes() as i64,
            is_learner: s.learners.contains(&node.info().id),
            storage_version: "kvorum-1".into(),
            db_size_quota: store.config().quota_bytes as i64,
        })
    }

    /// Hash of the keyspace at the current revision.
    pub async fn hash(&self) -> Result<HashResponse, Status> {
        let h = self
            .node()?
            .store()
            .hash_kv(0)
            .map_err(crate::server::error::NodeError::from)?;
        Ok(HashResponse {
            header: self.header(0),
            hash: h.hash,
        })
    }

    /// HashKV at a revision.
    pub async fn hash_kv(&self, r: HashKvRequest) -> Result<HashKvResponse, Status> {
        let h = self
            .node()?
            .store()
            .hash_kv(r.revision)
            .map_err(crate::server::error::NodeError::from)?;
        Ok(HashKvResponse {
            header: self.header(0),
            hash: h.hash,
            compact_revision: h.compact_revision,
            hash_revision: h.revision,
        })
    }

    /// MoveLeader.
    pub async fn move_leader(&self, r: MoveLeaderRequest) -> Result<MoveLeaderResponse, Status> {
        let node = self.node()?;
        if !node.status().voters.contains(&r.target_id) {
            return Err(Status::failed_precondition(
                "etcdserver: target member is not a voter of this cluster",
            ));
        }
        node.move_leader(r.target_id).await?;
        Ok(MoveLeaderResponse { header: self.header(0) })
    }

    /// Alarm: kvorum raises no alarms that need disarming (the quota frees itself); GET
    /// reports NOSPACE while the store is over its quota.
    pub async fn alarm(&self, r: AlarmRequest) -> Result<AlarmResponse, Status> {
        let node = self.node()?;
        let alarms = match alarm_request::AlarmAction::try_from(r.action) {
            Ok(alarm_request::AlarmAction::Get) if !node.store().quota_allows(0) => vec![AlarmMember {
                member_id: node.info().id,
                alarm: AlarmType::Nospace as i32,
            }],
            _ => vec![],
        };
        Ok(AlarmResponse {
            header: self.header(0),
            alarms,
        })
    }

    /// Defragment: an online compaction of this member's database file.
    pub async fn defragment(&self) -> Result<(), Status> {
        let db = self.node()?.store().db().clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let db = db.clone();
            match tokio::task::spawn_blocking(move || db.compact_now()).await {
                Ok(Ok(Some(_))) => return Ok(()),
                Ok(Ok(None)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(Ok(None)) => return Err(Status::unavailable("etcdserver: database busy; try again")),
                Ok(Err(e)) => return Err(Status::internal(format!("etcdserver: defragment failed: {e}"))),
                Err(e) => return Err(Status::internal(e.to_string())),
            }
        }
    }
}
