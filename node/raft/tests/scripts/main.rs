//! Scenario scripts for the Raft core, in the style of etcd-io/raft's datadriven interaction
//! tests. Each file in `node/raft/testdata/` is a story: `#` comments narrate, each command is
//! followed by `----` and the expected rendering, and a blank line ends the block.
//!
//! `REWRITE=1 cargo test -p kvorum-raft --test scripts` rewrites the expectations from the
//! actual output; review the diff as you would code.

mod env;
mod render;

use std::path::{Path, PathBuf};

use kvorum_raft::{ConfChange, Config, NodeId, Role};

use env::Env;

/// Runs one command and returns its rendering (never empty).
fn run(env: &mut Env, line: &str) -> Vec<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (cmd, args) = (words[0], &words[1..]);
    let mut out = match cmd {
        "add-nodes" => add_nodes(env, args),
        "campaign" => {
            let id = id(args[0]);
            env.node(id).raft().campaign_now();
            vec![format!("{id}: {}", summary(env, id).0)]
        }
        "tick" => tick(env, args),
        "tick-until-campaign" => tick_until_campaign(env, args),
        "process-ready" => {
            let ids = if args.is_empty() || args[0] == "all" {
                env.running()
            } else {
                args.iter().flat_map(|a| ids(a)).collect()
            };
            ids.into_iter()
                .filter_map(|id| env.process_ready(id))
                .flatten()
                .collect()
        }
        "deliver-msgs" => {
            let (mut from, mut to, mut drop) = (None, None, false);
            for a in args {
                match a.split_once('=') {
                    Some(("from", v)) => from = Some(id(v)),
                    Some(("to", v)) => to = Some(id(v)),
                    Some(("drop", v)) => drop = v == "true",
                    _ => panic!("deliver-msgs: unknown argument {a}"),
                }
            }
            env.deliver(from, to, drop)
        }
        "stabilize" => env.stabilize(),
        "propose" => vec![env.propose(id(args[0]), &args[1..].join(" "))],
        "propose-conf-change" => vec![conf_change(env, args)],
        "read-index" => {
            env.node(id(args[0]))
                .raft()
                .read_index(args[1].parse().expect("read id"));
            Vec::new()
        }
        "transfer-leader" => match env.node(id(args[0])).raft().transfer_leader(id(args[1])) {
            Ok(()) => Vec::new(),
            Err(e) => vec![format!("error: {e}")],
        },
        "partition" => {
            let groups: Vec<Vec<NodeId>> = args.iter().map(|g| ids(g)).collect();
            for (i, a) in groups.iter().enumerate() {
                for b in groups.iter().skip(i + 1) {
                    for (&x, &y) in a.iter().flat_map(|x| b.iter().map(move |y| (x, y))) {
                        env.blocked.insert((x, y));
                        env.blocked.insert((y, x));
                    }
                }
            }
            Vec::new()
        }
        "heal" => {
            env.blocked.clear();
            Vec::new()
        }
        "stop" => {
            env.stop(id(args[0]));
            Vec::new()
        }
        "restart" => {
            env.restart(id(args[0]));
            Vec::new()
        }
        "compact" => vec![env.compact(id(args[0]), args[1].parse().expect("index"))],
        "raft-log" => {
            let node = env.node(id(args[0]));
            let log = node.raft().log();
            if log.first_index() > log.last_index() {
                return vec![format!("(empty: compacted through {})", log.first_index() - 1)];
            }
            (log.first_index()..=log.last_index())
                .map(|i| render::entry(log.entry(i).expect("in range")))
                .collect()
        }
        "raft-state" => {
            let ids: Vec<NodeId> = env.nodes.keys().copied().collect();
            ids.into_iter().map(|id| state_line(env, id)).collect()
        }
        "sm" => env
            .nodes
            .iter()
            .map(|(id, n)| format!("{id}: value={} applied={}", n.disk.value, n.disk.applied))
            .collect(),
        "status" => {
            let raft = env.node(id(args[0])).raft();
            raft.progress()
                .iter()
                .map(|(p, pr)| {
                    format!(
                        "{p}: {:?} match={} next={} inflight={}",
                        pr.state,
                        pr.match_index,
                        pr.next_index,
                        pr.inflight_count()
                    )
                })
                .collect()
        }
        "_breakpoint" => Vec::new(),
        other => panic!("unknown command {other:?}"),
    };
    if out.is_empty() {
        out.push("ok".to_string());
    }
    out
}

fn id(s: &str) -> NodeId {
    s.parse().unwrap_or_else(|_| panic!("not a node id: {s}"))
}

fn ids(s: &str) -> Vec<NodeId> {
    s.split(',').map(id).collect()
}

fn state_line(env: &mut Env, id: NodeId) -> String {
    let node = env.node(id);
    let applied = node.disk.applied;
    match node.raft.as_ref() {
        Some(r) => render::state(r, applied),
        None => format!("{id}: stopped"),
    }
}

