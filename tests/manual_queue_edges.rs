//! The hand-stepped queue and `singular_queue::model` at their edges, from the hostile review:
//! async waits on the stepping thread, drops at thread exit and during unwinding, stale worker
//! marks, accounting after every kind of refusal.

mod support;

use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use singular_queue::{
    CallError, Handle, ManualQueue, OnPanic, SingularQueue, StateMachine, SubmitError, WaitError,
    model,
};
use support::{Op, Probe, Sum, quiet_panics, within};

const LIMIT: Duration = Duration::from_secs(10);

// === `step` and what the batch submits ===

/// Counts down by telling its own queue the next number.
struct Countdown {
    me: Arc<Mutex<Option<Handle<Countdown>>>>,
    seen: Vec<u64>,
}

impl StateMachine for Countdown {
    type Command = u64;
    type Output = ();
    fn apply(&mut self, n: u64) {
        self.seen.push(n);
        if n > 0 {
            let me = self.me.lock().unwrap().clone().unwrap();
            me.tell(n - 1).unwrap();
        }
    }
}

/// A step is one batch, as on a worker thread: what `apply` submits to its own queue joins
/// the batch if it arrives before the batch is full; `max_batch(1)` steps one at a time.
#[test]
fn what_a_batch_submits_joins_it_unless_the_batch_is_full() {
    for (max_batch, taken, seen) in [(128, 4, vec![3, 2, 1, 0]), (1, 1, vec![3])] {
        let me = Arc::new(Mutex::new(None));
        let mut queue = SingularQueue::builder(Countdown {
            me: Arc::clone(&me),
            seen: Vec::new(),
        })
        .max_batch(max_batch)
        .manual();
        *me.lock().unwrap() = Some(queue.handle());
        queue.tell(3).unwrap();
        assert_eq!(queue.step(), taken);
        assert_eq!(queue.state().seen, seen);
        assert_eq!(queue.run_until_idle(), 4 - taken);
        me.lock().unwrap().take();
    }
}

// === async on the stepping thread ===

/// The crate's own executor, `model::block_on`, on a ticket of the stepping thread's own
/// queue: only a step could complete it, and none can come. It panics, naming why, instead of
/// sleeping forever.
#[test]
fn model_block_on_a_ticket_of_the_stepping_threads_own_queue_panics_not_hangs() {
    within(LIMIT, || {
        quiet_panics();
        let queue = SingularQueue::builder(Sum::default()).manual();
        let ticket = queue.submit(1).unwrap();
        let refused =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model::block_on(ticket)));
        let message = refused.unwrap_err();
        let message = message.downcast_ref::<&str>().copied().unwrap_or_default();
        assert!(message.contains("would sleep forever"), "{message}");
        drop(queue);
    });
}

/// Calls a manual queue from a spawned queue's worker.
struct CallsManual {
    to: Handle<Sum>,
    answers: mpsc::Sender<Result<u64, String>>,
}

impl StateMachine for CallsManual {
    type Command = u64;
    type Output = u64;
    fn apply(&mut self, n: u64) -> u64 {
        let answer = self.to.call(n).map_err(|e| e.to_string());
        let _ = self.answers.send(answer);
        n
    }
}

/// A cycle through a spawned queue, async on the stepping thread: the spawned worker waits
/// for the manual queue; the stepping thread's blocking `call` to the spawned queue is refused
/// (`CallError::Deadlock`), but `model::block_on(call_async(..))` of the same call sleeps
/// forever: the spawned worker waits for a step, the stepping thread for the spawned worker.
#[test]
fn model_block_on_call_async_closing_a_cycle_from_the_stepping_thread_is_refused_not_hung() {
    within(LIMIT, || {
        let mut manual = SingularQueue::builder(Sum::default()).manual();
        let (answers, answered) = mpsc::channel();
        let spawned = SingularQueue::new(CallsManual {
            to: manual.handle(),
            answers,
        });
        spawned.tell(1).unwrap();
        // The spawned worker's call is in the manual queue: its worker now waits for it.
        support::wait_for("the spawned worker's call accepted", LIMIT, || {
            manual.stats().submitted == 1
        });
        // The blocking call is refused, as documented...
        assert!(matches!(spawned.call(2), Err(CallError::Deadlock(2))));
        // ...the async one, on the crate's own executor, must not hang either.
        let outcome = model::block_on(spawned.call_async(3));
        assert!(
            matches!(outcome, Err(CallError::Deadlock(3))),
            "{outcome:?}"
        );
        manual.run_until_idle();
        assert_eq!(answered.recv().unwrap(), Ok(1));
        drop(spawned);
    });
}

// === no stale worker mark ===

