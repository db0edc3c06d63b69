//! TLS: a cluster with certificates from `kvorum cert`, client certificates required. A client
//! without one is refused; a would-be peer with a certificate from another CA is refused; a
//! rotated certificate is served without a restart.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvorum_tests::harness::{Cluster, Options, kvorum_bin};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &Path) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    roots
}

/// A TLS handshake to 127.0.0.1:`port` trusting `ca`, presenting `identity` if given, with
/// one round trip to surface a rejection of our certificate. Returns the server's leaf
/// certificate on success.
async fn handshake(port: u16, ca: &Path, identity: Option<(&Path, &Path)>, alpn: &[u8]) -> Result<Vec<u8>, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(ca));
    let mut cfg = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    // TLS 1.3 reports a refused client certificate only on the first read.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut buf))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| e.to_string())?;
    let (_, conn) = tls.get_ref();
    Ok(conn.peer_certificates().unwrap()[0].to_vec())
}

fn tls_cluster() -> Options {
    Options {
        tls: true,
        client_cert_auth: true,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_need_a_certificate_and_strangers_are_not_peers() {
    let c = Cluster::start_with(tls_cluster()).await;
    let pki = c.pki_dir();
    let ca = pki.join("ca.pem");
    c.put(0, "secure", "yes")
        .await
        .expect("a client with a certificate is served");
    assert_eq!(c.get(1, "secure", false).await.unwrap().as_deref(), Some(&b"yes"[..]));

    let port = c.members[0].client_port;
    let with_cert = handshake(
        port,
        &ca,
        Some((&pki.join("client.pem"), &pki.join("client-key.pem"))),
        b"h2",
    )
    .await;
    assert!(with_cert.is_ok(), "{with_cert:?}");
    let without = handshake(port, &ca, None, b"h2").await;
    assert!(without.is_err(), "a client without a certificate must be refused");

    // A certificate signed by another CA is not a peer.
    let other = c.dir.path().join("other-pki");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(kvorum_bin()).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let dir = other.to_str().unwrap();
    run(&["cert", "ca", "--dir", dir]);
    run(&["cert", "node", "intruder", "--dir", dir, "--san", "localhost,127.0.0.1"]);
    let peer_port = c.members[0].peer_port;
    let intruder = handshake(
        peer_port,
        &ca,
        Some((&other.join("intruder.pem"), &other.join("intruder-key.pem"))),
        b"h2",
    )
    .await;
    assert!(intruder.is_err(), "a peer certificate from another CA must be refused");
    let no_cert = handshake(peer_port, &ca, None, b"h2").await;
    assert!(no_cert.is_err(), "a peer without any certificate must be refused");
    // Plaintext on a TLS port gets nowhere either.
    let (status, _) = c.http_get(0, "/readyz").await.map_or((0, Default::default()), |x| x);
    assert_ne!(status, 200, "plaintext HTTP is not served on the TLS port");
    // And the cluster is unharmed.
    c.put(2, "after", "intruders").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_certificate_is_served_without_restart() {
    let c = Cluster::start_with(tls_cluster()).await;
    let pki = c.pki_dir();
    let ca = pki.join("ca.pem");
    let id = (pki.join("client.pem"), pki.join("client-key.pem"));
    let port = c.members[0].client_port;
    let before = handshake(port, &ca, Some((&id.0, &id.1)), b"h2").await.unwrap();
    // Issue a fresh certificate for m0 (same CA) and write it over the files in place.
    let fresh = c.dir.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    for f in ["ca.pem", "ca-key.pem"] {
        std::fs::copy(pki.join(f), fresh.join(f)).unwrap();
    }
    let out = std::process::Command::new(kvorum_bin())
        .args([
            "cert",
            "node",
            "m0",
            "--dir",
            fresh.to_str().unwrap(),
            "--san",
            "localhost,127.0.0.1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::copy(fresh.join("m0-key.pem"), pki.join("m0-key.pem")).unwrap();
    std::fs::copy(fresh.join("m0.pem"), pki.join("m0.pem")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = handshake(port, &ca, Some((&id.0, &id.1)), b"h2").await.unwrap();
        if now != before {
            break;
        }
        assert!(Instant::now() < deadline, "the rotated certificate was never served");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The peers reload theirs too: the cluster keeps replicating through m0.
    c.put(0, "rotated", "ok").await.unwrap();
    assert_eq!(c.get(2, "rotated", false).await.unwrap().as_deref(), Some(&b"ok"[..]));
}
