//! etcdctl (Debian's etcd-client, 3.4) against a 3-member kvorum cluster, unchanged: KV with
//! prefixes and revisions, txn, watch, leases, membership, endpoint status and hashes,
//! snapshot save, and `check perf`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use kvorum_tests::harness::{Cluster, kvorum_bin};
use tokio::io::AsyncBufReadExt;

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn etcdctl_path() -> &'static str {
    assert!(
        std::process::Command::new("etcdctl").arg("version").output().is_ok(),
        "etcdctl is not installed: the test command (scripts/test.sh) installs Debian's etcd-client"
    );
    "etcdctl"
}

async fn etcdctl(c: &Cluster, args: &[&str], stdin: Option<&str>) -> Out {
    etcdctl_at(&c.endpoints().join(","), args, stdin, Duration::from_secs(30)).await
}

async fn etcdctl_at(endpoints: &str, args: &[&str], stdin: Option<&str>, limit: Duration) -> Out {
    let mut cmd = tokio::process::Command::new(etcdctl_path());
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn etcdctl");
    if let Some(input) = stdin {
        use tokio::io::AsyncWriteExt;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("etcdctl {args:?} took longer than {limit:?}"))
        .unwrap();
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(o: Out, what: &str) -> String {
    assert!(o.ok, "etcdctl {what} failed:\n{}\n{}", o.stdout, o.stderr);
    o.stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_prefixes_revisions_and_txn() {
    let c = Cluster::start(3).await;
    assert_eq!(ok(etcdctl(&c, &["put", "app/a", "1"], None).await, "put"), "OK\n");
    ok(etcdctl(&c, &["put", "app/b", "2"], None).await, "put");
    ok(etcdctl(&c, &["put", "other", "x"], None).await, "put");
    let out = ok(etcdctl(&c, &["get", "app/", "--prefix"], None).await, "get --prefix");
    assert_eq!(out, "app/a\n1\napp/b\n2\n");
    let json = ok(etcdctl(&c, &["get", "app/a", "-w", "json"], None).await, "get -w json");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rev = v["kvs"][0]["mod_revision"].as_i64().unwrap();
    ok(etcdctl(&c, &["put", "app/a", "1b"], None).await, "put");
    let old = ok(
        etcdctl(&c, &["get", "app/a", &format!("--rev={rev}")], None).await,
        "get --rev",
    );
    assert_eq!(old, "app/a\n1\n", "history read at the earlier revision");
    let page = ok(
        etcdctl(&c, &["get", "app/", "--prefix", "--limit=1", "-w", "json"], None).await,
        "limit",
    );
    let v: serde_json::Value = serde_json::from_str(&page).unwrap();
    assert_eq!(
        (v["count"].as_i64(), v["more"].as_bool()),
        (Some(2), Some(true)),
        "{page}"
    );
    // Txn: compare, success and failure branches, read from standard input.
    let txn = "value(\"app/a\") = \"1b\"\n\nput app/c 3\n\nput app/c never\n\n";
    let out = ok(etcdctl(&c, &["txn"], Some(txn)).await, "txn");
    assert!(out.starts_with("SUCCESS"), "{out}");
    assert_eq!(
        ok(etcdctl(&c, &["get", "app/c", "--print-value-only"], None).await, "get"),
        "3\n"
    );
    let out = ok(
        etcdctl(&c, &["txn"], Some(txn.replace("1b", "zz").as_str())).await,
        "txn",
    );
    assert!(out.starts_with("FAILURE"), "{out}");
    assert_eq!(
        ok(etcdctl(&c, &["get", "app/c", "--print-value-only"], None).await, "get"),
        "never\n",
        "the failure branch ran"
    );
    let out = ok(etcdctl(&c, &["del", "app/", "--prefix"], None).await, "del --prefix");
    assert_eq!(out, "3\n");
    let out = ok(etcdctl(&c, &["compaction", &rev.to_string()], None).await, "compaction");
    assert!(out.contains("compacted revision"), "{out}");
    let gone = etcdctl(&c, &["get", "app/a", &format!("--rev={}", rev - 1)], None).await;
    assert!(
        !gone.ok && gone.stderr.contains("required revision has been compacted"),
        "{}",
        gone.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_streams_changes() {
    let c = Cluster::start(3).await;
    let mut watcher = tokio::process::Command::new(etcdctl_path())
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", c.endpoint(1)))
        .args(["watch", "cfg/", "--prefix"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(watcher.stdout.take().unwrap()).lines();
    // The watch is registered once a first put shows up; retry puts until it does.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut first = None;
    while first.is_none() {
        ok(etcdctl(&c, &["put", "cfg/ready", "1"], None).await, "put");
        if let Ok(Ok(Some(l))) = tokio::time::timeout(Duration::from_millis(500), lines.next_line()).await {
            first = Some(l);
        }
        assert!(Instant::now() < deadline, "watch delivered nothing");
    }
    assert_eq!(first.as_deref(), Some("PUT"));
    ok(etcdctl(&c, &["put", "cfg/x", "42"], None).await, "put");
    ok(etcdctl(&c, &["del", "cfg/x"], None).await, "del");
    let mut got = Vec::new();
    while got.len() < 20 {
        match tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await {
            Ok(Ok(Some(l))) => {
                got.push(l);
                if got.ends_with(&["DELETE".to_string(), "cfg/x".to_string()]) {
                    break;
                }
            }
            _ => panic!("watch stopped early: {got:?}"),
        }
    }
    let text = got.join("\n");
    assert!(text.contains("PUT\ncfg/x\n42\nDELETE\ncfg/x"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_grant_keepalive_ttl_revoke() {
    let c = Cluster::start(3).await;
    let out = ok(etcdctl(&c, &["lease", "grant", "60"], None).await, "lease grant");
    // "lease 694d7a… granted with TTL(60s)"
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    ok(
        etcdctl(&c, &["put", "svc/a", "10.0.0.1", &format!("--lease={id}")], None).await,
        "put --lease",
    );
    let out = ok(
        etcdctl(&c, &["lease", "keep-alive", "--once", &id], None).await,
        "keep-alive",
    );
    assert!(out.contains("keepalived with TTL(60)"), "{out}");
    let out = ok(
        etcdctl(&c, &["lease", "timetolive", &id, "--keys"], None).await,
        "timetolive",
    );
    assert!(out.contains("granted with TTL(60s)") && out.contains("svc/a"), "{out}");
    let out = ok(etcdctl(&c, &["lease", "list"], None).await, "lease list");
    assert!(out.contains(&id), "{out}");
    ok(etcdctl(&c, &["lease", "revoke", &id], None).await, "revoke");
    assert_eq!(
        ok(etcdctl(&c, &["get", "svc/a"], None).await, "get"),
        "",
        "the attached key is gone"
    );
    let out = ok(etcdctl(&c, &["lease", "timetolive", &id], None).await, "timetolive");
    assert!(out.contains("already expired"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_lease_expires_and_takes_its_keys() {
    let c = Cluster::start(3).await;
    let out = ok(etcdctl(&c, &["lease", "grant", "2"], None).await, "lease grant");
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    ok(
        etcdctl(&c, &["put", "ephemeral", "x", &format!("--lease={id}")], None).await,
        "put --lease",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ok(etcdctl(&c, &["get", "ephemeral"], None).await, "get");
        if out.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the lease never expired\n{}", c.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn membership_add_learner_promote_remove() {
    let mut c = Cluster::start(3).await;
    ok(etcdctl(&c, &["put", "before", "join"], None).await, "put");
    let new = c.members.len();
    // Reserve the new member's ports by creating its slot first, then add it, then start it.
    let idx = c.add_member_process();
    assert_eq!(idx, new);
    let url = c.peer_url(idx);
    let out = ok(
        etcdctl(
            &c,
            &["member", "add", "m3", &format!("--peer-urls={url}"), "--learner"],
            None,
        )
        .await,
        "member add --learner",
    );
    assert!(out.contains("added to cluster"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        let list = ok(etcdctl(&c, &["member", "list"], None).await, "member list");
        let line = list.lines().find(|l| l.contains(&url)).map(str::to_string);
        if let Some(l) = line.filter(|l| l.contains("started")) {
            assert!(l.trim_end().ends_with("true"), "joined as a learner: {l}");
            break l.split(',').next().unwrap().trim().to_string();
        }
        assert!(Instant::now() < deadline, "the learner never started\n{}", c.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Promotion succeeds once it has caught up.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = etcdctl(&c, &["member", "promote", &id], None).await;
        if o.ok {
            break;
        }
        assert!(
            o.stderr.contains("in sync with leader") || o.stderr.contains("not"),
            "unexpected promote error: {}",
            o.stderr
        );
        assert!(Instant::now() < deadline, "promotion never succeeded: {}", o.stderr);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let list = ok(etcdctl(&c, &["member", "list"], None).await, "member list");
    assert_eq!(list.lines().count(), 4);
    assert!(
        list.lines().all(|l| l.trim_end().ends_with("false")),
        "all voters: {list}"
    );
    // The new member serves data written before it joined, locally and linearizably.
    for consistency in ["--consistency=s", "--consistency=l"] {
        let out = ok(
            etcdctl_at(
                &c.endpoint(idx),
                &["get", "before", consistency],
                None,
                Duration::from_secs(10),
            )
            .await,
            "get on the new member",
        );
        assert_eq!(out, "before\njoin\n", "{consistency}");
    }
    ok(etcdctl(&c, &["member", "remove", &id], None).await, "member remove");
    let list = ok(etcdctl(&c, &["member", "list"], None).await, "member list");
    assert_eq!(list.lines().count(), 3, "{list}");
    let bad = etcdctl(&c, &["member", "remove", "deadbeef"], None).await;
    assert!(!bad.ok && bad.stderr.contains("member not found"), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoint_status_hashkv_and_snapshot_save() {
    let c = Cluster::start(3).await;
    for i in 0..20 {
        ok(etcdctl(&c, &["put", &format!("k{i}"), "v"], None).await, "put");
    }
    let status = ok(
        etcdctl(&c, &["endpoint", "status", "-w", "json"], None).await,
        "endpoint status",
    );
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    let leaders: std::collections::HashSet<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Status"]["leader"].as_u64().unwrap())
        .collect();
    assert_eq!(leaders.len(), 1, "every member reports the same leader: {status}");
    // Members converge to identical keyspaces: equal HashKV everywhere.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ok(etcdctl(&c, &["endpoint", "hashkv", "-w", "json"], None).await, "hashkv");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let hashes: std::collections::HashSet<_> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["HashKV"]["hash"].as_u64())
            .collect();
        if hashes.len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "hashes differ: {out}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let file = c.dir.path().join("backup.db");
    let out = etcdctl_at(
        &c.endpoint(0),
        &["snapshot", "save", file.to_str().unwrap()],
        None,
        Duration::from_secs(30),
    )
    .await;
    assert!(out.ok, "snapshot save: {}{}", out.stdout, out.stderr);
    assert!(std::fs::metadata(&file).unwrap().len() > 100);
    // Our restore tool reads what etcdctl saved.
    let restored = c.dir.path().join("restored");
    let o = std::process::Command::new(kvorum_bin())
        .args(["snapshot", "restore"])
        .arg(&file)
        .arg("--data-dir")
        .arg(&restored)
        .args(["--name", "r0", "--initial-cluster", "r0=http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let defrag = ok(etcdctl(&c, &["defrag"], None).await, "defrag");
    assert!(defrag.contains("Finished defragmenting"), "{defrag}");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_perf_small_load_passes() {
    let c = Cluster::start(3).await;
    let out = etcdctl_at(
        &c.endpoints().join(","),
        &["check", "perf", "--load=s"],
        None,
        Duration::from_secs(150),
    )
    .await;
    assert!(out.ok, "check perf failed:\n{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("PASS"), "{}", out.stdout);
}
