//! Regression tests for the adversarial review's failures: nothing is lost and nothing hangs
//! when the owner is dropped on its own worker, when the timer's waker re-enters the crate,
//! at the edges of the numbers, across cycles of queues, for cancelled async submitters, under
//! group commit, and when the worker waits on its own tickets.
//!
//! Every test runs under `within`, so a hang fails the test instead of stalling the run.
//!
//! The timer thread is one per process. `timer_wakes_*` tests deadlock it on a faulty build;
//! no other test in this binary may rely on a `BlockFor` deadline of an async submit.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use futures::executor::block_on;

use singular_queue::{
    Block, BlockFor, Handle, OnPanic, ReplyMode, SingularQueue, StateMachine, SubmitError,
    WaitError,
};
use support::{Op, Probe, Sum, current_tid, held_queue, quiet_panics, wait_until_asleep, within};

const LIMIT: Duration = Duration::from_secs(10);

// === helpers ===

/// A state machine that may hold its own owner, and tells the test when it stops and when it
/// is dropped.
struct Owner {
    me: Option<SingularQueue<Owner>>,
    log: Arc<Mutex<Vec<u64>>>,
    events: mpsc::Sender<Event>,
}

#[derive(Debug, PartialEq)]
enum Event {
    Stopped,
    StateDropped,
}

enum OwnerCommand {
    /// Keep the owner: from now on the state holds the only `SingularQueue`.
    Adopt(SingularQueue<Owner>),
    Add(u64),
    /// Say "started" on the first channel, then wait for the release on the second.
    Hold(mpsc::Sender<()>, mpsc::Receiver<()>),
    /// Optionally hold as `Hold` does, then drop the owner, on the worker thread.
    DropOwner(Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>),
}

/// What `apply` returns for `DropOwner`.
const DROPPED_OWNER: u64 = 4242;

impl Owner {
    fn new(log: &Arc<Mutex<Vec<u64>>>, events: mpsc::Sender<Event>) -> Self {
        Self {
            me: None,
            log: Arc::clone(log),
            events,
        }
    }
}

impl StateMachine for Owner {
    type Command = OwnerCommand;
    type Output = u64;

    fn apply(&mut self, command: OwnerCommand) -> u64 {
        match command {
            OwnerCommand::Adopt(owner) => self.me = Some(owner),
            OwnerCommand::Add(n) => {
                self.log.lock().unwrap().push(n);
                return n;
            }
            OwnerCommand::Hold(started, release) => {
                started.send(()).unwrap();
                release.recv().unwrap();
            }
            OwnerCommand::DropOwner(hold) => {
                if let Some((started, release)) = hold {
                    started.send(()).unwrap();
                    release.recv().unwrap();
                }
                let owner = self.me.take().expect("adopted");
                drop(owner);
                return DROPPED_OWNER;
            }
        }
        0
    }

    fn on_stop(&mut self) {
        let _ = self.events.send(Event::Stopped);
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = self.events.send(Event::StateDropped);
    }
}

/// A queue of `Owner` whose state holds the only owner; returns a handle to it.
fn self_owned(
    capacity: usize,
    log: &Arc<Mutex<Vec<u64>>>,
    events: mpsc::Sender<Event>,
) -> Handle<Owner> {
    let queue = SingularQueue::builder(Owner::new(log, events))
        .capacity(capacity)
        .backpressure(Block)
        .spawn()
        .unwrap();
    let handle = queue.handle();
    assert_eq!(handle.call(OwnerCommand::Adopt(queue)).unwrap(), 0);
    handle
}

fn owner_number(command: OwnerCommand) -> Option<u64> {
    match command {
        OwnerCommand::Add(n) => Some(n),
        _ => None,
    }
}

// === 1. The owner dropped on its own worker thread ===

