#!/usr/bin/env bash
# The project's test command (README). Installs what the tests need on a fresh machine, then
# runs every test of the workspace with bounded durations (see .config/nextest.toml).
#   KVORUM_SIM_SECONDS=N  also runs the Raft simulator for N seconds of fresh seeds (opt-in soak)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi

cargo nextest run --workspace --profile ci --no-fail-fast
cargo test --workspace --doc
