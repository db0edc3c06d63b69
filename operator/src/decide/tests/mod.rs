//! Table tests of [`decide`](super::decide): one named case per scenario, observed state in,
//! expected action (and phase / condition reasons) out.
//!
//! Cases are built from [`Fixture`], which starts from a healthy, formed cluster and applies
//! one change per method, so each case reads as the situation it tests. `walk.rs` additionally
//! drives whole sequences through a tiny model of Kubernetes and the nodes.

mod health;
mod repair;
mod rolling;
mod scale;
mod status;
mod walk;

use std::collections::{BTreeMap, BTreeSet};

use crate::crd::{Phase, PvcRetention};
use crate::naming::ClusterName;

use super::{
    Action, ConditionType, Decision, Desired, NodeProbe, Observed, PodState, RaftMember, RaftView, Reason,
    StatefulSetState, WaitReason, decide,
};

/// Cluster ID of every fixture cluster.
const CLUSTER_ID: u64 = 0xc1c1;
/// Applied index of every healthy fixture member.
const APPLIED: u64 = 5_000;

/// Member ID of the original member at `ordinal`.
fn id(ordinal: u32) -> u64 {
    0xa0 + u64::from(ordinal)
}

/// Member ID of the member added later for `ordinal` (a scale-up or a replacement).
fn new_id(ordinal: u32) -> u64 {
    0xb0 + u64::from(ordinal)
}

fn cluster() -> ClusterName {
    ClusterName::new("kvc", "prod")
}

fn pod(ordinal: u32) -> String {
    cluster().pod_name(ordinal)
}

/// Builder of an [`Observed`], starting from a healthy cluster.
#[derive(Clone, Debug)]
struct Fixture(Observed);

/// How a learner added by [`Fixture::learner`] looks.
#[derive(Clone, Copy, Debug)]
enum Learner {
    /// Added, not started (empty name); the pod, if any, is untouched.
    Unstarted,
    /// Started by its pod, which serves it with this applied index.
    Started(u64),
}

impl Fixture {
    /// A formed, healthy cluster of `n` voters at ordinals `0..n`, leader at 0, template "t1",
    /// `spec.replicas = n`, `pvcRetention: Retain`.
    fn healthy(n: u32) -> Self {
        let c = cluster();
        let pods = (0..n).map(|i| (i, serving(id(i), APPLIED))).collect();
        let members = (0..n)
            .map(|i| RaftMember {
                id: id(i),
                name: pod(i),
                peer_url: c.peer_url(i),
                is_learner: false,
            })
            .collect();
        Fixture(Observed {
            cluster: c,
            generation: Some(1),
            desired: Desired {
                replicas: n,
                template_hash: "t1".into(),
                pvc_retention: PvcRetention::Retain,
            },
            recorded_cluster_id: Some(CLUSTER_ID),
            stateful_set: Some(StatefulSetState {
                replicas: n,
                template_hash: "t1".into(),
            }),
            pods,
            pvcs: (0..n).collect(),
            raft: Some(RaftView {
                cluster_id: CLUSTER_ID,
                leader_id: Some(id(0)),
                members,
            }),
        })
    }

    /// Nothing exists yet: a `KvorumCluster` of `n` replicas was just created.
    fn new_cluster(n: u32) -> Self {
        let mut f = Self::healthy(n);
        f.0.recorded_cluster_id = None;
        f.0.stateful_set = None;
        f.0.pods = BTreeMap::new();
        f.0.pvcs = BTreeSet::new();
        f.0.raft = None;
        f
    }

    fn build(self) -> Observed {
        self.0
    }

    fn raft(&mut self) -> &mut RaftView {
        self.0.raft.as_mut().expect("fixture has a Raft view")
    }

    fn pod_mut(&mut self, ordinal: u32) -> &mut PodState {
        self.0
            .pods
            .get_mut(&ordinal)
            .unwrap_or_else(|| panic!("fixture has no pod {ordinal}"))
    }

    fn sts(&mut self) -> &mut StatefulSetState {
        self.0.stateful_set.as_mut().expect("fixture has a StatefulSet")
    }

    /// `spec.replicas`.
    fn want(mut self, replicas: u32) -> Self {
        self.0.desired.replicas = replicas;
        self
    }

