//! Found in review: the orphan's `Stop` nudge is sent while submitters may still be inside the gate,
//! so a `DropOldest` submitter can evict it and reach `evict`'s `unreachable!`.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use singular_queue::{DropOldest, SingularQueue, StateMachine};
use support::within;

/// Runs each command (a closure) on the worker.
struct Exec;

type Job = Box<dyn FnOnce() -> u64 + Send>;

impl StateMachine for Exec {
    type Command = Job;
    type Output = u64;
    fn apply(&mut self, job: Job) -> u64 {
        job()
    }
}

fn noop(n: u64) -> Job {
    Box::new(move || n)
}

/// Deterministic: a `DropOldest` submitter is inside the gate (in `on_evict`) when the owner
/// is dropped on the worker; the orphan's `try_send(Stop)` takes the slot the eviction freed,
/// and the submitter's next eviction takes the `Stop`.
#[test]
fn drop_oldest_submitter_inside_the_gate_never_evicts_the_orphan_nudge() {
    within(Duration::from_secs(20), || {
        let (in_evict_tx, in_evict_rx) = mpsc::channel::<()>();
        let (release_evict_tx, release_evict_rx) = mpsc::channel::<()>();
        let in_evict_tx = Mutex::new(in_evict_tx);
        let release_evict_rx = Mutex::new(release_evict_rx);
        let first_eviction = AtomicBool::new(true);
        let evicted = Arc::new(AtomicUsize::new(0));
        let evicted_in_cb = Arc::clone(&evicted);
        let queue = SingularQueue::builder(Exec)
            .capacity(1)
            .max_batch(1)
            .backpressure(DropOldest)
            .on_evict(move |job: Job| {
                evicted_in_cb.fetch_add(1, Ordering::SeqCst);
                drop(job);
                if first_eviction.swap(false, Ordering::SeqCst) {
                    in_evict_tx.lock().unwrap().send(()).unwrap();
                    release_evict_rx.lock().unwrap().recv().unwrap();
                }
            })
            .spawn()
            .unwrap();
        let handle = queue.handle();

        // The owner, parked where the holding job can drop it on the worker.
        let owner: Arc<Mutex<Option<SingularQueue<Exec>>>> = Arc::new(Mutex::new(None));
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (orphaned_tx, orphaned_rx) = mpsc::channel::<()>();
        let owner_in_job = Arc::clone(&owner);
        handle
            .tell(Box::new(move || {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                let queue = owner_in_job.lock().unwrap().take();
                drop(queue); // on its own worker: orphans the queue, nudges with Stop
                orphaned_tx.send(()).unwrap();
                0
            }))
            .unwrap();
        started_rx.recv().unwrap();
        handle.tell(noop(1)).unwrap(); // fills the one slot

        // A DropOldest submitter: evicts command 1, then sits in on_evict, inside the gate.
        let submitter = {
            let handle = handle.clone();
            thread::spawn(move || handle.tell(noop(2)).map_err(|e| format!("{e:?}")))
        };
        in_evict_rx.recv().unwrap();

        *owner.lock().unwrap() = Some(queue);
        release_tx.send(()).unwrap();
        orphaned_rx.recv().unwrap();
        // The channel now holds the orphan's Stop nudge; let the submitter retry.
        release_evict_tx.send(()).unwrap();

        let outcome = submitter.join();
        assert!(
            outcome.is_ok(),
            "the DropOldest submitter panicked inside the crate (evicted the Stop nudge): {:?}",
            outcome.as_ref().err().and_then(|p| p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())))
        );
        // Its command was accepted before the gate went quiet, or handed back as Closed.
        let outcome = outcome.unwrap();
        assert!(
            outcome.is_ok() || outcome == Err("Closed(..)".to_owned()),
            "{outcome:?}"
        );
    });
}

/// Stress, no callbacks: many `DropOldest` submitters on a capacity-1 queue whose owner is
/// dropped on its own worker. Counts runs in which a submitter panics.
#[test]
fn drop_oldest_submitters_racing_an_orphaning_drop_never_panic() {
    std::panic::set_hook(Box::new(|info| {
        if info
            .location()
            .is_none_or(|l| !l.file().contains("shared.rs"))
        {
            eprintln!("{info}");
        }
    }));
    within(Duration::from_secs(60), || {
        let runs = 300;
        let mut panics = 0;
        for _ in 0..runs {
            let queue = SingularQueue::builder(Exec)
                .capacity(1)
                .max_batch(1)
                .backpressure(DropOldest)
                .spawn()
                .unwrap();
            let handle = queue.handle();
            let owner = Arc::new(Mutex::new(Some(queue)));
            let stop = Arc::new(AtomicBool::new(false));
            let submitters: Vec<_> = (0..3)
                .map(|_| {
                    let handle = handle.clone();
                    let stop = Arc::clone(&stop);
                    thread::spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            if handle.tell(noop(7)).is_err() {
                                break;
                            }
                        }
                    })
                })
                .collect();
            let owner_in_job = Arc::clone(&owner);
            // May itself be evicted; keep trying until the drop job is accepted and run.
            let dropped = Arc::new(AtomicBool::new(false));
            while !dropped.load(Ordering::SeqCst) && !handle.is_closed() {
                let owner_in_job = Arc::clone(&owner_in_job);
                let dropped = Arc::clone(&dropped);
                let job: Job = Box::new(move || {
                    let queue = owner_in_job.lock().unwrap().take();
                    drop(queue);
                    dropped.store(true, Ordering::SeqCst);
                    0
                });
                let handle = handle.clone();
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    let _ = handle.tell(job);
                }))
                .is_err()
                {
                    panics += 1;
                }
                thread::yield_now();
            }
            stop.store(true, Ordering::Relaxed);
            for submitter in submitters {
                if submitter.join().is_err() {
                    panics += 1;
                }
            }
            drop(owner.lock().unwrap().take());
        }
        assert_eq!(panics, 0, "{panics} submitter panics in {runs} runs");
    });
}
