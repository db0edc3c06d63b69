//! The client API, all on one port (default 2379):
//!
//! | path | what |
//! |---|---|
//! | `/etcdserverpb.*/…`, `/v3electionpb.Election/…`, `/v3lockpb.Lock/…` | etcd v3 gRPC ([`grpc`]) |
//! | `/v3/…`, `/v3beta/…` | etcd's JSON gateway ([`gateway`]) |
//! | `/v1/kv/…`, `/v1/watch/…`, `/v1/openapi.yaml`, `/v1/node` | the config REST API ([`rest`]) |
//! | `/healthz`, `/readyz`, `/metrics` | health and Prometheus metrics ([`health`]) |
//!
//! HTTP/1.1 and HTTP/2 (h2c on plaintext, ALPN over TLS) are both accepted, so etcdctl, gRPC
//! libraries, curl and browsers all connect to the same listener.

mod authority;
pub mod concurrency;
pub mod gateway;
pub mod grpc;
pub mod health;
pub mod rest;
pub mod service;
pub mod watch;

use std::future::Future;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use self::grpc::Grpc;
use self::service::Api;
use crate::proto::etcdserverpb::{cluster_server, kv_server, lease_server, maintenance_server, watch_server};
use crate::proto::v3electionpb::election_server;
use crate::proto::v3lockpb::lock_server;
use crate::server::ServerState;

/// Every route of the client port.
pub fn router(state: Arc<ServerState>) -> axum::Router {
    let api = Api::new(state.clone());
    let g = Grpc(api.clone());
    // gRPC's own limit sits 512 KiB above the request limit, as etcd's does, so requests in
    // between get etcd's "request is too large" rather than a transport error.
    let limit = state.config.mvcc.max_request_bytes + (512 << 10);
    let grpc = tonic::service::Routes::new(kv_server::KvServer::new(g.clone()).max_decoding_message_size(limit))
        .add_service(watch_server::WatchServer::new(g.clone()).max_decoding_message_size(limit))
        .add_service(lease_server::LeaseServer::new(g.clone()).max_decoding_message_size(limit))
        .add_service(cluster_server::ClusterServer::new(g.clone()).max_decoding_message_size(limit))
        .add_service(maintenance_server::MaintenanceServer::new(g.clone()).max_decoding_message_size(limit))
        .add_service(election_server::ElectionServer::new(g.clone()).max_decoding_message_size(limit))
        .add_service(lock_server::LockServer::new(g).max_decoding_message_size(limit))
        .into_axum_router();
    grpc.merge(gateway::router(api.clone()))
        .merge(rest::router(api.clone()))
        .merge(health::router(api))
        .fallback(unknown_route)
}

/// Unknown paths: gRPC clients get `Unimplemented` the gRPC way; everyone else a 404.
async fn unknown_route(req: axum::extract::Request) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if grpc {
        let mut r = StatusCode::OK.into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        h.insert("grpc-status", HeaderValue::from(tonic::Code::Unimplemented as i32));
        h.insert("grpc-message", HeaderValue::from_static("unknown%20method"));
        return r;
    }
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"code":"not_found","message":"no such route; see /v1/openapi.yaml"}"#,
    )
        .into_response()
}

/// Serves the client API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: Arc<ServerState>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let app = router(state);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "client accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        tcp.set_nodelay(true).ok();
        let service = TowerToHyperService::new(app.clone());
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let result = match acceptor {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(tls) => {
                        let io = TokioIo::new(authority::AuthorityFix::new(tls));
                        watcher
                            .watch(builder.serve_connection_with_upgrades(io, service).into_owned())
                            .await
                    }
                    Err(e) => {
                        tracing::debug!(client = %addr, error = %e, "client TLS handshake failed");
                        return;
                    }
                },
                None => {
                    let io = TokioIo::new(authority::AuthorityFix::new(tcp));
                    watcher
                        .watch(builder.serve_connection_with_upgrades(io, service).into_owned())
                        .await
                }
            };
            if let Err(e) = result {
                tracing::trace!(client = %addr, error = %e, "client connection ended");
            }
        });
    }
    // In-flight requests finish (or the process's grace period ends them).
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown()).await;
}
