//! Loom models of a queue's end: poisoning, `shutdown`, `shutdown_now` and dropping the queue,
//! each racing submitters, evictions and group commit.
#![cfg(singular_queue_loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use singular_queue::{BatchInfo, ReplyMode, SingularQueue, StateMachine, SubmitError, WaitError};
use singular_queue_loom_tests::{
    PANIC, PREEMPTION_BOUND, assert_accounted, check_bounded, drop_oldest_queue, queue,
    quiet_planted_panics,
};

/// What became of one command, as its submitter saw it.
#[derive(Debug, PartialEq)]
enum Fate {
    Applied,
    HandedBack,
    Dropped,
    NotApplied,
}

/// A refusal's command, after checking that the queue refused it for being closed.
fn closed(refused: SubmitError<u32>) -> u32 {
    assert!(refused.is_closed(), "{refused:?}");
    refused.into_inner()
}

/// Hazard 7 under the default `OnPanic::Stop`: a panic poisons the queue while a submitter on
/// another thread races it, possibly waiting for room. Each command is applied (only if ahead
/// of the panic), handed back as closed, or returned unapplied inside `Poisoned`: exactly one.
#[test]
fn poisoning_racing_a_submitter_applies_hands_back_or_returns_each_command() {
    quiet_planted_panics();
    check_bounded("poisoning_racing_a_submitter_...", 2, || {
        let queue = queue(1);
        let handle = queue.handle();
        let racer = thread::spawn(move || handle.tell(1).map_err(closed));
        queue.tell(PANIC).unwrap();
        let told = queue.tell(2).map_err(closed);
        let racer = racer.join().unwrap();
        let handle = queue.handle();
        let (state, unapplied) = queue.shutdown().unwrap_err().into_parts();
        let stats = handle.stats();
        assert_accounted(&stats, state.0.len());
        assert_eq!(stats.panicked, 1);
        for (n, outcome) in [(1, racer), (2, told)] {
            let places = [
                state.0.contains(&n),
                unapplied.contains(&n),
                outcome == Err(n),
            ];
            assert_eq!(places.iter().filter(|&&p| p).count(), 1, "{n}: {places:?}");
        }
        // Applied only ahead of the panic: the state keeps nothing after it.
        assert!(state.0.iter().all(|&n| n == 1));
    });
}

/// How a model stops its queue.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Shutdown,
    ShutdownNow,
    Poison,
}

/// Hazard 2 at the queue's end: `DropOldest` evictions by a producer racing a `shutdown`, a
/// `shutdown_now`, or a poisoning panic. Each command ends exactly one way, and its submitter
/// hears which: applied, evicted (`Dropped`, and given to `on_evict`), returned unapplied
/// (`NotApplied`), or refused (handed back).
#[test]
fn drop_oldest_racing_each_kind_of_stop_tells_every_command_its_fate() {
    quiet_planted_panics();
    for stop in [Stop::Shutdown, Stop::ShutdownNow, Stop::Poison] {
        check_bounded("drop_oldest_racing_each_kind_of_stop_...", 2, move || {
            drop_oldest_racing(stop);
        });
    }
}

fn drop_oldest_racing(stop: Stop) {
    let (queue, evicted) = drop_oldest_queue();
    let handle = queue.handle();
    // Each command: `Err(n)` if refused (handed back), else what its ticket said.
    let producer = thread::spawn(move || {
        [1, 2].map(|n| {
            (
                n,
                handle.submit(n).map(|ticket| ticket.wait()).map_err(closed),
            )
        })
    });
    let observer = queue.handle();
    if let Stop::Poison = stop {
        let _ = queue.tell(PANIC);
    }
    let (log, unapplied) = match stop {
        Stop::Shutdown => (queue.shutdown().unwrap().0, Vec::new()),
        Stop::ShutdownNow => {
            let (state, unapplied) = queue.shutdown_now().unwrap();
            (state.0, unapplied)
        }
        // The panicking command may itself be evicted before it poisons anything.
        Stop::Poison => match queue.shutdown() {
            Ok(state) => (state.0, Vec::new()),
            Err(poisoned) => {
                let (state, unapplied) = poisoned.into_parts();
                (state.0, unapplied)
            }
        },
    };
    // The producer tells evicted commands' submitters and runs `on_evict` after its send, so
    // read the evictions once it is done.
    let seen = producer.join().unwrap();
    let evicted = evicted.lock().unwrap().clone();
    for (n, seen) in seen {
        let fate = match seen {
            Err(back) => {
                assert_eq!(back, n);
                Fate::HandedBack
            }
            Ok(Ok(_)) => Fate::Applied,
            Ok(Err(WaitError::Dropped)) => Fate::Dropped,
            Ok(Err(WaitError::NotApplied)) => Fate::NotApplied,
            Ok(Err(other)) => panic!("{n}: {other:?}"),
        };
        let places = [
            log.contains(&n),
            evicted.contains(&n),
            unapplied.contains(&n),
        ];
        let expected = match fate {
            Fate::Applied => [true, false, false],
            Fate::Dropped => [false, true, false],
            Fate::NotApplied => [false, false, true],
            Fate::HandedBack => [false, false, false],
        };
        assert_eq!(places, expected, "{n} under {stop:?}: {fate:?}");
    }
    let stats = observer.stats();
    assert_eq!(stats.dropped, evicted.len() as u64);
    assert_accounted(&stats, log.len());
}