#[test]
fn owner_dropped_inside_apply_with_a_full_channel_applies_everything_and_never_hangs() {
    within(LIMIT, || {
        const CALLERS: u64 = 6;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (events_tx, events) = mpsc::channel();
        let handle = self_owned(1, &log, events_tx);

        // The worker enters `DropOwner` and waits there with the channel empty...
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let dropper = handle
            .submit(OwnerCommand::DropOwner(Some((started_tx, release_rx))))
            .unwrap();
        started.recv().unwrap();
        // ...the test fills the channel (capacity 1)...
        let queued = handle.submit(OwnerCommand::Add(1000)).unwrap();
        // ...and more callers block for room, inside their `call`.
        let (ready_tx, ready) = mpsc::channel();
        let callers: Vec<_> = (0..CALLERS)
            .map(|n| {
                let handle = handle.clone();
                let ready = ready_tx.clone();
                thread::spawn(move || {
                    ready.send(current_tid()).unwrap();
                    handle
                        .call(OwnerCommand::Add(n))
                        .map_err(|error| format!("{error:?}"))
                })
            })
            .collect();
        let tids: Vec<u32> = (0..CALLERS).map(|_| ready.recv().unwrap()).collect();
        wait_until_asleep(&tids);

        // Now the worker drops the last owner, with a full channel and blocked submitters.
        release.send(()).unwrap();
        assert_eq!(dropper.wait(), Ok(DROPPED_OWNER));
        assert_eq!(queued.wait(), Ok(1000));
        // A caller waiting for room is outside the queue's gate: it got in before the drop
        // closed the queue (applied), or it gets its command back, refused as closed.
        let mut expected = vec![1000];
        for (n, caller) in (0..).zip(callers) {
            match caller.join().unwrap() {
                Ok(output) => {
                    assert_eq!(output, n, "caller {n}");
                    expected.push(n);
                }
                Err(error) => assert_eq!(error, "Closed(..)", "caller {n}"),
            }
        }
        // The worker stops gracefully and exits: `on_stop`, then the state is dropped.
        assert_eq!(events.recv(), Ok(Event::Stopped));
        assert_eq!(events.recv(), Ok(Event::StateDropped));

        let mut applied = log.lock().unwrap().clone();
        applied.sort_unstable();
        expected.sort_unstable();
        assert_eq!(
            applied, expected,
            "every accepted command applied exactly once"
        );

        let refused = handle.tell(OwnerCommand::Add(7)).unwrap_err();
        assert!(refused.is_closed(), "{refused:?}");
        assert_eq!(owner_number(refused.into_inner()), Some(7));
    });
}

#[test]
fn owner_dropped_inside_apply_with_room_returns_the_output_and_stops_gracefully() {
    within(LIMIT, || {
        quiet_panics();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (events_tx, events) = mpsc::channel();
        let handle = self_owned(64, &log, events_tx);

        // Hold the worker so that commands queue before and after the one that drops the owner.
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        handle
            .tell(OwnerCommand::Hold(started_tx, release_rx))
            .unwrap();
        started.recv().unwrap();
        let before: Vec<_> = (1..=2)
            .map(|n| handle.submit(OwnerCommand::Add(n)).unwrap())
            .collect();
        let dropper = handle.submit(OwnerCommand::DropOwner(None)).unwrap();
        let after: Vec<_> = (3..=4)
            .map(|n| handle.submit(OwnerCommand::Add(n)).unwrap())
            .collect();
        release.send(()).unwrap();

        // The command that dropped the owner gets its own output: nothing panicked.
        assert_eq!(dropper.wait(), Ok(DROPPED_OWNER));
        // Every command accepted before the drop ran is applied.
        for (ticket, n) in before.into_iter().chain(after).zip(1..) {
            assert_eq!(ticket.wait(), Ok(n), "command {n}");
        }
        // The queue stops gracefully, and its worker exits.
        assert_eq!(events.recv(), Ok(Event::Stopped));
        assert_eq!(events.recv(), Ok(Event::StateDropped));
        assert_eq!(*log.lock().unwrap(), [1, 2, 3, 4]);

        // Later submits through a surviving handle are refused, with the command back.
        assert!(handle.is_closed());
        let refused = handle.tell(OwnerCommand::Add(5)).unwrap_err();
        assert!(refused.is_closed(), "{refused:?}");
        assert_eq!(owner_number(refused.into_inner()), Some(5));
        let refused = handle.call(OwnerCommand::Add(6)).unwrap_err();
        assert!(refused.is_closed(), "{refused:?}");
        assert_eq!(refused.into_inner().and_then(owner_number), Some(6));
    });
}

