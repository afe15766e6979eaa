//! The hand-stepped queue: the real worker code, run by the test's own thread, with the same
//! catch, hooks, batching, reply modes, policies and accounting as a spawned queue; and every
//! wait that only a step could end refused on the stepping thread instead of hanging.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use singular_queue::{
    BatchInfo, CallError, DropOldest, Handle, ManualQueue, OnPanic, Reject, ReplyMode,
    SingularQueue, StateMachine, SubmitError, WaitError,
};
use support::{Sum, within};

/// Everything the worker did, in order: hooks and commands alike.
#[derive(Debug, Default)]
struct Journal {
    events: Vec<String>,
    total: u64,
}

enum Entry {
    Add(u64),
    Panic,
    /// Makes the next `on_batch_end` panic: its batch is not committed.
    FailCommit,
}

impl StateMachine for Journal {
    type Command = Entry;
    type Output = u64;

    fn apply(&mut self, entry: Entry) -> u64 {
        match entry {
            Entry::Add(n) => {
                self.total += n;
                self.events.push(format!("add {n}"));
            }
            Entry::Panic => panic!("boom"),
            Entry::FailCommit => self.events.push("fail commit".to_owned()),
        }
        self.total
    }

    fn on_start(&mut self) {
        self.events.push("start".to_owned());
    }

    fn on_batch_end(&mut self, info: BatchInfo) {
        self.events
            .push(format!("batch of {}, {} behind", info.size, info.remaining));
        if self.events.iter().any(|event| event == "fail commit") {
            panic!("disk full");
        }
    }

    fn on_stop(&mut self) {
        self.events.push("stop".to_owned());
    }
}

fn journal(max_batch: usize) -> ManualQueue<Journal> {
    SingularQueue::builder(Journal::default())
        .max_batch(max_batch)
        .manual()
}

#[test]
fn a_step_is_one_batch_and_nothing_runs_between_steps() {
    let mut queue = journal(2);
    assert_eq!(queue.state().events, ["start"]);
    let tickets: Vec<_> = (1..=3)
        .map(|n| queue.submit(Entry::Add(n)).unwrap())
        .collect();
    assert_eq!(queue.state().total, 0, "nothing runs until the test steps");
    assert!(tickets.iter().all(|ticket| !ticket.is_ready()));

    assert_eq!(queue.step(), 2);
    assert_eq!(queue.state().total, 3);
    assert!(tickets[0].is_ready() && tickets[1].is_ready() && !tickets[2].is_ready());

    assert_eq!(queue.step(), 1);
    assert_eq!(queue.step(), 0, "nothing left: a step takes nothing");
    let outputs: Vec<_> = tickets.into_iter().map(|t| t.wait().unwrap()).collect();
    assert_eq!(outputs, [1, 3, 6]);
    let state = queue.shutdown().unwrap();
    assert_eq!(
        state.events,
        [
            "start",
            "add 1",
            "add 2",
            "batch of 2, 1 behind",
            "add 3",
            "batch of 1, 0 behind",
            "stop",
        ]
    );
}

#[test]
fn run_until_idle_counts_every_command_it_took() {
    let mut queue = journal(1);
    for n in 0..10 {
        queue.tell(Entry::Add(n)).unwrap();
    }
    assert_eq!(queue.run_until_idle(), 10);
    assert_eq!(queue.run_until_idle(), 0);
    assert_eq!(queue.state().total, 45);
    let stats = queue.stats();
    assert_eq!(
        (stats.submitted, stats.applied, stats.batches),
        (10, 10, 10)
    );
}