    fn retention(mut self, retention: PvcRetention) -> Self {
        self.0.desired.pvc_retention = retention;
        self
    }

    /// The cluster has not formed before (nothing recorded in the status).
    fn bootstrapping(mut self) -> Self {
        self.0.recorded_cluster_id = None;
        self
    }

    /// No member answers.
    fn unreachable(mut self) -> Self {
        self.0.raft = None;
        self
    }

    fn no_statefulset(mut self) -> Self {
        self.0.stateful_set = None;
        self
    }

    fn statefulset_replicas(mut self, replicas: u32) -> Self {
        self.sts().replicas = replicas;
        self
    }

    fn cluster_id(mut self, cluster_id: u64) -> Self {
        self.raft().cluster_id = cluster_id;
        self
    }

    /// The member at `ordinal` leads.
    fn leader(mut self, ordinal: u32) -> Self {
        let c = cluster();
        let leader = self
            .raft()
            .members
            .iter()
            .find(|m| c.ordinal_of_peer_url(&m.peer_url) == Some(ordinal));
        let leader = leader.map(|m| m.id).expect("a member at the leader's ordinal");
        self.raft().leader_id = Some(leader);
        self
    }

    fn no_leader(mut self) -> Self {
        self.raft().leader_id = None;
        self
    }

    /// The pod at `ordinal` does not answer (crashed, rescheduling; its data may be intact).
    fn down(mut self, ordinal: u32) -> Self {
        let p = self.pod_mut(ordinal);
        p.node = NodeProbe::Unreachable;
        p.ready = false;
        self
    }

    fn not_ready(mut self, ordinal: u32) -> Self {
        self.pod_mut(ordinal).ready = false;
        self
    }

    /// The pod at `ordinal` came back with an empty volume and waits to be added as a new member.
    fn volume_lost(mut self, ordinal: u32) -> Self {
        self.0.pods.insert(
            ordinal,
            PodState {
                node: NodeProbe::AwaitingMembership,
                ready: false,
                ..serving(0, 0)
            },
        );
        self
    }

    /// The pod at `ordinal` answers as member `member_id` (data of another identity).
    fn serving_as(mut self, ordinal: u32, member_id: u64) -> Self {
        self.0.pods.insert(ordinal, serving(member_id, APPLIED));
        self
    }

    fn no_pod(mut self, ordinal: u32) -> Self {
        self.0.pods.remove(&ordinal);
        self
    }

    fn terminating(mut self, ordinal: u32) -> Self {
        let p = self.pod_mut(ordinal);
        p.terminating = true;
        p.ready = false;
        self
    }

    /// The applied index the pod at `ordinal` reports.
    fn applied(mut self, ordinal: u32, applied_index: u64) -> Self {
        let p = self.pod_mut(ordinal);
        let NodeProbe::Serving { member_id, .. } = p.node else {
            panic!("pod {ordinal} is not serving")
        };
        p.node = NodeProbe::Serving {
            member_id,
            applied_index,
        };
        self
    }

    /// Removes every member at `ordinal` from the member list (the pod is untouched).
    fn without_member(mut self, ordinal: u32) -> Self {
        let c = cluster();
        self.raft()
            .members
            .retain(|m| c.ordinal_of_peer_url(&m.peer_url) != Some(ordinal));
        self
    }

    /// Adds a learner with ID [`new_id`]`(ordinal)` for `ordinal`.
    fn learner(mut self, ordinal: u32, state: Learner) -> Self {
        let peer_url = cluster().peer_url(ordinal);
        let name = match state {
            Learner::Unstarted => String::new(),
            Learner::Started(applied_index) => {
                self.0.pods.insert(ordinal, serving(new_id(ordinal), applied_index));
                self.0.pvcs.insert(ordinal);
                pod(ordinal)
            }
        };
        self.raft().members.push(RaftMember {
            id: new_id(ordinal),
            name,
            peer_url,
            is_learner: true,
        });
        self
    }

    /// Turns the learner at `ordinal` into a voter.
    fn promoted(mut self, ordinal: u32) -> Self {
        self.raft()
            .members
            .iter_mut()
            .filter(|m| m.id == new_id(ordinal))
            .for_each(|m| m.is_learner = false);
        self
    }

