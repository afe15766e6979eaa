//! From the hostile review of `Handle::close`, `closed`, `shutdown_async`, poisoned workers
//! finishing alone, `len` from counters, and `ManualQueue` + `close`. Sections 1 to 4 each
//! failed before their fix (the comments say how); the rest held up.

mod support;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use singular_queue::{
    Block, CallError, DropOldest, OnPanic, SingularQueue, StateMachine, SubmitError, WaitError,
    model,
};
use support::{Op, Sum, within};

// ================================================================================================
// 1. `close()` returned before the queue was closed when another thread was mid-close.
// ================================================================================================

/// Two threads close the same queue at once. The promise: "later submits, through any handle,
/// are refused with `SubmitError::Closed`". Each closer, once its own `close()` has returned,
/// submits once and must be refused. The loser of the `closing.swap` returns at once, before
/// the winner has closed the gate, so its next submit is accepted.
#[test]
fn a_submit_after_close_returned_is_refused_even_when_another_thread_closes_at_once() {
    within(Duration::from_secs(60), || {
        let mut accepted_after_close = 0;
        let mut open_after_close = 0;
        let mut applied_total = 0;
        let mut accepted_total = 0;
        for _ in 0..20_000 {
            if open_after_close + accepted_after_close > 0 {
                break;
            }
            let queue = SingularQueue::builder(Sum::default())
                .capacity(4)
                .spawn()
                .unwrap();
            let barrier = Arc::new(Barrier::new(2));
            let closers: Vec<_> = (0..2)
                .map(|_| {
                    let (handle, barrier) = (queue.handle(), Arc::clone(&barrier));
                    thread::spawn(move || {
                        barrier.wait();
                        handle.close();
                        let open = !handle.is_closed();
                        let accepted = handle.tell(1).is_ok();
                        (open, accepted)
                    })
                })
                .collect();
            for closer in closers {
                let (open, accepted) = closer.join().unwrap();
                open_after_close += usize::from(open);
                accepted_after_close += usize::from(accepted);
                accepted_total += u64::from(accepted);
            }
            // Not lost, at least: what was accepted is applied.
            applied_total += queue.shutdown().unwrap().total;
        }
        assert_eq!(applied_total, accepted_total);
        assert_eq!(
            (open_after_close, accepted_after_close),
            (0, 0),
            "after its own close() returned, a handle saw the queue open {open_after_close} \
             times and had {accepted_after_close} submits accepted"
        );
    });
}

// ================================================================================================
// 2. `Stats::depth` counted the crate's own `Stop` messages as waiting commands.
// ================================================================================================

/// After a handle closed the queue, the worker finished alone, and the owner shut down, no
/// command waits anywhere: `depth` must be 0 (as `len()` is). The owner's `Stop`, sent to a
/// worker that already finished, stays in the channel for good and is counted as a command.
#[test]
fn depth_is_zero_after_close_then_shutdown() {
    within(Duration::from_secs(20), || {
        let queue = SingularQueue::builder(Sum::default())
            .capacity(4)
            .spawn()
            .unwrap();
        let handle = queue.handle();
        for _ in 0..10 {
            handle.tell(1).unwrap();
        }
        handle.close();
        model::block_on(handle.closed());
        assert_eq!(queue.shutdown().unwrap().total, 10);
        let stats = handle.stats();
        assert_eq!(handle.len(), 0);
        assert_eq!(
            stats.depth,
            0,
            "nothing waits after shutdown, but stats().depth = {} (len() = {})",
            stats.depth,
            handle.len()
        );
    });
}

/// While the worker is busy, a handle's close puts a `Stop` nudge in the channel; `depth`
/// ("commands waiting in the queue now") then counts it as a command: 3 commands wait, but
/// depth says 4.
#[test]
fn depth_counts_only_commands_while_a_close_is_pending() {
    within(Duration::from_secs(20), || {
        let (queue, release) = support::held_queue(8, Block);
        for n in 1..=3 {
            queue.tell(Op::Add(n)).unwrap();
        }
        queue.handle().close();
        let (depth, len) = (queue.stats().depth, queue.len());
        release.send(()).unwrap();
        model::block_on(queue.closed());
        assert_eq!(queue.shutdown().unwrap().applied, [1, 2, 3]);
        assert_eq!(
            (depth, len),
            (3, 3),
            "3 commands waited: stats().depth = {depth}, len() = {len}"
        );
    });
}

