//! The etcd v3 gRPC services: thin adapters from tonic to [`Api`], plus the streaming RPCs
//! (Watch, LeaseKeepAlive, Snapshot, Observe). Every call is counted by method and code.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::concurrency;
use super::service::Api;
use crate::proto::etcdserverpb::{
    AlarmRequest, AlarmResponse, CompactionRequest, CompactionResponse, DefragmentRequest, DefragmentResponse,
    DeleteRangeRequest, DeleteRangeResponse, HashKvRequest, HashKvResponse, HashRequest, HashResponse,
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesRequest,
    LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
    MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse, MemberPromoteRequest,
    MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse, MemberUpdateRequest, MemberUpdateResponse,
    MoveLeaderRequest, MoveLeaderResponse, PutRequest, PutResponse, RangeRequest, RangeResponse, SnapshotRequest,
    SnapshotResponse, StatusRequest, StatusResponse, TxnRequest, TxnResponse, WatchRequest, WatchResponse,
    cluster_server, kv_server, lease_server, maintenance_server, watch_server,
};
use crate::proto::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderRequest, LeaderResponse, ProclaimRequest, ProclaimResponse, ResignRequest,
    ResignResponse, election_server,
};
use crate::proto::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse, lock_server};

/// A response stream.
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The gRPC face of the API.
#[derive(Clone)]
pub struct Grpc(pub Api);

impl Grpc {
    fn count<T>(&self, method: &str, r: Result<T, Status>) -> Result<Response<T>, Status> {
        let code = r.as_ref().map_or_else(|s| s.code(), |_| tonic::Code::Ok);
        self.0.state().metrics.request(method, code);
        r.map(Response::new)
    }
}

#[tonic::async_trait]
impl kv_server::Kv for Grpc {
    async fn range(&self, r: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let out = self.0.range(r.into_inner()).await;
        self.count("KV/Range", out)
    }
    async fn put(&self, r: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let out = self.0.put(r.into_inner()).await;
        self.count("KV/Put", out)
    }
    async fn delete_range(&self, r: Request<DeleteRangeRequest>) -> Result<Response<DeleteRangeResponse>, Status> {
        let out = self.0.delete_range(r.into_inner()).await;
        self.count("KV/DeleteRange", out)
    }
    async fn txn(&self, r: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let out = self.0.txn(r.into_inner()).await;
        self.count("KV/Txn", out)
    }
    async fn compact(&self, r: Request<CompactionRequest>) -> Result<Response<CompactionResponse>, Status> {
        let out = self.0.compact(r.into_inner()).await;
        self.count("KV/Compact", out)
    }
}

#[tonic::async_trait]
impl watch_server::Watch for Grpc {
    type WatchStream = BoxStream<WatchResponse>;

    async fn watch(&self, r: Request<Streaming<WatchRequest>>) -> Result<Response<Self::WatchStream>, Status> {
        self.0.node()?;
        let (tx, rx) = mpsc::channel(128);
        let api = self.0.clone();
        tokio::spawn(super::watch::serve(api, r.into_inner(), tx));
        self.count("Watch/Watch", Ok(Box::pin(ReceiverStream::new(rx)) as BoxStream<_>))
    }
}

#[tonic::async_trait]
impl lease_server::Lease for Grpc {
    type LeaseKeepAliveStream = BoxStream<LeaseKeepAliveResponse>;

