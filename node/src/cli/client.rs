//! Client commands over etcd's v3 gRPC API (they work against etcd too). Output is readable
//! text like etcdctl's, or etcd's protojson with `--json`.

use std::path::PathBuf;

use bytes::Bytes;
use serde::Serialize;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::{ClientOpts, EXIT_NOT_FOUND, EXIT_TXN_FAILED};
use crate::api::concurrency::prefix_end;
use crate::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::proto::etcdserverpb::watch_request::RequestUnion;
use crate::proto::etcdserverpb::{
    Compare, DeleteRangeRequest, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseLeasesRequest, LeaseRevokeRequest,
    LeaseTimeToLiveRequest, MemberAddRequest, MemberListRequest, MemberPromoteRequest, MemberRemoveRequest,
    MemberUpdateRequest, PutRequest, RangeRequest, RequestOp, SnapshotRequest, StatusRequest, TxnRequest,
    WatchCreateRequest, WatchRequest, cluster_client::ClusterClient, kv_client::KvClient, lease_client::LeaseClient,
    maintenance_client::MaintenanceClient, request_op, response_op, watch_client::WatchClient,
};
use crate::proto::mvccpb::KeyValue;

type CmdResult = Result<u8, String>;

fn status_error(s: tonic::Status) -> String {
    s.message().to_string()
}

async fn connect_one(url: &str, opts: &ClientOpts) -> Result<Channel, String> {
    let mut ep = Endpoint::from_shared(url.to_string())
        .map_err(|e| format!("invalid endpoint {url}: {e}"))?
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(opts.timeout);
    if url.starts_with("https://") {
        let ca = opts
            .cacert
            .as_ref()
            .ok_or_else(|| format!("{url} uses TLS: pass the server's CA with --cacert"))?;
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
        if let (Some(c), Some(k)) = (&opts.cert, &opts.key_file) {
            tls = tls.identity(Identity::from_pem(read(c)?, read(k)?));
        }
        ep = ep.tls_config(tls).map_err(|e| format!("TLS setup for {url}: {e}"))?;
    }
    ep.connect().await.map_err(|e| format!("cannot connect to {url}: {e}"))
}

/// Connects to the first reachable endpoint.
pub(crate) async fn connect_endpoints(opts: &ClientOpts) -> Result<Channel, String> {
    connect(opts).await
}

async fn connect(opts: &ClientOpts) -> Result<Channel, String> {
    let mut errors = Vec::new();
    for url in &opts.endpoints {
        match connect_one(url, opts).await {
            Ok(c) => return Ok(c),
            Err(e) => errors.push(e),
        }
    }
    Err(errors.join("; "))
}