#[test]
fn a_panic_is_caught_as_on_a_worker_thread_and_stop_poisons() {
    support::quiet_panics();
    let mut queue = SingularQueue::builder(Journal::default())
        .on_panic(OnPanic::Continue)
        .manual();
    let panicked = queue.submit(Entry::Panic).unwrap();
    let after = queue.submit(Entry::Add(5)).unwrap();
    queue.run_until_idle();
    assert!(matches!(panicked.wait(), Err(WaitError::Panicked(m)) if m == "boom"));
    assert_eq!(after.wait(), Ok(5));
    queue.shutdown().unwrap();

    let mut queue = journal(1);
    let panicked = queue.submit(Entry::Panic).unwrap();
    let behind = queue.submit(Entry::Add(5)).unwrap();
    assert_eq!(queue.step(), 1);
    assert!(matches!(
        queue.submit(Entry::Add(6)),
        Err(SubmitError::Closed(Entry::Add(6)))
    ));
    assert_eq!(queue.step(), 1, "the command behind is set aside");
    assert!(matches!(panicked.wait(), Err(WaitError::Panicked(_))));
    assert_eq!(behind.wait(), Err(WaitError::NotApplied));
    let poisoned = queue.shutdown().unwrap_err();
    assert_eq!(poisoned.message(), "boom");
    assert!(matches!(poisoned.unapplied(), [Entry::Add(5)]));
}

#[test]
fn group_commit_holds_replies_until_the_batch_ends_and_fails_them_if_it_does_not_commit() {
    support::quiet_panics();
    let mut queue = SingularQueue::builder(Journal::default())
        .reply_mode(ReplyMode::AfterBatch)
        .manual();
    let first = queue.submit(Entry::Add(1)).unwrap();
    let second = queue.submit(Entry::FailCommit).unwrap();
    assert_eq!(queue.step(), 2);
    for ticket in [first, second] {
        assert!(matches!(ticket.wait(), Err(WaitError::NotCommitted(m)) if m == "disk full"));
    }
    let poisoned = queue.shutdown().unwrap_err();
    assert_eq!(poisoned.into_inner().total, 1);
}

#[test]
fn drop_oldest_asserted_command_by_command() {
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let on_evict = Arc::clone(&evicted);
    let mut queue = SingularQueue::builder(Sum::default())
        .capacity(2)
        .max_batch(1)
        .backpressure(DropOldest)
        .on_evict(move |n| on_evict.lock().push(n))
        .manual();
    let one = queue.submit(1).unwrap();
    let two = queue.submit(2).unwrap();
    let three = queue.submit(3).unwrap(); // evicts 1
    assert_eq!(one.wait(), Err(WaitError::Dropped));
    assert_eq!(*evicted.lock(), [1]);

    assert_eq!(queue.step(), 1); // applies 2
    assert_eq!(queue.state().total, 2);
    let four = queue.submit(4).unwrap(); // room: no eviction
    let five = queue.submit(5).unwrap(); // evicts 3
    assert_eq!(three.wait(), Err(WaitError::Dropped));
    assert_eq!(*evicted.lock(), [1, 3]);

    assert_eq!(queue.run_until_idle(), 2);
    assert_eq!(two.wait(), Ok(2));
    assert_eq!(four.wait(), Ok(6));
    assert_eq!(five.wait(), Ok(11));
    let stats = queue.stats();
    assert_eq!((stats.submitted, stats.applied, stats.dropped), (5, 3, 2));
}

#[test]
fn reject_and_block_on_the_stepping_thread_give_the_command_back() {
    let mut queue = SingularQueue::builder(Sum::default())
        .capacity(1)
        .backpressure(Reject)
        .manual();
    queue.tell(1).unwrap();
    assert!(matches!(queue.tell(2), Err(SubmitError::Full(2))));

    let mut blocking = SingularQueue::builder(Sum::default()).capacity(1).manual();
    blocking.tell(1).unwrap();
    // Waiting for room here could never end: only this thread makes room.
    assert!(matches!(blocking.tell(2), Err(SubmitError::Deadlock(2))));
    let handle = blocking.handle();
    assert!(matches!(
        handle.submit_timeout(3, Duration::from_secs(60)),
        Err(SubmitError::Deadlock(3))
    ));
    assert_eq!(blocking.run_until_idle(), 1);
    queue.run_until_idle();
    assert_eq!(blocking.stats().rejected, 2);
    assert_eq!(queue.shutdown().unwrap().total, 1);
}

