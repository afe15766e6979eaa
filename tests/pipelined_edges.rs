//! From hostile review #3 of pipelined group commit: a commit job may wait for room in its
//! own queue (it was refused as a deadlock), and the stress tests that held: exact accounting
//! of bulk, single and permit submits racing a close, an owner dropped inside a job, tickets
//! under eviction, pipelined commit and `shutdown_now`.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use singular_queue::{BatchInfo, Commit, ReplyMode, SingularQueue, StateMachine, SubmitError};
use support::within;

/// Counts every command applied.
#[derive(Debug, Default)]
struct Count(u64);

impl StateMachine for Count {
    type Command = u64;
    type Output = ();

    fn apply(&mut self, _: u64) {
        self.0 += 1;
        if self.0 % 7 == 0 {
            std::thread::yield_now();
        }
    }
}

/// Bulk, single and permit submits under `BlockFor` on a small queue, from many threads,
/// while a handle closes the queue and the owner shuts it down at once: every command is
/// accepted exactly once or handed back, and the counters add up.
fn accounting_under_close(policy: impl singular_queue::Backpressure<u64>, evicting: bool) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let queue = SingularQueue::builder(Count::default())
        .capacity(4)
        .backpressure(policy)
        .commit_threads(2)
        .spawn()
        .unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let returned = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let handle = queue.handle();
            let (accepted, returned) = (Arc::clone(&accepted), Arc::clone(&returned));
            std::thread::spawn(move || {
                let mut round = 0u64;
                loop {
                    round += 1;
                    let size = 1 + (round + t) % 6;
                    match handle.tell_many(vec![1; size as usize]) {
                        Ok(()) => accepted.fetch_add(size, Ordering::SeqCst),
                        Err(refused) => {
                            let closed = matches!(refused, SubmitError::Closed(_));
                            let back = refused.into_inner().len() as u64;
                            accepted.fetch_add(size - back, Ordering::SeqCst);
                            returned.fetch_add(back, Ordering::SeqCst);
                            if closed {
                                return;
                            }
                            0
                        }
                    };
                    match handle.tell(1) {
                        Ok(()) => accepted.fetch_add(1, Ordering::SeqCst),
                        Err(_) => returned.fetch_add(1, Ordering::SeqCst),
                    };
                    if let Ok(permit) = handle.reserve_timeout(Duration::from_micros(200)) {
                        match permit.tell(1) {
                            Ok(()) => accepted.fetch_add(1, Ordering::SeqCst),
                            Err(_) => returned.fetch_add(1, Ordering::SeqCst),
                        };
                    }
                }
            })
        })
        .collect();
    while accepted.load(Ordering::SeqCst) < 20_000 {
        std::thread::yield_now();
    }
    queue.handle().close();
    for thread in threads {
        thread.join().unwrap();
    }
    let handle = queue.handle();
    let (state, unapplied) = queue.shutdown_now().unwrap();
    let stats = handle.stats();
    let accepted = accepted.load(Ordering::SeqCst);
    let returned = returned.load(Ordering::SeqCst);
    let dropped = if evicting { stats.dropped } else { 0 };
    assert_eq!(stats.submitted, accepted, "{stats:?}");
    assert_eq!(
        stats.refused_closed + stats.rejected + stats.timed_out,
        returned,
        "{stats:?}"
    );
    assert_eq!(
        state.0 + unapplied.len() as u64 + dropped,
        accepted,
        "applied {} unapplied {} {stats:?}",
        state.0,
        unapplied.len()
    );
    assert_eq!(stats.applied, state.0, "{stats:?}");
}

#[test]
fn bulk_single_and_permit_submits_add_up_under_close_blockfor() {
    within(Duration::from_secs(60), || {
        for _ in 0..5 {
            accounting_under_close(singular_queue::BlockFor(Duration::from_micros(100)), false);
        }
    });
}

#[test]
fn bulk_single_and_permit_submits_add_up_under_close_dropoldest() {
    within(Duration::from_secs(60), || {
        for _ in 0..5 {
            accounting_under_close(singular_queue::DropOldest, true);
        }
    });
}

