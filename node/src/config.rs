//! Node configuration: one schema ([`ServeArgs`]) read from flags, environment variables
//! (`KVORUM_*`) and a YAML file, in that order of precedence, then checked and resolved into a
//! [`NodeConfig`] with every default filled in. The YAML keys are the flag names
//! (`data-dir: /var/lib/kvorum`); `docs/CONFIGURATION.md` lists them all.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::mvcc::MvccConfig;

/// Whether a node founds a new cluster or joins an existing one (etcd's
/// `--initial-cluster-state`). Only read when the data directory is empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterState {
    /// Found a cluster with the members of `--initial-cluster`.
    #[default]
    New,
    /// Join a running cluster that has added this member.
    Existing,
}

/// The settings of `kvorum serve`. Every field is optional here; [`ServeArgs::resolve`] fills
/// in defaults and checks the result.
#[derive(Clone, Debug, Default, clap::Args, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ServeArgs {
    /// YAML configuration file; flags and environment variables override its values.
    #[arg(long, env = "KVORUM_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// This member's name, unique in the cluster (a StatefulSet pod name).
    #[arg(long, env = "KVORUM_NAME")]
    pub name: Option<String>,
    /// Where the node keeps its data. Default: `./<name>.kvorum`.
    #[arg(long, env = "KVORUM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address the client API listens on (gRPC, JSON gateway, REST, health, metrics).
    #[arg(long, env = "KVORUM_LISTEN_CLIENT")]
    pub listen_client: Option<String>,
    /// Client URLs advertised to clients and other members, comma-separated.
    #[arg(long, env = "KVORUM_ADVERTISE_CLIENT_URLS", value_delimiter = ',')]
    pub advertise_client_urls: Option<Vec<String>>,
    /// Address the peer transport listens on.
    #[arg(long, env = "KVORUM_LISTEN_PEER")]
    pub listen_peer: Option<String>,
    /// This member's peer URL as other members reach it (a stable DNS name, never a pod IP).
    #[arg(long, env = "KVORUM_ADVERTISE_PEER_URL")]
    pub advertise_peer_url: Option<String>,
    /// The founding members: `name=peer-url,…` (etcd's `--initial-cluster`).
    #[arg(long, env = "KVORUM_INITIAL_CLUSTER")]
    pub initial_cluster: Option<String>,
    /// `new` to found the cluster, `existing` to join one that has added this member.
    #[arg(long, env = "KVORUM_INITIAL_CLUSTER_STATE")]
    pub initial_cluster_state: Option<ClusterState>,
    /// Distinguishes clusters built from the same member names.
    #[arg(long, env = "KVORUM_INITIAL_CLUSTER_TOKEN")]
    pub initial_cluster_token: Option<String>,
    /// Serve the client API without TLS (only when asked: TLS is the default).
    #[arg(long, env = "KVORUM_PLAINTEXT", num_args = 0..=1, default_missing_value = "true")]
    pub plaintext: Option<bool>,
    /// Client API certificate (PEM). Reloaded when the file changes.
    #[arg(long, env = "KVORUM_CERT_FILE")]
    pub cert_file: Option<PathBuf>,
    /// Client API private key (PEM).
    #[arg(long, env = "KVORUM_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// CA that signs client certificates (with `--client-cert-auth`).
    #[arg(long, env = "KVORUM_TRUSTED_CA_FILE")]
    pub trusted_ca_file: Option<PathBuf>,
    /// Require clients to present a certificate signed by `--trusted-ca-file`.
    #[arg(long, env = "KVORUM_CLIENT_CERT_AUTH", num_args = 0..=1, default_missing_value = "true")]
    pub client_cert_auth: Option<bool>,
    /// Peer transport without TLS (only for loopback development).
    #[arg(long, env = "KVORUM_PEER_PLAINTEXT", num_args = 0..=1, default_missing_value = "true")]
    pub peer_plaintext: Option<bool>,
    /// Peer certificate (PEM), presented both as server and as client. Reloaded on change.
    #[arg(long, env = "KVORUM_PEER_CERT_FILE")]
    pub peer_cert_file: Option<PathBuf>,
    /// Peer private key (PEM).
    #[arg(long, env = "KVORUM_PEER_KEY_FILE")]
    pub peer_key_file: Option<PathBuf>,
    /// The cluster CA: peers must present a certificate it signed.
    #[arg(long, env = "KVORUM_PEER_TRUSTED_CA_FILE")]
    pub peer_trusted_ca_file: Option<PathBuf>,
    /// Length of a Raft tick in milliseconds.
    #[arg(long, env = "KVORUM_TICK_MS")]
    pub tick_ms: Option<u64>,
    /// Leader heartbeat interval in milliseconds.
    #[arg(long, env = "KVORUM_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    /// Minimum election timeout in milliseconds (the timeout is drawn from [e, 2e)).
    #[arg(long, env = "KVORUM_ELECTION_MS")]
    pub election_ms: Option<u64>,
    /// Applied entries between Raft snapshots (log compactions).
    #[arg(long, env = "KVORUM_SNAPSHOT_COUNT")]
    pub snapshot_count: Option<u64>,
    /// Space quota on the logical data size, in bytes (default 2 GiB).
    #[arg(long, env = "KVORUM_QUOTA_BACKEND_BYTES")]
    pub quota_backend_bytes: Option<u64>,
    /// Largest request accepted, in bytes (default 1.5 MiB).
    #[arg(long, env = "KVORUM_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Most operations per txn branch (default 128). Must be equal on all members.
    #[arg(long, env = "KVORUM_MAX_TXN_OPS")]
    pub max_txn_ops: Option<usize>,
    /// Keep this many revisions of history; the leader compacts older ones (0: never).
    #[arg(long, env = "KVORUM_AUTO_COMPACTION_REVISIONS")]
    pub auto_compaction_revisions: Option<i64>,
    /// How long a client request may wait for commit or a leader, in milliseconds.
    #[arg(long, env = "KVORUM_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
}

