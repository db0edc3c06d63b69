//! TLS for both listeners and for peer connections: rustls with the ring provider only.
//!
//! - [`ReloadingCert`] serves the certificate and key from their files and re-reads them when
//!   a file's modification time changes (checked at most once a second, on handshakes), so a
//!   rotation by cert-manager or the operator needs no restart.
//! - [`server_config`] and [`client_config`] build the rustls configurations; peers always use
//!   mutual TLS against the cluster CA.
//! - [`Pki`] creates a CA and certificates with rcgen (`kvorum cert`, `kvorum dev --tls`, and a
//!   single node started without certificates).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Why TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the material.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// The verifier could not be built.
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// Writing generated files failed.
    #[error("writing {path}: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// The one crypto provider kvorum uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The private key in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

/// A root store holding the CAs of a PEM bundle.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| file_error(path, e))?;
    }
    Ok(roots)
}

/// A certificate and key served from files and reloaded when they change.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    stamp: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

impl ReloadingCert {
    /// Loads the pair now (failing loudly if it is unusable).
    pub fn new(cert_path: &Path, key_path: &Path) -> Result<Arc<ReloadingCert>, TlsError> {
        let provider = provider();
        let key = Self::load(cert_path, key_path, &provider)?;
        Ok(Arc::new(ReloadingCert {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            state: Mutex::new(Loaded {
                key,
                stamp: stamp(cert_path, key_path),
                checked: Instant::now(),
            }),
            provider,
        }))
    }

    fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
        Ok(Arc::new(CertifiedKey::from_der(
            load_certs(cert)?,
            load_key(key)?,
            provider,
        )?))
    }

    /// The current pair, re-read first if the files changed (at most one check a second). A
    /// half-written rotation that fails to load keeps the previous pair.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut st = self.state.lock();
        if st.checked.elapsed() >= Duration::from_secs(1) {
            st.checked = Instant::now();
            let now = stamp(&self.cert_path, &self.key_path);
            if now != st.stamp
                && let Ok(key) = Self::load(&self.cert_path, &self.key_path, &self.provider)
            {
                tracing::info!(cert = %self.cert_path.display(), "reloaded certificate");
                st.key = key;
                st.stamp = now;
            }
        }
        st.key.clone()
    }
}

fn stamp(cert: &Path, key: &Path) -> (Option<SystemTime>, Option<SystemTime>) {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(cert), m(key))
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl rustls::client::ResolvesClientCert for ReloadingCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A server configuration: the given certificate, ALPN protocols, and (with `client_ca`)
/// client certificates required and verified against that CA.
pub fn server_config(
    cert: Arc<ReloadingCert>,
    client_ca: Option<&Path>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(load_roots(ca)?), provider()).build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_cert_resolver(cert);
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// A client configuration trusting `ca`, presenting `identity` when given.
pub fn client_config(
    ca: &Path,
    identity: Option<Arc<ReloadingCert>>,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(load_roots(ca)?);
    let mut cfg = match identity {
        Some(id) => builder.with_client_cert_resolver(id),
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// A certificate authority that issues kvorum's certificates.
pub struct Pki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    ca_key: KeyPair,
}

/// A certificate and its key, PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    /// Certificate.
    pub cert_pem: String,
    /// Private key.
    pub key_pem: String,
}

/// What a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// A node: server and client authentication (peers dial each other).
    Node,
    /// A client of the API.
    Client,
}

