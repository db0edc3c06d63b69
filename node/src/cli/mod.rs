//! The `kvorum` command line: `serve` runs a member, `dev` a local cluster, `cert` makes
//! certificates, and the client commands talk to any etcd-v3 endpoint.
//!
//! Exit codes scripts can rely on: 0 success; 1 error (unreachable, refused, failed);
//! 2 bad usage; 3 key not found (`get`); 4 a txn's compares failed (`txn`).

mod bench;
mod cert;
mod client;
mod dev;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::ServeArgs;

/// Exit code: a key was not found.
pub const EXIT_NOT_FOUND: u8 = 3;
/// Exit code: a txn took its failure branch.
pub const EXIT_TXN_FAILED: u8 = 4;

/// kvorum: a replicated configuration store with an etcd v3 compatible API.
#[derive(Debug, Parser)]
#[command(name = "kvorum", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a cluster member.
    Serve(Box<ServeArgs>),
    /// Run a local cluster on 127.0.0.1 (etcd's local-cluster ports), until Ctrl-C.
    Dev(dev::DevArgs),
    /// Create a CA and node or client certificates.
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// Read keys.
    Get(client::GetArgs),
    /// Write a key.
    Put(client::PutArgs),
    /// Delete keys.
    Del(client::DelArgs),
    /// Watch keys and print changes as they happen.
    Watch(client::WatchArgs),
    /// Run a transaction: compares, then operations on success or failure.
    Txn(client::TxnArgs),
    /// Manage leases.
    #[command(subcommand)]
    Lease(client::LeaseCommand),
    /// Manage members.
    #[command(subcommand)]
    Member(client::MemberCommand),
    /// Status of each endpoint.
    Status(client::StatusArgs),
    /// Save or restore snapshots.
    #[command(subcommand)]
    Snapshot(client::SnapshotCommand),
    /// Generate load against any etcd v3 endpoint and measure it.
    Bench(Box<bench::BenchArgs>),
}

/// How client commands reach the cluster.
#[derive(Clone, Debug, clap::Args)]
pub struct ClientOpts {
    /// Endpoints, comma-separated (http:// for plaintext, https:// for TLS).
    #[arg(
        long,
        env = "KVORUM_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379",
        global = true
    )]
    pub endpoints: Vec<String>,
    /// CA bundle to verify the server (PEM).
    #[arg(long, env = "KVORUM_CACERT", global = true)]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM), for servers that require one.
    #[arg(long, env = "KVORUM_CERT", global = true)]
    pub cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long = "key", env = "KVORUM_KEY", global = true)]
    pub key_file: Option<PathBuf>,
    /// Print responses as JSON (etcd's protojson).
    #[arg(long, global = true)]
    pub json: bool,
    /// Deadline of each request.
    #[arg(long, default_value = "5s", value_parser = parse_duration, global = true)]
    pub timeout: Duration,
}

/// Parses `5s`, `500ms`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 5s or 500ms"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("invalid duration unit in {s:?}: use ms, s or m")),
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KVORUM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                init_logging("info");
                serve(*args).await
            }
            Command::Dev(args) => {
                init_logging("warn,kvorum::cli=info");
                dev::run(args).await
            }
            Command::Cert(c) => cert::run(c).map(|_| 0),
            Command::Get(a) => client::get(a).await,
            Command::Put(a) => client::put(a).await,
            Command::Del(a) => client::del(a).await,
            Command::Watch(a) => client::watch(a).await,
            Command::Txn(a) => client::txn(a).await,
            Command::Lease(c) => client::lease(c).await,
            Command::Member(c) => client::member(c).await,
            Command::Status(a) => client::status(a).await,
            Command::Snapshot(c) => client::snapshot(c).await,
            Command::Bench(a) => {
                let cleanup = a.cleanup;
                let (opts, prefix) = (a.opts.clone(), a.prefix.clone());
                let code = bench::run(*a).await?;
                if cleanup {
                    bench::cleanup(&opts, &prefix).await?;
                }
                Ok(code)
            }
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Waits for SIGTERM or Ctrl-C.
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

async fn serve(args: ServeArgs) -> Result<u8, String> {
    let cfg = args.resolve().map_err(|e| e.to_string())?;
    let server = crate::server::Server::start(cfg).await.map_err(|e| e.to_string())?;
    tracing::info!(client = %server.client_addr, peer = %server.peer_addr, "serving");
    terminated().await;
    tracing::info!("stopping");
    // Kubernetes waits 30 s by default before SIGKILL; finish well inside that.
    if tokio::time::timeout(Duration::from_secs(20), server.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown took too long; exiting");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse() {
        assert_eq!(
            super::parse_duration("500ms").unwrap(),
            std::time::Duration::from_millis(500)
        );
        assert_eq!(
            super::parse_duration("2m").unwrap(),
            std::time::Duration::from_secs(120)
        );
        assert!(super::parse_duration("soon").is_err());
    }
}