// ================================================================================================
// 3. `shutdown_async` polled on the queue's own worker: documented to panic, it hung.
// ================================================================================================

/// Runs `inside` on an `Exec` queue's own worker, handing it the queue's owner; returns what
/// the call that ran it heard, once the queue has finished.
fn with_the_owner_on_its_worker(
    inside: impl FnOnce(SingularQueue<support::Exec>) -> String + Send + 'static,
) -> Result<String, CallError<support::Job>> {
    support::quiet_panics();
    let queue = SingularQueue::new(support::Exec);
    let handle = queue.handle();
    let slot = Arc::new(Mutex::new(Some(queue)));
    let job: support::Job = Box::new(move || {
        let owner = slot.lock().unwrap().take().unwrap();
        inside(owner)
    });
    let outcome = handle.call(job);
    model::block_on(handle.closed());
    outcome
}

/// `shutdown_async` documents "Panics: where `shutdown` panics", i.e. on the queue's own
/// worker (inside `apply`). `shutdown` there panics at once (and drops the queue, which then
/// finishes on its own). `shutdown_async` used to close the queue and await `closed()`, which
/// can only complete once this very thread returns from `apply`: with any ordinary executor
/// it never returned, and the caller of the command waited forever.
#[test]
fn shutdown_async_polled_on_its_own_worker_panics_like_shutdown_instead_of_hanging() {
    within(Duration::from_secs(10), || {
        let outcome = with_the_owner_on_its_worker(|queue| {
            let _ = futures::executor::block_on(queue.shutdown_async());
            "returned".to_owned()
        });
        assert!(
            matches!(outcome, Err(CallError::Panicked(_))),
            "shutdown_async on the worker should panic as shutdown does"
        );
    });
}

/// The same, polled once by hand: the documented panic comes from the first poll, before the
/// queue is closed under the caller (it used to close the queue and return `Pending`).
#[test]
fn shutdown_async_first_poll_on_its_own_worker_panics() {
    within(Duration::from_secs(10), || {
        let outcome = with_the_owner_on_its_worker(|queue| {
            let mut future = pin!(queue.shutdown_async());
            let mut cx = Context::from_waker(Waker::noop());
            match future.as_mut().poll(&mut cx) {
                Poll::Pending => "pending".to_owned(),
                Poll::Ready(_) => "ready".to_owned(),
            }
        });
        assert!(
            matches!(outcome, Err(CallError::Panicked(_))),
            "expected the documented panic, got {:?}",
            outcome.map_err(|e| e.to_string())
        );
    });
}

// ================================================================================================
// 4. The owner dropped in `on_stop` after a handle's close: the orphaned worker's state is
//    dropped outside the crate's catch, by std, where a panic aborts the process.
// ================================================================================================

/// Holds its own owner; lets it go in `on_stop`; panics when dropped.
struct OwnsItself {
    owner: Arc<Mutex<Option<SingularQueue<OwnsItself>>>>,
    worker_tid: Arc<AtomicU32>,
    dropping: mpsc::Sender<()>,
}

impl StateMachine for OwnsItself {
    type Command = u64;
    type Output = u64;
    fn apply(&mut self, n: u64) -> u64 {
        n
    }
    fn on_start(&mut self) {
        self.worker_tid
            .store(support::current_tid(), Ordering::SeqCst);
    }
    fn on_stop(&mut self) {
        // The last owner, let go on the worker: the queue is orphaned here.
        drop(self.owner.lock().unwrap().take());
    }
}

impl Drop for OwnsItself {
    fn drop(&mut self) {
        let _ = self.dropping.send(());
        panic!("the state's Drop panicked");
    }
}

