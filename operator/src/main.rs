//! The `kvorum-operator` binary. The KvorumCluster controller is a later milestone; until then
//! the binary says so and exits non-zero.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "kvorum-operator {}: the controller is not built yet",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
