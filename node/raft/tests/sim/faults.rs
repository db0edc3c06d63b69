//! The workload and the faults, FoundationDB-BUGGIFY style: each seed draws its own rates, so
//! some runs are calm and others hostile, and every action comes from the one PRNG.

use kvorum_raft::{ConfChange, NodeId};

use crate::cluster::Sim;
use crate::node::Disk;
use crate::rng::Draw;

/// Per-step probabilities in parts per million.
#[derive(Clone, Debug)]
pub struct Knobs {
    pub propose: u64,
    pub read: u64,
    pub crash: u64,
    pub restart: u64,
    pub partition: u64,
    pub heal: u64,
    pub pause: u64,
    pub conf_change: u64,
    pub transfer: u64,
    pub compact: u64,
}

impl Knobs {
    pub fn draw(sim: &mut Sim) -> Knobs {
        let r = &mut sim.rng;
        let hostility = r.between(0, 4); // 0 = calm … 3 = hostile
        Knobs {
            propose: r.between(10_000, 80_000),
            read: r.between(1_000, 20_000),
            crash: 200 * hostility,
            restart: 3_000,
            partition: 150 * hostility,
            heal: 2_000,
            pause: 100 * hostility,
            conf_change: r.between(0, 1_000),
            transfer: r.between(0, 400),
            compact: r.between(100, 3_000),
        }
    }
}

impl Sim {
    /// Maybe does one thing to the cluster before the next event.
    pub fn inject(&mut self, k: &Knobs) {
        if self.rng.chance_ppm(k.propose) {
            self.client_write();
        }
        if self.rng.chance_ppm(k.read) {
            self.client_read();
        }
        if self.rng.chance_ppm(k.crash) {
            self.crash_someone();
        }
        if self.rng.chance_ppm(k.restart) {
            self.restart_someone();
        }
        if self.rng.chance_ppm(k.partition) {
            self.partition_somehow();
        }
        if self.rng.chance_ppm(k.heal) && self.net.blocked_links() > 0 {
            self.net.heal();
            self.log("heal".to_string());
        }
        if self.rng.chance_ppm(k.pause) {
            self.pause_someone();
        }
        if self.rng.chance_ppm(k.conf_change) {
            self.change_membership();
        }
        if self.rng.chance_ppm(k.transfer) {
            self.transfer_leadership();
        }
        if self.rng.chance_ppm(k.compact) {
            self.compact_someone();
        }
    }

    /// Writes go to a node that believes it leads; sometimes to anyone (and are refused).
    fn client_write(&mut self) {
        let leaders = self.leaders();
        let target = match self.rng.pick(&leaders) {
            Some(&id) => id,
            None => match self.rng.pick(&self.up_nodes()) {
                Some(&id) => id,
                None => return,
            },
        };
        self.propose(target);
    }

    fn client_read(&mut self) {
        let Some(&id) = self.rng.pick(&self.up_nodes()) else {
            return;
        };
        let read = self.next_read;
        self.next_read += 1;
        let must_see = self.max_acked();
        self.checker.reads.issue(read, must_see);
        self.nodes.get_mut(&id).expect("up").raft_mut().read_index(read);
        self.drain(id);
    }

    fn crash_someone(&mut self) {
        let Some(&id) = self.rng.pick(&self.up_nodes()) else {
            return;
        };
        let node = self.nodes.get_mut(&id).expect("up");
        if self.rng.between(0, 2) == 0 {
            node.crash();
            self.stats.crashes += 1;
            self.log(format!("crash {id}"));
        } else {
            node.crash_in_next_ready = true;
        }
    }

    fn restart_someone(&mut self) {
        let down: Vec<NodeId> = self.nodes.values().filter(|n| !n.is_up()).map(|n| n.id).collect();
        let Some(&id) = self.rng.pick(&down) else { return };
        self.checker.on_restart(id);
        let now = self.now_us;
        self.nodes.get_mut(&id).expect("exists").start(now);
        self.log(format!("restart {id}"));
    }

    fn partition_somehow(&mut self) {
        let all: Vec<NodeId> = self.nodes.keys().copied().collect();
        self.stats.partitions += 1;
        if self.rng.between(0, 3) == 0 {
            let (Some(&a), Some(&b)) = (self.rng.pick(&all), self.rng.pick(&all)) else {
                return;
            };
            if a != b {
                self.net.block_one_way(a, b);
                self.log(format!("block {a}->{b}"));
            }
            return;
        }
        let side: Vec<NodeId> = all.iter().copied().filter(|_| self.rng.between(0, 2) == 0).collect();
        self.net.partition(&side, &all);
        self.log(format!("partition {side:?} | rest"));
    }

    fn pause_someone(&mut self) {
        let Some(&id) = self.rng.pick(&self.up_nodes()) else {
            return;
        };
        let until = self.now_us + self.rng.between(50_000, 1_000_000);
        self.nodes.get_mut(&id).expect("up").paused_until_us = until;
        self.log(format!("pause {id} until {until}"));
    }