    fn unknown_member(mut self, member_id: u64) -> Self {
        let member = RaftMember {
            id: member_id,
            name: "manual".into(),
            peer_url: "https://10.0.0.9:2380".into(),
            is_learner: false,
        };
        self.raft().members.push(member);
        self
    }

    fn pvc(mut self, ordinal: u32) -> Self {
        self.0.pvcs.insert(ordinal);
        self
    }

    fn no_pvc(mut self, ordinal: u32) -> Self {
        self.0.pvcs.remove(&ordinal);
        self
    }

    /// The spec's pod template changed to `hash`.
    fn desired_template(mut self, hash: &str) -> Self {
        self.0.desired.template_hash = hash.into();
        self
    }

    /// The StatefulSet carries template `hash`.
    fn statefulset_template(mut self, hash: &str) -> Self {
        self.sts().template_hash = hash.into();
        self
    }

    /// The pods at `ordinals` were created from template `hash`.
    fn pod_template(mut self, ordinals: &[u32], hash: &str) -> Self {
        for &ordinal in ordinals {
            self.pod_mut(ordinal).template_hash = hash.into();
        }
        self
    }
}

/// A ready pod of template "t1" answering as `member_id`.
fn serving(member_id: u64, applied_index: u64) -> PodState {
    PodState {
        ready: true,
        terminating: false,
        template_hash: "t1".into(),
        node: NodeProbe::Serving {
            member_id,
            applied_index,
        },
    }
}

fn wait(reason: WaitReason) -> Action {
    Action::Wait { reason }
}

fn add_learner(ordinal: u32) -> Action {
    Action::MemberAddLearner {
        peer_url: cluster().peer_url(ordinal),
        for_ordinal: ordinal,
    }
}

/// One row of a decision table.
struct Case {
    name: &'static str,
    observed: Observed,
    action: Option<Action>,
    phase: Option<Phase>,
    reasons: Vec<(ConditionType, Reason)>,
    message_contains: Vec<(ConditionType, &'static str)>,
}

/// Starts a row: `name`, and the situation.
fn case(name: &'static str, fixture: Fixture) -> Case {
    Case {
        name,
        observed: fixture.build(),
        action: None,
        phase: None,
        reasons: Vec::new(),
        message_contains: Vec::new(),
    }
}

impl Case {
    fn action(mut self, action: Action) -> Self {
        self.action = Some(action);
        self
    }

    fn phase(mut self, phase: Phase) -> Self {
        self.phase = Some(phase);
        self
    }

    fn reason(mut self, type_: ConditionType, reason: Reason) -> Self {
        self.reasons.push((type_, reason));
        self
    }

    fn message(mut self, type_: ConditionType, needle: &'static str) -> Self {
        self.message_contains.push((type_, needle));
        self
    }

    /// Differences between the expectation and `d`, one line each.
    fn check(&self, d: &Decision) -> Vec<String> {
        let mut failures = Vec::new();
        if let Some(action) = &self.action
            && &d.action != action
        {
            failures.push(format!("action: expected {action:?}, got {:?}", d.action));
        }
        if let Some(phase) = self.phase
            && d.status.phase != phase
        {
            failures.push(format!("phase: expected {phase:?}, got {:?}", d.status.phase));
        }
        for &(type_, reason) in &self.reasons {
            let got = d.status.condition(type_).map(|c| c.reason);
            if got != Some(reason) {
                failures.push(format!("{type_:?} reason: expected {reason:?}, got {got:?}"));
            }
        }
        for &(type_, needle) in &self.message_contains {
            let got = d
                .status
                .condition(type_)
                .map(|c| c.message.as_str())
                .unwrap_or_default();
            if !got.contains(needle) {
                failures.push(format!(
                    "{type_:?} message: expected it to contain {needle:?}, got {got:?}"
                ));
            }
        }
        failures
    }
}

/// Runs every case and reports all failures at once.
fn run(cases: Vec<Case>) {
    let mut report = Vec::new();
    for case in &cases {
        let decision = decide(&case.observed);
        let failures = case.check(&decision);
        if !failures.is_empty() {
            report.push(format!(
                "case {:?}:\n  {}\n  status: {:#?}",
                case.name,
                failures.join("\n  "),
                decision.status
            ));
        }
    }
    assert!(
        report.is_empty(),
        "{} of {} cases failed:\n{}",
        report.len(),
        cases.len(),
        report.join("\n")
    );
}