/// Counts its commits: `on_batch_end` publishes how many commands were applied.
struct Committing {
    applied: Vec<u32>,
    committed: Arc<AtomicUsize>,
}

impl StateMachine for Committing {
    type Command = u32;
    type Output = usize;
    fn apply(&mut self, n: u32) -> usize {
        self.applied.push(n);
        self.applied.len()
    }
    fn on_batch_end(&mut self, _: BatchInfo) {
        self.committed.store(self.applied.len(), Ordering::Release);
    }
}

/// `shutdown_now` under group commit with several commands queued: each ticket is answered
/// only once its batch committed, or resolves to `NotApplied` with its command returned to the
/// owner; the applied ones are a prefix, the returned ones the rest, in order.
#[test]
fn shutdown_now_under_group_commit_answers_only_committed_commands() {
    check_bounded(
        "shutdown_now_under_group_commit_answers_only_committed_commands",
        PREEMPTION_BOUND,
        || {
            let committed = Arc::new(AtomicUsize::new(0));
            let queue = SingularQueue::builder(Committing {
                applied: Vec::new(),
                committed: Arc::clone(&committed),
            })
            .capacity(4)
            .reply_mode(ReplyMode::AfterBatch)
            .spawn()
            .unwrap();
            let tickets: Vec<_> = (1..=3).map(|n| queue.submit(n).unwrap()).collect();
            let (state, unapplied) = queue.shutdown_now().unwrap();
            for (n, ticket) in (1..).zip(tickets) {
                match ticket.wait() {
                    Ok(position) => {
                        assert!(committed.load(Ordering::Acquire) >= position, "{n}");
                        assert_eq!(state.applied.get(position - 1), Some(&n));
                    }
                    Err(error) => {
                        assert_eq!(error, WaitError::NotApplied, "{n}");
                        assert!(unapplied.contains(&n), "{n}");
                    }
                }
            }
            let all: Vec<u32> = state.applied.iter().chain(&unapplied).copied().collect();
            assert_eq!(all, [1, 2, 3]);
        },
    );
}

/// Records into a log that outlives the queue.
struct Recorded(Arc<Mutex<Vec<u32>>>);

impl StateMachine for Recorded {
    type Command = u32;
    type Output = ();
    fn apply(&mut self, n: u32) {
        self.0.lock().unwrap().push(n);
    }
}

/// Dropping the queue (not calling `shutdown`) while a submitter waits for room in it: the
/// drop applies everything accepted before it returns, and the submitter's command is applied
/// or handed back.
#[test]
fn dropping_the_queue_racing_a_blocked_submit_applies_it_or_hands_it_back() {
    check_bounded(
        "dropping_the_queue_racing_a_blocked_submit_...",
        PREEMPTION_BOUND,
        || {
            let log = Arc::new(Mutex::new(Vec::new()));
            let queue = SingularQueue::builder(Recorded(Arc::clone(&log)))
                .capacity(1)
                .spawn()
                .unwrap();
            queue.tell(1).unwrap(); // fills the queue, unless the worker took it already
            let (handle, observer) = (queue.handle(), queue.handle());
            let submitter = thread::spawn(move || handle.tell(2).map_err(closed));
            drop(queue);
            let applied = log.lock().unwrap().clone();
            match submitter.join().unwrap() {
                Ok(()) => assert_eq!(applied, [1, 2]),
                Err(back) => {
                    assert_eq!(back, 2);
                    assert_eq!(applied, [1]);
                }
            }
            let stats = observer.stats();
            assert_eq!(stats.submitted + stats.refused_closed, 2);
            assert_accounted(&stats, applied.len());
        },
    );
}
