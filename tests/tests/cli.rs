//! The `kvorum` command line against a cluster: readable output, `--json`, and exit codes
//! scripts rely on (0 ok, 1 error, 3 not found, 4 txn compare failed).

use std::process::Output;

use kvorum_tests::harness::{Cluster, kvorum_bin};

fn run(c: &Cluster, args: &[&str]) -> Output {
    std::process::Command::new(kvorum_bin())
        .args(args)
        .arg("--endpoints")
        .arg(c.endpoints().join(","))
        .output()
        .expect("kvorum runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn client_commands_output_and_exit_codes() {
    let c = Cluster::start(3).await;
    let o = run(&c, &["put", "app/a", "1"]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "OK\n"));
    run(&c, &["put", "app/b", "2"]);
    let o = run(&c, &["get", "app/", "--prefix"]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "app/a\n1\napp/b\n2\n")
    );
    let o = run(&c, &["get", "missing"]);
    assert_eq!(o.status.code(), Some(3), "not found");
    let o = run(&c, &["get", "app/a", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["kvs"][0]["value"], "MQ==", "etcd's protojson");

    let o = run(
        &c,
        &[
            "txn",
            "--if",
            "value(app/a) = 1",
            "--then",
            "put app/a 2",
            "--else",
            "get app/a",
        ],
    );
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "SUCCESS\nOK\n"));
    let o = run(
        &c,
        &[
            "txn",
            "--if",
            "value(app/a) = 1",
            "--then",
            "put app/a 3",
            "--else",
            "get app/a",
        ],
    );
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(4), "FAILURE\napp/a\n2\n"));
    let o = run(&c, &["txn", "--if", "size(app/a) = 1"]);
    assert_eq!(o.status.code(), Some(1), "a malformed compare is an error");
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid compare"));

    let o = run(&c, &["lease", "grant", "60"]);
    let out = stdout(&o);
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    assert!(out.ends_with("granted with TTL(60s)\n"), "{out}");
    run(&c, &["put", "eph", "x", "--lease", &id]);
    let o = run(&c, &["lease", "ttl", &id, "--keys"]);
    assert!(stdout(&o).contains("eph"), "{}", stdout(&o));
    assert_eq!(run(&c, &["lease", "revoke", &id]).status.code(), Some(0));
    assert_eq!(
        run(&c, &["get", "eph"]).status.code(),
        Some(3),
        "the lease took its key"
    );

    let o = run(&c, &["del", "app/", "--prefix"]);
    assert_eq!(stdout(&o), "2\n");
    let o = run(&c, &["member", "list"]);
    assert_eq!(stdout(&o).lines().count(), 3);
    let o = run(&c, &["status"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o).matches("leader=true").count(), 1, "{}", stdout(&o));

    // Snapshot save, restore into a fresh single-member cluster, and read the data back.
    run(&c, &["put", "kept", "yes"]);
    let file = c.dir.path().join("snap.db");
    let o = run(&c, &["snapshot", "save", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let restored = c.dir.path().join("restored");
    let peer = kvorum_tests::harness::free_port();
    let client = kvorum_tests::harness::free_port();
    let o = std::process::Command::new(kvorum_bin())
        .args(["snapshot", "restore", file.to_str().unwrap(), "--name", "solo"])
        .arg("--data-dir")
        .arg(&restored)
        .args(["--initial-cluster", &format!("solo=http://127.0.0.1:{peer}")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut solo = std::process::Command::new(kvorum_bin())
        .args(["serve", "--name", "solo", "--plaintext", "--peer-plaintext"])
        .arg("--data-dir")
        .arg(&restored)
        .args(["--listen-client", &format!("127.0.0.1:{client}")])
        .args(["--listen-peer", &format!("127.0.0.1:{peer}")])
        .args(["--advertise-peer-url", &format!("http://127.0.0.1:{peer}")])
        .args(["--initial-cluster", &format!("solo=http://127.0.0.1:{peer}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{client}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let value = loop {
        let o = std::process::Command::new(kvorum_bin())
            .args(["get", "kept", "--endpoints", &endpoint])
            .output()
            .unwrap();
        if o.status.code() == Some(0) {
            break stdout(&o);
        }
        assert!(std::time::Instant::now() < deadline, "the restored member never served");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let _ = solo.kill();
    let _ = solo.wait();
    assert_eq!(value, "kept\nyes\n");

    // An unreachable endpoint is exit code 1 with a message.
    let o = std::process::Command::new(kvorum_bin())
        .args(["get", "x", "--endpoints", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot connect"));
}
