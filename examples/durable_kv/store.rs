//! The durable key-value store: a state machine that logs every change before making it, and
//! fsyncs once per batch.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use singular_queue::{BatchInfo, CommitError, StateMachine};

use super::wal::{Op, Recovery, Wal};

/// A map whose every change is in the write-ahead log before it is acknowledged.
///
/// Run it with [`ReplyMode::AfterBatch`](singular_queue::ReplyMode::AfterBatch), so that a
/// write is acknowledged only after its batch's fsync, and with the default
/// [`OnPanic::Stop`](singular_queue::OnPanic::Stop): a failed append or fsync panics, and the
/// queue must stop there. Carrying on (`OnPanic::Continue`) could leave a torn record in the
/// middle of the log, and replay would then drop every write after it.
pub(crate) struct DurableKv {
    map: BTreeMap<String, String>,
    wal: Wal,
}

pub(crate) enum Command {
    Set { key: String, value: String },
    Delete { key: String },
    Get { key: String },
}

impl DurableKv {
    /// Opens the store at `path`, rebuilding the map from the log.
    pub(crate) fn open(path: &Path) -> io::Result<(DurableKv, Recovery)> {
        let (wal, ops, recovery) = Wal::open(path)?;
        let mut map = BTreeMap::new();
        for op in ops {
            apply_op(&mut map, op);
        }
        Ok((DurableKv { map, wal }, recovery))
    }

    /// The map as it stands.
    pub(crate) fn map(&self) -> &BTreeMap<String, String> {
        &self.map
    }

    /// Writes the log out to the file, without waiting for the disk; returns the file, whose
    /// `sync_data` makes it durable (the benchmark's pipelined commit runs that elsewhere).
    #[allow(dead_code)] // the example commits at the end of each batch; the benchmark uses it
    pub(crate) fn write_out(&mut self) -> io::Result<std::sync::Arc<std::fs::File>> {
        self.wal.write_out()
    }
}

/// Applies one logged change to the map; returns the value the key held before.
pub(crate) fn apply_op(map: &mut BTreeMap<String, String>, op: Op) -> Option<String> {
    match op {
        Op::Set { key, value } => map.insert(key, value),
        Op::Delete { key } => map.remove(&key),
    }
}

// ANCHOR: state_machine
impl StateMachine for DurableKv {
    type Command = Command;
    /// The value the key held before (`Set`, `Delete`) or holds (`Get`).
    type Output = Option<String>;

    fn apply(&mut self, command: Command) -> Option<String> {
        let op = match command {
            Command::Get { key } => return self.map.get(&key).cloned(),
            Command::Set { key, value } => Op::Set { key, value },
            Command::Delete { key } => Op::Delete { key },
        };
        // Log first: if the log cannot take it, panic, so the queue stops and no caller of
        // this batch is told its write is done.
        self.wal.append(&op).expect("append to the write-ahead log");
        apply_op(&mut self.map, op)
    }

    fn try_on_batch_end(&mut self, _: BatchInfo) -> Result<(), CommitError> {
        // One fsync for the whole batch: the group commit. If it fails, every caller of the
        // batch hears "applied, not committed", and (the default `OnCommitError::Stop`) the
        // queue stops: the map may now hold what the log does not.
        Ok(self.wal.commit()?)
    }
}
// ANCHOR_END: state_machine
