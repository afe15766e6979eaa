//! A key-value store called from async code: a thousand tokio tasks share one queue, with no
//! executor thread ever blocked. The library needs no runtime; any executor works.
//!
//! Run it with `cargo run --example async_kv`.

use std::collections::HashMap;

use singular_queue::{SingularQueue, StateMachine};

#[derive(Default)]
struct Kv(HashMap<String, u64>);

enum Command {
    /// Adds to a key's value, creating it at 0; returns the new value.
    Add(String, u64),
    Get(String),
}

impl StateMachine for Kv {
    type Command = Command;
    type Output = Option<u64>;

    fn apply(&mut self, command: Command) -> Option<u64> {
        match command {
            Command::Add(key, n) => {
                let value = self.0.entry(key).or_default();
                *value += n;
                Some(*value)
            }
            Command::Get(key) => self.0.get(&key).copied(),
        }
    }
}

const TASKS: u64 = 1_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // A small queue: tasks that find it full wait as tasks, not as threads.
    let kv = SingularQueue::builder(Kv::default())
        .capacity(16)
        .spawn()
        .expect("spawn");

    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let handle = kv.handle();
            tokio::spawn(async move {
                let key = format!("bucket-{}", task % 10);
                handle
                    .call_async(Command::Add(key, 1))
                    .await
                    .expect("the store is open")
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("the task finished");
    }

    let bucket = kv
        .call_async(Command::Get("bucket-3".to_owned()))
        .await
        .expect("open");
    println!("{TASKS} tasks added to 10 buckets; bucket-3 holds {bucket:?}");
    assert_eq!(bucket, Some(TASKS / 10));

    let stats = kv.stats();
    println!(
        "{} commands applied in {} batches",
        stats.applied, stats.batches
    );
    // Shutting down joins the worker thread: a blocking call, so keep it off the executor.
    let kv = tokio::task::spawn_blocking(move || kv.shutdown())
        .await
        .expect("the shutdown finished")
        .expect("no command panicked");
    assert_eq!(kv.0.values().sum::<u64>(), TASKS);
}
