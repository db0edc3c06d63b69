#!/usr/bin/env bash
# Validates Kubernetes manifests offline and strictly (unknown fields are errors):
#
#   scripts/validate-manifests.sh [--no-pod-security] FILE_OR_DIR...
#
# Built-in kinds against kubernetes-validate's schemas for every version in
# KVORUM_K8S_VERSIONS (default "1.33.0 1.37.0": the oldest Kubernetes we support and the newest
# kubernetes-validate 1.37.0 bundles); custom resources against crds/*.yaml and any CRD among the
# inputs; pods and pod templates against the secure defaults (see scripts/validate_manifests.py).
#
# The chart test (scripts/test-chart.sh) feeds it `helm template` output; feed it what the
# operator generates (StatefulSet, Services, PDB, Secrets) the same way, e.g. a directory of
# YAML files written by an operator test.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/chart-tools.sh
source "$repo/scripts/lib/chart-tools.sh"

if [ $# -eq 0 ]; then
  echo "usage: $0 [--no-pod-security] FILE_OR_DIR..." >&2
  exit 2
fi
install_chart_tools

version_args=()
for v in ${KVORUM_K8S_VERSIONS:-1.33.0 1.37.0}; do version_args+=(--kubernetes-version "$v"); done
exec "$TOOLS_PYTHON" "$repo/scripts/validate_manifests.py" "${version_args[@]}" --crd "$repo/crds" "$@"
