//! The `kvorum` binary: see [`kvorum::cli`].

fn main() -> std::process::ExitCode {
    kvorum::cli::main()
}
