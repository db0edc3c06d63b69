//! `kvorum cert`: a CA and the certificates a cluster needs, with rcgen.
//!
//! ```text
//! kvorum cert ca --dir pki                        # pki/ca.pem, pki/ca-key.pem
//! kvorum cert node kv-0 --dir pki --san kv-0.kv-peer.ns.svc,localhost,127.0.0.1
//! kvorum cert client app --dir pki                # for --client-cert-auth
//! ```

use std::path::PathBuf;

use crate::tls::{Pki, Usage, write_file};

/// `kvorum cert …`.
#[derive(Debug, clap::Subcommand)]
pub enum CertCommand {
    /// Create a CA (ca.pem, ca-key.pem).
    Ca {
        /// Output directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// CA common name.
        #[arg(long, default_value = "kvorum CA")]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: i64,
    },
    /// Issue a node certificate (server and client authentication) signed by the CA in --dir.
    Node {
        /// Member name (certificate common name; files <name>.pem, <name>-key.pem).
        name: String,
        /// Directory holding ca.pem and ca-key.pem; the certificate is written there too.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Subject alternative names: DNS names or IP addresses, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        san: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
    /// Issue a client certificate signed by the CA in --dir.
    Client {
        /// Client name (common name; files <name>.pem, <name>-key.pem).
        name: String,
        /// Directory holding ca.pem and ca-key.pem.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
}

/// Runs a cert command.
pub fn run(cmd: CertCommand) -> Result<(), String> {
    let err = |e: crate::tls::TlsError| e.to_string();
    match cmd {
        CertCommand::Ca { dir, name, days } => {
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let (cert, key) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
            if cert.exists() || key.exists() {
                return Err(format!(
                    "{} already holds a CA; refusing to overwrite it",
                    dir.display()
                ));
            }
            let pki = Pki::new_ca(&name, days).map_err(err)?;
            write_file(&key, &pki.ca_key_pem(), true).map_err(err)?;
            write_file(&cert, &pki.ca_pem, false).map_err(err)?;
            println!("wrote {} and {}", cert.display(), key.display());
        }
        CertCommand::Node { name, dir, san, days } => issue(&dir, &name, &san, Usage::Node, days)?,
        CertCommand::Client { name, dir, days } => issue(&dir, &name, &[], Usage::Client, days)?,
    }
    Ok(())
}

fn issue(dir: &std::path::Path, name: &str, sans: &[String], usage: Usage, days: i64) -> Result<(), String> {
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .map_err(|e| format!("{}: {e} (create a CA with `kvorum cert ca`)", dir.join(f).display()))
    };
    let pki = Pki::load(&read("ca.pem")?, &read("ca-key.pem")?).map_err(|e| e.to_string())?;
    let issued = pki.issue(name, sans, usage, days).map_err(|e| e.to_string())?;
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}-key.pem")));
    write_file(&key, &issued.key_pem, true).map_err(|e| e.to_string())?;
    write_file(&cert, &issued.cert_pem, false).map_err(|e| e.to_string())?;
    println!("wrote {} and {}", cert.display(), key.display());
    Ok(())
}