fn add_nodes(env: &mut Env, args: &[&str]) -> Vec<String> {
    let n: u64 = args[0].parse().expect("node count");
    let first = env.nodes.keys().next_back().copied().unwrap_or(0) + 1;
    let mut voters: Vec<NodeId> = (first..first + n).collect();
    let (mut pre_vote, mut check_quorum, mut seed) = (true, true, 0);
    let (mut max_inflight, mut max_uncommitted, mut max_append) = (None, None, None);
    for a in &args[1..] {
        match a.split_once('=') {
            Some(("voters", v)) => voters = ids(v),
            Some(("pre-vote", v)) => pre_vote = v == "true",
            Some(("check-quorum", v)) => check_quorum = v == "true",
            Some(("seed", v)) => seed = v.parse().expect("seed"),
            Some(("max-inflight", v)) => max_inflight = Some(v.parse().expect("count")),
            Some(("max-uncommitted", v)) => max_uncommitted = Some(v.parse().expect("bytes")),
            Some(("max-append-bytes", v)) => max_append = Some(v.parse().expect("bytes")),
            _ => panic!("add-nodes: unknown argument {a}"),
        }
    }
    (first..first + n)
        .map(|id| {
            let mut cfg = Config::new(id);
            cfg.pre_vote = pre_vote;
            cfg.check_quorum = check_quorum;
            cfg.max_inflight_msgs = max_inflight.unwrap_or(cfg.max_inflight_msgs);
            cfg.max_uncommitted_bytes = max_uncommitted.unwrap_or(cfg.max_uncommitted_bytes);
            cfg.max_append_bytes = max_append.unwrap_or(cfg.max_append_bytes);
            env.add_node(cfg, &voters, seed);
            let timeout = env.node(id).raft().randomized_election_timeout();
            format!("{} election timeout={timeout} ticks", state_line(env, id))
        })
        .collect()
}

/// `tick ID|all [COUNT]`: ticks one at a time and reports role or term changes as they happen.
fn tick(env: &mut Env, args: &[&str]) -> Vec<String> {
    let count: u64 = args.get(1).map_or(1, |c| c.parse().expect("tick count"));
    let targets = if args[0] == "all" {
        env.running()
    } else {
        vec![id(args[0])]
    };
    (0..count).flat_map(|_| tick_once(env, &targets)).collect()
}

/// Ticks each target once; describes every role or term change.
fn tick_once(env: &mut Env, targets: &[NodeId]) -> Vec<String> {
    let mut out = Vec::new();
    for &t in targets {
        let before = summary(env, t);
        env.node(t).raft().tick();
        let after = summary(env, t);
        if before != after {
            out.push(format!("{t}: {} -> {}", before.0, after.0));
        }
    }
    out
}

/// `tick-until-campaign [IDs]`: ticks the given (default: all running) nodes together, one tick
/// at a time, until one of them changes role or term; reports how long that took.
fn tick_until_campaign(env: &mut Env, args: &[&str]) -> Vec<String> {
    let targets: Vec<NodeId> = if args.is_empty() {
        env.running()
    } else {
        args.iter().flat_map(|a| ids(a)).collect()
    };
    for n in 1..=1000 {
        let mut out = tick_once(env, &targets);
        if !out.is_empty() {
            out.insert(0, format!("after {n} ticks:"));
            return out;
        }
    }
    panic!("nobody campaigned within 1000 ticks")
}

fn summary(env: &mut Env, id: NodeId) -> (String, Role) {
    let r = env.node(id).raft();
    (format!("{:?} term={}", r.role(), r.term()), r.role())
}

fn conf_change(env: &mut Env, args: &[&str]) -> String {
    let node = id(args[2]);
    let change = match args[1] {
        "add-learner" => ConfChange::AddLearner(node),
        "promote" => ConfChange::PromoteLearner(node),
        "remove" => ConfChange::RemoveNode(node),
        other => panic!("unknown conf change {other}"),
    };
    let result = env.node(id(args[0])).raft().propose_conf_change(change);
    if let (Ok(_), ConfChange::AddLearner(n)) = (&result, change)
        && !env.nodes.contains_key(&n)
    {
        // A new member starts empty and learns the configuration from the leader.
        env.add_node(Config::new(n), &[], 0);
    }
    match result {
        Ok(p) => format!("proposed at index {} term {}", p.index, p.term),
        Err(e) => format!("error: {e}"),
    }
}

/// Runs a script file; returns the rewritten text and whether it matched.
fn run_file(path: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(path).expect("readable script");
    let mut env = Env::default();
    let mut rewritten = String::new();
    let mut mismatches = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with('#') || line.trim().is_empty() {
            rewritten.push_str(line);
            rewritten.push('\n');
            continue;
        }
        assert_eq!(
            lines.next(),
            Some("----"),
            "{}: command `{line}` must be followed by ----",
            path.display()
        );
        let mut expected = Vec::new();
        while let Some(l) = lines.next_if(|l| !l.trim().is_empty()) {
            expected.push(l.to_string());
        }
        let actual = run(&mut env, line);
        if actual != expected {
            mismatches.push(format!(
                "{}: `{line}`\n--- expected\n{}\n--- actual\n{}",
                path.display(),
                expected.join("\n"),
                actual.join("\n")
            ));
        }
        rewritten.push_str(&format!("{line}\n----\n{}\n", actual.join("\n")));
    }
    (rewritten, mismatches)
}

#[test]
fn scripts() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("testdata dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "scripts found in {}", dir.display());
    let rewrite = std::env::var_os("REWRITE").is_some();
    let mut failures = Vec::new();
    for f in &files {
        let (rewritten, mismatches) = run_file(f);
        if rewrite {
            std::fs::write(f, rewritten).expect("rewrite script");
        } else {
            failures.extend(mismatches);
        }
    }
    assert!(
        failures.is_empty(),
        "{} script mismatches:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
