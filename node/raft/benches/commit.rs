//! Throughput of the core alone: a 3-node cluster in memory with an instant network commits
//! batches of proposals. Persistence is free here, so this measures the core's own cost per
//! entry — the budget it leaves to storage and the network (target: ≥ 200,000 entries/s on
//! one core).
//!
//! Run: `cargo bench -p kvorum-raft --bench commit`

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kvorum_raft::{Config, Message, PersistedState, Raft, Role};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

const PAYLOAD_BYTES: usize = 128;

fn cluster() -> Vec<Raft> {
    let mut nodes: Vec<Raft> = (1..=3)
        .map(|id| {
            let rng = Xoshiro256PlusPlus::seed_from_u64(id);
            let mut cfg = Config::new(id);
            cfg.max_uncommitted_bytes = u64::MAX;
            Raft::new(cfg, PersistedState::bootstrap([1, 2, 3]), Box::new(rng)).expect("valid config")
        })
        .collect();
    nodes[0].campaign_now();
    pump(&mut nodes);
    assert_eq!(nodes[0].role(), Role::Leader);
    nodes
}

/// Runs every node's Ready loop and delivers messages until the cluster is quiet.
fn pump(nodes: &mut [Raft]) {
    let mut inbox: Vec<Message> = Vec::new();
    loop {
        for node in nodes.iter_mut() {
            while node.has_ready() {
                let ready = node.ready();
                inbox.extend(ready.messages.iter().cloned());
                black_box(&ready.committed_entries);
                node.advance(ready.ack());
            }
        }
        if inbox.is_empty() {
            return;
        }
        for m in inbox.drain(..) {
            let to = (m.to - 1) as usize;
            nodes[to].step(m);
        }
    }
}

fn commit_batches(c: &mut Criterion) {
    let payload = Bytes::from(vec![7u8; PAYLOAD_BYTES]);
    let mut group = c.benchmark_group("raft_core");
    // Large batches measure per-entry cost; batches of 10 add a full round trip per 10 entries.
    for batch in [1_000u64, 10] {
        group.throughput(Throughput::Elements(batch));
        group.bench_function(format!("commit_{batch}_entries_3_nodes"), |b| {
            b.iter_batched_ref(
                cluster,
                |nodes| {
                    let start = nodes[0].log().committed();
                    for _ in 0..batch {
                        nodes[0].propose(payload.clone()).expect("leader accepts");
                    }
                    pump(nodes);
                    assert_eq!(nodes[0].log().committed(), start + batch);
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, commit_batches);
criterion_main!(benches);
