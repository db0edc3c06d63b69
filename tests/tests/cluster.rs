//! A 3-member cluster of real processes: writes through any member, leader SIGKILL, rejoin
//! (by snapshot when far behind), graceful shutdown with leadership handover.

use std::time::{Duration, Instant};

use kvorum_tests::harness::{Cluster, Options};

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_killing_the_leader() {
    let mut c = Cluster::start(3).await;
    let mut acked = Vec::new();
    for i in 0..30 {
        let key = format!("k{i:02}");
        c.put(i % 3, &key, &format!("v{i}"))
            .await
            .expect("write through any member");
        acked.push(key);
    }
    let old = c.wait_leader(Duration::from_secs(10)).await;
    c.kill(old);
    let new = c.wait_leader(Duration::from_secs(10)).await;
    assert_ne!(new, old, "a new leader is elected");
    for (i, key) in acked.iter().enumerate() {
        for m in c.running() {
            let v = c.get(m, key, false).await.expect("linearizable read");
            assert_eq!(v.as_deref(), Some(format!("v{i}").as_bytes()), "{key} on member {m}");
        }
    }
    let survivor = c.running()[0];
    c.put(survivor, "after", "failover")
        .await
        .expect("the majority keeps committing");
    c.restart(old);
    c.wait_ready(Duration::from_secs(20)).await;
    // The old leader catches up: a local (serializable) read there sees the newest write.
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.get(old, "after", true).await.ok().flatten().as_deref() != Some(&b"failover"[..]) {
        assert!(
            Instant::now() < deadline,
            "the old leader did not catch up\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_far_behind_catches_up_by_snapshot() {
    let mut c = Cluster::start_with(Options {
        snapshot_count: 50,
        ..Options::default()
    })
    .await;
    let leader = c.wait_leader(Duration::from_secs(10)).await;
    let lagger = (leader + 1) % 3;
    c.kill(lagger);
    for i in 0..400 {
        c.put(leader, &format!("bulk/{i:04}"), "x").await.expect("write");
    }
    c.restart(lagger);
    c.wait_ready(Duration::from_secs(20)).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if c.get(lagger, "bulk/0399", true).await.ok().flatten().is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lagging member did not catch up\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Everything, not just the last key, arrived (the log behind the snapshot was compacted).
    assert_eq!(
        c.get(lagger, "bulk/0000", true).await.unwrap().as_deref(),
        Some(&b"x"[..])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_hands_leadership_over_and_exits_quickly() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader(Duration::from_secs(10)).await;
    c.put(leader, "before", "stop").await.unwrap();
    let started = Instant::now();
    assert!(
        c.terminate(leader, Duration::from_secs(25)),
        "SIGTERM exits cleanly\n{}",
        c.logs()
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(25),
        "well inside Kubernetes' 30 s grace period: {took:?}"
    );
    let new = c.wait_leader(Duration::from_secs(5)).await;
    assert_ne!(new, leader);
    c.put(new, "after", "handover").await.expect("the rest keeps serving");
    assert_eq!(
        c.get(new, "before", false).await.unwrap().as_deref(),
        Some(&b"stop"[..])
    );
}
