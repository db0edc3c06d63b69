//! The `kvorum` binary. The server, `kvorum dev` and the CLI arrive with the node work; until
//! then every command says so instead of pretending to run.

use std::process::ExitCode;

fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_default();
    eprintln!(
        "kvorum {}: `{}` is not available yet: this build contains only the Raft core (kvorum-raft). \
         The server, `kvorum dev` and the CLI are the next milestone.",
        env!("CARGO_PKG_VERSION"),
        if command.is_empty() { "<no command>" } else { &command }
    );
    ExitCode::from(2)
}