// === 2. The timer thread wakes a task while holding the alarm's lock ===

type Submit = Pin<Box<dyn Future<Output = Result<(), SubmitError<Op>>> + Send>>;

/// A waker whose wake drops the very future it belongs to, as an executor cancelling a task
/// from its waker might.
struct DropOnWake {
    future: Mutex<Option<Submit>>,
    events: mpsc::Sender<&'static str>,
}

impl Wake for DropOnWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let future = self.future.lock().unwrap().take();
        if future.is_some() {
            let _ = self.events.send("waking");
            drop(future);
            let _ = self.events.send("dropped");
        }
    }
}

/// A full queue (capacity 1, worker held) under `BlockFor(wait)`.
fn full_block_for_queue(wait: Duration) -> (SingularQueue<Probe>, mpsc::Sender<()>) {
    let (queue, release) = held_queue(1, BlockFor(wait));
    queue.tell(Op::Add(0)).unwrap();
    (queue, release)
}

/// Another, independent async `BlockFor` submit on a full queue must time out with its
/// command: the timer thread is alive and serving deadlines.
fn another_block_for_deadline_fires() {
    let (queue, release) = full_block_for_queue(Duration::from_millis(50));
    let refused = block_on(queue.tell_async(Op::Add(2))).unwrap_err();
    assert!(refused.is_timeout(), "{refused:?}");
    assert_eq!(refused.into_inner().number(), Some(2));
    release.send(()).unwrap();
    assert_eq!(queue.shutdown().unwrap().applied, [0]);
}

#[test]
fn timer_wakes_a_task_whose_waker_drops_its_future_and_keeps_serving_deadlines() {
    within(LIMIT, || {
        let (queue, release) = full_block_for_queue(Duration::from_millis(50));
        let handle = queue.handle();
        let (events_tx, events) = mpsc::channel();
        let task = Arc::new(DropOnWake {
            future: Mutex::new(None),
            events: events_tx,
        });
        let waker = Waker::from(Arc::clone(&task));
        {
            // Polled in place, under the slot's lock: a timer firing early waits for it.
            let mut slot = task.future.lock().unwrap();
            let future = slot.insert(Box::pin(async move { handle.tell_async(Op::Add(1)).await }));
            let poll = future.as_mut().poll(&mut Context::from_waker(&waker));
            assert!(poll.is_pending(), "the queue is full: the submit waits");
        }
        drop(waker);
        // The deadline passes; the timer thread wakes the task, whose waker drops its future.
        assert_eq!(events.recv(), Ok("waking"));
        // The timer thread must still serve other deadlines.
        another_block_for_deadline_fires();
        assert_eq!(events.recv(), Ok("dropped"));
        release.send(()).unwrap();
        assert_eq!(
            queue.shutdown().unwrap().applied,
            [0],
            "the cancelled submit was never accepted"
        );
    });
}

/// A waker that polls its task inline, as a run-on-wake executor does: it says "woken",
/// polls, and hands over the result once the task finishes.
struct PollOnWake {
    future: Mutex<Option<Submit>>,
    woken: mpsc::Sender<()>,
    results: mpsc::Sender<Result<(), SubmitError<Op>>>,
}