macro_rules! merge {
    ($a:ident, $b:ident; $($f:ident),* $(,)?) => {
        ServeArgs { config: $a.config.or($b.config), $($f: $a.$f.or($b.$f)),* }
    };
}

impl ServeArgs {
    /// These settings, with gaps filled from `fallback` (flags and environment over the file).
    pub fn or(self, fallback: ServeArgs) -> ServeArgs {
        let (a, b) = (self, fallback);
        merge!(a, b; name, data_dir, listen_client, advertise_client_urls, listen_peer,
            advertise_peer_url, initial_cluster, initial_cluster_state, initial_cluster_token,
            plaintext, cert_file, key_file, trusted_ca_file, client_cert_auth, peer_plaintext,
            peer_cert_file, peer_key_file, peer_trusted_ca_file, tick_ms, heartbeat_ms,
            election_ms, snapshot_count, quota_backend_bytes, max_request_bytes, max_txn_ops,
            auto_compaction_revisions, request_timeout_ms)
    }

    /// Reads a YAML configuration file.
    pub fn from_yaml_file(path: &Path) -> Result<ServeArgs, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::ReadFile {
            path: path.to_path_buf(),
            error: e.to_string(),
        })?;
        serde_saphyr::from_str(&text).map_err(|e| ConfigError::ParseFile {
            path: path.to_path_buf(),
            error: e.to_string(),
        })
    }

    /// Merges in the configuration file (if any), fills defaults and checks everything.
    pub fn resolve(self) -> Result<NodeConfig, ConfigError> {
        let args = match self.config.clone() {
            Some(path) => self.or(ServeArgs::from_yaml_file(&path)?),
            None => self,
        };
        args.into_config()
    }

    fn into_config(self) -> Result<NodeConfig, ConfigError> {
        let name = self.name.unwrap_or_else(|| "default".into());
        if name.is_empty() || name.contains(['=', ',']) {
            return Err(ConfigError::BadName(name));
        }
        let peer_plaintext = self.peer_plaintext.unwrap_or(false);
        let scheme = if peer_plaintext { "http" } else { "https" };
        let advertise_peer_url = self
            .advertise_peer_url
            .unwrap_or_else(|| format!("{scheme}://localhost:2380"));
        check_url(&advertise_peer_url)?;
        let initial_cluster = match &self.initial_cluster {
            Some(s) => parse_initial_cluster(s)?,
            None => vec![(name.clone(), advertise_peer_url.clone())],
        };
        let state = self.initial_cluster_state.unwrap_or_default();
        if state == ClusterState::New && !initial_cluster.iter().any(|(n, _)| *n == name) {
            return Err(ConfigError::NotInInitialCluster { name });
        }
        let plaintext = self.plaintext.unwrap_or(false);
        let client_tls = if plaintext {
            None
        } else {
            Some(TlsFiles::pick(
                "client",
                self.cert_file,
                self.key_file,
                self.trusted_ca_file,
            )?)
        };
        let client_cert_auth = self.client_cert_auth.unwrap_or(false);
        if client_cert_auth && client_tls.as_ref().is_none_or(|t| t.ca.is_none()) {
            return Err(ConfigError::ClientCertAuthNeedsCa);
        }
        let peer_tls = if peer_plaintext {
            None
        } else {
            Some(TlsFiles::pick(
                "peer",
                self.peer_cert_file,
                self.peer_key_file,
                self.peer_trusted_ca_file,
            )?)
        };
        if peer_tls.as_ref().is_some_and(|t| t.ca.is_none() && t.cert.is_some()) {
            return Err(ConfigError::PeerTlsNeedsCa);
        }
        let tick_ms = self.tick_ms.unwrap_or(10).max(1);
        let heartbeat_ms = self.heartbeat_ms.unwrap_or(50);
        let election_ms = self.election_ms.unwrap_or(500);
        let heartbeat_ticks = (heartbeat_ms / tick_ms).max(1);
        let election_ticks = election_ms / tick_ms;
        if election_ticks < 3 * heartbeat_ticks {
            return Err(ConfigError::Timing {
                heartbeat_ms,
                election_ms,
            });
        }
        let listen_client = self.listen_client.unwrap_or_else(|| "127.0.0.1:2379".into());
        let client_scheme = if plaintext { "http" } else { "https" };
        let advertise_client_urls = self
            .advertise_client_urls
            .unwrap_or_else(|| vec![format!("{client_scheme}://{listen_client}")]);
        for u in &advertise_client_urls {
            check_url(u)?;
        }
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from(format!("{name}.kvorum")));
        let defaults = MvccConfig::default();
        Ok(NodeConfig {
            listen_peer: self.listen_peer.unwrap_or_else(|| "127.0.0.1:2380".into()),
            cluster_token: self.initial_cluster_token.unwrap_or_else(|| "kvorum".into()),
            initial_cluster,
            initial_cluster_state: state,
            advertise_peer_url,
            advertise_client_urls,
            listen_client,
            client_tls,
            client_cert_auth,
            peer_tls,
            tick: Duration::from_millis(tick_ms),
            heartbeat_ticks: heartbeat_ticks as u32,
            election_ticks: election_ticks as u32,
            snapshot_count: self.snapshot_count.unwrap_or(10_000).max(1),
            mvcc: MvccConfig {
                max_txn_ops: self.max_txn_ops.unwrap_or(defaults.max_txn_ops),
                quota_bytes: self.quota_backend_bytes.unwrap_or(defaults.quota_bytes),
                max_request_bytes: self.max_request_bytes.unwrap_or(defaults.max_request_bytes),
                ..defaults
            },
            auto_compaction_revisions: self.auto_compaction_revisions.unwrap_or(0).max(0),
            request_timeout: Duration::from_millis(self.request_timeout_ms.unwrap_or(5000)),
            data_dir,
            name,
        })
    }
}

