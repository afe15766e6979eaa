//! The classic key-value store as a state machine, written to by several threads at once.
//!
//! Run it with `cargo run --example kv`.

use std::collections::BTreeMap;
use std::thread;

use singular_queue::{SingularQueue, StateMachine};

/// The state: a plain map. No lock: only the queue's worker thread ever touches it.
#[derive(Default)]
struct KvStore {
    map: BTreeMap<String, u64>,
}

/// What clients ask of the store.
enum Command {
    Set { key: String, value: u64 },
    Get { key: String },
    Delete { key: String },
}

/// What the store answers: the value the key held before (`Set`, `Delete`) or holds (`Get`).
type Output = Option<u64>;

impl StateMachine for KvStore {
    type Command = Command;
    type Output = Output;

    fn apply(&mut self, command: Command) -> Output {
        match command {
            Command::Set { key, value } => self.map.insert(key, value),
            Command::Get { key } => self.map.get(&key).copied(),
            Command::Delete { key } => self.map.remove(&key),
        }
    }
}

const WRITERS: u64 = 4;
const KEYS_PER_WRITER: u64 = 1_000;

fn main() {
    let store = SingularQueue::builder(KvStore::default())
        .capacity(128)
        .name("kv-store")
        .spawn()
        .expect("spawn the store's worker thread");

    // Each writer sets its own keys, deleting every tenth, with no lock in sight.
    thread::scope(|scope| {
        for writer in 0..WRITERS {
            let handle = store.handle();
            scope.spawn(move || {
                for i in 0..KEYS_PER_WRITER {
                    let key = format!("w{writer}-k{i}");
                    handle
                        .tell(Command::Set {
                            key: key.clone(),
                            value: writer * 10_000 + i,
                        })
                        .expect("the store is open");
                    if i % 10 == 0 {
                        let old = handle
                            .call(Command::Delete { key })
                            .expect("the store is open");
                        assert_eq!(old, Some(writer * 10_000 + i), "our own write came first");
                    }
                }
            });
        }
    });

    let sample = store
        .call(Command::Get {
            key: "w2-k7".to_owned(),
        })
        .expect("the store is open");
    println!("w2-k7 = {sample:?}");

    let stats = store.stats();
    println!(
        "{} commands applied from {WRITERS} writer threads ({} panicked, {} refused)",
        stats.applied, stats.panicked, stats.refused_closed
    );

    let state = store.shutdown().expect("no command panicked");
    let expected = WRITERS * KEYS_PER_WRITER * 9 / 10;
    println!("{} keys stored (expected {expected})", state.map.len());
    assert_eq!(state.map.len() as u64, expected);
}