fn read(p: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn print_json<T: Serialize>(v: &T) {
    println!("{}", serde_json::to_string(v).expect("serializable"));
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `kvorum get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// Key (or start of the range).
    pub key: String,
    /// End of the range (exclusive).
    pub range_end: Option<String>,
    /// Every key with this prefix.
    #[arg(long)]
    pub prefix: bool,
    /// Every key from KEY on.
    #[arg(long)]
    pub from_key: bool,
    /// Read at this revision.
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// At most this many keys.
    #[arg(long, default_value_t = 0)]
    pub limit: i64,
    /// Keys only.
    #[arg(long)]
    pub keys_only: bool,
    /// Values only.
    #[arg(long)]
    pub print_value_only: bool,
    /// Serve from the local member (possibly stale).
    #[arg(long)]
    pub serializable: bool,
    /// Connection options.
    #[command(flatten)]
    pub opts: ClientOpts,
}

fn span(key: &str, end: Option<&String>, prefix: bool, from_key: bool) -> (Bytes, Bytes) {
    let k = Bytes::from(key.to_string());
    let e = if prefix {
        prefix_end(&k)
    } else if from_key {
        Bytes::from_static(&[0])
    } else {
        end.map(|e| Bytes::from(e.clone())).unwrap_or_default()
    };
    (k, e)
}

/// Reads keys. Exit 3 when nothing matched.
pub async fn get(a: GetArgs) -> CmdResult {
    let mut kv = KvClient::new(connect(&a.opts).await?);
    let (key, range_end) = span(&a.key, a.range_end.as_ref(), a.prefix, a.from_key);
    let r = kv
        .range(RangeRequest {
            key,
            range_end,
            limit: a.limit,
            revision: a.rev,
            serializable: a.serializable,
            keys_only: a.keys_only,
            ..Default::default()
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if a.opts.json {
        print_json(&r);
    } else {
        for kv in &r.kvs {
            if !a.print_value_only {
                println!("{}", text(&kv.key));
            }
            if !a.keys_only {
                println!("{}", text(&kv.value));
            }
        }
    }
    Ok(if r.kvs.is_empty() { EXIT_NOT_FOUND } else { 0 })
}

/// `kvorum put`.
#[derive(Debug, clap::Args)]
pub struct PutArgs {
    /// Key.
    pub key: String,
    /// Value; `-` reads it from standard input.
    pub value: String,
    /// Attach to this lease (hex or decimal ID).
    #[arg(long, value_parser = parse_id)]
    pub lease: Option<i64>,
    /// Print the previous key-value.
    #[arg(long)]
    pub prev_kv: bool,
    /// Connection options.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// Lease and member IDs are hexadecimal, as etcdctl prints and reads them.
fn parse_id(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let hex = s.strip_prefix("0x").unwrap_or(s);
    u64::from_str_radix(hex, 16)
        .map(|v| v as i64)
        .map_err(|_| format!("invalid ID {s:?}: expected a hexadecimal ID as printed by kvorum or etcdctl"))
}

/// Writes a key.
pub async fn put(a: PutArgs) -> CmdResult {
    let value = if a.value == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|e| e.to_string())?;
        Bytes::from(buf)
    } else {
        Bytes::from(a.value.clone())
    };
    let mut kv = KvClient::new(connect(&a.opts).await?);
    let r = kv
        .put(PutRequest {
            key: Bytes::from(a.key.clone()),
            value,
            lease: a.lease.unwrap_or(0),
            prev_kv: a.prev_kv,
            ..Default::default()
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if a.opts.json {
        print_json(&r);
    } else {
        println!("OK");
        if let Some(p) = r.prev_kv {
            println!("{}\n{}", text(&p.key), text(&p.value));
        }
    }
    Ok(0)
}

/// `kvorum del`.
#[derive(Debug, clap::Args)]
pub struct DelArgs {
    /// Key (or start of the range).
    pub key: String,
    /// End of the range (exclusive).
    pub range_end: Option<String>,
    /// Every key with this prefix.
    #[arg(long)]
    pub prefix: bool,
    /// Every key from KEY on.
    #[arg(long)]
    pub from_key: bool,
    /// Print the deleted key-values.
    #[arg(long)]
    pub prev_kv: bool,
    /// Connection options.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// Deletes keys; prints how many.
pub async fn del(a: DelArgs) -> CmdResult {
    let mut kv = KvClient::new(connect(&a.opts).await?);
    let (key, range_end) = span(&a.key, a.range_end.as_ref(), a.prefix, a.from_key);
    let r = kv
        .delete_range(DeleteRangeRequest {
            key,
            range_end,
            prev_kv: a.prev_kv,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if a.opts.json {
        print_json(&r);
    } else {
        println!("{}", r.deleted);
        for p in &r.prev_kvs {
            println!("{}\n{}", text(&p.key), text(&p.value));
        }
    }
    Ok(0)
}

/// `kvorum watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Key (or start of the range).
    pub key: String,
    /// End of the range (exclusive).
    pub range_end: Option<String>,
    /// Every key with this prefix.
    #[arg(long)]
    pub prefix: bool,
    /// Start at this revision (history first).
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// Include the previous key-value.
    #[arg(long)]
    pub prev_kv: bool,
    /// Connection options.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// Prints changes until interrupted or the watch is cancelled.
pub async fn watch(a: WatchArgs) -> CmdResult {
    let mut w = WatchClient::new(connect(&a.opts).await?);
    let (key, range_end) = span(&a.key, a.range_end.as_ref(), a.prefix, false);
    let create = WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key,
            range_end,
            start_revision: a.rev,
            prev_kv: a.prev_kv,
            ..Default::default()
        })),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(create).await.map_err(|e| e.to_string())?;
    let mut stream = w
        .watch(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(status_error)?
        .into_inner();
    loop {
        tokio::select! {
            msg = stream.message() => {
                let Some(resp) = msg.map_err(status_error)? else { return Ok(0) };
                if resp.canceled {
                    return Err(format!("watch cancelled: {} (compact revision {})", resp.cancel_reason, resp.compact_revision));
                }
                for e in &resp.events {
                    if a.opts.json {
                        print_json(e);
                        continue;
                    }
                    let kv: KeyValue = e.kv.clone().unwrap_or_default();
                    println!("{}", if e.r#type == 1 { "DELETE" } else { "PUT" });
                    println!("{}", text(&kv.key));
                    if e.r#type == 0 {
                        println!("{}", text(&kv.value));
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => {
                drop(tx);
                return Ok(0);
            }
        }
    }
}

/// `kvorum txn`: `--if 'mod(k) = 5' --then 'put k v' --else 'get k'`.
#[derive(Debug, clap::Args)]
pub struct TxnArgs {
    /// A compare: `value(k) = v`, `version(k) > 1`, `create(k) = 0`, `mod(k) != 7`, `lease(k) = 0`.
    #[arg(long = "if")]
    pub compares: Vec<String>,
    /// An operation if every compare holds: `put k v`, `get k`, `del k`.
    #[arg(long = "then")]
    pub success: Vec<String>,
    /// An operation otherwise.
    #[arg(long = "else")]
    pub failure: Vec<String>,
    /// Connection options.
    #[command(flatten)]
    pub opts: ClientOpts,
}

fn parse_compare(s: &str) -> Result<Compare, String> {
    let bad = || format!("invalid compare {s:?}: expected e.g. mod(key) = 5 or value(key) != v");
    let open = s.find('(').ok_or_else(bad)?;
    let close = s.find(')').ok_or_else(bad)?;
    let target = s[..open].trim();
    let key = Bytes::from(s[open + 1..close].to_string());
    let rest = s[close + 1..].trim();
    let (op, operand) = ["!=", "=", ">", "<"]
        .iter()
        .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v.trim())))
        .ok_or_else(bad)?;
    let result = match op {
        "=" => CompareResult::Equal,
        "!=" => CompareResult::NotEqual,
        ">" => CompareResult::Greater,
        _ => CompareResult::Less,
    };
    let int = || operand.parse::<i64>().map_err(|_| bad());
    let (target, union) = match target {
        "value" => (
            CompareTarget::Value,
            TargetUnion::Value(Bytes::from(operand.to_string())),
        ),
        "version" => (CompareTarget::Version, TargetUnion::Version(int()?)),
        "create" => (CompareTarget::Create, TargetUnion::CreateRevision(int()?)),
        "mod" => (CompareTarget::Mod, TargetUnion::ModRevision(int()?)),
        "lease" => (CompareTarget::Lease, TargetUnion::Lease(int()?)),
        _ => return Err(bad()),
    };
    Ok(Compare {
        result: result as i32,
        target: target as i32,
        key,
        target_union: Some(union),
        range_end: Bytes::new(),
    })
}