/// TLS material for one listener. Missing cert and key mean "generate a self-signed pair in
/// the data directory" (handy for a single node; clusters pass their own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain (PEM), or `None` to generate one.
    pub cert: Option<PathBuf>,
    /// Private key (PEM).
    pub key: Option<PathBuf>,
    /// CA bundle that verifies the other side (PEM).
    pub ca: Option<PathBuf>,
}

impl TlsFiles {
    fn pick(
        which: &'static str,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        ca: Option<PathBuf>,
    ) -> Result<TlsFiles, ConfigError> {
        if cert.is_some() != key.is_some() {
            return Err(ConfigError::CertWithoutKey { which });
        }
        Ok(TlsFiles { cert, key, ca })
    }
}

/// A checked configuration, every default filled in.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Member name.
    pub name: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Client API listen address.
    pub listen_client: String,
    /// Advertised client URLs.
    pub advertise_client_urls: Vec<String>,
    /// Peer listen address.
    pub listen_peer: String,
    /// Advertised peer URL.
    pub advertise_peer_url: String,
    /// Founding members: (name, peer URL).
    pub initial_cluster: Vec<(String, String)>,
    /// Found or join.
    pub initial_cluster_state: ClusterState,
    /// Cluster token.
    pub cluster_token: String,
    /// Client API TLS (`None`: plaintext).
    pub client_tls: Option<TlsFiles>,
    /// Require client certificates.
    pub client_cert_auth: bool,
    /// Peer TLS (`None`: plaintext).
    pub peer_tls: Option<TlsFiles>,
    /// Raft tick.
    pub tick: Duration,
    /// Heartbeat interval in ticks.
    pub heartbeat_ticks: u32,
    /// Minimum election timeout in ticks.
    pub election_ticks: u32,
    /// Applied entries between log compactions.
    pub snapshot_count: u64,
    /// State-machine settings.
    pub mvcc: MvccConfig,
    /// Revisions of history kept by automatic compaction (0: off).
    pub auto_compaction_revisions: i64,
    /// Client request deadline.
    pub request_timeout: Duration,
}