fn owner_dropped_in_on_stop_body() {
    support::quiet_panics();
    let owner = Arc::new(Mutex::new(None));
    let worker_tid = Arc::new(AtomicU32::new(0));
    let (dropping, dropped) = mpsc::channel();
    let queue = SingularQueue::new(OwnsItself {
        owner: Arc::clone(&owner),
        worker_tid: Arc::clone(&worker_tid),
        dropping,
    });
    let handle = queue.handle();
    assert_eq!(handle.call(5).unwrap(), 5);
    *owner.lock().unwrap() = Some(queue);
    handle.close();
    model::block_on(handle.closed());
    dropped.recv().unwrap();
    let tid = worker_tid.load(Ordering::SeqCst);
    support::wait_for("the worker thread exits", Duration::from_secs(10), || {
        support::thread_state(tid).is_none()
    });
}

/// An orphaned worker drops the state "under catch" ("Nobody will join this thread: the
/// state's and the commands' `Drop` is user code"). When the owner is let go in `on_stop` (a
/// path that only `Handle::close` opens: otherwise `on_stop` runs only while the owner shuts
/// down), `run` has read `is_orphaned()` before `on_stop` ran, so it returns the state to a
/// thread nobody joins; std drops it, and a panicking `Drop` there aborts the process.
#[test]
fn owner_dropped_in_on_stop_after_close_does_not_abort_the_process() {
    support::survives_in_a_child(
        "owner_dropped_in_on_stop_after_close_does_not_abort_the_process",
        owner_dropped_in_on_stop_body,
    );
}

// ================================================================================================
// What held up: races and accounting the review tried.
// ================================================================================================

/// Counts what it applies into a shared counter, so that the count survives a drop.
#[derive(Debug)]
struct Counted {
    applied: Arc<AtomicU64>,
    panic_on: Option<u64>,
}

impl StateMachine for Counted {
    type Command = u64;
    type Output = u64;
    fn apply(&mut self, n: u64) -> u64 {
        if self.panic_on == Some(n) {
            panic!("boom on {n}");
        }
        self.applied.fetch_add(1, Ordering::SeqCst) + 1
    }
}