    async fn lease_grant(&self, r: Request<LeaseGrantRequest>) -> Result<Response<LeaseGrantResponse>, Status> {
        let out = self.0.lease_grant(r.into_inner()).await;
        self.count("Lease/LeaseGrant", out)
    }
    async fn lease_revoke(&self, r: Request<LeaseRevokeRequest>) -> Result<Response<LeaseRevokeResponse>, Status> {
        let out = self.0.lease_revoke(r.into_inner()).await;
        self.count("Lease/LeaseRevoke", out)
    }
    async fn lease_keep_alive(
        &self,
        r: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        self.0.node()?;
        let api = self.0.clone();
        let mut input = r.into_inner();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Some(Ok(req)) = input.next().await {
                let reply = api.lease_keepalive(req.id).await.map(|ttl| LeaseKeepAliveResponse {
                    header: api.header(0),
                    id: req.id,
                    ttl,
                });
                if tx.send(reply).await.is_err() {
                    return;
                }
            }
        });
        self.count(
            "Lease/LeaseKeepAlive",
            Ok(Box::pin(ReceiverStream::new(rx)) as BoxStream<_>),
        )
    }
    async fn lease_time_to_live(
        &self,
        r: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let out = self.0.lease_time_to_live(r.into_inner()).await;
        self.count("Lease/LeaseTimeToLive", out)
    }
    async fn lease_leases(&self, _r: Request<LeaseLeasesRequest>) -> Result<Response<LeaseLeasesResponse>, Status> {
        let out = self.0.lease_leases().await;
        self.count("Lease/LeaseLeases", out)
    }
}

#[tonic::async_trait]
impl cluster_server::Cluster for Grpc {
    async fn member_add(&self, r: Request<MemberAddRequest>) -> Result<Response<MemberAddResponse>, Status> {
        let out = self.0.member_add(r.into_inner()).await;
        self.count("Cluster/MemberAdd", out)
    }
    async fn member_remove(&self, r: Request<MemberRemoveRequest>) -> Result<Response<MemberRemoveResponse>, Status> {
        let out = self.0.member_remove(r.into_inner()).await;
        self.count("Cluster/MemberRemove", out)
    }
    async fn member_update(&self, r: Request<MemberUpdateRequest>) -> Result<Response<MemberUpdateResponse>, Status> {
        let out = self.0.member_update(r.into_inner()).await;
        self.count("Cluster/MemberUpdate", out)
    }
    async fn member_list(&self, r: Request<MemberListRequest>) -> Result<Response<MemberListResponse>, Status> {
        let out = self.0.member_list(r.into_inner()).await;
        self.count("Cluster/MemberList", out)
    }
    async fn member_promote(
        &self,
        r: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        let out = self.0.member_promote(r.into_inner()).await;
        self.count("Cluster/MemberPromote", out)
    }
}

#[tonic::async_trait]
impl maintenance_server::Maintenance for Grpc {
    type SnapshotStream = BoxStream<SnapshotResponse>;

    async fn alarm(&self, r: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        let out = self.0.alarm(r.into_inner()).await;
        self.count("Maintenance/Alarm", out)
    }
    async fn status(&self, _r: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let out = self.0.status().await;
        self.count("Maintenance/Status", out)
    }
    async fn defragment(&self, _r: Request<DefragmentRequest>) -> Result<Response<DefragmentResponse>, Status> {
        let out = self.0.defragment().await.map(|_| DefragmentResponse {
            header: self.0.header(0),
        });
        self.count("Maintenance/Defragment", out)
    }
    async fn hash(&self, _r: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        let out = self.0.hash().await;
        self.count("Maintenance/Hash", out)
    }
    async fn hash_kv(&self, r: Request<HashKvRequest>) -> Result<Response<HashKvResponse>, Status> {
        let out = self.0.hash_kv(r.into_inner()).await;
        self.count("Maintenance/HashKV", out)
    }
    async fn snapshot(&self, _r: Request<SnapshotRequest>) -> Result<Response<Self::SnapshotStream>, Status> {
        let store = self.0.node()?.store().clone();
        let reader = crate::mvcc::ClientSnapshot::new(
            store
                .snapshot(32 << 10)
                .map_err(|e| Status::internal(format!("etcdserver: snapshot: {e}")))?,
        );
        let header = self.0.header(reader.revision());
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            for chunk in reader {
                let item = chunk
                    .map(|blob| SnapshotResponse {
                        header,
                        remaining_bytes: 0,
                        blob,
                        version: super::service::ETCD_API_VERSION.into(),
                    })
                    .map_err(|e| Status::internal(format!("etcdserver: snapshot: {e}")));
                if tx.blocking_send(item).is_err() {
                    return;
                }
            }
        });
        self.count(
            "Maintenance/Snapshot",
            Ok(Box::pin(ReceiverStream::new(rx)) as BoxStream<_>),
        )
    }
    async fn move_leader(&self, r: Request<MoveLeaderRequest>) -> Result<Response<MoveLeaderResponse>, Status> {
        let out = self.0.move_leader(r.into_inner()).await;
        self.count("Maintenance/MoveLeader", out)
    }
}

