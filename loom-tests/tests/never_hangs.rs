//! Loom models of the protocols added by the "never hangs" review: a timed-out call's slot,
//! the wait-for check across queues, and an owner dropped on its own worker.
#![cfg(singular_queue_loom)]

use std::cell::Cell;

use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use singular_queue::{CallError, Handle, SingularQueue, StateMachine};
use singular_queue_loom_tests::{
    DEADLINE, PREEMPTION_BOUND, block_on, check_bounded as check, full_block_for_queue,
};

loom::thread_local! {
    /// Set on a worker thread by `on_start`.
    static ON_WORKER: Cell<bool> = Cell::new(false);
    /// Outputs dropped on this thread while it is not a worker.
    static DROPPED_HERE: Cell<usize> = Cell::new(0);
}

/// An output that records where it is dropped.
struct Traced;

impl Drop for Traced {
    fn drop(&mut self) {
        if !ON_WORKER.with(Cell::get) {
            DROPPED_HERE.with(|dropped| dropped.set(dropped.get() + 1));
        }
    }
}

struct Tracing;

impl StateMachine for Tracing {
    type Command = ();
    type Output = Traced;
    fn apply(&mut self, (): ()) -> Traced {
        Traced
    }
    fn on_start(&mut self) {
        ON_WORKER.with(|on| on.set(true));
    }
}

/// Item 7 of the review: a `call_timeout` that gave up never has the late output dropped on
/// its own thread (where a panicking `Drop` would unwind into the caller, outside any catch).
/// Under loom a timed wait yields once and then times out, so the late completion lands at
/// every point after the caller gave up.
#[test]
fn a_timed_out_call_never_drops_the_late_output_on_its_own_thread() {
    check(
        "a_timed_out_call_never_drops_the_late_output_on_its_own_thread",
        PREEMPTION_BOUND,
        || {
            let queue = SingularQueue::builder(Tracing).capacity(1).spawn().unwrap();
            let received = match queue.call_timeout((), DEADLINE) {
                Ok(output) => {
                    drop(output); // ours to drop: the call returned it
                    1
                }
                Err(error) => {
                    assert!(matches!(error, CallError::ReplyTimeout), "{error:?}");
                    0
                }
            };
            queue.shutdown().unwrap();
            assert_eq!(DROPPED_HERE.with(Cell::get), received);
        },
    );
}

/// Calls the peer queue from `apply`; records what the inner call returned.
struct Peer {
    peer: Arc<Mutex<Option<Handle<Peer>>>>,
    inner: Arc<Mutex<Vec<Result<u32, bool>>>>,
}

impl StateMachine for Peer {
    /// `true`: call the peer with `false`; `false`: just answer.
    type Command = bool;
    type Output = u32;
    fn apply(&mut self, call_peer: bool) -> u32 {
        if !call_peer {
            return 1;
        }
        let peer = self.peer.lock().unwrap().clone().expect("peer set");
        let outcome = peer.call(false).map_err(|error| {
            assert!(error.is_deadlock(), "{error:?}");
            assert_eq!(error.into_inner(), Some(false), "handed back");
            true
        });
        self.inner.lock().unwrap().push(outcome);
        2
    }
}

