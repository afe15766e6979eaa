//! A key-value store persisted to a write-ahead log, with group commit: every write is logged
//! in `apply`, the batch is fsynced once in `on_batch_end`, and only then are its writers told
//! their write is done.
//!
//! Run it with `cargo run --example durable_kv`.

mod store;
mod wal;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::thread;

use singular_queue::{ReplyMode, SingularQueue};
use store::{Command, DurableKv};

const WRITERS: usize = 8;
const WRITES_EACH: usize = 200;
/// Every tenth key is deleted again.
const KEPT: usize = WRITERS * WRITES_EACH * 9 / 10;

fn main() -> std::io::Result<()> {
    let dir = std::env::temp_dir().join(format!("durable-kv-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("kv.wal");

    write_concurrently(&path)?;
    let (store, recovery) = DurableKv::open(&path)?;
    println!(
        "reopened: {} records replayed, {} keys",
        recovery.records,
        store.map().len()
    );
    assert_eq!(store.map().len(), KEPT);

    // A crash mid-write leaves a torn record at the end: recovery cuts it off.
    let mut log = OpenOptions::new().append(true).open(&path)?;
    log.write_all(&[42, 0, 0, 0, 1, 2, 3])?;
    drop((store, log));
    let (store, recovery) = DurableKv::open(&path)?;
    println!(
        "after a torn write: {} records kept, {} bytes of torn tail cut off",
        recovery.records, recovery.discarded_bytes
    );
    assert_eq!((recovery.discarded_bytes, store.map().len()), (7, KEPT));

    std::fs::remove_dir_all(&dir)
}

/// Eight writers, each waiting for its write to be durable before its next one.
fn write_concurrently(path: &Path) -> std::io::Result<()> {
    let (store, recovery) = DurableKv::open(path)?;
    println!(
        "opened {}: {} records replayed",
        path.display(),
        recovery.records
    );
    // ANCHOR: spawn
    let queue = SingularQueue::builder(store)
        .reply_mode(ReplyMode::AfterBatch)
        .name("durable-kv")
        .spawn()?;
    // ANCHOR_END: spawn
    thread::scope(|scope| {
        for writer in 0..WRITERS {
            let handle = queue.handle();
            scope.spawn(move || {
                for i in 0..WRITES_EACH {
                    let key = format!("w{writer}-{i}");
                    let value = i.to_string();
                    let set = Command::Set {
                        key: key.clone(),
                        value,
                    };
                    handle.call(set).expect("durable write");
                    if i % 10 == 9 {
                        // Deletes are logged like sets: the key stays gone after a restart.
                        let old = handle
                            .call(Command::Delete { key })
                            .expect("durable delete");
                        assert_eq!(old, Some(i.to_string()));
                    }
                }
            });
        }
    });
    let stats = queue.stats();
    println!(
        "{} durable writes in {} fsyncs ({:.1} writes per fsync)",
        stats.applied,
        stats.batches,
        stats.mean_batch_size()
    );
    let sample = queue
        .call(Command::Get {
            key: "w3-7".to_owned(),
        })
        .expect("read");
    assert_eq!(sample.as_deref(), Some("7"));
    queue.shutdown().expect("no write failed");
    Ok(())
}
