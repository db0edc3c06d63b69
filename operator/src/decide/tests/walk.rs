//! Whole sequences: decide, apply the action to a tiny model of Kubernetes and the nodes,
//! repeat until idle, and compare the full list of actions. The model is deliberately eager
//! (pods start, join and catch up at once) so the sequences show the operator's order only.

use super::*;

/// IDs the model gives to members added during a walk.
const FIRST_NEW_ID: u64 = 0x100;

/// Applies `action` to `o` as Kubernetes, the Raft cluster and the nodes would, eagerly.
fn apply(o: &mut Observed, action: &Action, next_id: &mut u64) {
    let c = o.cluster.clone();
    let template = o.desired.template_hash.clone();
    match action {
        Action::CreateOrUpdateChildren { statefulset_replicas } => {
            o.stateful_set = Some(StatefulSetState {
                replicas: *statefulset_replicas,
                template_hash: template,
            });
        }
        Action::MemberAddLearner { peer_url, .. } => {
            let raft = o.raft.as_mut().expect("raft view");
            raft.members.push(RaftMember {
                id: *next_id,
                name: String::new(),
                peer_url: peer_url.clone(),
                is_learner: true,
            });
            *next_id += 1;
        }
        Action::SetStatefulSetReplicas { replicas } => {
            o.stateful_set.as_mut().expect("statefulset").replicas = *replicas;
        }
        Action::PromoteLearner { id } => {
            let raft = o.raft.as_mut().expect("raft view");
            raft.members
                .iter_mut()
                .filter(|m| m.id == *id)
                .for_each(|m| m.is_learner = false);
        }
        Action::TransferLeadership { to, .. } => o.raft.as_mut().expect("raft view").leader_id = Some(*to),
        Action::MemberRemove { id } => o.raft.as_mut().expect("raft view").members.retain(|m| m.id != *id),
        Action::DeletePvc { ordinal } => {
            o.pvcs.remove(ordinal);
        }
        Action::DeletePod { ordinal } => {
            // Recreated at once from the StatefulSet's template, with its volume (same member).
            let sts_template = o.stateful_set.as_ref().expect("statefulset").template_hash.clone();
            o.pods.get_mut(ordinal).expect("pod").template_hash = sts_template;
        }
        Action::Wait { .. } | Action::Idle => {}
    }
    reconcile_pods(o, &c);
}

/// The StatefulSet controller and the nodes: pods `0..replicas` exist (with volumes), others
/// go; a pod with an empty volume joins as the unstarted member of its peer URL, if any.
fn reconcile_pods(o: &mut Observed, c: &ClusterName) {
    let Some(sts) = o.stateful_set.clone() else { return };
    o.pods.retain(|ordinal, _| *ordinal < sts.replicas);
    let leader_applied = APPLIED;
    for ordinal in 0..sts.replicas {
        o.pvcs.insert(ordinal);
        let pod = o.pods.entry(ordinal).or_insert_with(|| PodState {
            ready: false,
            terminating: false,
            template_hash: sts.template_hash.clone(),
            node: NodeProbe::AwaitingMembership,
        });
        if pod.node == NodeProbe::AwaitingMembership
            && let Some(raft) = o.raft.as_mut()
            && let Some(member) = raft
                .members
                .iter_mut()
                .find(|m| m.name.is_empty() && m.peer_url == c.peer_url(ordinal))
        {
            member.name = c.pod_name(ordinal);
            pod.node = NodeProbe::Serving {
                member_id: member.id,
                applied_index: leader_applied,
            };
            pod.ready = true;
        }
    }
}

/// Decides and applies until idle (or a wait the eager model cannot resolve), returning the
/// actions taken; panics if it does not settle within `max_steps`.
fn walk(mut o: Observed, max_steps: usize) -> (Vec<Action>, Observed) {
    let mut next_id = FIRST_NEW_ID;
    let mut actions = Vec::new();
    for _ in 0..max_steps {
        let action = decide(&o).action;
        if matches!(action, Action::Idle | Action::Wait { .. }) {
            actions.push(action);
            return (actions, o);
        }
        apply(&mut o, &action, &mut next_id);
        actions.push(action);
    }
    panic!("no fixpoint after {max_steps} steps: {actions:#?}");
}