/// After its manual queue is dropped, the thread serves nothing: a call through a surviving
/// handle is `Closed` with the command, not `Reentrant`.
#[test]
fn after_the_manual_queue_is_dropped_its_thread_is_no_longer_its_worker() {
    within(LIMIT, || {
        let queue = SingularQueue::builder(Sum::default()).manual();
        let handle = queue.handle();
        drop(queue);
        assert!(matches!(handle.call(1), Err(CallError::Closed(1))));
        let async_call = model::block_on(handle.call_async(2));
        assert!(
            matches!(async_call, Err(CallError::Closed(2))),
            "{async_call:?}"
        );
    });
}

/// Two manual queues on one thread; dropping the first leaves the thread the second's worker.
#[test]
fn dropping_one_of_two_manual_queues_keeps_the_other_refusing() {
    within(LIMIT, || {
        let first = SingularQueue::builder(Sum::default()).manual();
        let second = SingularQueue::builder(Sum::default()).manual();
        drop(first);
        let mut ticket = second.submit(1).unwrap();
        assert_eq!(
            ticket.wait_timeout(Duration::from_secs(3600)),
            Some(Err(WaitError::Deadlock))
        );
        assert!(matches!(
            second.handle().call(2),
            Err(CallError::Reentrant(2))
        ));
        assert_eq!(second.shutdown().unwrap().total, 1);
        assert_eq!(ticket.wait(), Ok(1));
    });
}

// === drop and shutdown with others waiting ===

/// Dropped while one thread waits for its output and another waits for room: the first is
/// answered, the second handed its command back; nothing hangs, and the sums add up.
#[test]
fn dropped_while_callers_wait_for_outputs_and_for_room() {
    within(LIMIT, || {
        let queue = SingularQueue::builder(Sum::default()).capacity(1).manual();
        let stats = queue.handle();
        let (first_h, second_h) = (queue.handle(), queue.handle());
        let caller = thread::spawn(move || first_h.call(5));
        support::wait_for("the first call accepted", LIMIT, || {
            stats.stats().submitted == 1
        });
        let (announce, announced) = mpsc::channel();
        let blocked = thread::spawn(move || {
            announce.send(support::current_tid()).unwrap();
            second_h.call(7)
        });
        let tid = announced.recv().unwrap();
        support::wait_until_asleep(&[tid]);
        drop(queue);
        assert_eq!(caller.join().unwrap(), Ok(5));
        assert!(matches!(blocked.join().unwrap(), Err(CallError::Closed(7))));
        let s = stats.stats();
        assert_eq!(
            s.submitted,
            s.applied + s.panicked + s.dropped + s.not_applied
        );
    });
}

/// The owner panics with the queue alive (a failing test); the drop during unwinding serves
/// what was accepted, including a command whose `apply` panics, and tells every waiter.
#[test]
fn dropped_during_unwinding_with_a_panicking_command_tells_every_waiter() {
    quiet_panics();
    within(LIMIT, || {
        let (tickets_tx, tickets) = mpsc::channel();
        let outcome = std::panic::catch_unwind(move || {
            let queue = SingularQueue::builder(Probe::default())
                .on_panic(OnPanic::Stop)
                .manual();
            tickets_tx.send(queue.submit(Op::Add(1)).unwrap()).unwrap();
            tickets_tx.send(queue.submit(Op::Panic).unwrap()).unwrap();
            tickets_tx.send(queue.submit(Op::Add(2)).unwrap()).unwrap();
            panic!("the owner's test failed");
        });
        assert!(outcome.is_err());
        let results: Vec<_> = tickets.iter().map(|t| t.wait()).collect();
        assert_eq!(results[0], Ok(1));
        assert!(matches!(results[1], Err(WaitError::Panicked(_))));
        assert_eq!(results[2], Err(WaitError::NotApplied));
    });
}

// === spawned queues dropped or shut down from a manual queue's step ===

enum Cmd {
    Add(u64),
    DropSpawned,
}

/// Holds a spawned queue whose worker calls back into this manual queue.
struct Holder {
    spawned: Option<SingularQueue<CallsManual>>,
    total: u64,
}

impl StateMachine for Holder {
    type Command = Cmd;
    type Output = u64;
    fn apply(&mut self, cmd: Cmd) -> u64 {
        match cmd {
            Cmd::Add(n) => self.total += n,
            Cmd::DropSpawned => drop(self.spawned.take()),
        }
        self.total
    }
}

/// Adapts `Holder` to the `Sum` handle the spawned queue calls: a second manual queue.
#[test]
fn a_spawned_queue_dropped_in_a_step_while_its_worker_calls_the_stepping_thread() {
    within(LIMIT, || {
        let mut target = SingularQueue::builder(Sum::default()).max_batch(1).manual();
        let (answers, answered) = mpsc::channel();
        let spawned = SingularQueue::new(CallsManual {
            to: target.handle(),
            answers,
        });
        let spawned_h = spawned.handle();
        let mut holder = SingularQueue::builder(Holder {
            spawned: Some(spawned),
            total: 0,
        })
        .manual();
        holder.tell(Cmd::DropSpawned).unwrap();
        spawned_h.tell(4).unwrap();
        support::wait_for("the spawned worker's call accepted", LIMIT, || {
            target.stats().submitted == 1
        });
        // The spawned worker waits for `target`, which only this thread steps: the drop in
        // this step must not wait for that worker.
        assert_eq!(holder.step(), 1);
        assert_eq!(target.run_until_idle(), 1);
        assert_eq!(answered.recv().unwrap(), Ok(4));
        holder.tell(Cmd::Add(1)).unwrap();
        assert_eq!(holder.shutdown().unwrap().total, 1);
        let s = target.stats();
        assert_eq!(target.shutdown().unwrap().total, 4);
        assert_eq!(s.submitted, s.applied);
    });
}