#[test]
fn waits_that_only_a_step_could_end_are_refused_on_the_stepping_thread() {
    let mut queue = SingularQueue::builder(Sum::default()).manual();
    let handle = queue.handle();
    assert!(matches!(handle.call(7), Err(CallError::Reentrant(7))));
    assert!(matches!(
        handle.call_timeout(8, Duration::from_secs(60)),
        Err(CallError::Reentrant(8))
    ));
    let mut ticket = handle.submit(1).unwrap();
    assert_eq!(
        ticket.wait_timeout(Duration::from_secs(60)),
        Some(Err(WaitError::Deadlock))
    );
    assert!(!ticket.is_ready(), "the ticket stays valid");
    let refused = futures::executor::block_on(handle.call_async(9));
    assert!(matches!(refused, Err(CallError::Reentrant(9))));
    queue.step();
    assert_eq!(ticket.wait(), Ok(1), "once stepped, the result is there");
    assert_eq!(queue.stats().rejected, 3);
}

/// Callers on other threads block as usual, and the owner's steps answer them: calls that
/// wait for room and for their output, with exact totals.
#[test]
fn calls_from_other_threads_are_answered_by_the_owners_steps() {
    within(Duration::from_secs(60), || {
        const THREADS: u64 = 4;
        const CALLS: u64 = 500;
        let mut queue = SingularQueue::builder(Sum::default()).capacity(3).manual();
        let finished = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (handle, finished) = (queue.handle(), Arc::clone(&finished));
                thread::spawn(move || {
                    let mut last = 0;
                    for _ in 0..CALLS {
                        let total = handle.call(1).unwrap();
                        assert!(total > last, "each call sees its own command applied");
                        last = total;
                    }
                    finished.fetch_add(1, Ordering::Release);
                })
            })
            .collect();
        let mut taken = 0;
        while finished.load(Ordering::Acquire) < THREADS as usize {
            taken += queue.step();
            thread::yield_now();
        }
        taken += queue.run_until_idle();
        callers.into_iter().for_each(|c| c.join().unwrap());
        assert_eq!(taken as u64, THREADS * CALLS);
        let state = queue.shutdown().unwrap();
        assert_eq!(
            (state.total, state.count),
            (THREADS * CALLS, THREADS * CALLS)
        );
    });
}

/// Under load from many threads with `DropOldest`, every command is accounted for exactly:
/// applied once, or evicted and its submitter told, with `on_evict` receiving exactly those.
#[test]
fn accounting_is_exact_under_load_with_drop_oldest() {
    within(Duration::from_secs(60), || {
        const THREADS: u64 = 4;
        const EACH: u64 = 2_000;
        let evicted = Arc::new(Mutex::new(Vec::new()));
        let on_evict = Arc::clone(&evicted);
        let mut queue = SingularQueue::builder(Sum::default())
            .capacity(4)
            .backpressure(DropOldest)
            .on_evict(move |n| on_evict.lock().push(n))
            .manual();
        let (results, outcomes) = mpsc::channel();
        let submitters: Vec<_> = (0..THREADS)
            .map(|t| {
                let (handle, results) = (queue.handle(), results.clone());
                thread::spawn(move || {
                    let tickets: Vec<_> = (0..EACH)
                        .map(|i| (t * EACH + i, handle.submit(t * EACH + i).unwrap()))
                        .collect();
                    results.send(tickets).unwrap();
                })
            })
            .collect();
        drop(results);
        let mut tickets = Vec::new();
        loop {
            queue.step();
            match outcomes.try_recv() {
                Ok(batch) => tickets.extend(batch),
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => break,
            }
        }
        submitters.into_iter().for_each(|s| s.join().unwrap());
        queue.run_until_idle();
        let state = queue.shutdown().unwrap();
        let (mut applied, mut dropped) = (0, Vec::new());
        for (n, ticket) in tickets {
            match ticket.wait() {
                Ok(_) => applied += 1,
                Err(WaitError::Dropped) => dropped.push(n),
                Err(other) => panic!("command {n}: {other}"),
            }
        }
        let mut told = evicted.lock().clone();
        told.sort_unstable();
        dropped.sort_unstable();
        assert_eq!(told, dropped, "on_evict got exactly the evicted commands");
        assert_eq!(applied + dropped.len() as u64, THREADS * EACH);
        assert_eq!(state.count, applied);
        let all: u64 = (0..THREADS * EACH).sum();
        assert_eq!(state.total, all - dropped.iter().sum::<u64>());
    });
}