#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    ok: u64,
    not_applied: u64,
    panicked: u64,
    closed: u64,
    other: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.not_applied += other.not_applied;
        self.panicked += other.panicked;
        self.closed += other.closed;
        self.other += other.other;
    }
    fn wait(&mut self, outcome: Result<u64, WaitError>) {
        match outcome {
            Ok(_) => self.ok += 1,
            Err(WaitError::NotApplied) => self.not_applied += 1,
            Err(WaitError::Panicked(_)) => self.panicked += 1,
            Err(_) => self.other += 1,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum OwnerEnd {
    Shutdown,
    ShutdownNow,
    Drop,
    ShutdownAsync,
}

/// Block submitters (threads) and async submitters (tasks) race a handle's close and the
/// owner's end, on a queue of capacity 2: every command is applied, reported not applied, or
/// handed back closed, exactly once, and the counters agree.
#[test]
fn close_racing_every_owner_end_with_blocked_and_async_submitters_accounts_for_everything() {
    within(Duration::from_secs(120), || {
        for round in 0..40 {
            let end = [
                OwnerEnd::Shutdown,
                OwnerEnd::ShutdownNow,
                OwnerEnd::Drop,
                OwnerEnd::ShutdownAsync,
            ][round % 4];
            let applied = Arc::new(AtomicU64::new(0));
            let queue = SingularQueue::builder(Counted {
                applied: Arc::clone(&applied),
                panic_on: None,
            })
            .capacity(2)
            .backpressure(Block)
            .spawn()
            .unwrap();
            let handle = queue.handle();
            let barrier = Arc::new(Barrier::new(6 + 2));
            let mut workers = Vec::new();
            for t in 0..6 {
                let (handle, barrier) = (queue.handle(), Arc::clone(&barrier));
                workers.push(thread::spawn(move || {
                    let mut tally = Tally::default();
                    let mut tickets = Vec::new();
                    for i in 0..300u64 {
                        if i == 20 {
                            barrier.wait();
                        }
                        let result = if t % 2 == 0 {
                            handle.submit(i + 1000)
                        } else {
                            model::block_on(handle.submit_async(i + 1000))
                        };
                        match result {
                            Ok(ticket) => tickets.push(ticket),
                            Err(SubmitError::Closed(n)) => {
                                assert_eq!(n, i + 1000);
                                tally.closed += 1;
                                break;
                            }
                            Err(other) => panic!("{other}"),
                        }
                    }
                    if tickets.len() < 20 {
                        barrier.wait();
                    }
                    for ticket in tickets {
                        tally.wait(ticket.wait());
                    }
                    tally
                }));
            }
            let closer = {
                let (handle, barrier) = (queue.handle(), Arc::clone(&barrier));
                thread::spawn(move || {
                    barrier.wait();
                    handle.close();
                    assert!(handle.is_closed());
                })
            };
            barrier.wait();
            let (returned, not_applied_back) = match end {
                OwnerEnd::Shutdown => (Some(queue.shutdown().unwrap()), 0),
                OwnerEnd::ShutdownNow => {
                    let (state, unapplied) = queue.shutdown_now().unwrap();
                    (Some(state), unapplied.len() as u64)
                }
                OwnerEnd::Drop => {
                    drop(queue);
                    (None, 0)
                }
                OwnerEnd::ShutdownAsync => {
                    (Some(model::block_on(queue.shutdown_async()).unwrap()), 0)
                }
            };
            closer.join().unwrap();
            let mut tally = Tally::default();
            for worker in workers {
                tally.add(worker.join().unwrap());
            }
            model::block_on(handle.closed());
            let stats = handle.stats();
            let applied = applied.load(Ordering::SeqCst);
            assert_eq!(tally.other + tally.panicked, 0, "{end:?} {tally:?}");
            assert_eq!(tally.ok, applied, "{end:?} {tally:?} {stats:?}");
            assert_eq!(tally.not_applied, not_applied_back, "{end:?} {tally:?}");
            assert_eq!(stats.applied, applied, "{end:?} {stats:?}");
            assert_eq!(stats.not_applied, not_applied_back, "{end:?} {stats:?}");
            assert_eq!(
                stats.submitted,
                applied + not_applied_back,
                "{end:?} {stats:?}"
            );
            assert_eq!(stats.refused_closed, tally.closed, "{end:?} {stats:?}");
            assert_eq!(handle.len(), 0);
            drop(returned);
        }
    });
}

/// A job that closes its own queue from inside `apply` while threads and tasks wait for room
/// in a full queue: the waiters are refused (closed), everything accepted is applied.
#[test]
fn close_inside_apply_with_waiters_for_room() {
    within(Duration::from_secs(60), || {
        for _ in 0..30 {
            let queue = SingularQueue::builder(support::Exec)
                .capacity(2)
                .backpressure(Block)
                .spawn()
                .unwrap();
            let applied = Arc::new(AtomicU64::new(0));
            let (started_tx, started) = mpsc::channel();
            let (release_tx, release) = mpsc::channel::<()>();
            let closer = queue.handle();
            let closing: support::Job = Box::new(move || {
                started_tx.send(()).unwrap();
                release.recv().unwrap();
                closer.close();
                "closed".into()
            });
            let first = queue.submit(closing).unwrap();
            started.recv().unwrap();
            let job = |applied: &Arc<AtomicU64>| -> support::Job {
                let applied = Arc::clone(applied);
                Box::new(move || {
                    applied.fetch_add(1, Ordering::SeqCst);
                    "one".into()
                })
            };
            let waiters: Vec<_> = (0..8)
                .map(|i| {
                    let (handle, applied) = (queue.handle(), Arc::clone(&applied));
                    thread::spawn(move || {
                        let mut ok = 0u64;
                        let mut closed = 0u64;
                        for _ in 0..50 {
                            let result = if i % 2 == 0 {
                                handle.submit(job(&applied))
                            } else {
                                model::block_on(handle.submit_async(job(&applied)))
                            };
                            match result {
                                Ok(ticket) => {
                                    assert_eq!(ticket.wait().unwrap(), "one");
                                    ok += 1;
                                }
                                Err(SubmitError::Closed(_)) => closed += 1,
                                Err(other) => panic!("{other}"),
                            }
                        }
                        (ok, closed)
                    })
                })
                .collect();
            release_tx.send(()).unwrap();
            assert_eq!(first.wait().unwrap(), "closed");
            let (ok, closed) = waiters
                .into_iter()
                .map(|w| w.join().unwrap())
                .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
            model::block_on(queue.closed());
            assert_eq!(ok + closed, 400);
            assert_eq!(applied.load(Ordering::SeqCst), ok);
            let stats = queue.stats();
            assert_eq!(stats.submitted, ok + 1);
            assert_eq!(stats.applied, ok + 1);
            assert_eq!(stats.refused_closed, closed);
            queue.shutdown().unwrap();
        }
    });
}

/// A poisoning panic while threads and tasks wait for room, with a handle's close racing it:
/// every waiter is refused or its command applied / not applied, and the counters agree.
#[test]
fn poisoning_panic_with_waiters_for_room_and_a_racing_close() {
    within(Duration::from_secs(60), || {
        support::quiet_panics();
        for round in 0..30u64 {
            let applied = Arc::new(AtomicU64::new(0));
            let queue = SingularQueue::builder(Counted {
                applied: Arc::clone(&applied),
                panic_on: Some(7),
            })
            .capacity(2)
            .on_panic(OnPanic::Stop)
            .spawn()
            .unwrap();
            let handle = queue.handle();
            let threads: Vec<_> = (0..6u64)
                .map(|t| {
                    let handle = queue.handle();
                    thread::spawn(move || {
                        let mut tally = Tally::default();
                        let mut tickets = Vec::new();
                        for i in 0..100u64 {
                            let n = 100 + t * 1000 + i;
                            let n = if t == 0 && i == 30 { 7 } else { n };
                            let result = if t % 2 == 0 {
                                handle.submit(n)
                            } else {
                                model::block_on(handle.submit_async(n))
                            };
                            match result {
                                Ok(ticket) => tickets.push(ticket),
                                Err(SubmitError::Closed(_)) => {
                                    tally.closed += 1;
                                    break;
                                }
                                Err(other) => panic!("{other}"),
                            }
                        }
                        if round % 2 == 0 && t == 3 {
                            handle.close();
                        }
                        for ticket in tickets {
                            tally.wait(ticket.wait());
                        }
                        tally
                    })
                })
                .collect();
            let mut tally = Tally::default();
            for t in threads {
                tally.add(t.join().unwrap());
            }
            model::block_on(handle.closed());
            let stats = queue.stats();
            assert_eq!(tally.other, 0, "{tally:?}");
            assert_eq!(tally.ok, applied.load(Ordering::SeqCst));
            assert_eq!(stats.applied, tally.ok, "{stats:?} {tally:?}");
            assert_eq!(stats.panicked, tally.panicked, "{stats:?} {tally:?}");
            assert_eq!(stats.not_applied, tally.not_applied, "{stats:?} {tally:?}");
            assert_eq!(stats.refused_closed, tally.closed, "{stats:?} {tally:?}");
            assert_eq!(
                stats.submitted,
                stats.applied + stats.panicked + stats.not_applied,
                "{stats:?}"
            );
            assert_eq!(handle.len(), 0);
            match queue.shutdown() {
                Ok(_) => assert_eq!(tally.panicked, 0),
                Err(poisoned) => {
                    assert_eq!(tally.panicked, 1);
                    assert_eq!(poisoned.unapplied().len() as u64, tally.not_applied);
                }
            }
        }
    });
}

/// Under `DropOldest`, `on_evict` closes the queue; many submitters: every command is applied,
/// evicted (told `Dropped`, handed to `on_evict`) or refused closed, exactly once.
#[test]
fn close_inside_on_evict_under_drop_oldest() {
    within(Duration::from_secs(60), || {
        for _ in 0..20 {
            let evicted = Arc::new(AtomicU64::new(0));
            let slot: Arc<std::sync::OnceLock<singular_queue::Handle<Sum>>> =
                Arc::new(std::sync::OnceLock::new());
            let queue = {
                let (evicted, slot) = (Arc::clone(&evicted), Arc::clone(&slot));
                SingularQueue::builder(Sum::default())
                    .capacity(2)
                    .backpressure(DropOldest)
                    .on_evict(move |_| {
                        if evicted.fetch_add(1, Ordering::SeqCst) == 50 {
                            slot.get().unwrap().close();
                        }
                    })
                    .spawn()
                    .unwrap()
            };
            slot.set(queue.handle()).ok().unwrap();
            let threads: Vec<_> = (0..6)
                .map(|_| {
                    let handle = queue.handle();
                    thread::spawn(move || {
                        let (mut ok, mut dropped, mut closed, mut tickets) = (0, 0, 0, Vec::new());
                        for _ in 0..2000 {
                            match handle.submit(1) {
                                Ok(ticket) => tickets.push(ticket),
                                Err(SubmitError::Closed(1)) => {
                                    closed += 1;
                                    break;
                                }
                                Err(other) => panic!("{other}"),
                            }
                        }
                        for ticket in tickets {
                            match ticket.wait() {
                                Ok(_) => ok += 1,
                                Err(WaitError::Dropped) => dropped += 1,
                                Err(other) => panic!("{other}"),
                            }
                        }
                        (ok, dropped, closed)
                    })
                })
                .collect();
            let (mut ok, mut dropped, mut closed) = (0, 0, 0);
            for t in threads {
                let (a, b, c) = t.join().unwrap();
                ok += a;
                dropped += b;
                closed += c;
            }
            model::block_on(queue.closed());
            queue.wait_until_quiet().unwrap();
            let stats = queue.stats();
            assert_eq!(stats.dropped, dropped, "{stats:?}");
            assert_eq!(evicted.load(Ordering::SeqCst), dropped);
            assert_eq!(stats.applied, ok, "{stats:?}");
            assert_eq!(stats.refused_closed, closed, "{stats:?}");
            assert_eq!(stats.submitted, ok + dropped, "{stats:?}");
            assert_eq!(queue.len(), 0);
            assert_eq!(queue.shutdown().unwrap().count, ok);
        }
    });
}

/// A manual queue closed from its own thread, inside `apply` during a step, and from another
/// thread between steps: steps still serve what was accepted, and nothing more comes in.
#[test]
fn manual_queue_closed_inside_its_own_step() {
    within(Duration::from_secs(20), || {
        for capacity in [1, 2, 8] {
            let mut queue = SingularQueue::builder(support::Exec)
                .capacity(capacity)
                .max_batch(4)
                .manual();
            let handle = queue.handle();
            let closer = handle.clone();
            let closing = queue
                .submit(Box::new(move || {
                    closer.close();
                    assert!(closer.is_closed());
                    match closer.tell(Box::new(|| "late".into())) {
                        Err(SubmitError::Closed(_)) => "closed".into(),
                        other => format!("{:?}", other.is_ok()),
                    }
                }))
                .unwrap();
            assert_eq!(queue.step(), 1);
            assert_eq!(closing.wait().unwrap(), "closed");
            assert!(matches!(
                queue.submit(Box::new(|| "x".into())),
                Err(SubmitError::Closed(_))
            ));
            assert_eq!(queue.run_until_idle(), 0);
            assert_eq!(handle.len(), 0);
            let stats = queue.stats();
            assert_eq!(
                (stats.submitted, stats.applied, stats.refused_closed),
                (1, 1, 2)
            );
            queue.shutdown().unwrap();
            model::block_on(handle.closed());
        }
    });
}

/// `len()` sampled under load and a close never exceeds the capacity; once closed it is 0.
#[test]
fn len_stays_within_capacity_through_load_and_close() {
    within(Duration::from_secs(60), || {
        for policy in 0..2 {
            let builder = SingularQueue::builder(Sum::default()).capacity(3);
            let queue = if policy == 0 {
                builder.backpressure(DropOldest).spawn().unwrap()
            } else {
                builder.backpressure(Block).spawn().unwrap()
            };
            let stop = Arc::new(AtomicBool::new(false));
            let sampler = {
                let (handle, stop) = (queue.handle(), Arc::clone(&stop));
                thread::spawn(move || {
                    let mut max = 0;
                    while !stop.load(Ordering::SeqCst) {
                        max = max.max(handle.len());
                    }
                    max
                })
            };
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let handle = queue.handle();
                    thread::spawn(move || {
                        let mut accepted = 0;
                        for _ in 0..20_000 {
                            match handle.tell(1) {
                                Ok(()) => accepted += 1,
                                Err(SubmitError::Closed(1)) => break,
                                Err(other) => panic!("{other}"),
                            }
                        }
                        accepted
                    })
                })
                .collect();
            queue.handle().tell(0).unwrap();
            queue.close();
            let accepted: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
            model::block_on(queue.closed());
            stop.store(true, Ordering::SeqCst);
            assert!(sampler.join().unwrap() <= 3);
            assert_eq!(queue.len(), 0);
            assert!(queue.is_empty());
            let stats = queue.stats();
            assert_eq!(stats.submitted, accepted + 1);
            assert_eq!(stats.applied + stats.dropped, accepted + 1);
            queue.shutdown().unwrap();
        }
    });
}