/// Why a configuration was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {error}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: String,
    },
    /// The config file is not valid YAML for this schema.
    #[error("invalid config file {path}: {error}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        error: String,
    },
    /// A member name that cannot appear in `--initial-cluster`.
    #[error("invalid member name {0:?}: it must be non-empty and contain neither '=' nor ','")]
    BadName(String),
    /// `--initial-cluster` does not parse.
    #[error("invalid --initial-cluster entry {entry:?}: expected name=url")]
    BadInitialCluster {
        /// The offending entry.
        entry: String,
    },
    /// A name appears twice in `--initial-cluster`.
    #[error("member {0:?} appears twice in --initial-cluster")]
    DuplicateMember(String),
    /// Founding a cluster this member is not part of.
    #[error("--name {name:?} is not in --initial-cluster; add it there, or join with --initial-cluster-state existing")]
    NotInInitialCluster {
        /// This member's name.
        name: String,
    },
    /// A URL that is not http(s)://host:port.
    #[error("invalid URL {0:?}: expected http://host:port or https://host:port")]
    BadUrl(String),
    /// A certificate without its key or the reverse.
    #[error("{which} TLS needs both a certificate and a key file")]
    CertWithoutKey {
        /// Which listener.
        which: &'static str,
    },
    /// Client certificate auth without a CA to check them.
    #[error("--client-cert-auth needs --trusted-ca-file (and TLS)")]
    ClientCertAuthNeedsCa,
    /// Peer certificates without the CA that signs them.
    #[error("peer TLS needs --peer-trusted-ca-file: members must present certificates signed by the cluster CA")]
    PeerTlsNeedsCa,
    /// Election timeout too close to the heartbeat.
    #[error("election timeout {election_ms} ms must be at least 3 heartbeats ({heartbeat_ms} ms each)")]
    Timing {
        /// Heartbeat.
        heartbeat_ms: u64,
        /// Election timeout.
        election_ms: u64,
    },
}

/// Parses `name=url,name=url`.
pub fn parse_initial_cluster(s: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, url) = entry.split_once('=').ok_or_else(|| ConfigError::BadInitialCluster {
            entry: entry.to_string(),
        })?;
        if name.is_empty() {
            return Err(ConfigError::BadInitialCluster {
                entry: entry.to_string(),
            });
        }
        check_url(url)?;
        if out.iter().any(|(n, _)| n == name) {
            return Err(ConfigError::DuplicateMember(name.to_string()));
        }
        out.push((name.to_string(), url.to_string()));
    }
    if out.is_empty() {
        return Err(ConfigError::BadInitialCluster { entry: s.to_string() });
    }
    Ok(out)
}

/// Splits `http(s)://host:port[/]` into (tls, host, port).
pub fn split_url(url: &str) -> Option<(bool, &str, u16)> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        (false, url.strip_prefix("http://")?)
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains('/') {
        return None;
    }
    Some((tls, host, port.parse().ok()?))
}

