//! `kvorum dev`: a local cluster in one process, on etcd's local-cluster ports (client 2379,
//! 22379, 32379…, peer 12380, 22380, 32380…), plaintext on loopback unless `--tls`. Its data
//! stays in `--data-dir`, so running it again resumes the same cluster.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{ClusterState, ServeArgs};
use crate::server::Server;
use crate::tls::{Pki, Usage, write_file};

/// Prints a line; a closed stdout (the reader went away) must not bring the cluster down.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
/// Options of `kvorum dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Where the members keep their data.
    #[arg(long, default_value = "kvorum-dev")]
    pub data_dir: PathBuf,
    /// Number of members: 1, 3 or 5.
    #[arg(long, default_value_t = 3, value_parser = parse_nodes)]
    pub nodes: u8,
    /// Serve TLS on both ports, with certificates generated under the data directory.
    #[arg(long)]
    pub tls: bool,
}

fn parse_nodes(s: &str) -> Result<u8, String> {
    match s {
        "1" | "3" | "5" => Ok(s.parse().expect("digit")),
        _ => Err("a dev cluster has 1, 3 or 5 members".into()),
    }
}

fn ports(i: usize) -> (u16, u16) {
    // etcd's Procfile convention: 2379/12380, 22379/22380, 32379/32380, …
    let client = if i == 0 { 2379 } else { (i as u16 + 1) * 10000 + 2379 };
    (client, (i as u16 + 1) * 10000 + 2380)
}

/// Runs the local cluster until Ctrl-C.
pub async fn run(args: DevArgs) -> Result<u8, String> {
    let n = usize::from(args.nodes);
    std::fs::create_dir_all(&args.data_dir).map_err(|e| format!("{}: {e}", args.data_dir.display()))?;
    let data_dir = args.data_dir.canonicalize().map_err(|e| e.to_string())?;
    let scheme = if args.tls { "https" } else { "http" };
    let names: Vec<String> = (1..=n).map(|i| format!("infra{i}")).collect();
    let initial: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{name}={scheme}://127.0.0.1:{}", ports(i).1))
        .collect();
    let certs = if args.tls {
        Some(dev_certs(&data_dir, &names)?)
    } else {
        None
    };
    let mut servers = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let (client, peer) = ports(i);
        let (cert, key) = certs
            .as_ref()
            .map(|c| (c.dir.join(format!("{name}.pem")), c.dir.join(format!("{name}-key.pem"))))
            .unzip();
        let ca = certs.as_ref().map(|c| c.dir.join("ca.pem"));
        let args = ServeArgs {
            name: Some(name.clone()),
            data_dir: Some(data_dir.join(name)),
            listen_client: Some(format!("127.0.0.1:{client}")),
            advertise_client_urls: Some(vec![format!("{scheme}://127.0.0.1:{client}")]),
            listen_peer: Some(format!("127.0.0.1:{peer}")),
            advertise_peer_url: Some(format!("{scheme}://127.0.0.1:{peer}")),
            initial_cluster: Some(initial.join(",")),
            initial_cluster_state: Some(ClusterState::New),
            initial_cluster_token: Some("kvorum-dev".into()),
            plaintext: Some(!args.tls),
            peer_plaintext: Some(!args.tls),
            cert_file: cert.clone(),
            key_file: key.clone(),
            trusted_ca_file: ca.clone(),
            peer_cert_file: cert,
            peer_key_file: key,
            peer_trusted_ca_file: ca,
            ..ServeArgs::default()
        };
        let cfg = args.resolve().map_err(|e| e.to_string())?;
        servers.push(Server::start(cfg).await.map_err(|e| format!("{name}: {e}"))?);
    }
    for (s, name) in servers.iter().zip(&names) {
        if !s.ready(Duration::from_secs(30)).await {
            return Err(format!("{name} did not become ready within 30 s"));
        }
    }
    let endpoints: Vec<String> = (0..n).map(|i| format!("{scheme}://127.0.0.1:{}", ports(i).0)).collect();
    let tls_flags = certs
        .as_ref()
        .map(|c| format!(" --cacert {}", c.dir.join("ca.pem").display()))
        .unwrap_or_default();
    let curl_tls = certs
        .as_ref()
        .map(|c| format!(" --cacert {}", c.dir.join("ca.pem").display()))
        .unwrap_or_default();
    say!("kvorum dev: {n}-member cluster ready (data in {})", data_dir.display());
    for (name, e) in names.iter().zip(&endpoints) {
        say!("  {name}  {e}");
    }
    say!();
    say!(
        "  etcdctl --endpoints={}{tls_flags} put greeting hello",
        endpoints.join(",")
    );
    say!("  etcdctl --endpoints={}{tls_flags} get greeting", endpoints[0]);
    say!(
        "  curl{curl_tls} -X PUT --data-binary hello {}/v1/kv/greeting",
        endpoints[0]
    );
    say!("  curl{curl_tls} {}/v1/kv/greeting", endpoints[0]);
    say!("  kvorum --endpoints={}{tls_flags} status", endpoints.join(","));
    say!();
    say!("Ctrl-C stops the cluster; run the same command again to resume it.");
    super::terminated().await;
    say!("stopping…");
    futures::future::join_all(servers.into_iter().map(|s| s.stop(false))).await;
    Ok(0)
}

struct DevCerts {
    dir: PathBuf,
}

fn dev_certs(data_dir: &std::path::Path, names: &[String]) -> Result<DevCerts, String> {
    let dir = data_dir.join("tls");
    if dir.join("ca.pem").exists() && names.iter().all(|n| dir.join(format!("{n}.pem")).exists()) {
        return Ok(DevCerts { dir });
    }
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let pki = Pki::new_ca("kvorum dev CA", 3650).map_err(|e| e.to_string())?;
    write_file(&dir.join("ca.pem"), &pki.ca_pem, false).map_err(|e| e.to_string())?;
    write_file(&dir.join("ca-key.pem"), &pki.ca_key_pem(), true).map_err(|e| e.to_string())?;
    let sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    for n in names {
        let c = pki.issue(n, &sans, Usage::Node, 3650).map_err(|e| e.to_string())?;
        write_file(&dir.join(format!("{n}.pem")), &c.cert_pem, false).map_err(|e| e.to_string())?;
        write_file(&dir.join(format!("{n}-key.pem")), &c.key_pem, true).map_err(|e| e.to_string())?;
    }
    Ok(DevCerts { dir })
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_follow_etcds_local_cluster_convention() {
        assert_eq!(super::ports(0), (2379, 12380));
        assert_eq!(super::ports(1), (22379, 22380));
        assert_eq!(super::ports(2), (32379, 32380));
        assert_eq!(super::ports(4), (52379, 52380));
    }
}