fn parse_op(s: &str) -> Result<RequestOp, String> {
    let mut parts = s.splitn(3, ' ');
    let verb = parts.next().unwrap_or_default();
    let key = parts.next().map(|k| Bytes::from(k.to_string()));
    let request = match (verb, key, parts.next()) {
        ("put", Some(key), Some(v)) => request_op::Request::RequestPut(PutRequest {
            key,
            value: Bytes::from(v.to_string()),
            ..Default::default()
        }),
        ("get", Some(key), None) => request_op::Request::RequestRange(RangeRequest {
            key,
            ..Default::default()
        }),
        ("del", Some(key), None) => request_op::Request::RequestDeleteRange(DeleteRangeRequest {
            key,
            ..Default::default()
        }),
        _ => {
            return Err(format!(
                "invalid operation {s:?}: expected `put KEY VALUE`, `get KEY` or `del KEY`"
            ));
        }
    };
    Ok(RequestOp { request: Some(request) })
}

/// Runs the txn; exit 4 when the compares failed.
pub async fn txn(a: TxnArgs) -> CmdResult {
    let t = TxnRequest {
        compare: a.compares.iter().map(|c| parse_compare(c)).collect::<Result<_, _>>()?,
        success: a.success.iter().map(|o| parse_op(o)).collect::<Result<_, _>>()?,
        failure: a.failure.iter().map(|o| parse_op(o)).collect::<Result<_, _>>()?,
    };
    let mut kv = KvClient::new(connect(&a.opts).await?);
    let r = kv.txn(t).await.map_err(status_error)?.into_inner();
    if a.opts.json {
        print_json(&r);
    } else {
        println!("{}", if r.succeeded { "SUCCESS" } else { "FAILURE" });
        for op in &r.responses {
            match &op.response {
                Some(response_op::Response::ResponsePut(_)) => println!("OK"),
                Some(response_op::Response::ResponseDeleteRange(d)) => println!("{}", d.deleted),
                Some(response_op::Response::ResponseRange(g)) => {
                    for kv in &g.kvs {
                        println!("{}\n{}", text(&kv.key), text(&kv.value));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(if r.succeeded { 0 } else { EXIT_TXN_FAILED })
}

/// `kvorum lease …`.
#[derive(Debug, clap::Subcommand)]
pub enum LeaseCommand {
    /// Grant a lease of TTL seconds.
    Grant {
        /// TTL in seconds.
        ttl: i64,
        /// Connection options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Revoke a lease (its keys are deleted).
    Revoke {
        /// Lease ID (hex).
        #[arg(value_parser = parse_id)]
        id: i64,
        /// Connection options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Keep a lease alive until interrupted (or once).
    KeepAlive {
        /// Lease ID (hex).
        #[arg(value_parser = parse_id)]
        id: i64,
        /// Renew once and exit.
        #[arg(long)]
        once: bool,
        /// Connection options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Remaining TTL of a lease.
    Ttl {
        /// Lease ID (hex).
        #[arg(value_parser = parse_id)]
        id: i64,
        /// Also list attached keys.
        #[arg(long)]
        keys: bool,
        /// Connection options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// List leases.
    List {
        /// Connection options.
        #[command(flatten)]
        opts: ClientOpts,
    },
}

/// Lease commands.
pub async fn lease(c: LeaseCommand) -> CmdResult {
    match c {
        LeaseCommand::Grant { ttl, opts } => {
            let r = LeaseClient::new(connect(&opts).await?)
                .lease_grant(LeaseGrantRequest { ttl, id: 0 })
                .await
                .map_err(status_error)?
                .into_inner();
            if opts.json {
                print_json(&r);
            } else {
                println!("lease {:x} granted with TTL({}s)", r.id, r.ttl);
            }
        }
        LeaseCommand::Revoke { id, opts } => {
            let r = LeaseClient::new(connect(&opts).await?)
                .lease_revoke(LeaseRevokeRequest { id })
                .await
                .map_err(status_error)?
                .into_inner();
            if opts.json {
                print_json(&r);
            } else {
                println!("lease {id:x} revoked");
            }
        }
        LeaseCommand::KeepAlive { id, once, opts } => {
            let mut client = LeaseClient::new(connect(&opts).await?);
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let mut stream = client
                .lease_keep_alive(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
                .map_err(status_error)?
                .into_inner();
            loop {
                tx.send(LeaseKeepAliveRequest { id }).await.map_err(|e| e.to_string())?;
                let Some(r) = stream.message().await.map_err(status_error)? else {
                    return Ok(1);
                };
                if r.ttl <= 0 {
                    println!("lease {id:x} expired or revoked");
                    return Ok(EXIT_NOT_FOUND);
                }
                if opts.json {
                    print_json(&r);
                } else {
                    println!("lease {id:x} keepalived with TTL({})", r.ttl);
                }
                if once {
                    return Ok(0);
                }
                let wait = std::time::Duration::from_millis((r.ttl as u64 * 1000 / 3).max(500));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = tokio::signal::ctrl_c() => return Ok(0),
                }
            }
        }
        LeaseCommand::Ttl { id, keys, opts } => {
            let r = LeaseClient::new(connect(&opts).await?)
                .lease_time_to_live(LeaseTimeToLiveRequest { id, keys })
                .await
                .map_err(status_error)?
                .into_inner();
            if opts.json {
                print_json(&r);
            } else if r.ttl < 0 {
                println!("lease {id:x} already expired");
                return Ok(EXIT_NOT_FOUND);
            } else {
                print!(
                    "lease {id:x} granted with TTL({}s), remaining({}s)",
                    r.granted_ttl, r.ttl
                );
                if keys {
                    let names: Vec<String> = r.keys.iter().map(|k| text(k)).collect();
                    print!(", attached keys({names:?})");
                }
                println!();
            }
        }
        LeaseCommand::List { opts } => {
            let r = LeaseClient::new(connect(&opts).await?)
                .lease_leases(LeaseLeasesRequest {})
                .await
                .map_err(status_error)?
                .into_inner();
            if opts.json {
                print_json(&r);
            } else {
                println!("found {} leases", r.leases.len());
                for l in &r.leases {
                    println!("{:x}", l.id);
                }
            }
        }
    }
    Ok(0)
}

/// `kvorum member …`.
#[derive(Debug, clap::Subcommand)]
pub enum MemberCommand {
    /// List members.
    List {
        /// Connection options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Add a member (as a learner with --learner; otherwise it is promoted once caught up).
    Add {
        /// Its peer URLs, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        peer_urls: Vec<String>,
        /// Keep it a learner.
        #[arg(long)]
        learner: bool,
        /// Connection options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Remove a member.
    Remove {
        /// Member ID (hex).
        #[arg(value_parser = parse_id)]
        id: i64,
        /// Connection options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Promote a caught-up learner to voter.
    Promote {
        /// Member ID (hex).
        #[arg(value_parser = parse_id)]
        id: i64,
        /// Connection options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Change a member's peer URLs.
    Update {
        /// Member ID (hex).
        #[arg(value_parser = parse_id)]
        id: i64,
        /// New peer URLs, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        peer_urls: Vec<String>,
        /// Connection options.
        #[command(flatten)]
        opts: ClientOpts,
    },
}

fn print_members(members: &[crate::proto::etcdserverpb::Member]) {
    for m in members {
        println!(
            "{:x}, {}, {}, {}, {}, {}",
            m.id,
            if m.name.is_empty() { "unstarted" } else { "started" },
            m.name,
            m.peer_ur_ls.join(","),
            m.client_ur_ls.join(","),
            m.is_learner
        );
    }
}

/// Member commands.
pub async fn member(c: MemberCommand) -> CmdResult {
    match c {
        MemberCommand::List { opts } => {
            let r = ClusterClient::new(connect(&opts).await?)
                .member_list(MemberListRequest { linearizable: true })
                .await
                .map_err(status_error)?
                .into_inner();
            if opts.json {
                print_json(&r);
            } else {
                print_members(&r.members);
            }
        }
        MemberCommand::Add {
            peer_urls,
            learner,
            opts,
        } => {
            let r = ClusterClient::new(connect(&opts).await?)
                .member_add(MemberAddRequest {
                    peer_ur_ls: peer_urls,
                    is_learner: learner,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            if opts.json {
                print_json(&r);
            } else {
                let id = r.member.as_ref().map_or(0, |m| m.id);
                println!(
                    "Member {id:x} added to cluster {:x}",
                    r.header.map_or(0, |h| h.cluster_id)
                );
            }
        }
        MemberCommand::Remove { id, opts } => {
            ClusterClient::new(connect(&opts).await?)
                .member_remove(MemberRemoveRequest { id: id as u64 })
                .await
                .map_err(status_error)?;
            println!("Member {id:x} removed");
        }
        MemberCommand::Promote { id, opts } => {
            ClusterClient::new(connect(&opts).await?)
                .member_promote(MemberPromoteRequest { id: id as u64 })
                .await
                .map_err(status_error)?;
            println!("Member {id:x} promoted");
        }
        MemberCommand::Update { id, peer_urls, opts } => {
            ClusterClient::new(connect(&opts).await?)
                .member_update(MemberUpdateRequest {
                    id: id as u64,
                    peer_ur_ls: peer_urls,
                })
                .await
                .map_err(status_error)?;
            println!("Member {id:x} updated");
        }
    }
    Ok(0)
}

/// `kvorum status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Connection options.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// Status of every endpoint; exit 1 if any is unreachable.
pub async fn status(a: StatusArgs) -> CmdResult {
    let mut failed = false;
    let mut rows = Vec::new();
    for url in &a.opts.endpoints {
        let result = async {
            let ch = connect_one(url, &a.opts).await?;
            MaintenanceClient::new(ch)
                .status(StatusRequest {})
                .await
                .map_err(status_error)
                .map(|r| r.into_inner())
        }
        .await;
        match result {
            Ok(s) => rows.push((url.clone(), Ok(s))),
            Err(e) => {
                failed = true;
                rows.push((url.clone(), Err(e)));
            }
        }
    }
    for (url, r) in &rows {
        match r {
            Ok(s) if a.opts.json => print_json(s),
            Ok(s) => {
                let id = s.header.as_ref().map_or(0, |h| h.member_id);
                println!(
                    "{url}, {id:x}, {}, {} B (in use {} B), leader={}, term={}, index={}, applied={}, learner={}",
                    s.version,
                    s.db_size,
                    s.db_size_in_use,
                    s.leader == id,
                    s.raft_term,
                    s.raft_index,
                    s.raft_applied_index,
                    s.is_learner
                );
            }
            Err(e) => eprintln!("{url}: {e}"),
        }
    }
    Ok(u8::from(failed))
}

/// `kvorum snapshot …`.
#[derive(Debug, clap::Subcommand)]
pub enum SnapshotCommand {
    /// Stream a consistent snapshot from one endpoint to a file.
    Save {
        /// Output file.
        file: PathBuf,
        /// Connection options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Create a member's data directory from a snapshot, for a new cluster (every member of
    /// the new cluster restores the same file, with the same --initial-cluster).
    Restore {
        /// The snapshot file.
        file: PathBuf,
        /// The new member's data directory (must not exist).
        #[arg(long)]
        data_dir: PathBuf,
        /// The new member's name.
        #[arg(long)]
        name: String,
        /// The new cluster's members: name=peer-url,…
        #[arg(long)]
        initial_cluster: String,
        /// The new cluster's token.
        #[arg(long, default_value = "kvorum")]
        initial_cluster_token: String,
    },
}

/// Snapshot commands.
pub async fn snapshot(c: SnapshotCommand) -> CmdResult {
    match c {
        SnapshotCommand::Save { file, opts } => {
            let url = opts.endpoints.first().cloned().unwrap_or_default();
            let ch = connect_one(&url, &opts).await?;
            let mut stream = MaintenanceClient::new(ch)
                .snapshot(SnapshotRequest {})
                .await
                .map_err(status_error)?
                .into_inner();
            let part = file.with_extension("part");
            let mut out = std::fs::File::create(&part).map_err(|e| format!("{}: {e}", part.display()))?;
            let mut total = 0;
            while let Some(chunk) = stream.message().await.map_err(status_error)? {
                std::io::Write::write_all(&mut out, &chunk.blob).map_err(|e| e.to_string())?;
                total += chunk.blob.len();
            }
            out.sync_all().map_err(|e| e.to_string())?;
            std::fs::rename(&part, &file).map_err(|e| e.to_string())?;
            println!("Snapshot saved at {} ({total} bytes)", file.display());
        }
        SnapshotCommand::Restore {
            file,
            data_dir,
            name,
            initial_cluster,
            initial_cluster_token,
        } => {
            restore(&file, &data_dir, &name, &initial_cluster, &initial_cluster_token)?;
            println!("Restored {} into {}", file.display(), data_dir.display());
        }
    }
    Ok(0)
}

fn restore(
    file: &std::path::Path,
    dir: &std::path::Path,
    name: &str,
    initial: &str,
    token: &str,
) -> Result<(), String> {
    use crate::server::identity;
    let founders = crate::config::parse_initial_cluster(initial).map_err(|e| e.to_string())?;
    if !founders.iter().any(|(n, _)| n == name) {
        return Err(format!("--name {name} is not in --initial-cluster"));
    }
    if dir.exists() {
        return Err(format!("{} exists; restore into a new directory", dir.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let db = crate::storage::Db::open(&dir.join("kvorum.redb"), &crate::storage::DbConfig::default())
        .map_err(|e| e.to_string())?;
    let store = crate::mvcc::Store::open(db.clone(), crate::mvcc::MvccConfig::default()).map_err(|e| e.to_string())?;
    let f = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    store
        .install_snapshot(std::io::BufReader::new(f))
        .map_err(|e| e.to_string())?;
    store.prepare_restore().map_err(|e| e.to_string())?;
    let ids: Vec<u64> = founders.iter().map(|(n, _)| identity::founder_id(token, n)).collect();
    identity::save(
        &db,
        &identity::Identity {
            member_id: identity::founder_id(token, name),
            cluster_id: identity::cluster_id(token, &ids),
            founder: true,
        },
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_and_ops_parse() {
        let c = parse_compare("mod(app/config) = 42").unwrap();
        assert_eq!(c.key.as_ref(), b"app/config");
        assert_eq!(c.target_union, Some(TargetUnion::ModRevision(42)));
        assert_eq!(c.result, CompareResult::Equal as i32);
        let c = parse_compare("value(k) != hello world").unwrap();
        assert_eq!(
            c.target_union,
            Some(TargetUnion::Value(Bytes::from_static(b"hello world")))
        );
        assert_eq!(c.result, CompareResult::NotEqual as i32);
        assert!(parse_compare("mod(k) = x").is_err());
        assert!(parse_compare("size(k) = 1").is_err());
        assert!(matches!(
            parse_op("put k a value with spaces").unwrap().request,
            Some(request_op::Request::RequestPut(p)) if p.value.as_ref() == b"a value with spaces"
        ));
        assert!(parse_op("get").is_err());
        assert!(parse_op("frob k").is_err());
    }

    #[test]
    fn ids_parse_as_hex() {
        assert_eq!(parse_id("0x10").unwrap(), 16);
        assert_eq!(parse_id("694d7a4a5e2e2c1b").unwrap(), 0x694d7a4a5e2e2c1b);
        assert_eq!(parse_id("42").unwrap(), 0x42, "always hexadecimal");
        assert!(parse_id("zz").is_err());
    }
}