fn check_url(url: &str) -> Result<(), ConfigError> {
    split_url(url)
        .map(|_| ())
        .ok_or_else(|| ConfigError::BadUrl(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServeArgs {
        ServeArgs {
            name: Some("n1".into()),
            plaintext: Some(true),
            peer_plaintext: Some(true),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_fill_in() {
        let c = args().resolve().unwrap();
        assert_eq!(c.data_dir, PathBuf::from("n1.kvorum"));
        assert_eq!(c.initial_cluster, vec![("n1".into(), "http://localhost:2380".into())]);
        assert_eq!((c.heartbeat_ticks, c.election_ticks), (5, 50));
        assert_eq!(c.advertise_client_urls, vec!["http://127.0.0.1:2379".to_string()]);
        assert_eq!(c.mvcc.max_request_bytes, 1536 * 1024);
        assert!(c.client_tls.is_none() && c.peer_tls.is_none());
    }

    #[test]
    fn tls_is_the_default() {
        let c = ServeArgs {
            name: Some("n1".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            c.client_tls,
            Some(TlsFiles {
                cert: None,
                key: None,
                ca: None
            }),
            "no certificate given: one is generated, but TLS stays on"
        );
        assert!(c.advertise_client_urls[0].starts_with("https://"));
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kvorum.yaml");
        std::fs::write(
            &file,
            "name: from-file\ndata-dir: /var/lib/kvorum\nheartbeat-ms: 100\nelection-ms: 1000\nplaintext: true\npeer-plaintext: true\n",
        )
        .unwrap();
        let c = ServeArgs {
            config: Some(file.clone()),
            name: Some("from-flag".into()),
            initial_cluster: Some("from-flag=http://a:2380".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(c.name, "from-flag");
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/kvorum"));
        assert_eq!((c.heartbeat_ticks, c.election_ticks), (10, 100));
        std::fs::write(&file, "nmae: typo\n").unwrap();
        let err = ServeArgs {
            config: Some(file),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("nmae"), "unknown keys are named: {err}");
    }

    #[test]
    fn bad_settings_are_explained() {
        let bad = |f: fn(&mut ServeArgs)| {
            let mut a = args();
            f(&mut a);
            a.resolve().unwrap_err().to_string()
        };
        assert!(bad(|a| a.initial_cluster = Some("x=http://a:1".into())).contains("not in --initial-cluster"));
        assert!(bad(|a| a.initial_cluster = Some("n1=http://a:1,n1=http://b:2".into())).contains("twice"));
        assert!(bad(|a| a.initial_cluster = Some("n1".into())).contains("expected name=url"));
        assert!(bad(|a| a.initial_cluster = Some("n1=ftp://a".into())).contains("invalid URL"));
        assert!(bad(|a| a.election_ms = Some(100)).contains("at least 3 heartbeats"));
        assert!(
            bad(|a| {
                a.plaintext = None;
                a.cert_file = Some("c.pem".into());
            })
            .contains("both a certificate and a key")
        );
        assert!(bad(|a| a.client_cert_auth = Some(true)).contains("--trusted-ca-file"));
        assert!(bad(|a| a.name = Some("a=b".into())).contains("invalid member name"));
    }

    #[test]
    fn every_flag_is_documented() {
        use clap::CommandFactory;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: ServeArgs,
        }
        let doc = include_str!("../../docs/CONFIGURATION.md");
        for arg in Wrapper::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            assert!(
                doc.contains(&format!("`--{long}`")),
                "docs/CONFIGURATION.md lacks --{long}"
            );
            let env = arg.get_env().expect("every flag has an environment variable");
            assert!(
                doc.contains(&format!("`{}`", env.to_string_lossy())),
                "docs/CONFIGURATION.md lacks {}",
                env.to_string_lossy()
            );
        }
    }

    #[test]
    fn urls_split_into_parts() {
        assert_eq!(
            split_url("https://kv-0.kv-peer.ns.svc:2380"),
            Some((true, "kv-0.kv-peer.ns.svc", 2380))
        );
        assert_eq!(split_url("http://127.0.0.1:12380/"), Some((false, "127.0.0.1", 12380)));
        assert_eq!(split_url("http://[::1]:2379"), Some((false, "::1", 2379)));
        assert_eq!(split_url("localhost:2379"), None);
        assert_eq!(split_url("http://host"), None);
    }
}