/// Hooks: a close in `on_start`, and an `on_stop` that panics after a handle's close; the
/// worker finishes, `closed()` resolves, the owner gets the poison.
#[test]
fn close_in_on_start_and_a_panicking_on_stop_after_close() {
    struct Hooks {
        close_in_start: Arc<std::sync::OnceLock<singular_queue::Handle<Hooks>>>,
        started: mpsc::Sender<()>,
        go: Mutex<mpsc::Receiver<()>>,
        panic_in_stop: bool,
        total: u64,
    }
    impl StateMachine for Hooks {
        type Command = u64;
        type Output = u64;
        fn apply(&mut self, n: u64) -> u64 {
            self.total += n;
            self.total
        }
        fn on_start(&mut self) {
            self.started.send(()).unwrap();
            self.go.lock().unwrap().recv().unwrap();
            if let Some(handle) = self.close_in_start.get() {
                handle.close();
            }
        }
        fn on_stop(&mut self) {
            if self.panic_in_stop {
                panic!("on_stop boom");
            }
        }
    }
    within(Duration::from_secs(20), || {
        support::quiet_panics();
        for case in 0..2 {
            let slot = Arc::new(std::sync::OnceLock::new());
            let (started_tx, started) = mpsc::channel();
            let (go_tx, go) = mpsc::channel();
            let queue = SingularQueue::new(Hooks {
                close_in_start: Arc::clone(&slot),
                started: started_tx,
                go: Mutex::new(go),
                panic_in_stop: case == 1,
                total: 0,
            });
            started.recv().unwrap();
            let handle = queue.handle();
            let tickets: Vec<_> = (1..=3).map(|n| handle.submit(n).unwrap()).collect();
            if case == 0 {
                slot.set(handle.clone()).ok().unwrap();
            } else {
                handle.close();
            }
            go_tx.send(()).unwrap();
            model::block_on(handle.closed());
            for (i, ticket) in tickets.into_iter().enumerate() {
                assert!(ticket.wait().is_ok(), "ticket {i}");
            }
            assert!(handle.tell(9).unwrap_err().is_closed());
            match (case, queue.shutdown()) {
                (0, Ok(state)) => assert_eq!(state.total, 6),
                (1, Err(poisoned)) => assert!(poisoned.message().contains("on_stop boom")),
                (_, other) => panic!("case {case}: {:?}", other.is_ok()),
            }
        }
    });
}

