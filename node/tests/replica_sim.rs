//! Deterministic simulation of a 3-member cluster with real storage: every member is a
//! [`Replica`] (the server's own Ready handling) over redb on a [`FaultyDisk`]. Messages are
//! delayed and dropped; members lose power at random moments (unsynced writes lost or torn) and
//! restart from what their disk kept; the log is compacted often, so lagging members catch up
//! by snapshot. Checked throughout: no two members apply different entries at one index. At the
//! end, after healing: every acknowledged write is on every member and all members have the
//! same keyspace digest.
//!
//! One seed replays a run exactly: `KVORUM_SIM_SEED=<n>`; `KVORUM_SIM_SEEDS=<count>` runs more.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use kvorum::mvcc::{MvccConfig, Response, Store};
use kvorum::proto::etcdserverpb::{PutRequest, RangeRequest};
use kvorum::proto::kvorum::internal::{Command, command::Op};
use kvorum::server::replica::Replica;
use kvorum::storage::{CrashMode, Db, DbConfig, FaultyDisk, RedbLogStore};
use kvorum_raft::{Config, Index, Message, MessageBody, NodeId, Role, SnapshotStatus, Term};
use prost::Message as _;
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const VOTERS: [NodeId; 3] = [1, 2, 3];

struct Member {
    disk: FaultyDisk,
    replica: Option<Replica<RedbLogStore>>,
    down_until: u64,
    restarts: u64,
}

struct InFlight {
    at: u64,
    msg: Message,
    snapshot: Option<Vec<u8>>,
}

struct Sim {
    rng: Xoshiro256PlusPlus,
    seed: u64,
    step: u64,
    members: BTreeMap<NodeId, Member>,
    net: Vec<InFlight>,
    /// Proposals in flight: (index, term) → (key, value).
    proposals: HashMap<(Index, Term), (String, String)>,
    acked: BTreeMap<String, String>,
    /// The term applied at each index by the first member to apply it.
    applied_terms: HashMap<Index, Term>,
    next_write: u64,
    crashes: u64,
    snapshots_sent: u64,
}

fn config(id: NodeId) -> Config {
    let mut cfg = Config::new(id);
    cfg.compaction_retain_entries = 5;
    cfg
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut sim = Sim {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            seed,
            step: 0,
            members: BTreeMap::new(),
            net: Vec::new(),
            proposals: HashMap::new(),
            acked: BTreeMap::new(),
            applied_terms: HashMap::new(),
            next_write: 0,
            crashes: 0,
            snapshots_sent: 0,
        };
        for id in VOTERS {
            let disk = FaultyDisk::new();
            sim.members.insert(
                id,
                Member {
                    disk,
                    replica: None,
                    down_until: 0,
                    restarts: 0,
                },
            );
            sim.start(id);
        }
        sim
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.rng.next_u64() % 1000 < per_mille
    }

    fn start(&mut self, id: NodeId) {
        let m = self.members.get_mut(&id).unwrap();
        let db = Db::with_backend(m.disk.backend(), &DbConfig::default()).unwrap();
        let log = RedbLogStore::open(db.clone()).unwrap();
        let store = Arc::new(Store::open(db, MvccConfig::default()).unwrap());
        let rng = Xoshiro256PlusPlus::seed_from_u64(self.seed ^ (id << 32) ^ m.restarts);
        m.restarts += 1;
        m.replica = Some(Replica::open(config(id), log, store, &VOTERS, Box::new(rng)).unwrap());
    }

    fn crash(&mut self, id: NodeId) {
        let scramble = self.rng.next_u64();
        let down = 20 + self.rng.next_u64() % 200;
        let m = self.members.get_mut(&id).unwrap();
        m.disk.crash(CrashMode::Scramble { seed: scramble });
        m.replica = None;
        m.down_until = self.step + down;
        self.crashes += 1;
    }

    fn leader(&self) -> Option<NodeId> {
        self.members
            .iter()
            .filter_map(|(id, m)| m.replica.as_ref().map(|r| (*id, r)))
            .filter(|(_, r)| r.raft_ref().role() == Role::Leader)
            .max_by_key(|(_, r)| r.raft_ref().term())
            .map(|(id, _)| id)
    }

    /// Carries out every pending Ready of `id`.
    fn drain(&mut self, id: NodeId) {
        loop {
            let m = self.members.get_mut(&id).unwrap();
            let Some(replica) = m.replica.as_mut() else { return };
            let Some((messages, applied)) = replica.process().unwrap() else {
                return;
            };
            let is_leader = replica.raft_ref().role() == Role::Leader;
            let results: HashMap<Index, bool> = applied
                .output
                .results
                .iter()
                .map(|(i, r)| (*i, matches!(r, Ok(Response::Put(_)))))
                .collect();
            for (index, term) in &applied.entries {
                let first = *self.applied_terms.entry(*index).or_insert(*term);
                assert_eq!(
                    first, *term,
                    "seed {}: member {id} applied term {term} at index {index}, another applied term {first}",
                    self.seed
                );
                if let Some((k, v)) = self.proposals.remove(&(*index, *term))
                    && is_leader
                    && results.get(index) == Some(&true)
                {
                    self.acked.insert(k, v);
                }
            }
            let mut outbound = Vec::new();
            for msg in messages {
                let snapshot = matches!(msg.body, MessageBody::InstallSnapshot { .. }).then(|| {
                    let mut data = Vec::new();
                    for chunk in replica.store().snapshot(16 * 1024).unwrap() {
                        data.extend_from_slice(&chunk.unwrap());
                    }
                    data
                });
                outbound.push((msg, snapshot));
            }
            replica.maybe_compact(40).unwrap();
            for (msg, snapshot) in outbound {
                self.send(msg, snapshot);
            }
        }
    }

    fn send(&mut self, msg: Message, snapshot: Option<Vec<u8>>) {
        if snapshot.is_some() {
            self.snapshots_sent += 1;
        }
        if self.chance(40) {
            if snapshot.is_some() {
                self.report(msg.from, msg.to, SnapshotStatus::Failed);
            }
            return;
        }
        let at = self.step + self.rng.next_u64() % 4;
        self.net.push(InFlight { at, msg, snapshot });
    }

    fn report(&mut self, from: NodeId, to: NodeId, status: SnapshotStatus) {
        if let Some(r) = self.members.get_mut(&from).and_then(|m| m.replica.as_mut()) {
            r.raft().report_snapshot(to, status);
        }
    }

    fn deliver(&mut self) {
        let now = self.step;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.net).into_iter().partition(|f| f.at <= now);
        self.net = later;
        for f in due {
            let (from, to) = (f.msg.from, f.msg.to);
            let has_snapshot = f.snapshot.is_some();
            let Some(r) = self.members.get_mut(&to).and_then(|m| m.replica.as_mut()) else {
                if has_snapshot {
                    self.report(from, to, SnapshotStatus::Failed);
                }
                continue;
            };
            if let Some(data) = f.snapshot {
                r.stage_snapshot(data);
            }
            r.raft().step(f.msg);
            if has_snapshot {
                self.report(from, to, SnapshotStatus::Delivered);
            }
            self.drain(to);
        }
    }

    fn run_step(&mut self, faults: bool, writes: bool) {
        self.step += 1;
        let ids: Vec<NodeId> = self.members.keys().copied().collect();
        for id in &ids {
            let m = self.members.get_mut(id).unwrap();
            if m.replica.is_none() && self.step >= m.down_until {
                self.start(*id);
            }
            if let Some(r) = self.members.get_mut(id).unwrap().replica.as_mut() {
                r.raft().tick();
            }
            self.drain(*id);
        }
        self.deliver();
        if writes
            && let Some(leader) = self.leader()
            && self.chance(300)
        {
            let n = self.next_write;
            let (k, v) = (format!("key/{n:05}"), format!("value-{n}"));
            let cmd = Command {
                op: Some(Op::Put(PutRequest {
                    key: Bytes::from(k.clone()),
                    value: Bytes::from(v.clone()),
                    ..Default::default()
                })),
            };
            let r = self.members.get_mut(&leader).unwrap().replica.as_mut().unwrap();
            if let Ok(p) = r.raft().propose(cmd.encode_to_vec().into()) {
                self.next_write += 1;
                self.proposals.insert((p.index, p.term), (k, v));
            }
            self.drain(leader);
        }
        if faults && self.chance(4) {
            let up: Vec<NodeId> = self
                .members
                .iter()
                .filter(|(_, m)| m.replica.is_some())
                .map(|(id, _)| *id)
                .collect();
            if up.len() == VOTERS.len() {
                let victim = up[(self.rng.next_u64() % up.len() as u64) as usize];
                self.crash(victim);
            }
        }
    }

    fn converged(&self) -> bool {
        let applied: Vec<u64> = self
            .members
            .values()
            .filter_map(|m| m.replica.as_ref().map(|r| r.store().applied_index()))
            .collect();
        applied.len() == VOTERS.len() && applied.windows(2).all(|w| w[0] == w[1]) && self.net.is_empty()
    }
}