impl PollOnWake {
    fn poll(self: &Arc<Self>) {
        let waker = Waker::from(Arc::clone(self));
        let mut slot = self.future.lock().unwrap();
        let Some(future) = slot.as_mut() else { return };
        // Finishing the submit drops its alarm, inside this poll, on the waking thread.
        if let Poll::Ready(result) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            *slot = None;
            drop(slot);
            let _ = self.results.send(result);
        }
    }
}

impl Wake for PollOnWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let _ = self.woken.send(());
        self.poll();
    }
}

#[test]
fn timer_wakes_a_task_that_polls_inline_to_completion_and_keeps_serving_deadlines() {
    within(LIMIT, || {
        let (queue, release) = full_block_for_queue(Duration::from_millis(50));
        let handle = queue.handle();
        let (woken_tx, woken) = mpsc::channel();
        let (results_tx, results) = mpsc::channel();
        let task = Arc::new(PollOnWake {
            future: Mutex::new(Some(Box::pin(async move {
                handle.tell_async(Op::Add(1)).await
            }))),
            woken: woken_tx,
            results: results_tx,
        });
        // The first poll, by hand: the queue is full, so the task waits, with an alarm armed.
        task.poll();
        assert!(
            task.future.lock().unwrap().is_some(),
            "the submit waits for room"
        );
        // At the deadline the timer thread wakes the task, which polls inline and times out.
        woken.recv().unwrap();
        // The timer thread must still serve other deadlines.
        another_block_for_deadline_fires();
        let refused = results.recv().unwrap().unwrap_err();
        assert!(refused.is_timeout(), "{refused:?}");
        assert_eq!(refused.into_inner().number(), Some(1));
        release.send(()).unwrap();
        assert_eq!(queue.shutdown().unwrap().applied, [0]);
    });
}

// === 3. The edges of the numbers ===

#[test]
fn a_queue_of_capacity_usize_max_spawns_and_answers_calls() {
    within(LIMIT, || {
        let queue = SingularQueue::builder(Sum::default())
            .capacity(usize::MAX)
            .spawn()
            .expect("spawn");
        assert_eq!(queue.call(5).unwrap(), 5);
        queue.tell(2).unwrap();
        assert_eq!(queue.submit(3).unwrap().wait(), Ok(10));
        let capacity = queue.stats().capacity;
        assert_eq!(capacity, singular_queue::MAX_CAPACITY);
        let state = queue.shutdown().unwrap();
        assert_eq!((state.total, state.count), (10, 3));
    });
}

// === 4. Cycles between queues ===

/// A state machine that calls (or tells) a peer queue from inside `apply`.
#[derive(Default)]
struct Peer {
    other: Option<Handle<Peer>>,
    applied: Vec<u64>,
}

enum PeerCommand {
    Meet(Handle<Peer>),
    Add(u64),
    /// Say "started", wait for the release, then `call` the peer with `Add(n)`.
    CallPeer(u64, Arc<Barrier>),
    /// Say "started", wait for the release, then `tell` the peer `Add(n)`.
    TellPeer(u64, mpsc::Sender<()>, mpsc::Receiver<()>),
    /// Meet the other worker inside `apply`, submit `Add(n)` to the peer, then wait on the
    /// ticket.
    AwaitPeer(u64, Arc<Barrier>),
}

/// What the inner submit returned: its output, or the refusal's description, whether it is a
/// refusal of a kind that exists today (closed, full, timeout, re-entrant; panicked, not
/// applied, dropped), and the number of the command it handed back.
type Inner = Result<u64, Refusal>;

#[derive(Debug, PartialEq)]
struct Refusal {
    error: String,
    /// Refused because the wait would close a cycle.
    deadlock: bool,
    back: Option<u64>,
}

#[derive(Debug, PartialEq)]
enum PeerOutput {
    Done,
    Added(u64),
    Inner(Inner),
}

fn peer_number(command: PeerCommand) -> Option<u64> {
    match command {
        PeerCommand::Add(n) => Some(n),
        _ => None,
    }
}

