//! The register workload: one value per key, read, written and compare-and-set.
//!
//! This is what etcd's `Range`, `Put` and single-compare `Txn` give a client on one key, and the
//! workload Jepsen's etcd tests (and porcupine's key-value model) check.

use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;

use super::history::Operation;
use super::model::Model;
use super::partition::{CheckConfig, check_history};
use super::verdict::Verdict;

/// A call on one register.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterCall<V> {
    /// Read the current value; answered by [`RegisterRet::Read`].
    Read,
    /// Overwrite the value; answered by [`RegisterRet::Write`].
    Write(V),
    /// Set the value to `new` if it currently equals `expected` (`None`: the key is absent, as
    /// etcd's `create_revision == 0` compare); answered by [`RegisterRet::Cas`].
    Cas {
        /// The value the register must hold for the swap to happen.
        expected: Option<V>,
        /// The value it holds afterwards if it did.
        new: V,
    },
}

/// A register's answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterRet<V> {
    /// The value read; `None` if the key was absent.
    Read(Option<V>),
    /// The write was applied.
    Write,
    /// Whether the compare succeeded (and the swap happened). A compare that did not match is a
    /// completed operation with `Cas(false)`, not a [`Fail`](super::Outcome::Fail): it took effect
    /// as a read.
    Cas(bool),
}

/// One operation of the register workload.
pub type RegisterOp<K, V> = Operation<K, RegisterCall<V>, RegisterRet<V>>;

/// The sequential register: its state is the current value, `None` before the first write.
#[derive(Debug)]
pub struct RegisterModel<V> {
    values: PhantomData<V>,
}

impl<V> RegisterModel<V> {
    /// The register model.
    pub fn new() -> Self {
        RegisterModel { values: PhantomData }
    }
}

impl<V> Default for RegisterModel<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone + Eq + Hash + Debug> Model for RegisterModel<V> {
    type Call = RegisterCall<V>;
    type Ret = RegisterRet<V>;
    type State = Option<V>;

    fn init(&self) -> Option<V> {
        None
    }

    fn step(&self, state: &Option<V>, call: &RegisterCall<V>, ret: Option<&RegisterRet<V>>) -> Option<Option<V>> {
        match (call, ret) {
            (RegisterCall::Read, None) => Some(state.clone()),
            (RegisterCall::Read, Some(RegisterRet::Read(seen))) => (seen == state).then(|| state.clone()),
            (RegisterCall::Write(value), None | Some(RegisterRet::Write)) => Some(Some(value.clone())),
            (RegisterCall::Cas { expected, new }, None) => {
                // Unknown: whatever the swap would have done from here.
                Some(if expected == state {
                    Some(new.clone())
                } else {
                    state.clone()
                })
            }
            (RegisterCall::Cas { expected, new }, Some(RegisterRet::Cas(true))) => {
                (expected == state).then(|| Some(new.clone()))
            }
            (RegisterCall::Cas { expected, .. }, Some(RegisterRet::Cas(false))) => {
                (expected != state).then(|| state.clone())
            }
            (call, Some(ret)) => panic!("malformed history: register call {call:?} answered with {ret:?}"),
        }
    }

    fn is_read_only(&self, call: &RegisterCall<V>, ret: Option<&RegisterRet<V>>) -> bool {
        matches!(
            (call, ret),
            (RegisterCall::Read, _) | (RegisterCall::Cas { .. }, Some(RegisterRet::Cas(false)))
        )
    }
}

/// Checks a register-workload history, key by key. See [`check_history`].
pub fn check_registers<K, V>(history: &[RegisterOp<K, V>], config: &CheckConfig) -> Verdict<K, RegisterModel<V>>
where
    K: Ord + Clone + Debug,
    V: Clone + Eq + Hash + Debug,
{
    check_history(&RegisterModel::new(), history, config)
}
