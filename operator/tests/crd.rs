//! The checked-in CRD matches the Rust types, and the types read real manifests.
//!
//! When `crd_is_up_to_date` fails, regenerate the file from the workspace root with
//!
//! ```sh
//! cargo run -p kvorum-operator -- crd > crds/kvorumcluster.yaml
//! ```

use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kvorum_operator::crd::{KvorumCluster, PvcRetention, ServiceType, TlsMode};

const REGENERATE: &str = "cargo run -p kvorum-operator -- crd > crds/kvorumcluster.yaml";

fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds/kvorumcluster.yaml")
}

#[test]
fn crd_is_up_to_date() {
    let generated = kvorum_operator::crd_yaml().expect("CRD renders");
    let path = checked_in_path();
    let checked_in = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}; create it with `{REGENERATE}`", path.display()));
    if checked_in != generated {
        let line = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || {
                    format!(
                        "lengths differ ({} vs {} lines)",
                        checked_in.lines().count(),
                        generated.lines().count()
                    )
                },
                |i| format!("first difference at line {}", i + 1),
            );
        panic!(
            "crds/kvorumcluster.yaml is stale ({line}); regenerate it from the workspace root with:\n\n    {REGENERATE}\n"
        );
    }
}

#[test]
fn checked_in_crd_reads_back_as_the_generated_definition() {
    let text = std::fs::read_to_string(checked_in_path()).expect("checked-in CRD");
    let parsed: CustomResourceDefinition = serde_saphyr::from_str(&text).expect("CRD YAML parses");
    assert_eq!(parsed, KvorumCluster::crd());
}

#[test]
fn crd_has_the_subresources_columns_and_names_kubectl_relies_on() {
    let crd = KvorumCluster::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("kvorumclusters.kvorum.io"));
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.short_names.as_deref(), Some(&["kvc".to_string()][..]));
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    let columns: Vec<_> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(columns, ["Replicas", "Ready", "Leader", "Phase", "Age"]);
    let subresources = version.subresources.as_ref().expect("subresources");
    assert!(subresources.status.is_some());
    let scale = subresources.scale.as_ref().expect("scale subresource");
    assert_eq!(scale.spec_replicas_path, ".spec.replicas");
    assert_eq!(scale.status_replicas_path, ".status.replicas");
    assert_eq!(scale.label_selector_path.as_deref(), Some(".status.selector"));

    let schema = serde_json::to_value(version.schema.as_ref().expect("schema")).expect("schema as JSON");
    let spec = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"];
    let rules = |v: &serde_json::Value| v["x-kubernetes-validations"].as_array().cloned().unwrap_or_default();
    let rule = |v: &serde_json::Value, i: usize| rules(v)[i]["rule"].as_str().unwrap_or_default().to_string();
    assert_eq!(rule(&spec["replicas"], 0), "self in [1, 3, 5, 7]");
    assert_eq!(rule(&spec["storage"], 0), "self == oldSelf");
    assert_eq!(
        rule(&spec["raft"], 0),
        "self.electionMillis >= 5 * self.heartbeatMillis"
    );
    assert_eq!(rules(&spec["tls"]).len(), 2);
    let status = &schema["openAPIV3Schema"]["properties"]["status"]["properties"];
    assert_eq!(status["conditions"]["x-kubernetes-list-type"], "map");
    assert_eq!(
        status["conditions"]["x-kubernetes-list-map-keys"],
        serde_json::json!(["type"])
    );
}

#[test]
fn a_minimal_manifest_gets_the_documented_defaults() {
    let yaml = "
apiVersion: kvorum.io/v1alpha1
kind: KvorumCluster
metadata:
  name: conf
  namespace: prod
spec:
  replicas: 3
  image: kvorum:0.1.0
";
    let cluster: KvorumCluster = serde_saphyr::from_str(yaml).expect("manifest parses");
    let spec = &cluster.spec;
    assert_eq!(spec.replicas, 3);
    assert_eq!(spec.storage.size.0, "1Gi");
    assert_eq!(spec.storage.storage_class_name, None);
    assert_eq!((spec.raft.heartbeat_millis, spec.raft.election_millis), (100, 1000));
    assert_eq!(spec.tls.mode, TlsMode::Auto);
    assert_eq!(spec.service.type_, ServiceType::ClusterIP);
    assert_eq!(spec.pvc_retention, PvcRetention::Retain);
    assert!(cluster.status.is_none());
}

#[test]
fn a_full_manifest_reads_every_field() {
    let yaml = "
apiVersion: kvorum.io/v1alpha1
kind: KvorumCluster
metadata:
  name: conf
spec:
  replicas: 5
  image: kvorum:0.2.0
  storage: {size: 10Gi, storageClassName: fast}
  resources: {requests: {cpu: 500m, memory: 512Mi}}
  tls:
    mode: CertManager
    certManager: {issuerRef: {name: ca-issuer, kind: ClusterIssuer}}
  raft: {heartbeatMillis: 50, electionMillis: 500}
  podTemplate:
    labels: {team: platform}
    nodeSelector: {disk: ssd}
    tolerations: [{key: dedicated, operator: Exists}]
    priorityClassName: critical
  service: {type: LoadBalancer, annotations: {lb: internal}}
  pvcRetention: Delete
";
    let cluster: KvorumCluster = serde_saphyr::from_str(yaml).expect("manifest parses");
    let spec = &cluster.spec;
    assert_eq!(spec.storage.storage_class_name.as_deref(), Some("fast"));
    let issuer = &spec.tls.cert_manager.as_ref().expect("certManager").issuer_ref;
    assert_eq!(
        (issuer.name.as_str(), issuer.kind.as_str(), issuer.group.as_str()),
        ("ca-issuer", "ClusterIssuer", "cert-manager.io")
    );
    assert_eq!(spec.raft.election_millis, 500);
    assert_eq!(spec.pod_template.tolerations.len(), 1);
    assert_eq!(spec.service.type_, ServiceType::LoadBalancer);
    assert_eq!(spec.pvc_retention, PvcRetention::Delete);
    // Serializing and reading back loses nothing.
    let again: KvorumCluster =
        serde_json::from_value(serde_json::to_value(&cluster).expect("to JSON")).expect("from JSON");
    assert_eq!(again, cluster);
}
