//! Client libraries against a 3-member cluster, unchanged: the Rust `etcd-client` crate
//! (leases, watch, txn, election, lock) and the Python `aetcd` package (`tests/python`).

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, LockOptions, ProclaimOptions, PutOptions, ResignOptions, Txn,
    TxnOp, WatchOptions,
};
use kvorum_tests::harness::Cluster;

async fn client(c: &Cluster) -> Client {
    Client::connect(c.endpoints(), None)
        .await
        .expect("etcd-client connects")
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_client_kv_txn_and_watch() {
    let c = Cluster::start(3).await;
    let mut cl = client(&c).await;
    cl.put("helloWorld", "aaa", None).await.unwrap();
    let r = cl.get("helloWorld", None).await.unwrap();
    assert_eq!(r.kvs()[0].value_str().unwrap(), "aaa");

    let mut watcher_client = client(&c).await;
    let mut stream = watcher_client
        .watch("svc/", Some(WatchOptions::new().with_prefix().with_prev_key()))
        .await
        .unwrap();
    cl.put("svc/a", "1", None).await.unwrap();
    let mod_rev = cl.get("svc/a", None).await.unwrap().kvs()[0].mod_revision();
    let t = Txn::new()
        .when([Compare::mod_revision("svc/a", CompareOp::Equal, mod_rev)])
        .and_then([TxnOp::put("svc/a", "2", None), TxnOp::put("svc/b", "1", None)])
        .or_else([TxnOp::get("svc/a", None)]);
    assert!(
        cl.txn(t.clone()).await.unwrap().succeeded(),
        "compare-and-swap on mod revision"
    );
    assert!(!cl.txn(t).await.unwrap().succeeded(), "a stale revision loses");
    cl.delete("svc/", Some(etcd_client::DeleteOptions::new().with_prefix()))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let resp = tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut stream))
            .await
            .expect("watch delivers")
            .expect("stream open")
            .unwrap();
        if resp.created() {
            continue;
        }
        for e in resp.events() {
            let kv = e.kv().unwrap();
            seen.push((e.event_type(), kv.key_str().unwrap().to_string(), kv.mod_revision()));
        }
    }
    assert_eq!(
        seen.iter().map(|(t, k, _)| (*t, k.as_str())).collect::<Vec<_>>(),
        vec![
            (EventType::Put, "svc/a"),
            (EventType::Put, "svc/a"),
            (EventType::Put, "svc/b"),
            (EventType::Delete, "svc/a"),
            (EventType::Delete, "svc/b"),
        ]
    );
    assert_eq!(seen[1].2, seen[2].2, "a txn's events share one revision");
    assert_eq!(seen[3].2, seen[4].2, "a range delete's events share one revision");
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_client_leases() {
    let c = Cluster::start(3).await;
    let mut cl = client(&c).await;
    let lease = cl.lease_grant(5, None).await.unwrap();
    cl.put("session/me", "alive", Some(PutOptions::new().with_lease(lease.id())))
        .await
        .unwrap();
    let (mut keeper, mut responses) = cl.lease_keep_alive(lease.id()).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let r = responses.message().await.unwrap().unwrap();
    assert_eq!(r.ttl(), 5);
    let ttl = cl.lease_time_to_live(lease.id(), None).await.unwrap();
    assert!(ttl.ttl() > 0 && ttl.ttl() <= 5, "remaining {}", ttl.ttl());
    assert!(cl.leases().await.unwrap().leases().iter().any(|l| l.id() == lease.id()));
    cl.lease_revoke(lease.id()).await.unwrap();
    assert!(cl.get("session/me", None).await.unwrap().kvs().is_empty());
    keeper.keep_alive().await.unwrap();
    let r = responses.message().await.unwrap().unwrap();
    assert_eq!(r.ttl(), 0, "keepalive of a revoked lease reports TTL 0");
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_client_lock_is_exclusive_and_fails_over_with_the_lease() {
    let c = Cluster::start(3).await;
    let mut a = client(&c).await;
    let mut b = client(&c).await;
    let lease_a = a.lease_grant(3, None).await.unwrap().id();
    let lease_b = b.lease_grant(30, None).await.unwrap().id();
    let held = a
        .lock("cron/job", Some(LockOptions::new().with_lease(lease_a)))
        .await
        .unwrap();
    let key_a = held.key().to_vec();
    // B waits: the lock is A's, and A never unlocks — its lease just runs out (a crashed
    // job runner), and B takes over.
    let started = std::time::Instant::now();
    let got = tokio::time::timeout(
        Duration::from_secs(15),
        b.lock("cron/job", Some(LockOptions::new().with_lease(lease_b))),
    )
    .await
    .expect("the lock fails over once the holder's lease expires")
    .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2), "B waited for A's lease");
    assert_ne!(got.key(), &key_a[..]);
    assert!(
        a.get(key_a, None).await.unwrap().kvs().is_empty(),
        "A's key went with its lease"
    );
    b.unlock(got.key()).await.unwrap();
    let r = b.get("cron/job", Some(GetOptions::new().with_prefix())).await.unwrap();
    assert!(r.kvs().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_client_election_campaign_observe_proclaim_resign() {
    let c = Cluster::start(3).await;
    let mut a = client(&c).await;
    let mut b = client(&c).await;
    let la = a.lease_grant(30, None).await.unwrap().id();
    let lb = b.lease_grant(30, None).await.unwrap().id();
    let won = a.campaign("scheduler", "node-a", la).await.unwrap();
    let leader_key = won.leader().unwrap().clone();
    let mut observer = client(&c).await;
    let mut obs = observer.observe("scheduler").await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), obs.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.kv().unwrap().value_str().unwrap(), "node-a");
    a.proclaim(
        "node-a v2",
        Some(ProclaimOptions::new().with_leader(leader_key.clone())),
    )
    .await
    .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), obs.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.kv().unwrap().value_str().unwrap(), "node-a v2");
    // B campaigns and waits until A resigns.
    let waiting = tokio::spawn(async move { b.campaign("scheduler", "node-b", lb).await.map(|r| r.leader().cloned()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "B cannot lead while A does");
    a.resign(Some(ResignOptions::new().with_leader(leader_key)))
        .await
        .unwrap();
    let b_key = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("B wins after A resigns")
        .unwrap()
        .unwrap();
    assert!(b_key.is_some());
    let leader = a.leader("scheduler").await.unwrap();
    assert_eq!(leader.kv().unwrap().value_str().unwrap(), "node-b");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_aetcd() {
    let c = Cluster::start(3).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/test_aetcd.py");
    let ep = &c.endpoints()[0];
    let (host, port) = ep.trim_start_matches("http://").rsplit_once(':').unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("python3")
            .arg(script)
            .env("KVORUM_HOST", host)
            .env("KVORUM_PORT", port)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python client test finishes in time")
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "aetcd test failed (the test command installs aetcd from PyPI):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("aetcd: all checks passed"), "{stdout}");
}