/// `closed()` futures registered before and after the close, on threads and tokio tasks,
/// with a future re-polled by a different waker: all complete.
#[test]
fn closed_futures_before_and_after_all_complete() {
    within(Duration::from_secs(30), || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        for _ in 0..50 {
            let (queue, release) = support::held_queue(4, Block);
            let handle = queue.handle();
            let mut early: Vec<_> = (0..4)
                .map(|_| {
                    let handle = handle.clone();
                    runtime.spawn(async move { handle.closed().await })
                })
                .collect();
            // One future polled first with a no-op waker, then moved to a real executor.
            let (polled_tx, polled) = mpsc::channel();
            let moved = {
                let handle = handle.clone();
                thread::spawn(move || {
                    let mut future = Box::pin(handle.closed());
                    let mut cx = Context::from_waker(Waker::noop());
                    assert!(future.as_mut().poll(&mut cx).is_pending());
                    polled_tx.send(()).unwrap();
                    model::block_on(future);
                })
            };
            polled.recv().unwrap();
            queue.tell(Op::Add(1)).unwrap();
            handle.close();
            early.extend((0..4).map(|_| {
                let handle = handle.clone();
                runtime.spawn(async move { handle.closed().await })
            }));
            release.send(()).unwrap();
            for task in early {
                runtime.block_on(task).unwrap();
            }
            moved.join().unwrap();
            assert_eq!(queue.shutdown().unwrap().applied, [1]);
            model::block_on(handle.closed());
        }
    });
}