impl StateMachine for Peer {
    type Command = PeerCommand;
    type Output = PeerOutput;

    fn apply(&mut self, command: PeerCommand) -> PeerOutput {
        let other = self.other.clone();
        match command {
            PeerCommand::Meet(other) => self.other = Some(other),
            PeerCommand::Add(n) => {
                self.applied.push(n);
                return PeerOutput::Added(n);
            }
            PeerCommand::CallPeer(n, both_inside) => {
                both_inside.wait();
                let result = other.unwrap().call(PeerCommand::Add(n));
                return PeerOutput::Inner(match result {
                    Ok(PeerOutput::Added(m)) => Ok(m),
                    Ok(_) => unreachable!(),
                    Err(error) => Err(Refusal {
                        error: format!("{error:?}"),
                        deadlock: matches!(error, singular_queue::CallError::Deadlock(_)),
                        back: error.into_inner().and_then(peer_number),
                    }),
                });
            }
            PeerCommand::TellPeer(n, started, release) => {
                started.send(()).unwrap();
                release.recv().unwrap();
                let result = other.unwrap().tell(PeerCommand::Add(n));
                return PeerOutput::Inner(match result {
                    Ok(()) => Ok(n),
                    Err(error) => Err(Refusal {
                        error: format!("{error:?}"),
                        deadlock: error.is_deadlock(),
                        back: peer_number(error.into_inner()),
                    }),
                });
            }
            PeerCommand::AwaitPeer(n, both_inside) => {
                both_inside.wait();
                let ticket = other.unwrap().submit(PeerCommand::Add(n)).expect("room");
                return PeerOutput::Inner(match ticket.wait() {
                    Ok(PeerOutput::Added(m)) => Ok(m),
                    Ok(_) => unreachable!(),
                    Err(error) => Err(Refusal {
                        error: format!("{error:?}"),
                        deadlock: error == WaitError::Deadlock,
                        back: None,
                    }),
                });
            }
        }
        PeerOutput::Done
    }
}

