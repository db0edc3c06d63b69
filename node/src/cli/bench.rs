//! `kvorum bench`: a load generator for any etcd-v3 endpoint (kvorum or etcd), so the same load
//! runs against both.
//!
//! ```text
//! kvorum bench put  --clients 100 --conns 10 --value-size 256 --key-space 100000 --duration 10s
//! kvorum bench get  --consistency l|s
//! kvorum bench txn-cas
//! kvorum bench watch --watchers 1000 --streams 10 --rate 100      (put-to-delivery latency)
//! kvorum bench lease-keepalive --clients 100
//! kvorum bench mixed                                               (config-store profile)
//! kvorum bench put --rate 150 --check                              (etcdctl check perf criteria)
//! ```
//!
//! Prints throughput, latency percentiles and errors (or `--json`), with a progress line on
//! stderr every second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::{Mutex, mpsc};
use tonic::transport::Channel;

use super::{ClientOpts, parse_duration};
use crate::api::concurrency::prefix_end;
use crate::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::proto::etcdserverpb::watch_request::RequestUnion;
use crate::proto::etcdserverpb::{
    Compare, LeaseGrantRequest, LeaseKeepAliveRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
    WatchCreateRequest, WatchRequest, kv_client::KvClient, lease_client::LeaseClient, request_op,
    watch_client::WatchClient,
};

/// The workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Puts.
    Put,
    /// Gets of pre-written keys.
    Get,
    /// Compare-and-swap on mod revision.
    TxnCas,
    /// Watchers on one key, measured from put to delivery.
    Watch,
    /// Keepalives of leases.
    LeaseKeepalive,
    /// A configuration store's day: mostly reads, some writes, watchers.
    Mixed,
}

/// Options of `kvorum bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// What to run.
    pub workload: Workload,
    /// Concurrent clients.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// gRPC connections the clients share.
    #[arg(long, default_value_t = 10)]
    pub conns: usize,
    /// How long to run (after a 1 s warm-up).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Total operations per second across clients (0: as fast as possible). For `watch`,
    /// the put rate.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// Distinct keys.
    #[arg(long, default_value_t = 100_000)]
    pub key_space: u64,
    /// Write keys in order instead of at random.
    #[arg(long)]
    pub sequential_keys: bool,
    /// Reads: `l` (linearizable) or `s` (serializable).
    #[arg(long, default_value = "l")]
    pub consistency: String,
    /// Watchers (`watch`, `mixed`).
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,
    /// Watch streams the watchers are spread over.
    #[arg(long, default_value_t = 10)]
    pub streams: usize,
    /// Key prefix of everything the benchmark writes.
    #[arg(long, default_value = "/bench/")]
    pub prefix: String,
    /// Apply etcdctl `check perf`'s pass criteria (needs --rate) and exit 1 if one fails.
    #[arg(long)]
    pub check: bool,
    /// Seed of the key choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop after this many operations in all (0: run for --duration). With
    /// `--sequential-keys`, `put --total N` writes exactly N distinct keys.
    #[arg(long, default_value_t = 0)]
    pub total: u64,
    /// Delete everything under the prefix afterwards.
    #[arg(long)]
    pub cleanup: bool,
    /// Connection options.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// What a run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The workload.
    pub workload: Workload,
    /// Operations completed in the measured window.
    pub ops: u64,
    /// Failed operations.
    pub errors: u64,
    /// Operations per second.
    pub throughput: f64,
    /// Latency percentiles in milliseconds: p50, p90, p99, p99.9, max, mean, stddev.
    pub latency_ms: Latency,
    /// Measured window in seconds.
    pub seconds: f64,
    /// With --check: whether etcdctl's criteria passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Vec<String>>,
}

/// Latency summary, milliseconds.
#[derive(Debug, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stddev: f64,
}

impl Latency {
    fn of(mut us: Vec<u64>) -> Latency {
        if us.is_empty() {
            return Latency::default();
        }
        us.sort_unstable();
        let pick = |q: f64| us[((us.len() as f64 * q) as usize).min(us.len() - 1)] as f64 / 1000.0;
        let mean = us.iter().sum::<u64>() as f64 / us.len() as f64;
        let var = us.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / us.len() as f64;
        Latency {
            p50: pick(0.5),
            p90: pick(0.9),
            p99: pick(0.99),
            p999: pick(0.999),
            max: *us.last().expect("non-empty") as f64 / 1000.0,
            mean: mean / 1000.0,
            stddev: var.sqrt() / 1000.0,
        }
    }
}

