//! Stable, human-readable renderings of messages, entries and node state. Script expectations
//! are written in these terms, so change them deliberately (then `REWRITE=1` and review).

use kvorum_raft::{ConfState, Entry, EntryPayload, Message, MessageBody, Raft};

pub fn entry(e: &Entry) -> String {
    let payload = match &e.payload {
        EntryPayload::Noop => "noop".to_string(),
        EntryPayload::Command(data) => format!("{:?}", String::from_utf8_lossy(data)),
        EntryPayload::ConfChange(cc) => format!("conf {cc:?}"),
    };
    format!("{}/{} {payload}", e.term, e.index)
}

pub fn entries(es: &[Entry]) -> String {
    es.iter().map(entry).collect::<Vec<_>>().join(", ")
}

pub fn conf(c: &ConfState) -> String {
    let ids = |s: &std::collections::BTreeSet<u64>| s.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    if c.learners.is_empty() {
        format!("voters=[{}]", ids(&c.voters))
    } else {
        format!("voters=[{}] learners=[{}]", ids(&c.voters), ids(&c.learners))
    }
}

pub fn message(m: &Message) -> String {
    let head = format!("{}->{} {} term={}", m.from, m.to, m.kind(), m.term);
    let body = match &m.body {
        MessageBody::RequestVote {
            last_log_index,
            last_log_term,
            transfer,
            ..
        } => {
            format!(
                "last=({last_log_term},{last_log_index}){}",
                if *transfer { " transfer" } else { "" }
            )
        }
        MessageBody::RequestVoteResponse { granted, .. } => (if *granted { "granted" } else { "rejected" }).to_string(),
        MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries: es,
            leader_commit,
        } => {
            format!(
                "prev=({prev_log_term},{prev_log_index}) commit={leader_commit} entries=[{}]",
                entries(es)
            )
        }
        MessageBody::AppendEntriesResponse { index, reject: None } => format!("index={index}"),
        MessageBody::AppendEntriesResponse { index, reject: Some(h) } => {
            format!("rejected prev={index} hint=({},{})", h.term, h.index)
        }
        MessageBody::Heartbeat { commit, read_round } => format!("commit={commit} round={read_round}"),
        MessageBody::HeartbeatResponse { read_round } => format!("round={read_round}"),
        MessageBody::InstallSnapshot { snapshot } => {
            format!(
                "snapshot=({},{}) {}",
                snapshot.term,
                snapshot.index,
                conf(&snapshot.conf)
            )
        }
        MessageBody::TimeoutNow => String::new(),
        MessageBody::ReadIndex { id } => format!("id={id}"),
        MessageBody::ReadIndexResponse { id, index } => match index {
            Some(i) => format!("id={id} index={i}"),
            None => format!("id={id} rejected"),
        },
    };
    if body.is_empty() {
        head
    } else {
        format!("{head} {body}")
    }
}

/// One line per node: role, term, vote, leader, indexes, configuration.
pub fn state(r: &Raft, applied: u64) -> String {
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    format!(
        "{}: {:?} term={} vote={} leader={} last={} commit={} applied={} {}",
        r.id(),
        r.role(),
        r.term(),
        opt(r.vote()),
        opt(r.leader()),
        r.log().last_index(),
        r.log().committed(),
        applied,
        conf(r.conf())
    )
}