/// Holds the queue's owner, type-erased, for a commit job to drop.
type OwnerSlot = std::sync::Arc<std::sync::Mutex<Option<Box<dyn std::any::Any + Send>>>>;

/// Its first commit's job drops the queue's owner, on the commit thread.
struct DropsOwner {
    slot: OwnerSlot,
    applied: u64,
    dropped_tx: mpsc::Sender<()>,
}

impl StateMachine for DropsOwner {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, _: u64) -> u64 {
        self.applied += 1;
        self.applied
    }

    fn start_commit(&mut self, _: BatchInfo) -> Commit {
        let slot = std::sync::Arc::clone(&self.slot);
        let dropped_tx = self.dropped_tx.clone();
        Commit::later(move || {
            let owner = slot.lock().unwrap().take();
            if owner.is_some() {
                drop(owner);
                let _ = dropped_tx.send(());
            }
            Ok(())
        })
    }
}

/// The owner dropped inside a commit job (on the commit thread, which counts as the queue's
/// worker): the queue finishes on its own, nothing hangs, every accepted command is applied.
#[test]
fn the_owner_dropped_in_a_commit_job_finishes_the_queue_alone() {
    within(Duration::from_secs(20), || {
        let slot: OwnerSlot = Default::default();
        let (dropped_tx, dropped) = mpsc::channel();
        let queue = SingularQueue::builder(DropsOwner {
            slot: std::sync::Arc::clone(&slot),
            applied: 0,
            dropped_tx,
        })
        .reply_mode(ReplyMode::AfterBatch)
        .commit_threads(2)
        .spawn()
        .unwrap();
        let handle = queue.handle();
        *slot.lock().unwrap() = Some(Box::new(queue));
        let ticket = handle.submit(1).unwrap();
        dropped.recv().unwrap();
        let _ = ticket.wait();
        singular_queue::model::block_on(handle.closed());
        let stats = handle.stats();
        assert!(matches!(handle.tell(2), Err(SubmitError::Closed(2))));
        assert_eq!(stats.applied, stats.submitted, "{stats:?}");
    });
}

/// Commits each group on a commit thread.
#[derive(Debug, Default)]
struct Later(u64);

impl StateMachine for Later {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, _: u64) -> u64 {
        self.0 += 1;
        self.0
    }

    fn start_commit(&mut self, _: BatchInfo) -> Commit {
        Commit::later(|| {
            std::thread::yield_now();
            Ok(())
        })
    }
}

