//! The `kvorum-operator` binary.
//!
//! `kvorum-operator crd` prints the `KvorumCluster` CustomResourceDefinition; it is how
//! `crds/kvorumcluster.yaml` is regenerated:
//!
//! ```sh
//! cargo run -p kvorum-operator -- crd > crds/kvorumcluster.yaml
//! ```
//!
//! `kvorum-operator run` will run the controller. The controller is not wired yet, so today it
//! says so and exits non-zero rather than pretending to manage anything.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Kubernetes operator for kvorum clusters.
#[derive(Parser, Debug)]
#[command(name = "kvorum-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the KvorumCluster CustomResourceDefinition as YAML.
    Crd,
    /// Run the controller (not wired yet: exits with status 2).
    Run,
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Crd => {
            let yaml = kvorum_operator::crd_yaml()?;
            std::io::stdout()
                .lock()
                .write_all(yaml.as_bytes())
                .context("writing the CRD to stdout")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => {
            eprintln!(
                "kvorum-operator {}: controller not wired yet; only `kvorum-operator crd` works today",
                env!("CARGO_PKG_VERSION")
            );
            Ok(ExitCode::from(2))
        }
    }
}