impl Pki {
    /// A new CA valid for `days`.
    pub fn new_ca(common_name: &str, days: i64) -> Result<Pki, TlsError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        validity(&mut params, days);
        let ca_key = KeyPair::generate()?;
        let ca = params.self_signed(&ca_key)?;
        Ok(Pki {
            ca_pem: ca.pem(),
            ca_key,
        })
    }

    /// Loads an existing CA (certificate and key, PEM).
    pub fn load(ca_pem: &str, ca_key_pem: &str) -> Result<Pki, TlsError> {
        Ok(Pki {
            ca_pem: ca_pem.to_string(),
            ca_key: KeyPair::from_pem(ca_key_pem)?,
        })
    }

    /// The CA's private key, PEM.
    pub fn ca_key_pem(&self) -> String {
        self.ca_key.serialize_pem()
    }

    /// Issues a certificate for `common_name` with subject alternative names `sans` (DNS
    /// names or IP addresses), valid for `days`.
    pub fn issue(&self, common_name: &str, sans: &[String], usage: Usage, days: i64) -> Result<Issued, TlsError> {
        let mut params = CertificateParams::new(sans.to_vec())?;
        params.distinguished_name = dn(common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = match usage {
            Usage::Node => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        validity(&mut params, days);
        let key = KeyPair::generate()?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_pem, &self.ca_key)?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "kvorum");
    dn
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days);
}

/// Writes `contents` to `path`, private keys readable by the owner only.
pub fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), TlsError> {
    use std::io::Write;
    let write = || -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()
    };
    write().map_err(|error| TlsError::Write {
        path: path.to_path_buf(),
        error,
    })
}

/// File names of a generated set in a directory.
pub struct PkiFiles {
    /// CA certificate.
    pub ca: PathBuf,
    /// Node certificate.
    pub cert: PathBuf,
    /// Node key.
    pub key: PathBuf,
}

/// Ensures `dir` holds a CA and a node certificate for `sans` (generated on first use), as a
/// single node started without certificates uses. Returns the file paths.
pub fn ensure_self_signed(dir: &Path, name: &str, sans: &[String]) -> Result<PkiFiles, TlsError> {
    let files = PkiFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("node.pem"),
        key: dir.join("node-key.pem"),
    };
    if files.ca.exists() && files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    std::fs::create_dir_all(dir).map_err(|error| TlsError::Write {
        path: dir.to_path_buf(),
        error,
    })?;
    let pki = Pki::new_ca(&format!("kvorum CA ({name})"), 3650)?;
    let node = pki.issue(name, sans, Usage::Node, 3650)?;
    write_file(&dir.join("ca-key.pem"), &pki.ca_key_pem(), true)?;
    write_file(&files.ca, &pki.ca_pem, false)?;
    write_file(&files.key, &node.key_pem, true)?;
    write_file(&files.cert, &node.cert_pem, false)?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_load_and_reload_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new_ca("test CA", 1).unwrap();
        let a = pki
            .issue("n1", &["localhost".into(), "127.0.0.1".into()], Usage::Node, 1)
            .unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        write_file(&cert, &a.cert_pem, false).unwrap();
        write_file(&key, &a.key_pem, true).unwrap();
        let r = ReloadingCert::new(&cert, &key).unwrap();
        let first = r.current().cert[0].clone();
        let b = pki.issue("n1", &["localhost".into()], Usage::Node, 1).unwrap();
        write_file(&cert, &b.cert_pem, false).unwrap();
        write_file(&key, &b.key_pem, true).unwrap();
        // Force the periodic check and a visible modification-time change.
        r.state.lock().checked = Instant::now() - Duration::from_secs(2);
        r.state.lock().stamp = (None, None);
        let second = r.current().cert[0].clone();
        assert_ne!(first, second, "the rotated certificate is served");
        // A broken rotation keeps the last good pair.
        std::fs::write(&cert, "garbage").unwrap();
        r.state.lock().checked = Instant::now() - Duration::from_secs(2);
        r.state.lock().stamp = (None, None);
        assert_eq!(r.current().cert[0], second);
    }

    #[test]
    fn bad_files_are_reported_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.pem");
        std::fs::write(&p, "").unwrap();
        let err = load_certs(&p).unwrap_err().to_string();
        assert!(err.contains("empty.pem") && err.contains("no certificate"), "{err}");
        let missing = load_key(&dir.path().join("nope.pem")).unwrap_err().to_string();
        assert!(missing.contains("nope.pem"), "{missing}");
    }
}