/// Tickets under DropOldest, pipelined commit with two commit threads and AfterBatch, while
/// the owner shuts down at once: every ticket resolves, and its fate matches the counters.
#[test]
fn tickets_under_dropoldest_pipelined_commit_and_shutdown_now_add_up() {
    use singular_queue::WaitError;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    within(Duration::from_secs(60), || {
        for _ in 0..5 {
            let queue = SingularQueue::builder(Later::default())
                .capacity(2)
                .backpressure(singular_queue::DropOldest)
                .reply_mode(ReplyMode::AfterBatch)
                .commit_threads(2)
                .spawn()
                .unwrap();
            let accepted = Arc::new(AtomicU64::new(0));
            let fates = Arc::new([(); 5].map(|()| AtomicU64::new(0)));
            let threads: Vec<_> = (0..6)
                .map(|_| {
                    let handle = queue.handle();
                    let (accepted, fates) = (Arc::clone(&accepted), Arc::clone(&fates));
                    std::thread::spawn(move || {
                        loop {
                            let Ok(ticket) = handle.submit(1) else { return };
                            accepted.fetch_add(1, Ordering::SeqCst);
                            let fate = match ticket.wait() {
                                Ok(_) => 0,
                                Err(WaitError::Dropped) => 1,
                                Err(WaitError::NotApplied) => 2,
                                Err(WaitError::NotCommitted(_)) => 3,
                                Err(_) => 4,
                            };
                            fates[fate].fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            while accepted.load(Ordering::SeqCst) < 5_000 {
                std::thread::yield_now();
            }
            let handle = queue.handle();
            let (state, unapplied) = queue.shutdown_now().unwrap();
            for thread in threads {
                thread.join().unwrap();
            }
            let stats = handle.stats();
            let fate = |i: usize| fates[i].load(Ordering::SeqCst);
            let accepted = accepted.load(Ordering::SeqCst);
            assert_eq!(stats.submitted, accepted, "{stats:?}");
            assert_eq!(fate(0) + fate(3), state.0, "{stats:?}");
            assert_eq!(fate(1), stats.dropped, "{stats:?}");
            assert_eq!(fate(2), unapplied.len() as u64, "{stats:?}");
            assert_eq!(fate(4), 0, "{stats:?}");
            assert_eq!(
                state.0 + stats.dropped + unapplied.len() as u64,
                accepted,
                "{stats:?}"
            );
        }
    });
}

/// The queue's handle, for a commit job to submit with.
type HandleSlot = std::sync::Arc<std::sync::Mutex<Option<singular_queue::Handle<Submits>>>>;

/// Its first commit's job tells three commands to its own queue and reports the third's
/// fate; command 100 holds the worker in `apply` until released.
struct Submits {
    slot: HandleSlot,
    commits: u64,
    started: mpsc::Sender<()>,
    release: std::sync::Arc<std::sync::Mutex<mpsc::Receiver<()>>>,
    report: mpsc::Sender<&'static str>,
    started_rx: std::sync::Arc<std::sync::Mutex<mpsc::Receiver<()>>>,
}

impl StateMachine for Submits {
    type Command = u64;
    type Output = ();

    fn apply(&mut self, n: u64) {
        if n == 100 {
            self.started.send(()).unwrap();
            self.release.lock().unwrap().recv().unwrap();
        }
    }

    fn start_commit(&mut self, _: BatchInfo) -> Commit {
        self.commits += 1;
        if self.commits != 1 {
            return Commit::done(Ok(()));
        }
        let handle = self.slot.lock().unwrap().clone().unwrap();
        let (report, started) = (self.report.clone(), std::sync::Arc::clone(&self.started_rx));
        Commit::later(move || {
            handle.tell(100).unwrap();
            started.lock().unwrap().recv().unwrap(); // the worker holds in apply(100)
            handle.tell(2).unwrap(); // the one place is now taken
            report.send("telling 3").unwrap();
            // The worker is held until the test hears the fate: waiting for room can only
            // time out, and must not be refused as a deadlock.
            let fate = match handle.tell_timeout(3, Duration::from_millis(20)) {
                Ok(()) => "accepted",
                Err(SubmitError::Timeout(_)) => "timed out",
                Err(SubmitError::Deadlock(_)) => "Deadlock",
                Err(_) => "other refusal",
            };
            report.send(fate).unwrap();
            Ok(())
        })
    }
}

/// A commit job that waits for room in its own queue is not refused as a deadlock: the
/// worker makes room whatever the commit threads do (it waits for them only when finishing,
/// and then the queue is closed, which ends any wait for room). It was refused with
/// `Deadlock`, which misnames the command's fate.
#[test]
fn a_commit_job_waiting_for_room_in_its_own_queue_is_not_a_deadlock() {
    within(Duration::from_secs(20), || {
        let slot: HandleSlot = Default::default();
        let (started, started_rx) = mpsc::channel();
        let (release_tx, release) = mpsc::channel();
        let (report, reports) = mpsc::channel();
        let queue = SingularQueue::builder(Submits {
            slot: std::sync::Arc::clone(&slot),
            commits: 0,
            started,
            release: std::sync::Arc::new(std::sync::Mutex::new(release)),
            report,
            started_rx: std::sync::Arc::new(std::sync::Mutex::new(started_rx)),
        })
        .capacity(1)
        .reply_mode(ReplyMode::AfterBatch)
        .commit_threads(2)
        .spawn()
        .unwrap();
        *slot.lock().unwrap() = Some(queue.handle());
        queue.tell(1).unwrap();
        assert_eq!(reports.recv(), Ok("telling 3"));
        let fate = reports.recv().unwrap();
        release_tx.send(()).unwrap();
        slot.lock().unwrap().take();
        queue.shutdown().unwrap();
        assert_eq!(
            fate, "timed out",
            "command 3, told by a commit job while the queue was full"
        );
    });
}
