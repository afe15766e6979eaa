//! openraft's own storage conformance suite (review #4) against the crate's `LogStore` and its
//! queue-backed state machine (`QueueMachine`), exactly as `Node::start` wires them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use serde::{Deserialize, Serialize};
use singular_queue::{SingularQueue, StateMachine};

use crate::applier::Applier;
use crate::log_store::LogStore;
use crate::state_machine::QueueMachine;
use crate::{NodeId, Replicated, SnapshotError, TypeConfig};

#[derive(Default, Serialize, Deserialize)]
struct Counter(u64);

impl StateMachine for Counter {
    type Command = u64;
    type Output = u64;
    fn apply(&mut self, add: u64) -> u64 {
        self.0 += add;
        self.0
    }
}

impl Replicated for Counter {
    fn snapshot(&self) -> Vec<u8> {
        self.0.to_le_bytes().to_vec()
    }
    fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        Ok(Counter(u64::from_le_bytes(bytes.try_into()?)))
    }
}

/// Keeps the queue alive and removes the directory when the test ends.
struct Guard {
    _queue: SingularQueue<Applier<Counter>>,
    dir: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Builder;

impl StoreBuilder<TypeConfig<Counter>, LogStore<Counter>, QueueMachine<Counter>, Guard>
    for Builder
{
    async fn build(
        &self,
    ) -> Result<(Guard, LogStore<Counter>, QueueMachine<Counter>), StorageError<NodeId>> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("conformance-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = LogStore::<Counter>::open(dir.join("raft.redb")).unwrap();
        let queue = SingularQueue::builder(Applier::new(Counter(0)))
            .spawn()
            .unwrap();
        let machine = QueueMachine::new(queue.handle(), store.clone());
        Ok((Guard { _queue: queue, dir }, store, machine))
    }
}

#[test]
fn openraft_storage_suite_passes_on_log_store_and_queue_machine() {
    Suite::test_all(Builder).unwrap();
}
