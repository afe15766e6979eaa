//! The node's disk: the Raft log, the vote, the committed mark and the current snapshot, in
//! one redb database.
//!
//! Every change is one redb write transaction, and redb's commit (with its default
//! `Durability::Immediate`) returns only once the transaction is on disk, atomically: a crash
//! leaves either all of it or none. So openraft hears that the vote or an entry is durable
//! only after the `fsync` that made it so. redb's IO is blocking; it runs on tokio's blocking
//! threads, one call at a time, as openraft serialises every write to the log store.

use std::fmt::{self, Debug};
use std::io;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{
    BasicNode, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogId, SnapshotMeta, StorageError,
    Vote,
};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::codec::{decode, encode};
use crate::{NodeId, Replicated, TypeConfig};

type Entry<S> = openraft::Entry<TypeConfig<S>>;
type Meta = SnapshotMeta<NodeId, BasicNode>;

/// Log entries by index, encoded as CBOR.
const LOG: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("log");
/// Single values by name, encoded as CBOR.
const VALUES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("values");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "last-purged";
const SNAPSHOT_META: &str = "snapshot-meta";
const SNAPSHOT: &str = "snapshot";

/// A node's disk: openraft's log store on one redb file (the log, the vote, the committed
/// mark), which also keeps the node's current snapshot. [`Node`](crate::Node) opens one for
/// itself; it is public for those who drive [`openraft::Raft`] with a state machine of their
/// own, as the benchmark's baseline does. Clones share the file.
///
/// Every change is one redb write transaction, durable and atomic when its commit returns;
/// openraft hears an entry or a vote is saved only after that.
pub struct LogStore<S> {
    db: Arc<Db>,
    _state: PhantomData<fn() -> S>,
}

/// The database, and who to tell when its last user lets go of it (then the file can be
/// opened again, by a restarted node).
struct Db {
    db: Database,
    /// Declared after `db`, so dropped after it: it tells once the file is closed.
    _released: OnDrop,
}

/// Sends when dropped.
struct OnDrop(Option<oneshot::Sender<()>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(released) = self.0.take() {
            let _ = released.send(());
        }
    }
}

impl std::ops::Deref for Db {
    type Target = Database;

    fn deref(&self) -> &Database {
        &self.db
    }
}

/// Completes once every clone of a [`LogStore`] is gone and its database is closed.
pub(crate) type Released = oneshot::Receiver<()>;

impl<S> fmt::Debug for LogStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

impl<S> Clone for LogStore<S> {
    fn clone(&self) -> Self {
        Self {
            db: Arc::clone(&self.db),
            _state: PhantomData,
        }
    }
}

