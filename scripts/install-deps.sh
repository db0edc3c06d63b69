#!/usr/bin/env bash
# Installs what building and testing kvorum needs beyond Rust, on a fresh Debian machine:
#   protobuf-compiler        the etcd-client crate's build script (a test dependency) runs protoc
#   etcd-client              etcdctl 3.4, driven unchanged by the compatibility tests
#   golang-go, golang-etcd-server-dev
#                            the notes' Go program, built offline against Debian's clientv3
#   aetcd (PyPI)             the Python client exercised by the compatibility tests
# Idempotent: installs only what is missing.
set -euo pipefail

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

missing=()
command -v protoc >/dev/null || missing+=(protobuf-compiler)
command -v etcdctl >/dev/null || missing+=(etcd-client)
command -v go >/dev/null || missing+=(golang-go)
[ -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ] || missing+=(golang-etcd-server-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Package lists may be missing or stale on a fresh machine: refresh once and retry.
  $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

if ! python3 -c 'import aetcd' 2>/dev/null; then
  echo "installing aetcd"
  python3 -m pip install --quiet --disable-pip-version-check aetcd==1.0.0
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
