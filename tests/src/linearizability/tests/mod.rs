//! The checker's own tests: hand-built histories with a known answer (one file per workload and
//! one for watch streams), randomized 2,000-operation histories that are linearizable by
//! construction (and single mutations of them that are not), and a differential test of the
//! search against brute force on tiny random histories.

mod differential;
mod list_append;
mod randomized;
mod register;
mod watch;

use super::{ListCall, ListOp, ListRet, RegisterCall, RegisterOp, RegisterRet};

/// Register operations in the hand-built tests: string keys, `u64` values.
type Reg = RegisterOp<&'static str, u64>;

fn read(client: u64, key: &'static str, span: (u64, u64), seen: Option<u64>) -> Reg {
    RegisterOp::ok(client, key, RegisterCall::Read, span.0, span.1, RegisterRet::Read(seen))
}

fn write(client: u64, key: &'static str, span: (u64, u64), value: u64) -> Reg {
    RegisterOp::ok(
        client,
        key,
        RegisterCall::Write(value),
        span.0,
        span.1,
        RegisterRet::Write,
    )
}

fn cas(client: u64, key: &'static str, span: (u64, u64), swap: (Option<u64>, u64), succeeded: bool) -> Reg {
    let call = RegisterCall::Cas {
        expected: swap.0,
        new: swap.1,
    };
    RegisterOp::ok(client, key, call, span.0, span.1, RegisterRet::Cas(succeeded))
}

/// List-append operations in the hand-built tests.
type List = ListOp<&'static str, u64>;

fn append(client: u64, key: &'static str, span: (u64, u64), element: u64) -> List {
    ListOp::ok(client, key, ListCall::Append(element), span.0, span.1, ListRet::Append)
}

fn read_list(client: u64, key: &'static str, span: (u64, u64), seen: &[u64]) -> List {
    ListOp::ok(
        client,
        key,
        ListCall::Read,
        span.0,
        span.1,
        ListRet::Read(seen.to_vec()),
    )
}