/// A state machine whose `apply` calls out to another queue.
struct Forwarder {
    to: Handle<Sum>,
    answers: Vec<Result<u64, String>>,
}

impl StateMachine for Forwarder {
    type Command = u64;
    type Output = ();

    fn apply(&mut self, n: u64) {
        let answer = self.to.call(n).map_err(|e| e.to_string());
        self.answers.push(answer);
    }
}

#[test]
fn apply_calling_out_to_a_spawned_queue_is_stepped_deterministically() {
    let totals = SingularQueue::new(Sum::default());
    let mut queue = SingularQueue::builder(Forwarder {
        to: totals.handle(),
        answers: Vec::new(),
    })
    .manual();
    queue.tell(2).unwrap();
    queue.tell(3).unwrap();
    assert_eq!(queue.step(), 2);
    assert_eq!(queue.state().answers, [Ok(2), Ok(5)]);
    assert_eq!(totals.shutdown().unwrap().total, 5);
    let state = queue.shutdown().unwrap();
    assert_eq!(state.answers.len(), 2);
}

#[test]
fn apply_calling_another_manual_queue_of_this_thread_is_refused_not_hung() {
    within(Duration::from_secs(60), || {
        let mut totals = SingularQueue::builder(Sum::default()).manual();
        let mut queue = SingularQueue::builder(Forwarder {
            to: totals.handle(),
            answers: Vec::new(),
        })
        .manual();
        queue.tell(2).unwrap();
        queue.step();
        assert_eq!(
            queue.state().answers,
            [Err("calling a queue from its own worker thread".to_owned())]
        );
        assert_eq!(
            totals.run_until_idle(),
            0,
            "the refused command never went in"
        );
        assert_eq!(totals.stats().rejected, 1);
    });
}

/// A cycle through a spawned queue: the stepping thread waits for the spawned queue, whose
/// worker calls the manual queue, which only the waiting thread could step.
#[test]
fn a_spawned_worker_calling_a_manual_queue_whose_owner_waits_for_it_is_refused() {
    within(Duration::from_secs(60), || {
        let mut totals = SingularQueue::builder(Sum::default()).manual();
        let forwarder = SingularQueue::new(Forwarder {
            to: totals.handle(),
            answers: Vec::new(),
        });
        // This thread (the manual queue's worker) waits for the forwarder's worker...
        forwarder.call(4).unwrap();
        // ...which was refused instead of waiting for this thread.
        let state = forwarder.shutdown().unwrap();
        assert_eq!(
            state.answers,
            [Err(
                "waiting would deadlock: the queue waits for this thread".to_owned()
            )]
        );
        assert_eq!(totals.run_until_idle(), 0);
    });
}

#[test]
fn a_caller_on_another_thread_is_answered_when_the_owner_drops_the_queue() {
    within(Duration::from_secs(60), || {
        let queue = SingularQueue::builder(Sum::default()).manual();
        let handle = queue.handle();
        let (submitted, accepted) = mpsc::channel();
        let caller = thread::spawn(move || {
            let ticket = handle.submit(9).unwrap();
            submitted.send(()).unwrap();
            (ticket.wait(), handle.tell(1))
        });
        accepted.recv().unwrap();
        drop(queue); // serves what was accepted, on this thread
        let (answer, later) = caller.join().unwrap();
        assert_eq!(answer, Ok(9));
        assert!(matches!(later, Err(SubmitError::Closed(1))));
    });
}

#[test]
fn shutdown_now_returns_what_was_not_applied_in_order() {
    let mut queue = journal(1);
    let first = queue.submit(Entry::Add(1)).unwrap();
    let rest: Vec<_> = (2..=4)
        .map(|n| queue.submit(Entry::Add(n)).unwrap())
        .collect();
    queue.step();
    let (state, unapplied) = queue.shutdown_now().unwrap();
    assert_eq!(first.wait(), Ok(1));
    for ticket in rest {
        assert_eq!(ticket.wait(), Err(WaitError::NotApplied));
    }
    let numbers: Vec<_> = unapplied
        .iter()
        .map(|entry| match entry {
            Entry::Add(n) => *n,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(numbers, [2, 3, 4]);
    assert_eq!(state.events.last().map(String::as_str), Some("stop"));
}
