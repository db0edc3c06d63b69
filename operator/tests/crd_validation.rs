//! The CRD's CEL rules (`x-kubernetes-validations`) evaluated client-side with kube's CEL
//! validator, so a typo in a rule or a rule that does not say what it means fails here rather
//! than on a real API server.

use kube::core::ObjectMeta;
use kube::core::cel::{validate_cel, validate_cel_update};
use kvorum_operator::crd::{
    CertManagerTls, IssuerRef, KvorumCluster, KvorumClusterSpec, RaftSpec, StorageSpec, TlsMode, TlsSecretRefs, TlsSpec,
};

fn cluster(edit: impl FnOnce(&mut KvorumClusterSpec)) -> KvorumCluster {
    let mut spec: KvorumClusterSpec =
        serde_json::from_value(serde_json::json!({"replicas": 3, "image": "kvorum:0.1.0"})).expect("minimal spec");
    edit(&mut spec);
    let mut cluster = KvorumCluster::new("conf", spec);
    cluster.metadata = ObjectMeta {
        name: Some("conf".into()),
        namespace: Some("prod".into()),
        ..ObjectMeta::default()
    };
    cluster
}

fn secrets() -> TlsSecretRefs {
    TlsSecretRefs {
        ca_secret_name: "ca".into(),
        peer_secret_name: "peer".into(),
        server_secret_name: "server".into(),
    }
}

fn issuer() -> CertManagerTls {
    CertManagerTls {
        issuer_ref: IssuerRef {
            name: "ca-issuer".into(),
            kind: "Issuer".into(),
            group: "cert-manager.io".into(),
        },
    }
}

#[test]
fn valid_specs_pass() {
    let valid = [
        ("defaults", cluster(|_| {})),
        ("one replica", cluster(|s| s.replicas = 1)),
        ("seven replicas", cluster(|s| s.replicas = 7)),
        (
            "election exactly five heartbeats",
            cluster(|s| {
                s.raft = RaftSpec {
                    heartbeat_millis: 50,
                    election_millis: 250,
                }
            }),
        ),
        (
            "user secrets",
            cluster(|s| {
                s.tls = TlsSpec {
                    mode: TlsMode::Secrets,
                    secrets: Some(secrets()),
                    cert_manager: None,
                }
            }),
        ),
        (
            "cert-manager",
            cluster(|s| {
                s.tls = TlsSpec {
                    mode: TlsMode::CertManager,
                    secrets: None,
                    cert_manager: Some(issuer()),
                }
            }),
        ),
    ];
    for (name, cluster) in valid {
        if let Err(e) = validate_cel(&cluster) {
            panic!("{name}: expected valid, got {e:?}");
        }
    }
}

#[test]
fn invalid_specs_are_rejected_with_their_message() {
    let invalid = [
        (
            "even replicas",
            cluster(|s| s.replicas = 4),
            "replicas must be 1, 3, 5 or 7",
        ),
        (
            "zero replicas",
            cluster(|s| s.replicas = 0),
            "replicas must be 1, 3, 5 or 7",
        ),
        (
            "nine replicas",
            cluster(|s| s.replicas = 9),
            "replicas must be 1, 3, 5 or 7",
        ),
        (
            "election under five heartbeats",
            cluster(|s| {
                s.raft = RaftSpec {
                    heartbeat_millis: 100,
                    election_millis: 499,
                }
            }),
            "at least 5 times",
        ),
        (
            "mode Secrets without secrets",
            cluster(|s| s.tls.mode = TlsMode::Secrets),
            "tls.secrets must be set exactly when tls.mode is Secrets",
        ),
        (
            "secrets with mode Auto",
            cluster(|s| s.tls.secrets = Some(secrets())),
            "tls.secrets must be set exactly when tls.mode is Secrets",
        ),
        (
            "mode CertManager without an issuer",
            cluster(|s| s.tls.mode = TlsMode::CertManager),
            "tls.certManager must be set exactly when tls.mode is CertManager",
        ),
    ];
    for (name, cluster, message) in invalid {
        match validate_cel(&cluster) {
            Ok(()) => panic!("{name}: expected a rejection"),
            Err(e) => assert!(
                format!("{e:?}").contains(message),
                "{name}: expected {message:?} in {e:?}"
            ),
        }
    }
}

#[test]
fn long_names_are_rejected() {
    let mut long = cluster(|_| {});
    long.metadata.name = Some("k".repeat(53));
    let error = validate_cel(&long).expect_err("53-character name");
    assert!(format!("{error:?}").contains("at most 52 characters"), "{error:?}");
    long.metadata.name = Some("k".repeat(52));
    assert!(validate_cel(&long).is_ok());
}

#[test]
fn storage_is_immutable_but_other_fields_are_not() {
    let old = cluster(|_| {});
    let resized = cluster(|s| {
        s.storage = StorageSpec {
            size: s.storage.size.clone(),
            storage_class_name: Some("fast".into()),
        }
    });
    let error = validate_cel_update(&resized, &old).expect_err("storage change");
    assert!(format!("{error:?}").contains("storage is immutable"), "{error:?}");

    let scaled = cluster(|s| {
        s.replicas = 5;
        s.image = "kvorum:0.2.0".into();
    });
    assert!(validate_cel_update(&scaled, &old).is_ok());
}