// === accounting ===

#[test]
fn accounting_adds_up_after_panics_rejections_and_shutdown_now() {
    quiet_panics();
    let mut queue = SingularQueue::builder(Probe::default())
        .capacity(3)
        .backpressure(singular_queue::Reject)
        .on_panic(OnPanic::Continue)
        .manual();
    queue.tell(Op::Add(1)).unwrap();
    queue.tell(Op::Panic).unwrap();
    queue.tell(Op::Add(2)).unwrap();
    assert!(matches!(
        queue.tell(Op::Add(3)),
        Err(SubmitError::Full(Op::Add(3)))
    ));
    // On the stepping thread a call is refused before it is sent.
    assert!(matches!(
        queue.handle().call(Op::Add(4)),
        Err(CallError::Reentrant(_))
    ));
    assert_eq!(queue.step(), 3);
    queue.tell(Op::Add(5)).unwrap();
    let stats = queue.handle();
    let (state, unapplied) = queue.shutdown_now().unwrap();
    assert_eq!(state.applied, [1, 2]);
    assert_eq!(unapplied.len(), 1);
    let s = stats.stats();
    assert_eq!(
        (s.submitted, s.applied, s.panicked, s.not_applied),
        (4, 2, 1, 1)
    );
    assert_eq!(
        s.submitted,
        s.applied + s.panicked + s.dropped + s.not_applied
    );
}

// === a manual queue kept in a thread-local ===

enum WaitCmd {
    Add(u64),
    /// Wait on the parked ticket, a later command of this same queue.
    WaitParked,
}

struct Waiter {
    parked: Arc<Mutex<Option<singular_queue::Ticket<u64>>>>,
    outcomes: mpsc::Sender<Result<u64, WaitError>>,
    total: u64,
}

impl StateMachine for Waiter {
    type Command = WaitCmd;
    type Output = u64;
    fn apply(&mut self, cmd: WaitCmd) -> u64 {
        match cmd {
            WaitCmd::Add(n) => self.total += n,
            WaitCmd::WaitParked => {
                let ticket = self.parked.lock().unwrap().take().unwrap();
                let _ = self.outcomes.send(ticket.wait());
            }
        }
        self.total
    }
}

thread_local! {
    static KEPT: std::cell::RefCell<Option<ManualQueue<Waiter>>> =
        const { std::cell::RefCell::new(None) };
}

/// A test fixture keeps its manual queue in a thread-local; the thread ends without dropping
/// it, so the queue is dropped (and serves what was accepted) among the thread's destructors.
/// An `apply` there that waits on a later command of its own queue is refused on this thread
/// in any step; in that drop it must be refused too, not hang the exiting thread.
#[test]
fn a_manual_queue_dropped_at_thread_exit_still_refuses_waits_on_itself() {
    within(LIMIT, || {
        let (outcomes, outcome) = mpsc::channel();
        let owner = thread::spawn(move || {
            KEPT.with(|kept| {
                let parked = Arc::new(Mutex::new(None));
                let queue = SingularQueue::builder(Waiter {
                    parked: Arc::clone(&parked),
                    outcomes,
                    total: 0,
                })
                .manual();
                queue.tell(WaitCmd::WaitParked).unwrap();
                *parked.lock().unwrap() = Some(queue.submit(WaitCmd::Add(1)).unwrap());
                *kept.borrow_mut() = Some(queue);
            });
        });
        assert_eq!(outcome.recv().unwrap(), Err(WaitError::Deadlock));
        owner.join().unwrap();
    });
}

/// Control for the test above: the same queue dropped explicitly before the thread ends
/// refuses the wait (passes), so the hang above is the thread-exit drop's alone.
#[test]
fn control_the_same_manual_queue_dropped_before_thread_exit_refuses() {
    within(LIMIT, || {
        let (outcomes, outcome) = mpsc::channel();
        let owner = thread::spawn(move || {
            let parked = Arc::new(Mutex::new(None));
            let queue = SingularQueue::builder(Waiter {
                parked: Arc::clone(&parked),
                outcomes,
                total: 0,
            })
            .manual();
            queue.tell(WaitCmd::WaitParked).unwrap();
            *parked.lock().unwrap() = Some(queue.submit(WaitCmd::Add(1)).unwrap());
            drop(queue);
        });
        assert_eq!(outcome.recv().unwrap(), Err(WaitError::Deadlock));
        owner.join().unwrap();
    });
}