impl<S: Replicated> LogStore<S> {
    /// Opens (or creates) the store in the file at `path`.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened as a redb database, or is open already.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(Self::open_tracked(path.as_ref())?.0)
    }

    /// Opens the store, and tells when every clone of it is gone and the file closed.
    pub(crate) fn open_tracked(path: &Path) -> io::Result<(Self, Released)> {
        let db = Database::create(path).map_err(io::Error::other)?;
        let txn = db.begin_write().map_err(io::Error::other)?;
        txn.open_table(LOG).map_err(io::Error::other)?;
        txn.open_table(VALUES).map_err(io::Error::other)?;
        txn.commit().map_err(io::Error::other)?;
        let (released, on_release) = oneshot::channel();
        let db = Db {
            db,
            _released: OnDrop(Some(released)),
        };
        let store = Self {
            db: Arc::new(db),
            _state: PhantomData,
        };
        Ok((store, on_release))
    }

    /// The current snapshot's metadata and bytes, if one was saved.
    pub(crate) async fn snapshot(&self) -> io::Result<Option<(Meta, Vec<u8>)>> {
        self.read(|db| {
            let meta = value::<Meta>(db, SNAPSHOT_META)?;
            let bytes = value::<Vec<u8>>(db, SNAPSHOT)?;
            Ok(meta.zip(bytes))
        })
        .await
    }

    /// Saves a snapshot as the current one, replacing the last.
    ///
    /// Only a newer snapshot replaces the saved one: a snapshot this node built can finish
    /// after one installed from the leader, and must not take its place (the log before the
    /// installed one is purged, so the node could not restart from the older one).
    pub(crate) async fn save_snapshot(&self, meta: Meta, bytes: Vec<u8>) -> io::Result<()> {
        self.write(move |txn| {
            let saved = {
                let table = txn.open_table(VALUES).map_err(io::Error::other)?;
                let saved = table.get(SNAPSHOT_META).map_err(io::Error::other)?;
                saved
                    .map(|bytes| decode::<Meta>(bytes.value()))
                    .transpose()?
            };
            if saved.is_some_and(|saved| saved.last_log_id >= meta.last_log_id) {
                return Ok(());
            }
            put(txn, SNAPSHOT_META, &meta)?;
            put(txn, SNAPSHOT, &bytes)
        })
        .await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let db = Arc::clone(&self.db);
        blocking(move || f(&db.db)).await
    }

    /// Runs `f` in one write transaction and commits it durably.
    async fn write(
        &self,
        f: impl FnOnce(&WriteTransaction) -> io::Result<()> + Send + 'static,
    ) -> io::Result<()> {
        self.write_with(Durability::Immediate, f).await
    }

    /// Runs `f` in one write transaction committed with `durability`: `Immediate` is on disk
    /// when the commit returns; `None` goes to disk atomically with the next `Immediate`
    /// commit, or is lost in a crash before it.
    async fn write_with(
        &self,
        durability: Durability,
        f: impl FnOnce(&WriteTransaction) -> io::Result<()> + Send + 'static,
    ) -> io::Result<()> {
        let db = Arc::clone(&self.db);
        blocking(move || {
            let mut txn = db.begin_write().map_err(io::Error::other)?;
            txn.set_durability(durability).map_err(io::Error::other)?;
            f(&txn)?;
            txn.commit().map_err(io::Error::other)
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|panic| Err(io::Error::other(panic)))
}

fn value<T: DeserializeOwned>(db: &Database, name: &str) -> io::Result<Option<T>> {
    let txn = db.begin_read().map_err(io::Error::other)?;
    let table = txn.open_table(VALUES).map_err(io::Error::other)?;
    match table.get(name).map_err(io::Error::other)? {
        Some(bytes) => decode(bytes.value()).map(Some),
        None => Ok(None),
    }
}

fn put<T: Serialize>(txn: &WriteTransaction, name: &str, value: &T) -> io::Result<()> {
    let bytes = encode(value)?;
    let mut table = txn.open_table(VALUES).map_err(io::Error::other)?;
    table
        .insert(name, bytes.as_slice())
        .map_err(io::Error::other)?;
    Ok(())
}

fn storage_error(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
) -> impl Fn(io::Error) -> StorageError<NodeId> {
    move |e| StorageError::from_io_error(subject.clone(), verb, e)
}

impl<S: Replicated> RaftLogReader<TypeConfig<S>> for LogStore<S> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<S>>, StorageError<NodeId>> {
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        self.read(move |db| {
            let txn = db.begin_read().map_err(io::Error::other)?;
            let table = txn.open_table(LOG).map_err(io::Error::other)?;
            let range = table.range::<u64>(bounds).map_err(io::Error::other)?;
            range
                .map(|item| decode(item.map_err(io::Error::other)?.1.value()))
                .collect()
        })
        .await
        .map_err(storage_error(ErrorSubject::Logs, ErrorVerb::Read))
    }
}

