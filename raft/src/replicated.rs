use std::error::Error;

use serde::Serialize;
use serde::de::DeserializeOwned;
use singular_queue::StateMachine;

/// A [`StateMachine`] that can run on several machines: what you add to the state machine you
/// already wrote to replicate it with [`Node`](crate::Node).
///
/// Three things, and `apply` stays as it is:
///
/// - **serde** for `Command` and `Output`: commands travel in the Raft log, and an output is
///   kept per client session so that a retried request gets the first answer back;
/// - **a snapshot** to and from bytes, so that a node that fell far behind (or lost its disk)
///   catches up without replaying the whole log;
/// - **a deterministic `apply`**: every node applies the same commands in the same order and
///   must reach the same state. No clocks, no randomness, no iteration over a `HashMap`'s
///   order in what `apply` returns or stores; take such values in the command instead.
///
/// # Examples
///
/// ```
/// use std::collections::BTreeMap;
/// use singular_queue::StateMachine;
/// use singular_queue_raft::{Replicated, SnapshotError};
///
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Kv(BTreeMap<String, String>);
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// enum Command {
///     Put(String, String),
///     Get(String),
/// }
///
/// impl StateMachine for Kv {
///     type Command = Command;
///     type Output = Option<String>;
///     fn apply(&mut self, command: Command) -> Option<String> {
///         match command {
///             Command::Put(key, value) => self.0.insert(key, value),
///             Command::Get(key) => self.0.get(&key).cloned(),
///         }
///     }
/// }
///
/// impl Replicated for Kv {
///     fn snapshot(&self) -> Vec<u8> {
///         singular_queue_raft::to_bytes(self)
///     }
///     fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
///         singular_queue_raft::from_bytes(bytes)
///     }
/// }
/// ```
pub trait Replicated:
    StateMachine<
        Command: Serialize + DeserializeOwned + Clone + Sync,
        Output: Serialize + DeserializeOwned + Clone + Sync,
    > + Sized
{
    /// The whole state as bytes. Runs on the queue's worker, between two commands, so it sees
    /// exactly the commands applied so far.
    fn snapshot(&self) -> Vec<u8>;

    /// The state that [`snapshot`](Replicated::snapshot) wrote as `bytes`.
    ///
    /// # Errors
    ///
    /// When `bytes` do not decode; the node then stops (its disk or its peer sent garbage).
    fn restore(bytes: &[u8]) -> Result<Self, SnapshotError>;
}

/// Why a snapshot did not decode: any error, boxed.
pub type SnapshotError = Box<dyn Error + Send + Sync>;
