//! Model-based property test: random builder options and random sequences of operations, run
//! from one thread, checked against a sequential reference model of the queue.
//!
//! With one submitting thread the queue accepts commands in the order they are submitted, and
//! the worker applies them in that order. What the model cannot know in advance is timing:
//! whether the queue is full at a given moment, and so which commands a full queue refuses or
//! evicts. The check therefore takes the refusals and evictions as observed and verifies that
//! every one of them is allowed by the options, and that everything else follows exactly.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use singular_queue::{
    Block, BlockFor, CallError, DropOldest, Handle, OnPanic, Reject, ReplyMode, SingularQueue,
    StateMachine, Stats, SubmitError, Ticket, WaitError,
};

/// Commands with this bit set panic in `apply`.
const PANIC: u32 = 1 << 31;

#[derive(Default)]
struct Log(Vec<u32>);

impl StateMachine for Log {
    type Command = u32;
    type Output = usize;
    fn apply(&mut self, id: u32) -> usize {
        assert!(id & PANIC == 0, "planted panic");
        self.0.push(id);
        self.0.len()
    }
}

#[derive(Clone, Copy, Debug)]
enum Policy {
    Block,
    BlockFor,
    Reject,
    DropOldest,
}

#[derive(Clone, Debug)]
struct Options {
    capacity: usize,
    policy: Policy,
    group_commit: bool,
    continue_on_panic: bool,
}

#[derive(Clone, Debug)]
enum Step {
    Tell,
    TryTell,
    Submit,
    CallTimeout,
    /// A `tell` whose `apply` panics.
    Panic,
    DropTicket(prop::sample::Index),
    WaitTicket(prop::sample::Index),
    CloneHandle,
    DropHandle(prop::sample::Index),
}

fn options() -> impl Strategy<Value = Options> {
    let policy = prop_oneof![
        Just(Policy::Block),
        Just(Policy::BlockFor),
        Just(Policy::Reject),
        Just(Policy::DropOldest)
    ];
    (1..=4usize, policy, any::<bool>(), any::<bool>()).prop_map(
        |(capacity, policy, group_commit, continue_on_panic)| Options {
            capacity,
            policy,
            group_commit,
            continue_on_panic,
        },
    )
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Tell),
        1 => Just(Step::TryTell),
        3 => Just(Step::Submit),
        2 => Just(Step::CallTimeout),
        1 => Just(Step::Panic),
        1 => any::<prop::sample::Index>().prop_map(Step::DropTicket),
        2 => any::<prop::sample::Index>().prop_map(Step::WaitTicket),
        1 => Just(Step::CloneHandle),
        1 => any::<prop::sample::Index>().prop_map(Step::DropHandle),
    ]
}

/// How a command was submitted.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    Tell,
    TryTell,
    Submit,
    CallTimeout,
}

/// What happened to one command, as its submitter saw it.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    /// Refused, with the command handed back.
    Refused(&'static str),
    /// Accepted; the outcome, if the submitter waited for one.
    Accepted(Option<Outcome>),
}

#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Applied(usize),
    Panicked,
    /// Applied, but its group commit failed.
    NotCommitted,
    NotApplied,
    Dropped,
    /// `call_timeout` gave up after acceptance.
    Late,
}

fn outcome(result: Result<usize, WaitError>) -> Outcome {
    match result {
        Ok(position) => Outcome::Applied(position),
        Err(WaitError::Panicked(_)) => Outcome::Panicked,
        Err(WaitError::NotCommitted(_)) => Outcome::NotCommitted,
        Err(WaitError::NotApplied) => Outcome::NotApplied,
        Err(WaitError::Dropped) => Outcome::Dropped,
        Err(other) => panic!("unexpected {other:?}"),
    }
}

fn refusal<T>(error: &SubmitError<T>) -> &'static str {
    if error.is_closed() {
        "closed"
    } else if error.is_full() {
        "full"
    } else {
        "timeout"
    }
}

/// Runs the steps, then shuts down; returns what each command saw, the final log, the
/// commands handed back unapplied, the evicted commands, the poison and the stats.
struct Run {
    seen: Vec<(u32, Via, Seen)>,
    log: Vec<u32>,
    unapplied: Vec<u32>,
    evicted: Vec<u32>,
    poisoned: bool,
    stats: Stats,
}