    fn change_membership(&mut self) {
        let Some(&leader) = self.rng.pick(&self.leaders()) else {
            return;
        };
        let conf = self.nodes[&leader].raft().conf().clone();
        let members: Vec<NodeId> = conf.members().collect();
        let learners: Vec<NodeId> = conf.learners.iter().copied().collect();
        let change = match self.rng.between(0, 3) {
            0 if self.next_node_id <= self.max_nodes => ConfChange::AddLearner(self.next_node_id),
            1 if !learners.is_empty() => ConfChange::PromoteLearner(*self.rng.pick(&learners).expect("non-empty")),
            _ if conf.voters.len() > 3 || !learners.is_empty() => {
                ConfChange::RemoveNode(*self.rng.pick(&members).expect("non-empty"))
            }
            _ => return,
        };
        let result = self
            .nodes
            .get_mut(&leader)
            .expect("up")
            .raft_mut()
            .propose_conf_change(change);
        self.log(format!(
            "conf change {change:?} on {leader}: {:?}",
            result.as_ref().map(|p| p.index)
        ));
        if result.is_ok() {
            self.stats.conf_changes += 1;
            if let ConfChange::AddLearner(id) = change {
                // A new member starts empty: no configuration, so it waits for the leader.
                self.next_node_id += 1;
                self.add_node(id, Disk::default());
            }
        }
        self.drain(leader);
    }

    fn transfer_leadership(&mut self) {
        let Some(&leader) = self.rng.pick(&self.leaders()) else {
            return;
        };
        let voters: Vec<NodeId> = self.nodes[&leader].raft().conf().voters.iter().copied().collect();
        let Some(&target) = self.rng.pick(&voters) else { return };
        if self
            .nodes
            .get_mut(&leader)
            .expect("up")
            .raft_mut()
            .transfer_leader(target)
            .is_ok()
        {
            self.stats.transfers += 1;
            self.log(format!("transfer {leader} -> {target}"));
        }
        self.drain(leader);
    }

    fn compact_someone(&mut self) {
        let Some(&id) = self.rng.pick(&self.up_nodes()) else {
            return;
        };
        let node = self.nodes.get_mut(&id).expect("up");
        let applied = node.disk.sm.applied;
        if applied < node.raft().log().snapshot().index + 10 {
            return;
        }
        let compaction = node
            .raft_mut()
            .compact(applied)
            .expect("applied index above the snapshot");
        node.disk.compact(compaction.snapshot, compaction.log_compacted_to);
        self.log(format!("compact {id} at {applied}"));
    }

    /// Ends the faults: heal, restart everyone, unpause, stop losing messages.
    pub fn end_faults(&mut self) {
        self.net.heal();
        self.net.reliable = true;
        let now = self.now_us;
        let down: Vec<NodeId> = self.nodes.values().filter(|n| !n.is_up()).map(|n| n.id).collect();
        for id in down {
            self.checker.on_restart(id);
            self.nodes.get_mut(&id).expect("exists").start(now);
        }
        for node in self.nodes.values_mut() {
            node.paused_until_us = 0;
            node.crash_in_next_ready = false;
        }
        self.log("faults end".to_string());
    }

    /// Liveness (§5.2, §9): after the faults stop, a leader is elected, a new write commits and
    /// every member applies it, all within `budget_ms` of simulated time; every acknowledged
    /// write is still in the log it was acknowledged at.
    pub fn check_liveness(&mut self, budget_ms: u64) {
        let deadline = self.now_us + budget_ms * 1000;
        let mut probe: Option<(NodeId, u64, u64)> = None; // (leader, index, term)
        loop {
            assert!(
                self.now_us <= deadline,
                "Liveness: no leader committed and replicated a new write within {budget_ms} ms after the faults ended \
                 (probe: {probe:?}; nodes: {:?})",
                self.nodes
                    .values()
                    .filter(|n| n.is_up())
                    .map(|n| (n.raft(), n.raft().conf().clone(), n.disk.sm.applied))
                    .collect::<Vec<_>>()
            );
            self.step();
            let leaders = self.leaders();
            let Some(&leader) = leaders.first() else { continue };
            let raft = self.nodes[&leader].raft();
            let term = raft.term();
            if probe.is_none_or(|(l, _, t)| l != leader || t != term) {
                if raft.log().term(raft.log().committed()) != Some(term) {
                    continue;
                }
                probe = self.propose(leader).map(|p| (leader, p.index, p.term));
                continue;
            }
            let (_, index, _) = probe.expect("set");
            let conf = self.nodes[&leader].raft().conf().clone();
            if conf.members().all(|m| {
                self.nodes
                    .get(&m)
                    .is_some_and(|n| n.is_up() && n.disk.sm.applied >= index)
            }) {
                break;
            }
        }
        self.check_acked_writes_survive();
    }

    fn check_acked_writes_survive(&self) {
        for (&index, &payload) in &self.acked {
            let term = self.checker.committed_term(index);
            assert!(
                term.is_some(),
                "Durability: acknowledged write {payload} at index {index} is not committed"
            );
            let digest = self.checker.applied_digest(index);
            assert!(
                digest.is_some(),
                "Durability: acknowledged write {payload} at index {index} was never applied"
            );
            for node in self.nodes.values().filter(|n| n.is_up()) {
                let log = node.raft().log();
                if let Some(e) = log.entry(index).filter(|_| index <= log.committed()) {
                    let kvorum_raft::EntryPayload::Command(data) = &e.payload else {
                        panic!(
                            "Durability: node {} has a non-command at acknowledged index {index}",
                            node.id
                        )
                    };
                    assert_eq!(
                        crate::cluster::decode(data),
                        payload,
                        "Durability: node {} lost write {payload}",
                        node.id
                    );
                }
            }
        }
    }
}