/// `shutdown_async` dropped after its first poll (on an ordinary thread): the queue is closed,
/// the drop joins the worker, every accepted command is applied.
#[test]
fn shutdown_async_cancelled_after_first_poll_applies_everything() {
    within(Duration::from_secs(30), || {
        for _ in 0..50 {
            let (queue, release) = support::held_queue(8, Block);
            let handle = queue.handle();
            let tickets: Vec<_> = (1..=5)
                .map(|n| handle.submit(Op::Add(n)).unwrap())
                .collect();
            let mut future = Box::pin(queue.shutdown_async());
            let mut cx = Context::from_waker(Waker::noop());
            assert!(future.as_mut().poll(&mut cx).is_pending());
            assert!(handle.is_closed());
            let releaser = thread::spawn(move || release.send(()).unwrap());
            drop(future);
            releaser.join().unwrap();
            for (i, ticket) in tickets.into_iter().enumerate() {
                assert_eq!(ticket.wait().unwrap(), i + 1);
            }
            model::block_on(handle.closed());
            let stats = handle.stats();
            assert_eq!((stats.submitted, stats.applied), (6, 6));
        }
    });
}

/// Capacity 1, `DropOldest`, an idle worker asleep on the empty channel: the close's nudge
/// may be the one command-less message an evicting submitter throws away. The worker must
/// still finish, and every command be applied, evicted or refused.
#[test]
fn drop_oldest_submitters_stealing_the_close_nudge_never_hang_the_worker() {
    within(Duration::from_secs(60), || {
        for _ in 0..300 {
            let queue = SingularQueue::builder(Sum::default())
                .capacity(1)
                .backpressure(DropOldest)
                .spawn()
                .unwrap();
            let handle = queue.handle();
            let barrier = Arc::new(Barrier::new(4));
            let threads: Vec<_> = (0..3)
                .map(|_| {
                    let (handle, barrier) = (queue.handle(), Arc::clone(&barrier));
                    thread::spawn(move || {
                        barrier.wait();
                        let mut accepted = 0;
                        while handle.tell(1).is_ok() {
                            accepted += 1;
                        }
                        accepted
                    })
                })
                .collect();
            barrier.wait();
            handle.close();
            let accepted: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
            model::block_on(handle.closed());
            let stats = handle.stats();
            assert_eq!(stats.submitted, accepted);
            assert_eq!(stats.applied + stats.dropped, accepted, "{stats:?}");
            assert_eq!(stats.refused_closed, 3);
            assert_eq!(queue.shutdown().unwrap().count, stats.applied);
        }
    });
}