impl<S: Replicated> RaftLogStorage<TypeConfig<S>> for LogStore<S> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig<S>>, StorageError<NodeId>> {
        self.read(|db| {
            let purged = value::<LogId<NodeId>>(db, PURGED)?;
            let txn = db.begin_read().map_err(io::Error::other)?;
            let table = txn.open_table(LOG).map_err(io::Error::other)?;
            let last = match table.last().map_err(io::Error::other)? {
                Some((_, bytes)) => Some(*decode::<Entry<S>>(bytes.value())?.get_log_id()),
                None => purged,
            };
            Ok(LogState {
                last_purged_log_id: purged,
                last_log_id: last,
            })
        })
        .await
        .map_err(storage_error(ErrorSubject::Logs, ErrorVerb::Read))
    }

    async fn get_log_reader(&mut self) -> Self {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let vote = *vote;
        self.write(move |txn| put(txn, VOTE, &vote))
            .await
            .map_err(storage_error(ErrorSubject::Vote, ErrorVerb::Write))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.read(|db| value(db, VOTE))
            .await
            .map_err(storage_error(ErrorSubject::Vote, ErrorVerb::Read))
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        // Without an fsync of its own: a mark lost in a crash only means the restarted node
        // replays less of its log at once, and learns the rest from the leader. (openraft
        // asks nothing of this mark, and a stale one is safe: committed entries are never
        // truncated, and it reaches disk no earlier than the entries it names.)
        self.write_with(Durability::None, move |txn| put(txn, COMMITTED, &committed))
            .await
            .map_err(storage_error(ErrorSubject::Store, ErrorVerb::Write))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        self.read(|db| Ok(value::<Option<LogId<NodeId>>>(db, COMMITTED)?.flatten()))
            .await
            .map_err(storage_error(ErrorSubject::Store, ErrorVerb::Read))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig<S>>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<S>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let written = self
            .write(move |txn| {
                let mut table = txn.open_table(LOG).map_err(io::Error::other)?;
                for entry in &entries {
                    let bytes = encode(entry)?;
                    table
                        .insert(entry.get_log_id().index, bytes.as_slice())
                        .map_err(io::Error::other)?;
                }
                Ok(())
            })
            .await;
        // The commit returned: the entries are on disk (or the write failed, and openraft
        // hears that instead).
        let report = written
            .as_ref()
            .map(|_| ())
            .map_err(|e| io::Error::new(e.kind(), e.to_string()));
        callback.log_io_completed(report);
        written.map_err(storage_error(ErrorSubject::Logs, ErrorVerb::Write))
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.write(move |txn| remove(txn, (Bound::Included(log_id.index), Bound::Unbounded)))
            .await
            .map_err(storage_error(ErrorSubject::Logs, ErrorVerb::Delete))
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.write(move |txn| {
            put(txn, PURGED, &log_id)?;
            remove(txn, (Bound::Unbounded, Bound::Included(log_id.index)))
        })
        .await
        .map_err(storage_error(ErrorSubject::Logs, ErrorVerb::Delete))
    }
}

fn remove(txn: &WriteTransaction, range: (Bound<u64>, Bound<u64>)) -> io::Result<()> {
    let mut table = txn.open_table(LOG).map_err(io::Error::other)?;
    table
        .retain_in::<u64, _>(range, |_, _| false)
        .map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, LogId, StoredMembership};

    use super::*;

    /// A unit state machine: the store does not look at it.
    #[derive(Default, Serialize, serde::Deserialize)]
    struct Nothing;

    impl singular_queue::StateMachine for Nothing {
        type Command = ();
        type Output = ();
        fn apply(&mut self, (): ()) {}
    }

    impl Replicated for Nothing {
        fn snapshot(&self) -> Vec<u8> {
            Vec::new()
        }
        fn restore(_: &[u8]) -> Result<Self, crate::SnapshotError> {
            Ok(Nothing)
        }
    }

    fn meta(index: u64) -> Meta {
        Meta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
            last_membership: StoredMembership::default(),
            snapshot_id: index.to_string(),
        }
    }

    /// Review #4 found a node's own snapshot, built slowly, saved over a newer one installed
    /// from the leader while it was built; the log before the newer one was already purged.
    #[tokio::test]
    async fn an_older_snapshot_never_replaces_a_newer_one() {
        let dir = std::env::temp_dir().join(format!("log-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = LogStore::<Nothing>::open(dir.join("raft.redb")).unwrap();
        store.save_snapshot(meta(151), vec![151]).await.unwrap();
        store.save_snapshot(meta(51), vec![51]).await.unwrap();
        let (saved, bytes) = store.snapshot().await.unwrap().unwrap();
        assert_eq!((saved.snapshot_id.as_str(), bytes), ("151", vec![151]));
        store.save_snapshot(meta(152), vec![152]).await.unwrap();
        assert_eq!(store.snapshot().await.unwrap().unwrap().1, [152]);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
