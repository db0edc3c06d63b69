//! Project rules for the Raft core that the compiler cannot check, as a failing test
//! (TigerBeetle's tidy.zig idea): no clocks, no global randomness, no IO, no async, only the
//! allowed dependencies, and files small enough to review.

use std::path::{Path, PathBuf};

const BANNED: &[(&str, &str)] = &[
    ("Instant::now", "wall clock: time is ticks"),
    ("SystemTime", "wall clock: time is ticks"),
    ("std::time", "wall clock: time is ticks"),
    ("thread_rng", "global RNG: randomness comes from the caller"),
    ("rand::rng(", "global RNG: randomness comes from the caller"),
    ("std::fs", "IO belongs to the driver"),
    ("std::net", "IO belongs to the driver"),
    ("std::io", "IO belongs to the driver"),
    ("std::thread", "the core is single-threaded"),
    ("async ", "the core is synchronous"),
    ("tokio", "the core is sans-IO"),
];

const ALLOWED_DEPENDENCIES: &[&str] = &["bytes", "rand_core", "thiserror"];
const MAX_FILE_LINES: usize = 800;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn core_sources_have_no_clock_rng_io_or_async() {
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    assert!(files.len() > 5, "found the core's sources");
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (pattern, why) in BANNED {
                if code.contains(pattern) {
                    problems.push(format!("{}:{}: `{pattern}` ({why})", file.display(), n + 1));
                }
            }
        }
        let lines = text.lines().count();
        if lines > MAX_FILE_LINES {
            problems.push(format!(
                "{}: {lines} lines (max {MAX_FILE_LINES}); split it by concept",
                file.display()
            ));
        }
    }
    assert!(problems.is_empty(), "tidy rules broken:\n{}", problems.join("\n"));
}

#[test]
fn core_depends_only_on_allowed_crates() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).expect("manifest");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("has dependencies")
        .split("\n[")
        .next()
        .unwrap_or("");
    for line in deps
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let name = line.split(['=', ' ']).next().unwrap_or("");
        assert!(
            ALLOWED_DEPENDENCIES.contains(&name),
            "kvorum-raft must stay sans-IO; unexpected dependency `{name}`"
        );
    }
}