#[tonic::async_trait]
impl lock_server::Lock for Grpc {
    async fn lock(&self, r: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        let r = r.into_inner();
        let out = concurrency::lock(&self.0, r.name, r.lease)
            .await
            .map(|(header, key)| LockResponse { header, key });
        self.count("Lock/Lock", out)
    }
    async fn unlock(&self, r: Request<UnlockRequest>) -> Result<Response<UnlockResponse>, Status> {
        let out = concurrency::unlock(&self.0, r.into_inner().key)
            .await
            .map(|header| UnlockResponse { header });
        self.count("Lock/Unlock", out)
    }
}

#[tonic::async_trait]
impl election_server::Election for Grpc {
    type ObserveStream = BoxStream<LeaderResponse>;

    async fn campaign(&self, r: Request<CampaignRequest>) -> Result<Response<CampaignResponse>, Status> {
        let r = r.into_inner();
        let out = concurrency::campaign(&self.0, r.name, r.lease, r.value)
            .await
            .map(|leader| CampaignResponse {
                header: self.0.header(0),
                leader: Some(leader),
            });
        self.count("Election/Campaign", out)
    }
    async fn proclaim(&self, r: Request<ProclaimRequest>) -> Result<Response<ProclaimResponse>, Status> {
        let r = r.into_inner();
        let out = match r.leader {
            Some(l) => concurrency::proclaim(&self.0, &l, r.value)
                .await
                .map(|header| ProclaimResponse { header }),
            None => Err(Status::invalid_argument("election: no leader key given")),
        };
        self.count("Election/Proclaim", out)
    }
    async fn leader(&self, r: Request<LeaderRequest>) -> Result<Response<LeaderResponse>, Status> {
        let out = match concurrency::leader(&self.0, &r.into_inner().name).await {
            Ok((header, Some(kv))) => Ok(LeaderResponse { header, kv: Some(kv) }),
            Ok((_, None)) => Err(Status::not_found("election: no leader")),
            Err(e) => Err(e),
        };
        self.count("Election/Leader", out)
    }
    async fn observe(&self, r: Request<LeaderRequest>) -> Result<Response<Self::ObserveStream>, Status> {
        self.0.node()?;
        let name = r.into_inner().name;
        let api = self.0.clone();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut last: Option<(bytes::Bytes, i64)> = None;
            loop {
                let (header, kv) = match concurrency::leader(&api, &name).await {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                let rev = header.as_ref().map_or(0, |h| h.revision);
                if let Some(kv) = kv {
                    let id = (kv.key.clone(), kv.mod_revision);
                    if last.as_ref() != Some(&id) {
                        last = Some(id);
                        if tx.send(Ok(LeaderResponse { header, kv: Some(kv) })).await.is_err() {
                            return;
                        }
                    }
                }
                tokio::select! {
                    r = concurrency::next_change(&api, &name, rev) => if r.is_err() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    },
                    _ = tx.closed() => return,
                }
            }
        });
        self.count(
            "Election/Observe",
            Ok(Box::pin(ReceiverStream::new(rx)) as BoxStream<_>),
        )
    }
    async fn resign(&self, r: Request<ResignRequest>) -> Result<Response<ResignResponse>, Status> {
        let out = match r.into_inner().leader {
            Some(l) => concurrency::resign(&self.0, &l)
                .await
                .map(|header| ResignResponse { header }),
            None => Err(Status::invalid_argument("election: no leader key given")),
        };
        self.count("Election/Resign", out)
    }
}