fn run(options: &Options, steps: &[Step], now: bool) -> Run {
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&evicted);
    let builder = SingularQueue::builder(Log::default())
        .capacity(options.capacity)
        .reply_mode(if options.group_commit {
            ReplyMode::AfterBatch
        } else {
            ReplyMode::AfterApply
        })
        .on_panic(if options.continue_on_panic {
            OnPanic::Continue
        } else {
            OnPanic::Stop
        })
        .on_evict(move |id| sink.lock().unwrap().push(id));
    let builder = match options.policy {
        Policy::Block => builder.backpressure(Block),
        Policy::BlockFor => builder.backpressure(BlockFor(Duration::from_micros(200))),
        Policy::Reject => builder.backpressure(Reject),
        Policy::DropOldest => builder.backpressure(DropOldest),
    };
    let queue = builder.spawn().unwrap();
    let mut handles: Vec<Handle<Log>> = vec![queue.handle()];
    let mut tickets: Vec<(u32, Ticket<usize>)> = Vec::new();
    let mut seen: HashMap<u32, Seen> = HashMap::new();
    let mut order: Vec<(u32, Via)> = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let id = n as u32 + 1;
        let handle = handles.last().unwrap_or(&queue.handle()).clone();
        let result = match step {
            Step::Tell => Some(handle.tell(id).map_err(|e| refusal(&e))),
            Step::TryTell => Some(handle.try_tell(id).map_err(|e| refusal(&e))),
            Step::Panic => Some(handle.tell(id | PANIC).map_err(|e| refusal(&e))),
            Step::Submit => Some(
                handle
                    .submit(id)
                    .map(|t| tickets.push((id, t)))
                    .map_err(|e| refusal(&e)),
            ),
            Step::CallTimeout => {
                order.push((id, Via::CallTimeout));
                let seen_now = match handle.call_timeout(id, Duration::from_millis(50)) {
                    Ok(position) => Seen::Accepted(Some(Outcome::Applied(position))),
                    Err(CallError::ReplyTimeout) => Seen::Accepted(Some(Outcome::Late)),
                    Err(e) if e.is_closed() => Seen::Refused("closed"),
                    Err(e) if e.is_full() => Seen::Refused("full"),
                    Err(e) if e.is_timeout() => Seen::Refused("timeout"),
                    Err(CallError::Panicked(_)) => Seen::Accepted(Some(Outcome::Panicked)),
                    Err(CallError::NotCommitted(_)) => Seen::Accepted(Some(Outcome::NotCommitted)),
                    Err(CallError::NotApplied) => Seen::Accepted(Some(Outcome::NotApplied)),
                    Err(CallError::Dropped) => Seen::Accepted(Some(Outcome::Dropped)),
                    Err(other) => panic!("unexpected {other:?}"),
                };
                seen.insert(id, seen_now);
                None
            }
            Step::DropTicket(index) if !tickets.is_empty() => {
                let (ticket_id, ticket) = tickets.remove(index.index(tickets.len()));
                drop(ticket);
                seen.entry(ticket_id).or_insert(Seen::Accepted(None));
                None
            }
            Step::WaitTicket(index) if !tickets.is_empty() => {
                let (ticket_id, ticket) = tickets.remove(index.index(tickets.len()));
                seen.insert(ticket_id, Seen::Accepted(Some(outcome(ticket.wait()))));
                None
            }
            Step::CloneHandle => {
                handles.push(handle);
                None
            }
            Step::DropHandle(index) if !handles.is_empty() => {
                handles.remove(index.index(handles.len()));
                None
            }
            _ => None,
        };
        if let Some(result) = result {
            let (id, via) = match step {
                Step::Panic => (id | PANIC, Via::Tell),
                Step::TryTell => (id, Via::TryTell),
                Step::Submit => (id, Via::Submit),
                _ => (id, Via::Tell),
            };
            order.push((id, via));
            let entry = match result {
                Ok(()) => Seen::Accepted(None),
                Err(kind) => Seen::Refused(kind),
            };
            seen.insert(id, entry);
        }
    }
    let handle = queue.handle();
    let (log, unapplied, poisoned) = match (now, ()) {
        (true, ()) => match queue.shutdown_now() {
            Ok((log, unapplied)) => (log.0, unapplied, false),
            Err(poisoned) => {
                let (log, unapplied) = poisoned.into_parts();
                (log.0, unapplied, true)
            }
        },
        (false, ()) => match queue.shutdown() {
            Ok(log) => (log.0, Vec::new(), false),
            Err(poisoned) => {
                let (log, unapplied) = poisoned.into_parts();
                (log.0, unapplied, true)
            }
        },
    };
    for (id, ticket) in tickets {
        seen.insert(id, Seen::Accepted(Some(outcome(ticket.wait()))));
    }
    let stats = handle.stats();
    let evicted = evicted.lock().unwrap().clone();
    let seen = order
        .into_iter()
        .map(|(id, via)| (id, via, seen[&id].clone()))
        .collect();
    Run {
        seen,
        log,
        unapplied,
        evicted,
        poisoned,
        stats,
    }
}