/// Shared counters and samples.
struct Sink {
    /// Operations left before a `--total` run ends (unlimited when `--total` is 0).
    budget: AtomicU64,
    started: Instant,
    measure_from: Instant,
    measure_until: Instant,
    ops: AtomicU64,
    errors: AtomicU64,
    samples: Mutex<Vec<u64>>,
}

impl Sink {
    fn measuring(&self, t: Instant) -> bool {
        t >= self.measure_from && t < self.measure_until
    }

    async fn record(&self, began: Instant, ok: bool, local: &mut Vec<u64>) {
        let end = Instant::now();
        if !self.measuring(began) {
            return;
        }
        if ok {
            self.ops.fetch_add(1, Ordering::Relaxed);
            local.push(end.duration_since(began).as_micros() as u64);
            if local.len() >= 4096 {
                self.samples.lock().await.append(local);
            }
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Key choice: random (a small seeded generator) or sequential across all clients (one shared
/// counter, so `--total N` writes N distinct keys).
struct Keys {
    state: u64,
    space: u64,
    sequential: Option<Arc<AtomicU64>>,
}

impl Keys {
    fn next(&mut self) -> u64 {
        if let Some(counter) = &self.sequential {
            return counter.fetch_add(1, Ordering::Relaxed) % self.space;
        }
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state % self.space
    }
}

fn key(prefix: &str, n: u64) -> Bytes {
    Bytes::from(format!("{prefix}{n:012}"))
}

async fn channels(opts: &ClientOpts, n: usize) -> Result<Vec<Channel>, String> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n.max(1) {
        let url = &opts.endpoints[i % opts.endpoints.len()];
        let mut one = opts.clone();
        one.endpoints = vec![url.clone()];
        out.push(super::client::connect_endpoints(&one).await?);
    }
    Ok(out)
}

/// Runs the benchmark; returns the exit code.
pub async fn run(a: BenchArgs) -> Result<u8, String> {
    if a.check && a.rate == 0 {
        return Err("--check needs --rate (the target rate)".into());
    }
    let chans = channels(&a.opts, a.conns).await?;
    if a.workload == Workload::Get || a.workload == Workload::Mixed {
        prepopulate(&chans, &a).await?;
    }
    let warmup = Duration::from_secs(1);
    let started = Instant::now();
    // A --total run measures everything from the start and ends when the budget is spent.
    let (warmup, window) = if a.total > 0 {
        (Duration::ZERO, Duration::from_secs(24 * 3600))
    } else {
        (warmup, a.duration)
    };
    let sink = Arc::new(Sink {
        budget: AtomicU64::new(if a.total > 0 { a.total } else { u64::MAX }),
        started,
        measure_from: started + warmup,
        measure_until: started + warmup + window,
        ops: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        samples: Mutex::new(Vec::new()),
    });
    let progress = tokio::spawn(progress(sink.clone(), warmup + window));
    match a.workload {
        Workload::Watch => watch_load(&chans, &a, sink.clone()).await?,
        _ => client_load(&chans, &a, sink.clone()).await,
    }
    progress.abort();
    let seconds = if a.total > 0 {
        started.elapsed().as_secs_f64()
    } else {
        a.duration.as_secs_f64()
    };
    let samples = std::mem::take(&mut *sink.samples.lock().await);
    let ops = sink.ops.load(Ordering::Relaxed);
    let mut report = Report {
        workload: a.workload,
        ops,
        errors: sink.errors.load(Ordering::Relaxed),
        throughput: ops as f64 / seconds,
        latency_ms: Latency::of(samples),
        seconds,
        check: None,
    };
    let mut code = 0;
    if a.check {
        let (lines, ok) = check_perf(&report, a.rate);
        report.check = Some(lines);
        code = u8::from(!ok);
    }
    if a.opts.json {
        println!("{}", serde_json::to_string(&report).expect("serializable"));
    } else {
        print_report(&report);
    }
    Ok(code)
}

/// etcdctl `check perf`'s criteria: ≥ 90% of the target rate, slowest ≤ 500 ms, stddev ≤
/// 100 ms.
fn check_perf(r: &Report, rate: u64) -> (Vec<String>, bool) {
    let mut lines = Vec::new();
    let mut ok = true;
    let mut crit = |pass: bool, what: String| {
        ok &= pass;
        lines.push(format!("{}: {what}", if pass { "PASS" } else { "FAIL" }));
    };
    crit(
        r.throughput >= 0.9 * rate as f64,
        format!("throughput {:.0} ops/s (target {rate})", r.throughput),
    );
    crit(
        r.latency_ms.max <= 500.0,
        format!("slowest request {:.1} ms", r.latency_ms.max),
    );
    crit(
        r.latency_ms.stddev <= 100.0,
        format!("stddev {:.1} ms", r.latency_ms.stddev),
    );
    (lines, ok)
}

fn print_report(r: &Report) {
    let l = &r.latency_ms;
    println!("workload: {:?}", r.workload);
    println!(
        "throughput: {:.1} ops/s ({} ops in {:.1} s, {} errors)",
        r.throughput, r.ops, r.seconds, r.errors
    );
    println!(
        "latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (mean {:.3}, stddev {:.3})",
        l.p50, l.p90, l.p99, l.p999, l.max, l.mean, l.stddev
    );
    for line in r.check.iter().flatten() {
        println!("{line}");
    }
}

async fn progress(sink: Arc<Sink>, total: Duration) {
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let ops = sink.ops.load(Ordering::Relaxed);
        let elapsed = sink.started.elapsed();
        eprintln!(
            "[{:>4.1}/{:.0} s] {:>8} ops/s, {} errors",
            elapsed.as_secs_f64(),
            total.as_secs_f64(),
            ops - last,
            sink.errors.load(Ordering::Relaxed)
        );
        last = ops;
    }
}

async fn prepopulate(chans: &[Channel], a: &BenchArgs) -> Result<(), String> {
    let n = a.key_space.min(100_000);
    let value = Bytes::from(vec![b'v'; a.value_size]);
    let (tx, rx) = async_channel(n);
    let workers: Vec<_> = (0..32.min(a.clients.max(1)))
        .map(|w| {
            let mut kv = KvClient::new(chans[w % chans.len()].clone());
            let rx = rx.clone();
            let value = value.clone();
            let prefix = a.prefix.clone();
            tokio::spawn(async move {
                while let Some(i) = rx.lock().await.recv().await {
                    let _ = kv
                        .put(PutRequest {
                            key: key(&prefix, i),
                            value: value.clone(),
                            ..Default::default()
                        })
                        .await;
                }
            })
        })
        .collect();
    for i in 0..n {
        tx.send(i).await.map_err(|e| e.to_string())?;
    }
    drop(tx);
    for w in workers {
        let _ = w.await;
    }
    Ok(())
}

type SharedRx = Arc<Mutex<mpsc::Receiver<u64>>>;

fn async_channel(cap: u64) -> (mpsc::Sender<u64>, SharedRx) {
    let (tx, rx) = mpsc::channel(cap.clamp(1, 4096) as usize);
    (tx, Arc::new(Mutex::new(rx)))
}

async fn client_load(chans: &[Channel], a: &BenchArgs, sink: Arc<Sink>) {
    let per_client_interval = (a.rate > 0).then(|| Duration::from_secs_f64(a.clients as f64 / a.rate as f64));
    let value = Bytes::from(vec![b'v'; a.value_size]);
    let sequence = a.sequential_keys.then(|| Arc::new(AtomicU64::new(0)));
    let tasks: Vec<_> = (0..a.clients)
        .map(|c| {
            let ch = chans[c % chans.len()].clone();
            let sink = sink.clone();
            let value = value.clone();
            let prefix = a.prefix.clone();
            let workload = a.workload;
            let serializable = a.consistency == "s";
            let mut keys = Keys {
                state: a.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (c as u64 + 1),
                space: a.key_space.max(1),
                sequential: sequence.clone(),
            };
            tokio::spawn(async move {
                let mut kv = KvClient::new(ch.clone());
                let mut lease = LeaseClient::new(ch);
                let mut local = Vec::with_capacity(4096);
                let mut keepalive = None;
                let mut next = Instant::now();
                let mut op_no = 0u64;
                while Instant::now() < sink.measure_until {
                    if sink
                        .budget
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
                        .is_err()
                    {
                        break;
                    }
                    if let Some(iv) = per_client_interval {
                        next += iv;
                        tokio::time::sleep_until(next.into()).await;
                    }
                    op_no += 1;
                    let began = Instant::now();
                    let ok = match workload {
                        Workload::Put => put(&mut kv, key(&prefix, keys.next()), value.clone()).await,
                        Workload::Get => get(&mut kv, key(&prefix, keys.next()), serializable).await,
                        Workload::TxnCas => cas(&mut kv, key(&prefix, c as u64), value.clone()).await,
                        Workload::LeaseKeepalive => keepalive_once(&mut lease, &mut keepalive).await,
                        Workload::Mixed | Workload::Watch => {
                            // 90% reads, 10% writes, over the same keys.
                            let k = key(&prefix, keys.next());
                            if op_no.is_multiple_of(10) {
                                put(&mut kv, k, value.clone()).await
                            } else {
                                get(&mut kv, k, serializable).await
                            }
                        }
                    };
                    sink.record(began, ok, &mut local).await;
                }
                sink.samples.lock().await.append(&mut local);
            })
        })
        .collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mixed_watchers =
        (a.workload == Workload::Mixed).then(|| spawn_watchers(chans, a, sink.clone(), false, stopped));
    for t in tasks {
        let _ = t.await;
    }
    let _ = stop.send(true);
    if let Some(w) = mixed_watchers {
        let _ = w.await;
    }
}

async fn put(kv: &mut KvClient<Channel>, key: Bytes, value: Bytes) -> bool {
    kv.put(PutRequest {
        key,
        value,
        ..Default::default()
    })
    .await
    .is_ok()
}

async fn get(kv: &mut KvClient<Channel>, key: Bytes, serializable: bool) -> bool {
    kv.range(RangeRequest {
        key,
        serializable,
        ..Default::default()
    })
    .await
    .is_ok()
}

/// Read the key's mod revision, then put only if it is unchanged (a CAS).
async fn cas(kv: &mut KvClient<Channel>, key: Bytes, value: Bytes) -> bool {
    let Ok(r) = kv
        .range(RangeRequest {
            key: key.clone(),
            ..Default::default()
        })
        .await
    else {
        return false;
    };
    let rev = r.into_inner().kvs.first().map_or(0, |kv| kv.mod_revision);
    kv.txn(TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Mod as i32,
            key: key.clone(),
            target_union: Some(TargetUnion::ModRevision(rev)),
            range_end: Bytes::new(),
        }],
        success: vec![RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key,
                value,
                ..Default::default()
            })),
        }],
        failure: vec![],
    })
    .await
    .is_ok()
}