#[test]
fn scale_up_three_to_five() {
    let (actions, end) = walk(Fixture::healthy(3).want(5).build(), 20);
    assert_eq!(
        actions,
        vec![
            add_learner(3),
            Action::SetStatefulSetReplicas { replicas: 4 },
            Action::PromoteLearner { id: FIRST_NEW_ID },
            add_learner(4),
            Action::SetStatefulSetReplicas { replicas: 5 },
            Action::PromoteLearner { id: FIRST_NEW_ID + 1 },
            Action::Idle,
        ]
    );
    assert_eq!(decide(&end).status.phase, Phase::Running);
}

#[test]
fn scale_down_five_to_three_deleting_volumes_with_the_leader_on_top() {
    let start = Fixture::healthy(5)
        .want(3)
        .leader(4)
        .retention(PvcRetention::Delete)
        .build();
    let (actions, end) = walk(start, 20);
    assert_eq!(
        actions,
        vec![
            Action::TransferLeadership { from: id(4), to: id(0) },
            Action::MemberRemove { id: id(4) },
            Action::SetStatefulSetReplicas { replicas: 4 },
            Action::DeletePvc { ordinal: 4 },
            Action::MemberRemove { id: id(3) },
            Action::SetStatefulSetReplicas { replicas: 3 },
            Action::DeletePvc { ordinal: 3 },
            Action::Idle,
        ]
    );
    assert_eq!(end.pvcs, (0..3).collect());
}

#[test]
fn scale_down_and_up_again_over_retained_volumes() {
    let (down, end) = walk(Fixture::healthy(5).want(3).build(), 20);
    assert_eq!(down.len(), 5, "{down:#?}");
    assert_eq!(end.pvcs, (0..5).collect(), "Retain keeps the claims");
    let mut grow = end;
    grow.desired.replicas = 4;
    let (up, _) = walk(grow, 20);
    assert_eq!(
        up,
        vec![
            Action::DeletePvc { ordinal: 3 },
            add_learner(3),
            Action::SetStatefulSetReplicas { replicas: 4 },
            Action::PromoteLearner { id: FIRST_NEW_ID },
            Action::Idle,
        ]
    );
}

#[test]
fn rolling_update_restarts_followers_then_the_leader() {
    let (actions, end) = walk(Fixture::healthy(3).leader(1).desired_template("t2").build(), 20);
    assert_eq!(
        actions,
        vec![
            Action::CreateOrUpdateChildren {
                statefulset_replicas: 3
            },
            Action::DeletePod { ordinal: 2 },
            Action::DeletePod { ordinal: 0 },
            Action::TransferLeadership { from: id(1), to: id(0) },
            Action::DeletePod { ordinal: 1 },
            Action::Idle,
        ]
    );
    assert!(end.pods.values().all(|p| p.template_hash == "t2"));
}

#[test]
fn two_lost_volumes_are_replaced_one_at_a_time() {
    let start = Fixture::healthy(5).volume_lost(1).volume_lost(3).build();
    let (actions, end) = walk(start, 20);
    assert_eq!(
        actions,
        vec![
            Action::MemberRemove { id: id(1) },
            Action::MemberRemove { id: id(3) },
            add_learner(1),
            Action::PromoteLearner { id: FIRST_NEW_ID },
            add_learner(3),
            Action::PromoteLearner { id: FIRST_NEW_ID + 1 },
            Action::Idle,
        ]
    );
    let members = &end.raft.as_ref().expect("raft view").members;
    assert!(
        members.iter().all(|m| m.id != id(1) && m.id != id(3)),
        "identities are never reused"
    );
}

#[test]
fn bootstrap_from_nothing() {
    let mut o = Fixture::new_cluster(3).build();
    let first = decide(&o).action;
    assert_eq!(
        first,
        Action::CreateOrUpdateChildren {
            statefulset_replicas: 3
        }
    );
    // The initial members found the cluster together; from there the operator has nothing to do.
    let formed = Fixture::healthy(3).bootstrapping().build();
    o.stateful_set = formed.stateful_set.clone();
    assert_eq!(
        decide(&o).action,
        Action::Wait {
            reason: WaitReason::ClusterForming
        }
    );
    assert_eq!(decide(&formed).action, Action::Idle);
}