/// The reference model: replays the accepted commands in order through a sequential queue and
/// checks the run against it.
fn check(options: &Options, run: &Run) {
    let accepted: Vec<u32> = run
        .seen
        .iter()
        .filter(|(_, _, seen)| matches!(seen, Seen::Accepted(_)))
        .map(|&(id, _, _)| id)
        .collect();
    let evicted: BTreeSet<u32> = run.evicted.iter().copied().collect();
    let unapplied: BTreeSet<u32> = run.unapplied.iter().copied().collect();

    // Refusals: only the kinds the options allow.
    for (id, via, seen) in &run.seen {
        if let Seen::Refused(kind) = seen {
            let policy = options.policy;
            let allowed = match *kind {
                // Before the shutdown, only a poisoned queue is closed.
                "closed" => run.poisoned,
                // The policy rejects, or a try_* call would not wait.
                "full" => {
                    matches!(policy, Policy::Reject)
                        || *via == Via::TryTell && !matches!(policy, Policy::DropOldest)
                }
                // The policy waits a while, or the call bounded its wait.
                _ => {
                    matches!(policy, Policy::BlockFor)
                        || *via == Via::CallTimeout && matches!(policy, Policy::Block)
                }
            };
            assert!(
                allowed,
                "command {id} ({via:?}) refused as {kind} under {options:?}"
            );
        }
    }
    if !matches!(options.policy, Policy::DropOldest) {
        assert!(evicted.is_empty(), "only drop-oldest evicts");
    }

    // The sequential model: walk the accepted commands in order.
    let mut expected_log = Vec::new();
    let mut expected_unapplied = Vec::new();
    let mut poisoned = false;
    let mut panicked = 0;
    for &id in &accepted {
        if evicted.contains(&id) {
            continue;
        }
        if poisoned || unapplied.contains(&id) {
            expected_unapplied.push(id);
        } else if id & PANIC != 0 {
            panicked += 1;
            poisoned = !options.continue_on_panic;
        } else {
            expected_log.push(id);
        }
    }
    assert_eq!(
        run.log, expected_log,
        "applied exactly the accepted commands, in order"
    );
    assert_eq!(
        run.unapplied, expected_unapplied,
        "handed back exactly the rest, in order"
    );
    assert_eq!(run.poisoned, poisoned);
    assert!(
        evicted.iter().all(|id| accepted.contains(id)),
        "only accepted commands evicted"
    );

    // Each submitter's view agrees with the model.
    for (id, _, seen) in &run.seen {
        let Seen::Accepted(Some(outcome)) = seen else {
            continue;
        };
        let expected = if evicted.contains(id) {
            Outcome::Dropped
        } else if let Some(position) = run.log.iter().position(|x| x == id) {
            Outcome::Applied(position + 1)
        } else if run.unapplied.contains(id) {
            Outcome::NotApplied
        } else {
            Outcome::Panicked
        };
        let consistent = *outcome == expected
            // Gave up waiting: whatever happened after, the call saw none of it.
            || *outcome == Outcome::Late
            // A group commit that failed reports its applied commands as not committed.
            || (options.group_commit
                && run.poisoned
                && *outcome == Outcome::NotCommitted
                && matches!(expected, Outcome::Applied(_)));
        assert!(
            consistent,
            "command {id}: saw {outcome:?}, model says {expected:?}"
        );
    }

    // The stats agree with the model, exactly.
    let stats = &run.stats;
    let refused = |kind| {
        run.seen
            .iter()
            .filter(|(_, _, s)| *s == Seen::Refused(kind))
            .count() as u64
    };
    assert_eq!(stats.submitted, accepted.len() as u64);
    assert_eq!(stats.applied, run.log.len() as u64);
    assert_eq!(stats.panicked, panicked);
    assert_eq!(stats.dropped, evicted.len() as u64);
    assert_eq!(stats.not_applied, run.unapplied.len() as u64);
    assert_eq!(stats.refused_closed, refused("closed"));
    assert_eq!(stats.rejected, refused("full"));
    assert_eq!(stats.timed_out, refused("timeout"));
    assert_eq!(
        stats.submitted,
        stats.applied + stats.panicked + stats.dropped + stats.not_applied
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_queue_matches_the_sequential_model(
        options in options(),
        steps in proptest::collection::vec(step(), 1..40),
        now in any::<bool>(),
    ) {
        std::panic::set_hook(Box::new(|info| {
            if !info.to_string().contains("planted panic") {
                eprintln!("{info}");
            }
        }));
        let run = run(&options, &steps, now);
        check(&options, &run);
    }
}