type Keepalive = (
    i64,
    mpsc::Sender<LeaseKeepAliveRequest>,
    tonic::Streaming<crate::proto::etcdserverpb::LeaseKeepAliveResponse>,
);

async fn keepalive_once(lease: &mut LeaseClient<Channel>, state: &mut Option<Keepalive>) -> bool {
    if state.is_none() {
        let Ok(g) = lease.lease_grant(LeaseGrantRequest { ttl: 60, id: 0 }).await else {
            return false;
        };
        let id = g.into_inner().id;
        let (tx, rx) = mpsc::channel(1);
        let Ok(stream) = lease
            .lease_keep_alive(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
        else {
            return false;
        };
        *state = Some((id, tx, stream.into_inner()));
    }
    let (id, tx, stream) = state.as_mut().expect("set above");
    if tx.send(LeaseKeepAliveRequest { id: *id }).await.is_err() {
        return false;
    }
    matches!(stream.next().await, Some(Ok(r)) if r.ttl > 0)
}

/// Watchers on one key, until `stop` turns true; returns the task that drives them (it ends
/// once every watcher has flushed its samples).
fn spawn_watchers(
    chans: &[Channel],
    a: &BenchArgs,
    sink: Arc<Sink>,
    measure: bool,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let chans = chans.to_vec();
    let streams = a.streams.max(1);
    let watchers = a.watchers;
    let watched = Bytes::from(format!("{}watched", a.prefix));
    tokio::spawn(async move {
        let mut tasks = Vec::new();
        for s in 0..streams {
            let mut client = WatchClient::new(chans[s % chans.len()].clone());
            let n = watchers / streams + usize::from(s < watchers % streams);
            let (tx, rx) = mpsc::channel(n.max(1));
            for _ in 0..n {
                let _ = tx
                    .send(WatchRequest {
                        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                            key: watched.clone(),
                            ..Default::default()
                        })),
                    })
                    .await;
            }
            let sink = sink.clone();
            let mut stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let Ok(resp) = client.watch(tokio_stream::wrappers::ReceiverStream::new(rx)).await else {
                    return;
                };
                let _keep_open = tx;
                let mut stream = resp.into_inner();
                let mut local = Vec::with_capacity(4096);
                loop {
                    let r = tokio::select! {
                        r = stream.next() => match r {
                            Some(Ok(r)) => r,
                            _ => break,
                        },
                        _ = stop.wait_for(|s| *s) => break,
                    };
                    let now = sink.started.elapsed().as_micros() as u64;
                    for e in &r.events {
                        let Some(kv) = &e.kv else { continue };
                        // The value carries the put's send time (µs since the run started).
                        let sent: u64 = std::str::from_utf8(&kv.value[..kv.value.len().min(20)])
                            .ok()
                            .and_then(|s| s.trim_end_matches('.').parse().ok())
                            .unwrap_or(now);
                        if measure && sink.measuring(sink.started + Duration::from_micros(sent)) {
                            sink.ops.fetch_add(1, Ordering::Relaxed);
                            local.push(now.saturating_sub(sent));
                        }
                    }
                    if local.len() >= 4096 {
                        sink.samples.lock().await.append(&mut local);
                    }
                }
                sink.samples.lock().await.append(&mut local);
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    })
}

