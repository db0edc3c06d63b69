//! `kvorum dev` as a newcomer meets it: one command starts a 3-member cluster on etcd's
//! local ports, prints how to reach it, runs the notes' first Go program (etcd's clientv3,
//! unchanged), stops on Ctrl-C, and resumes the same data when started again.

use std::process::Stdio;
use std::time::Duration;

use kvorum_tests::harness::kvorum_bin;
use tokio::io::AsyncBufReadExt;

/// Starts `kvorum dev` and waits for its ready banner; returns the process and the banner.
async fn start_dev(dir: &std::path::Path, extra: &[&str]) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(kvorum_bin())
        .arg("dev")
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("kvorum dev starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    let read = async {
        while let Ok(Some(l)) = lines.next_line().await {
            banner.push_str(&l);
            banner.push('\n');
            if l.starts_with("Ctrl-C") {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("kvorum dev reports ready within a minute");
    // Keep draining its output so it never writes into a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, banner)
}

async fn interrupt_and_wait(mut child: tokio::process::Child) {
    let pid = child.id().expect("running");
    let _ = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("kvorum dev stops promptly on Ctrl-C")
        .unwrap();
    assert!(status.success(), "clean exit: {status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_cluster_runs_the_notes_go_program_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cluster");
    let (child, banner) = start_dev(&data, &[]).await;
    for port in ["2379", "22379", "32379"] {
        assert!(banner.contains(&format!("http://127.0.0.1:{port}")), "{banner}");
    }
    assert!(banner.contains("etcdctl --endpoints="), "{banner}");

    // The notes' program, compiled against Debian's clientv3 sources (GOPATH mode, offline).
    let program = concat!(env!("CARGO_MANIFEST_DIR"), "/go/hello");
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new("go")
            .arg("run")
            .arg(".")
            .current_dir(program)
            .env("GO111MODULE", "off")
            .env("GOPATH", "/usr/share/gocode")
            .env("GOCACHE", dir.path().join("gocache"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Go program finishes")
    .expect("go runs (the test command installs golang-go and golang-etcd-server-dev)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("hello world\n"), "{stdout}");
    assert!(
        stdout.contains(r#"key:"helloWorld""#) && stdout.contains(r#"value:"aaa""#),
        "{stdout}"
    );
    interrupt_and_wait(child).await;

    // Same directory again: same cluster, same data.
    let (child, _) = start_dev(&data, &[]).await;
    let out = tokio::process::Command::new(kvorum_bin())
        .args(["get", "helloWorld", "--endpoints", "http://127.0.0.1:22379"])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "helloWorld\naaa\n");
    interrupt_and_wait(child).await;

    // One member over TLS, with generated certificates and the CA path in the banner.
    let (child, banner) = start_dev(&dir.path().join("tls"), &["--nodes", "1", "--tls"]).await;
    assert!(
        banner.contains("https://127.0.0.1:2379") && !banner.contains("22379"),
        "{banner}"
    );
    let ca = dir.path().join("tls").join("tls").join("ca.pem");
    assert!(banner.contains(&format!("--cacert {}", ca.display())), "{banner}");
    let run = |args: &[&str]| {
        std::process::Command::new(kvorum_bin())
            .args(args)
            .args(["--endpoints", "https://127.0.0.1:2379", "--cacert"])
            .arg(&ca)
            .output()
            .unwrap()
    };
    assert!(run(&["put", "secure", "yes"]).status.success());
    assert_eq!(
        String::from_utf8_lossy(&run(&["get", "secure"]).stdout),
        "secure\nyes\n"
    );
    interrupt_and_wait(child).await;
}
