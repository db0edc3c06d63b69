#!/usr/bin/env bash
# The project's test command (README). Installs what the tests need on a fresh machine, builds
# the workspace once, then runs every test with bounded durations (see .config/nextest.toml).
#   KVORUM_SIM_SECONDS=N      also runs the Raft simulator for N seconds of fresh seeds (soak)
#   KVORUM_CRASH_ITERATIONS=N more SIGKILL iterations of the storage crash test (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
# The process tests run the `kvorum` binary: build it with everything else, once.
cargo build --workspace --all-targets
cargo nextest run --workspace --profile ci --no-fail-fast
cargo test --workspace --doc
