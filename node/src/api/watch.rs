//! One client watch stream (gRPC `Watch` and the gateway's `/v3/watch`): many watchers
//! multiplexed by `watch_id`, as etcd does.
//!
//! Each watcher gets a forwarding task that turns hub updates into `WatchResponse`s on the
//! stream's bounded output channel; the hub itself never waits on the client. Progress
//! notifications are sent periodically for idle synced watchers that asked for them, and on
//! request for the whole stream (`watch_id = -1`, only when every watcher is synced).

use std::collections::HashMap;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::Status;

use super::service::Api;
use crate::mvcc::index::KeySpan;
use crate::mvcc::{WatchSpec, WatchStream, WatchUpdate};
use crate::proto::etcdserverpb::{
    WatchCancelRequest, WatchCreateRequest, WatchRequest, WatchResponse, watch_create_request, watch_request,
};

/// Default interval of progress notifications (etcd: 10 minutes). Overridable for tests with
/// `KVORUM_WATCH_PROGRESS_MS`.
pub fn progress_interval() -> Duration {
    std::env::var("KVORUM_WATCH_PROGRESS_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(600), Duration::from_millis)
}

struct Active {
    hub_id: u64,
    task: JoinHandle<()>,
}

/// Serves a stream of watch requests; responses go to `out`.
pub async fn serve<S>(api: Api, mut requests: S, out: mpsc::Sender<Result<WatchResponse, Status>>)
where
    S: Stream<Item = Result<WatchRequest, Status>> + Unpin + Send,
{
    let mut active: HashMap<i64, Active> = HashMap::new();
    let mut next_id: i64 = 0;
    while let Some(req) = requests.next().await {
        let Ok(req) = req else { break };
        let reply = match req.request_union {
            Some(watch_request::RequestUnion::CreateRequest(c)) => create(&api, c, &mut active, &mut next_id, &out),
            Some(watch_request::RequestUnion::CancelRequest(WatchCancelRequest { watch_id })) => {
                match active.remove(&watch_id) {
                    Some(a) => {
                        a.task.abort();
                        Some(WatchResponse {
                            header: api.header(0),
                            watch_id,
                            canceled: true,
                            ..Default::default()
                        })
                    }
                    None => None,
                }
            }
            Some(watch_request::RequestUnion::ProgressRequest(_)) => {
                let ids: Vec<u64> = active.values().map(|a| a.hub_id).collect();
                progress(&api, &ids).await.map(|rev| WatchResponse {
                    header: api.header(rev),
                    watch_id: -1,
                    ..Default::default()
                })
            }
            None => Some(WatchResponse {
                header: api.header(0),
                watch_id: -1,
                canceled: true,
                cancel_reason: "etcdserver: empty watch request".into(),
                ..Default::default()
            }),
        };
        if let Some(r) = reply
            && out.send(Ok(r)).await.is_err()
        {
            break;
        }
    }
    for (_, a) in active {
        a.task.abort();
    }
}

/// The revision every watcher in `ids` has seen up to, once they are all synced (waits a
/// little for lagging ones, as etcd defers the reply).
async fn progress(api: &Api, ids: &[u64]) -> Option<i64> {
    let hub = api.node().ok()?.store().watch_hub().clone();
    for _ in 0..100 {
        if let Some(rev) = hub.progress(ids) {
            return Some(rev);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn create(
    api: &Api,
    c: WatchCreateRequest,
    active: &mut HashMap<i64, Active>,
    next_id: &mut i64,
    out: &mpsc::Sender<Result<WatchResponse, Status>>,
) -> Option<WatchResponse> {
    let refuse = |watch_id, reason: &str| {
        Some(WatchResponse {
            header: api.header(0),
            watch_id,
            created: true,
            canceled: true,
            cancel_reason: reason.to_string(),
            ..Default::default()
        })
    };
    let node = match api.node() {
        Ok(n) => n,
        Err(e) => return refuse(c.watch_id, e.message()),
    };
    let watch_id = if c.watch_id > 0 {
        if active.contains_key(&c.watch_id) {
            return refuse(c.watch_id, "mvcc: duplicate watch ID provided on the WatchStream");
        }
        c.watch_id
    } else {
        while active.contains_key(next_id) {
            *next_id += 1;
        }
        *next_id
    };
    if c.key.is_empty() {
        return refuse(watch_id, "etcdserver: key is not provided");
    }
    let mut spec = WatchSpec {
        span: KeySpan::new(&c.key, &c.range_end),
        start_revision: c.start_revision,
        prev_kv: c.prev_kv,
        no_put: false,
        no_delete: false,
    };
    for f in &c.filters {
        match watch_create_request::FilterType::try_from(*f) {
            Ok(watch_create_request::FilterType::Noput) => spec.no_put = true,
            Ok(watch_create_request::FilterType::Nodelete) => spec.no_delete = true,
            Err(_) => return refuse(watch_id, "etcdserver: invalid watch filter"),
        }
    }
    let stream = node.store().watch(spec);
    let hub_id = stream.id();
    let task = tokio::spawn(forward(
        api.clone(),
        watch_id,
        stream,
        out.clone(),
        c.progress_notify,
        c.fragment,
    ));
    active.insert(watch_id, Active { hub_id, task });
    Some(WatchResponse {
        header: api.header(0),
        watch_id,
        created: true,
        ..Default::default()
    })
}

/// Turns one watcher's updates into responses. Ends when the watcher is cancelled.
async fn forward(
    api: Api,
    watch_id: i64,
    mut stream: WatchStream,
    out: mpsc::Sender<Result<WatchResponse, Status>>,
    progress_notify: bool,
    fragment: bool,
) {
    let interval = progress_interval();
    let max_bytes = api
        .node()
        .map(|n| n.store().config().max_request_bytes)
        .unwrap_or(crate::mvcc::check::DEFAULT_MAX_REQUEST_BYTES);
    loop {
        let update = if progress_notify {
            match tokio::time::timeout(interval, stream.recv()).await {
                Ok(u) => u,
                Err(_) => {
                    // Idle for an interval: a progress notification, if the watcher is synced.
                    let Ok(node) = api.node() else { return };
                    if let Some(rev) = node.store().watch_hub().progress(&[stream.id()]) {
                        let r = WatchResponse {
                            header: api.header(rev),
                            watch_id,
                            ..Default::default()
                        };
                        if out.send(Ok(r)).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
            }
        } else {
            stream.recv().await
        };
        let Some(update) = update else { return };
        match update {
            WatchUpdate::Events(events) => {
                let chunks = if fragment {
                    split(events, max_bytes)
                } else {
                    vec![events]
                };
                let last = chunks.len() - 1;
                for (i, events) in chunks.into_iter().enumerate() {
                    let r = WatchResponse {
                        header: api.header(0),
                        watch_id,
                        fragment: i < last,
                        events,
                        ..Default::default()
                    };
                    if out.send(Ok(r)).await.is_err() {
                        return;
                    }
                }
            }
            WatchUpdate::Canceled { compact_revision } => {
                let r = WatchResponse {
                    header: api.header(0),
                    watch_id,
                    canceled: true,
                    compact_revision,
                    cancel_reason: "etcdserver: mvcc: required revision has been compacted".into(),
                    ..Default::default()
                };
                let _ = out.send(Ok(r)).await;
                return;
            }
        }
    }
}

/// etcd's fragmentation: split a large batch of at least two events into pieces under the
/// limit; a single huge event is never split.
fn split(events: Vec<crate::proto::mvccpb::Event>, max_bytes: usize) -> Vec<Vec<crate::proto::mvccpb::Event>> {
    use prost::Message as _;
    let mut out = vec![Vec::new()];
    let mut size = 0;
    for e in events {
        let len = e.encoded_len();
        if size + len > max_bytes && !out.last().expect("non-empty").is_empty() {
            out.push(Vec::new());
            size = 0;
        }
        size += len;
        out.last_mut().expect("non-empty").push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::mvccpb::{Event, KeyValue};

    fn ev(n: usize) -> Event {
        Event {
            r#type: 0,
            kv: Some(KeyValue {
                key: bytes::Bytes::from(format!("k{n}")),
                value: bytes::Bytes::from(vec![b'x'; 100]),
                ..Default::default()
            }),
            prev_kv: None,
        }
    }

    #[test]
    fn fragments_stay_under_the_limit_and_keep_order() {
        let events: Vec<Event> = (0..10).map(ev).collect();
        let parts = split(events.clone(), 350);
        assert!(parts.len() > 2);
        assert_eq!(parts.concat(), events, "order and content preserved");
        use prost::Message as _;
        assert!(
            parts
                .iter()
                .all(|p| p.iter().map(|e| e.encoded_len()).sum::<usize>() <= 350)
        );
        let one = split(vec![ev(1)], 10);
        assert_eq!(one.len(), 1, "a single event is never split");
    }
}
