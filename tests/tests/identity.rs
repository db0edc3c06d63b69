//! A member whose data directory was lost never comes back as its old self: it waits, says so
//! on `/v1/node` and `/readyz`, and joins under a new member ID once the old member is removed
//! and a new one is added for its peer URL — the remove-then-add replacement etcd documents.

use std::time::{Duration, Instant};

use kvorum::proto::etcdserverpb::{
    MemberAddRequest, MemberListRequest, MemberPromoteRequest, MemberRemoveRequest, cluster_client::ClusterClient,
};
use kvorum_tests::harness::Cluster;

#[tokio::test(flavor = "multi_thread")]
async fn a_wiped_member_rejoins_only_under_a_new_identity() {
    let mut c = Cluster::start(3).await;
    for i in 0..20 {
        c.put(0, &format!("data/{i}"), "kept").await.unwrap();
    }
    let leader = c.wait_leader(Duration::from_secs(10)).await;
    let victim = (leader + 1) % 3;
    let old_id = c.node_view(victim).await.unwrap()["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    c.kill(victim);
    c.wipe(victim);
    c.restart(victim);
    // It does not impersonate its old identity.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = c.node_view(victim).await
            && v["phase"] == "awaiting-membership"
        {
            assert_eq!(v["data_dir_empty"], true);
            assert!(v["member_id"].is_null(), "no identity adopted yet: {v}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the wiped member never said it waits\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = c.http_get(victim, "/readyz").await.unwrap();
    assert_eq!(status, 503);
    assert!(String::from_utf8_lossy(&body).contains("waiting to be added as a new member"));
    // The rest of the cluster keeps serving with two of three.
    c.put(leader, "while", "replacing").await.unwrap();

    // Replace it: remove the stale member, add a learner for the same peer URL, promote.
    let mut cluster = ClusterClient::new(c.channel(leader).await.unwrap());
    let old = u64::from_str_radix(&old_id, 16).unwrap();
    cluster.member_remove(MemberRemoveRequest { id: old }).await.unwrap();
    let added = cluster
        .member_add(MemberAddRequest {
            peer_ur_ls: vec![c.peer_url(victim)],
            is_learner: true,
        })
        .await
        .unwrap()
        .into_inner();
    let new_id = added.member.unwrap().id;
    assert_ne!(new_id, old, "a new identity");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if cluster
            .member_promote(MemberPromoteRequest { id: new_id })
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replacement never caught up\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let members = cluster
        .member_list(MemberListRequest { linearizable: true })
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(members.len(), 3);
    assert!(members.iter().all(|m| !m.is_learner && m.id != old));
    let view = c.node_view(victim).await.unwrap();
    assert_eq!(view["member_id"], format!("{new_id:x}"));
    // The data came back to it through the cluster, not from its lost disk.
    assert_eq!(
        c.get(victim, "data/7", true).await.unwrap().as_deref(),
        Some(&b"kept"[..])
    );
    assert_eq!(
        c.get(victim, "while", false).await.unwrap().as_deref(),
        Some(&b"replacing"[..])
    );
}