/// Watchers on one key; one writer puts at `--rate`; latency is put-to-delivery per watcher.
async fn watch_load(chans: &[Channel], a: &BenchArgs, sink: Arc<Sink>) -> Result<(), String> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watchers = spawn_watchers(chans, a, sink.clone(), true, stopped);
    // Let every watcher register before the first put.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rate = if a.rate == 0 { 100 } else { a.rate };
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut kv = KvClient::new(chans[0].clone());
    let watched = Bytes::from(format!("{}watched", a.prefix));
    let mut next = Instant::now();
    while Instant::now() < sink.measure_until {
        next += interval;
        tokio::time::sleep_until(next.into()).await;
        let sent = sink.started.elapsed().as_micros();
        let mut value = format!("{sent:0>20}").into_bytes();
        value.resize(a.value_size.max(20), b'.');
        if kv
            .put(PutRequest {
                key: watched.clone(),
                value: Bytes::from(value),
                ..Default::default()
            })
            .await
            .is_err()
        {
            sink.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    // Deliveries still in flight finish shortly after the last put.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop.send(true);
    let _ = watchers.await;
    Ok(())
}

/// Removes everything under the prefix (after a run).
pub async fn cleanup(opts: &ClientOpts, prefix: &str) -> Result<(), String> {
    let ch = super::client::connect_endpoints(opts).await?;
    let p = Bytes::from(prefix.to_string());
    KvClient::new(ch)
        .delete_range(crate::proto::etcdserverpb::DeleteRangeRequest {
            range_end: prefix_end(&p),
            key: p,
            prev_kv: false,
        })
        .await
        .map_err(|e| e.message().to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_check_criteria() {
        let l = Latency::of((1..=1000).map(|v| v * 1000).collect());
        assert_eq!((l.p50, l.p90, l.p99, l.max), (501.0, 901.0, 991.0, 1000.0));
        let r = Report {
            workload: Workload::Put,
            ops: 1400,
            errors: 0,
            throughput: 140.0,
            latency_ms: Latency {
                max: 120.0,
                stddev: 20.0,
                ..Latency::default()
            },
            seconds: 10.0,
            check: None,
        };
        let (lines, ok) = check_perf(&r, 150);
        assert!(ok, "{lines:?}");
        let (lines, ok) = check_perf(&r, 200);
        assert!(!ok && lines[0].starts_with("FAIL"), "{lines:?}");
    }

    #[test]
    fn keys_stay_in_the_space() {
        let mut k = Keys {
            state: 7,
            space: 10,
            sequential: None,
        };
        assert!((0..1000).map(|_| k.next()).all(|v| v < 10));
        let shared = Arc::new(AtomicU64::new(0));
        let mut a = Keys {
            state: 7,
            space: 3,
            sequential: Some(shared.clone()),
        };
        let mut b = Keys {
            state: 9,
            space: 3,
            sequential: Some(shared),
        };
        assert_eq!(
            vec![a.next(), b.next(), a.next(), b.next()],
            vec![0, 1, 2, 0],
            "one sequence for all clients"
        );
    }
}