/// Hazard 11: A's worker calls B while B's worker calls A. Whatever the interleaving, nobody
/// hangs: when the two calls overlap, the second to wait is refused with its command back,
/// and the first completes once the refused one's `apply` returns.
#[test]
fn two_workers_calling_each_other_never_deadlock() {
    check("two_workers_calling_each_other_never_deadlock", 2, || {
        let inner = Arc::new(Mutex::new(Vec::new()));
        let (to_b, to_a) = (Arc::new(Mutex::new(None)), Arc::new(Mutex::new(None)));
        let spawn = |peer: &Arc<Mutex<Option<Handle<Peer>>>>| {
            SingularQueue::builder(Peer {
                peer: Arc::clone(peer),
                inner: Arc::clone(&inner),
            })
            .capacity(1)
            .spawn()
            .unwrap()
        };
        let (a, b) = (spawn(&to_b), spawn(&to_a));
        *to_b.lock().unwrap() = Some(b.handle());
        *to_a.lock().unwrap() = Some(a.handle());
        // Both outer commands are submitted before either is waited for, so the two workers
        // may run them at once, with this thread the only other: three threads in all.
        let (outer_a, outer_b) = (a.submit(true).unwrap(), b.submit(true).unwrap());
        assert_eq!(outer_a.wait().unwrap(), 2);
        assert_eq!(outer_b.wait().unwrap(), 2);
        // Break the handle cycle before the queues go.
        let (last_a, last_b) = (a.handle(), b.handle());
        a.shutdown().unwrap();
        b.shutdown().unwrap();
        to_a.lock().unwrap().take();
        to_b.lock().unwrap().take();
        drop((last_a, last_b));
        let inner = inner.lock().unwrap();
        assert_eq!(inner.len(), 2);
        // At most one refusal: the first of two overlapping waits is never refused.
        assert!(inner.iter().filter(|outcome| outcome.is_err()).count() <= 1);
    });
}

/// Holds its own queue's owner, and lets it go when told to.
struct SelfOwned {
    owner: Arc<Mutex<Option<SingularQueue<SelfOwned>>>>,
    log: Arc<(Mutex<Vec<u32>>, Condvar)>,
}

impl StateMachine for SelfOwned {
    /// 0: drop the owner; anything else: record it.
    type Command = u32;
    type Output = ();
    fn apply(&mut self, n: u32) {
        if n == 0 {
            let owner = self.owner.lock().unwrap().take();
            drop(owner); // the queue's last owner, dropped on its own worker
        } else {
            self.log.0.lock().unwrap().push(n);
        }
    }
    fn on_stop(&mut self) {
        self.log.0.lock().unwrap().push(u32::MAX);
        self.log.1.notify_all();
    }
}

/// Hazard 10: the owner dropped inside `apply`, racing a submitter on another thread with the
/// queue full. No hang; the command that dropped the owner completes normally; every command
/// accepted is applied before `on_stop`; a refused one comes back; the worker exits alone.
#[test]
fn an_owner_dropped_on_its_own_worker_stops_the_queue_without_losing_a_command() {
    check(
        "an_owner_dropped_on_its_own_worker_stops_the_queue_...",
        2,
        || {
            let owner = Arc::new(Mutex::new(None));
            let log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
            let queue = SingularQueue::builder(SelfOwned {
                owner: Arc::clone(&owner),
                log: Arc::clone(&log),
            })
            .capacity(1)
            .spawn()
            .unwrap();
            let (handle, other) = (queue.handle(), queue.handle());
            *owner.lock().unwrap() = Some(queue);
            let submitter = thread::spawn(move || other.tell(7).map_err(|e| e.into_inner()));
            let dropped = handle.submit(0).unwrap();
            assert!(dropped.wait().is_ok(), "no invented panic");
            let told = submitter.join().unwrap();
            // The worker exits on its own, after `on_stop`.
            let mut stopped = log.0.lock().unwrap();
            while !stopped.contains(&u32::MAX) {
                stopped = log.1.wait(stopped).unwrap();
            }
            let log = stopped.clone();
            match told {
                Ok(()) => assert_eq!(log, [7, u32::MAX]),
                Err(back) => {
                    assert_eq!(back, 7);
                    assert_eq!(log, [u32::MAX]);
                }
            }
            assert!(handle.tell(8).unwrap_err().is_closed());
        },
    );
}

