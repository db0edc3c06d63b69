//! Leader election (§5.2), pre-vote (thesis §9.6) and the leader lease of §4.2.3.

use super::{Raft, Role};
use crate::message::MessageBody;
use crate::types::{Index, NodeId, Term};

/// The kinds of campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Campaign {
    /// Ask first, without changing anyone's term (§9.6).
    PreVote,
    /// A real election in a new term.
    Election,
    /// A real election ordered by the leader (TimeoutNow); voters ignore their lease.
    Transfer,
}

impl Raft {
    /// §4.2.3: within the minimum election timeout of hearing from a current leader, a node
    /// neither grants votes nor moves to a higher term for a vote request.
    ///
    /// Only with CheckQuorum (as etcd does): without it, a leader that can send but not receive
    /// (a one-way partition) would keep its followers in lease forever while never committing,
    /// and no one else could be elected.
    pub(super) fn in_leader_lease(&self) -> bool {
        self.cfg.check_quorum && self.leader.is_some() && self.election_elapsed < self.cfg.election_timeout_min_ticks
    }

    /// The election timer fired: campaign, with a pre-vote round first unless disabled.
    pub(super) fn start_election(&mut self) {
        self.campaign(if self.cfg.pre_vote {
            Campaign::PreVote
        } else {
            Campaign::Election
        });
    }

    /// Starts a campaign of the given kind. A transfer campaign skips pre-vote: it must
    /// disrupt the current leader on purpose.
    pub(super) fn campaign(&mut self, kind: Campaign) {
        if !self.promotable() {
            return;
        }
        let pre_vote = kind == Campaign::PreVote;
        let transfer = kind == Campaign::Transfer;
        if pre_vote {
            self.role = Role::PreCandidate;
            // Forget the leader so peers' pre-votes can be granted (etcd#9586 / PR #8334):
            // otherwise an isolated leader's followers would reject each other forever.
            self.leader = None;
            self.reset_election_timer();
        } else {
            self.term += 1;
            self.vote = Some(self.cfg.id);
            self.role = Role::Candidate;
            self.leader = None;
            self.reset_election_timer();
        }
        self.votes.clear();
        let id = self.cfg.id;
        if self.record_vote(id, true) {
            return;
        }
        let request_term = if pre_vote { self.term + 1 } else { self.term };
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        let voters: Vec<NodeId> = self
            .confs
            .current()
            .voters
            .iter()
            .copied()
            .filter(|&v| v != id)
            .collect();
        for to in voters {
            self.msgs.push(crate::message::Message {
                from: id,
                to,
                term: request_term,
                body: MessageBody::RequestVote {
                    pre_vote,
                    last_log_index,
                    last_log_term,
                    transfer,
                },
            });
        }
    }

    /// Records a vote and acts on the tally. Returns whether the campaign is decided.
    fn record_vote(&mut self, from: NodeId, granted: bool) -> bool {
        let conf = self.confs.current();
        if !conf.voters.contains(&from) {
            return false; // learners' and strangers' votes never count
        }
        self.votes.entry(from).or_insert(granted);
        let quorum = conf.quorum();
        let yes = self.votes.values().filter(|&&g| g).count();
        let no = self.votes.len() - yes;
        if yes >= quorum {
            if self.role == Role::PreCandidate {
                self.campaign(Campaign::Election);
            } else {
                self.become_leader();
            }
            true
        } else if no >= quorum {
            self.become_follower(self.term, None);
            true
        } else {
            false
        }
    }

    /// RequestVote / pre-vote (§5.2, §5.4.1, §9.6). The term check already happened.
    pub(super) fn on_request_vote(
        &mut self,
        from: NodeId,
        term: Term,
        pre_vote: bool,
        last_index: Index,
        last_term: Term,
    ) {
        let can_vote =
            self.vote == Some(from) || (self.vote.is_none() && self.leader.is_none()) || (pre_vote && term > self.term);
        if can_vote && self.log.is_up_to_date(last_index, last_term) {
            if !pre_vote {
                // One vote per term; it reaches the candidate only after it is persisted.
                self.vote = Some(from);
                self.reset_election_timer();
            }
            // A granted pre-vote answers in the term asked about, so the pre-candidate counts it.
            let reply_term = if pre_vote { term } else { self.term };
            self.msgs.push(crate::message::Message {
                from: self.cfg.id,
                to: from,
                term: reply_term,
                body: MessageBody::RequestVoteResponse {
                    pre_vote,
                    granted: true,
                },
            });
        } else {
            self.send(
                from,
                MessageBody::RequestVoteResponse {
                    pre_vote,
                    granted: false,
                },
            );
        }
    }

    pub(super) fn on_vote_response(&mut self, from: NodeId, pre_vote: bool, granted: bool) {
        let expected = match self.role {
            Role::PreCandidate => pre_vote,
            Role::Candidate => !pre_vote,
            _ => return,
        };
        if expected {
            self.record_vote(from, granted);
        }
    }
}