fn run(seed: u64) {
    let mut sim = Sim::new(seed);
    for _ in 0..2500 {
        sim.run_step(true, true);
    }
    // Healed: the cluster must still commit, then converge once writes stop.
    let acked = sim.acked.len();
    for _ in 0..300 {
        sim.run_step(false, true);
    }
    assert!(
        sim.acked.len() > acked,
        "seed {seed}: the healed cluster commits no more writes"
    );
    let mut settle = 0;
    while !sim.converged() || sim.leader().is_none() {
        sim.run_step(false, false);
        settle += 1;
        assert!(settle < 5000, "seed {seed}: did not converge after healing");
    }
    let digests: Vec<_> = sim
        .members
        .values()
        .map(|m| m.replica.as_ref().unwrap().store().hash_kv(0).unwrap())
        .collect();
    assert!(
        digests.windows(2).all(|w| w[0] == w[1]),
        "seed {seed}: members disagree: {digests:?}"
    );
    assert!(!sim.acked.is_empty(), "seed {seed}: nothing was acknowledged");
    for m in sim.members.values() {
        let store = m.replica.as_ref().unwrap().store();
        for (k, v) in &sim.acked {
            let got = store
                .range(&RangeRequest {
                    key: Bytes::from(k.clone()),
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(
                got.kvs.first().map(|kv| kv.value.clone()),
                Some(Bytes::from(v.clone())),
                "seed {seed}: acknowledged write {k} lost"
            );
        }
    }
    assert!(sim.crashes > 0, "seed {seed}: no crash was injected");
    eprintln!(
        "seed {seed}: {} steps, {} acked writes, {} power losses, {} snapshots sent",
        sim.step,
        sim.acked.len(),
        sim.crashes,
        sim.snapshots_sent
    );
}

#[test]
fn replicas_on_faulty_disks_agree_and_keep_acknowledged_writes() {
    if let Some(seed) = std::env::var("KVORUM_SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        run(seed);
        return;
    }
    let seeds: u64 = std::env::var("KVORUM_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    for seed in 0..seeds {
        run(seed);
    }
}