/// The timer (hazards 4, 9 and 10's cousin): an async submit waiting for room under
/// `BlockFor` on a full queue is woken by the freed slot or by its alarm, whichever comes
/// first, and gets in or gets its command back; its alarm is cancelled or fires, never both;
/// and once no alarm is armed the timer thread exits (loom fails a model whose threads never
/// finish). A second wait then starts the timer again.
#[test]
fn an_async_deadline_fires_or_room_comes_and_the_idle_timer_thread_exits() {
    check(
        "an_async_deadline_fires_or_room_comes_and_the_idle_timer_thread_exits",
        2,
        || {
            let queue = full_block_for_queue();
            let outcome = block_on(queue.tell_async(2)).map_err(|refused| {
                assert!(refused.is_timeout(), "{refused:?}");
                refused.into_inner()
            });
            let log = queue.shutdown().unwrap().0;
            match outcome {
                Ok(()) => assert_eq!(log, [1, 2]),
                Err(back) => {
                    assert_eq!(back, 2);
                    assert_eq!(log, [1]);
                }
            }
        },
    );
}

/// A task's future, kept where its waker can reach it.
type Parked = Arc<Mutex<Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>>>;

/// Drops the task it wakes, inline, as an executor cancelling a task from its waker may.
struct DroppingWaker(Parked);

impl std::task::Wake for DroppingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        let task = self.0.lock().unwrap().take();
        drop(task);
    }
}

/// Hazard 9 on the timer: a waker that drops its task inline (whose alarm then takes its own
/// lock) is woken outside every lock of the timer's, so the timer neither deadlocks nor stays
/// alive: once the task and its alarm are gone, the timer thread exits.
#[test]
fn a_waker_that_drops_its_task_inline_never_deadlocks_the_timer() {
    check(
        "a_waker_that_drops_its_task_inline_never_deadlocks_the_timer",
        2,
        || {
            let queue = full_block_for_queue();
            let handle = queue.handle();
            let parked: Parked = Arc::new(Mutex::new(None));
            let mut task: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> =
                Box::pin(async move {
                    let _ = handle.tell_async(2).await;
                });
            let waker =
                std::task::Waker::from(std::sync::Arc::new(DroppingWaker(Arc::clone(&parked))));
            let polled = task
                .as_mut()
                .poll(&mut std::task::Context::from_waker(&waker));
            if polled.is_pending() {
                *parked.lock().unwrap() = Some(task);
            }
            let log = queue.shutdown().unwrap().0;
            // The task got in, or was dropped unaccepted, or is still parked: nothing else.
            assert!(log == [1, 2] || log == [1], "{log:?}");
            drop(parked.lock().unwrap().take());
        },
    );
}

/// Runs each command, a closure, on the worker.
struct Exec;

type Job = Box<dyn FnOnce() -> u32 + Send>;

impl StateMachine for Exec {
    type Command = Job;
    type Output = u32;
    fn apply(&mut self, job: Job) -> u32 {
        job()
    }
}

/// No false alarm: A's worker waits on a ticket of B; B answers it, then applies a command
/// that calls A. A's wait is over (its edge is settled by the reply itself, even before A's
/// thread runs again), so the call is served, never refused as a deadlock.
#[test]
fn a_worker_whose_wait_was_answered_is_never_taken_for_blocked() {
    check(
        "a_worker_whose_wait_was_answered_is_never_taken_for_blocked",
        2,
        || {
            let (a, b) = (
                SingularQueue::builder(Exec).capacity(2).spawn().unwrap(),
                SingularQueue::builder(Exec).capacity(2).spawn().unwrap(),
            );
            let (a_in_b, b_in_a) = (a.handle(), b.handle());
            let outer = a
                .submit(Box::new(move || {
                    let answered = b_in_a.submit(Box::new(|| 1)).unwrap();
                    let calls_back: Job = Box::new(move || {
                        let called = a_in_b.call(Box::new(|| 2));
                        assert!(called.is_ok(), "refused: {called:?}");
                        3
                    });
                    b_in_a.tell(calls_back).unwrap();
                    answered.wait().unwrap()
                }))
                .unwrap();
            assert_eq!(outer.wait().unwrap(), 1);
            b.shutdown().unwrap();
            a.shutdown().unwrap();
        },
    );
}