/// Two peer queues that know each other.
fn peers(capacity: usize) -> (SingularQueue<Peer>, SingularQueue<Peer>) {
    let spawn = || {
        SingularQueue::builder(Peer::default())
            .capacity(capacity)
            .backpressure(Block)
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    assert_eq!(
        a.call(PeerCommand::Meet(b.handle())).unwrap(),
        PeerOutput::Done
    );
    assert_eq!(
        b.call(PeerCommand::Meet(a.handle())).unwrap(),
        PeerOutput::Done
    );
    (a, b)
}

/// The inner results of two peers' outer commands, checked: at least one inner submit was
/// refused with its command handed back, and each one that succeeded answered its own number.
/// Returns which peers' inner commands went through.
fn check_cycle(outers: [(u64, PeerOutput); 2]) -> [bool; 2] {
    let mut through = [false; 2];
    let mut refused = 0;
    for (index, (n, outer)) in outers.into_iter().enumerate() {
        match outer {
            PeerOutput::Inner(Ok(m)) => {
                assert_eq!(m, n);
                through[index] = true;
            }
            PeerOutput::Inner(Err(refusal)) => {
                assert!(
                    refusal.deadlock,
                    "refused for the wrong reason: {refusal:?}"
                );
                assert_eq!(refusal.back, Some(n), "the refused command is handed back");
                refused += 1;
            }
            other => panic!("unexpected output {other:?}"),
        }
    }
    assert!(refused >= 1, "a cycle of waits was not broken: {through:?}");
    through
}

/// Calls A with `command(1, barrier)` and B with `command(2, barrier)` from two threads, the
/// barrier holding both workers until each is inside its command; returns both outputs.
fn call_both(
    (a, b): (&SingularQueue<Peer>, &SingularQueue<Peer>),
    command: fn(u64, Arc<Barrier>) -> PeerCommand,
) -> [PeerOutput; 2] {
    let both_inside = Arc::new(Barrier::new(2));
    thread::scope(|scope| {
        [(a, 1), (b, 2)]
            .map(|(queue, n)| {
                let handle = queue.handle();
                let both_inside = Arc::clone(&both_inside);
                scope.spawn(move || handle.call(command(n, both_inside)))
            })
            .map(|caller| caller.join().unwrap().unwrap())
    })
}

#[test]
fn two_queues_calling_each_other_from_apply_refuse_one_call_and_never_hang() {
    within(LIMIT, || {
        let (a, b) = peers(16);
        let [from_a, from_b] = call_both((&a, &b), PeerCommand::CallPeer);
        let through = check_cycle([(1, from_a), (2, from_b)]);
        // A's call carried `Add(1)` to B, B's carried `Add(2)` to A: applied iff accepted.
        let (a, b) = (a.shutdown().unwrap(), b.shutdown().unwrap());
        assert_eq!(a.applied, if through[1] { vec![2] } else { vec![] });
        assert_eq!(b.applied, if through[0] { vec![1] } else { vec![] });
    });
}

#[test]
fn two_full_block_stages_telling_each_other_refuse_one_tell_and_never_hang() {
    within(LIMIT, || {
        let (a, b) = peers(1);
        // Both workers inside a relay, each channel empty...
        let [(relay_a, release_a), (relay_b, release_b)] = [(&a, 1), (&b, 2)].map(|(queue, n)| {
            let (started_tx, started) = mpsc::channel();
            let (release, release_rx) = mpsc::channel();
            let relay = queue
                .submit(PeerCommand::TellPeer(n, started_tx, release_rx))
                .unwrap();
            started.recv().unwrap();
            (relay, release)
        });
        // ...then both channels full (capacity 1)...
        a.tell(PeerCommand::Add(10)).unwrap();
        b.tell(PeerCommand::Add(20)).unwrap();
        // ...and each worker tells the other, under `Block`.
        release_a.send(()).unwrap();
        release_b.send(()).unwrap();
        let through = check_cycle([(1, relay_a.wait().unwrap()), (2, relay_b.wait().unwrap())]);
        let (a, b) = (a.shutdown().unwrap(), b.shutdown().unwrap());
        let mut expected_a = vec![10];
        let mut expected_b = vec![20];
        if through[1] {
            expected_a.push(2);
        }
        if through[0] {
            expected_b.push(1);
        }
        assert_eq!(a.applied, expected_a);
        assert_eq!(b.applied, expected_b);
    });
}

#[test]
fn two_queues_waiting_on_each_others_tickets_from_apply_never_hang() {
    within(LIMIT, || {
        let (a, b) = peers(16);
        let outers = call_both((&a, &b), PeerCommand::AwaitPeer);
        // Each inner command was accepted (the peers have room): whichever wait is refused,
        // both commands are applied exactly once.
        let mut refused = 0;
        for (outer, n) in outers.into_iter().zip([1, 2]) {
            match outer {
                PeerOutput::Inner(Ok(m)) => assert_eq!(m, n),
                PeerOutput::Inner(Err(refusal)) => {
                    assert!(
                        refusal.deadlock,
                        "refused for the wrong reason: {refusal:?}"
                    );
                    refused += 1;
                }
                other => panic!("unexpected output {other:?}"),
            }
        }
        assert!(refused >= 1);
        let (a, b) = (a.shutdown().unwrap(), b.shutdown().unwrap());
        assert_eq!((a.applied, b.applied), (vec![2], vec![1]));
    });
}

// === 5. Cancelled async submitters are deregistered ===

/// A waker whose liveness the test can watch through its reference count.
struct Watched;

impl Wake for Watched {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn cancelled_async_submitters_release_their_wakers_while_the_worker_is_still_held() {
    within(LIMIT, || {
        const TASKS: u64 = 2000;
        let (queue, release) = held_queue(1, Block);
        queue.tell(Op::Add(0)).unwrap();
        let handle = queue.handle();
        let watched: Vec<Arc<Watched>> = (1..=TASKS)
            .map(|n| {
                let task = Arc::new(Watched);
                let waker = Waker::from(Arc::clone(&task));
                let mut submit = Box::pin(handle.tell_async(Op::Add(n)));
                let poll = submit.as_mut().poll(&mut Context::from_waker(&waker));
                assert!(poll.is_pending(), "the queue is full: task {n} waits");
                drop(submit); // cancelled
                task
            })
            .collect();
        let still_registered = watched
            .iter()
            .filter(|task| Arc::strong_count(task) > 1)
            .count();
        assert_eq!(
            still_registered, 0,
            "wakers of cancelled submits still held while the worker is held"
        );
        release.send(()).unwrap();
        assert_eq!(queue.shutdown().unwrap().applied, [0]);
        let stats = handle.stats();
        assert_eq!((stats.submitted, stats.applied), (2, 2));
    });
}

// === 6. Group commit does not blame the innocent ===

#[test]
fn under_group_commit_a_command_applied_before_a_panic_is_not_reported_as_panicked() {
    within(LIMIT, || {
        quiet_panics();
        let queue = SingularQueue::builder(Probe::default())
            .reply_mode(ReplyMode::AfterBatch)
            .on_panic(OnPanic::Stop)
            .spawn()
            .unwrap();
        let (hold, started, release) = Op::hold();
        queue.tell(hold).unwrap();
        started.recv().unwrap();
        // X and Y wait while the worker is held, so it takes them in one batch with the hold.
        let x = queue.submit(Op::Add(1)).unwrap();
        let y = queue.submit(Op::Panic).unwrap();
        release.send(()).unwrap();

        assert_eq!(y.wait(), Err(WaitError::Panicked("boom".to_owned())));
        let x = x.wait();
        assert!(
            matches!(x, Err(WaitError::NotCommitted(ref message)) if message == "boom"),
            "X applied fine, but its caller was told {x:?}"
        );
        let poisoned = queue.shutdown().unwrap_err();
        assert_eq!(poisoned.into_inner().applied, [1], "X was applied, once");
    });
}

// === 8. The worker waiting on one of its own queue's tickets ===

#[derive(Default)]
struct SelfWaiter {
    me: Option<Handle<SelfWaiter>>,
    applied: Vec<u64>,
}

enum SelfCommand {
    Adopt(Handle<SelfWaiter>),
    Add(u64),
    /// Submit `Add(n)` to its own queue, then wait on the ticket.
    WaitOwn(u64),
}

impl StateMachine for SelfWaiter {
    type Command = SelfCommand;
    /// For `WaitOwn`, what the wait returned.
    type Output = Result<(), WaitError>;

    fn apply(&mut self, command: SelfCommand) -> Result<(), WaitError> {
        match command {
            SelfCommand::Adopt(me) => self.me = Some(me),
            SelfCommand::Add(n) => self.applied.push(n),
            SelfCommand::WaitOwn(n) => {
                let me = self.me.clone().unwrap();
                let ticket = me.submit(SelfCommand::Add(n)).expect("room");
                return ticket.wait().map(drop);
            }
        }
        Ok(())
    }
}

#[test]
fn the_worker_waiting_on_its_own_ticket_is_refused_promptly_and_the_command_still_applies() {
    within(LIMIT, || {
        let queue = SingularQueue::new(SelfWaiter::default());
        queue
            .call(SelfCommand::Adopt(queue.handle()))
            .unwrap()
            .unwrap();
        let started = Instant::now();
        let waited = queue.call(SelfCommand::WaitOwn(7)).unwrap();
        assert!(
            waited.as_ref().is_err_and(|error| error.is_deadlock()),
            "the worker cannot wait for itself: {waited:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "refused, but not promptly"
        );
        queue.call(SelfCommand::Add(8)).unwrap().unwrap();
        let state = queue.shutdown().unwrap();
        assert_eq!(
            state.applied,
            [7, 8],
            "the submitted command is still applied, once"
        );
    });
}

// === 9. A thread name the OS cannot take ===

#[test]
fn a_thread_name_with_a_nul_byte_is_an_invalid_input_error_not_a_panic() {
    within(LIMIT, || {
        let spawned = std::panic::catch_unwind(|| {
            SingularQueue::builder(Sum::default()).name("a\0b").spawn()
        });
        let spawned = match spawned {
            Ok(spawned) => spawned,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|m| (*m).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                panic!("spawn panicked instead of returning an error: {message}");
            }
        };
        let error = spawned.expect_err("a NUL byte in a thread name");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
    });
}

// === 11. Stats under async waiting ===

/// Samples the stats of a capacity-1 `Block` queue, as fast as it can, while four producer
/// threads submit one command after another with `produce`, until the sampler finds a sample
/// that counts more outcomes than submits, or for `BUDGET` if none does. Checks the exact
/// final counts; returns the faulty samples and how many samples were taken.
fn sample_stats_under_load(
    produce: impl Fn(&Handle<Sum>, u64) + Send + Sync + Copy + 'static,
) -> (Vec<singular_queue::Stats>, u64) {
    const PRODUCERS: u64 = 4;
    /// How long to look for a faulty sample: a time budget, not a synchronisation.
    const BUDGET: Duration = Duration::from_secs(3);
    let queue = SingularQueue::builder(Sum::default())
        .capacity(1)
        .backpressure(Block)
        .spawn()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (found_tx, found) = mpsc::channel();
    let sampler = {
        let handle = queue.handle();
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let (mut violations, mut samples) = (Vec::new(), 0);
            while !stop.load(Ordering::Acquire) {
                let stats = handle.stats();
                samples += 1;
                let outcomes = stats.applied + stats.panicked + stats.dropped + stats.not_applied;
                if outcomes > stats.submitted {
                    violations.push(stats);
                    let _ = found_tx.send(());
                }
            }
            (violations, samples)
        })
    };
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let handle = queue.handle();
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut submitted = 0;
                while !stop.load(Ordering::Acquire) {
                    produce(&handle, submitted + p);
                    submitted += 1;
                }
                submitted
            })
        })
        .collect();
    let _ = found.recv_timeout(BUDGET);
    stop.store(true, Ordering::Release);
    let total: u64 = producers.into_iter().map(|p| p.join().unwrap()).sum();
    let (violations, samples) = sampler.join().unwrap();
    let handle = queue.handle();
    let state = queue.shutdown().unwrap();
    let stats = handle.stats();
    assert_eq!(state.count, total);
    assert_eq!((stats.submitted, stats.applied), (total, total));
    (violations, samples)
}

fn assert_no_violation((violations, samples): (Vec<singular_queue::Stats>, u64)) {
    assert!(
        violations.is_empty(),
        "{} of {samples} samples counted more outcomes than submits; first: {:?}",
        violations.len(),
        violations.first()
    );
}

#[test]
fn stats_sampled_under_async_waiting_never_count_more_outcomes_than_submits() {
    within(LIMIT, || {
        assert_no_violation(sample_stats_under_load(|handle, i| {
            block_on(async {
                if i % 2 == 0 {
                    handle.tell_async(1).await.unwrap();
                } else {
                    handle.call_async(1).await.unwrap();
                }
            })
        }));
    });
}

#[test]
fn stats_sampled_under_blocking_waiting_never_count_more_outcomes_than_submits() {
    within(LIMIT, || {
        assert_no_violation(sample_stats_under_load(|handle, i| {
            if i % 2 == 0 {
                handle.tell(1).unwrap();
            } else {
                handle.call(1).unwrap();
            }
        }));
    });
}
