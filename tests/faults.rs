//! Fault injection under load: panics at random rates, a slow `apply` with many submitters,
//! tickets and handles dropped mid-flight, and `shutdown` / `shutdown_now` racing all of it.
//! Every test runs under a watchdog: a hang fails the test instead of stalling the run.

mod support;

use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Barrier};

use std::thread;
use std::time::{Duration, Instant};
use support::within;

use singular_queue::{
    Backpressure, Block, BlockFor, CallError, Handle, OnPanic, Reject, SingularQueue, StateMachine,
    SubmitError, WaitError,
};

const LIMIT: Duration = Duration::from_secs(120);

/// Sums what it applies; panics on the values `panics` picks; optionally spins for a while.
struct Faulty {
    total: u64,
    count: u64,
    panic_every: u64,
    busy: Duration,
}

impl Faulty {
    fn new(panic_every: u64, busy: Duration) -> Self {
        Faulty {
            total: 0,
            count: 0,
            panic_every,
            busy,
        }
    }
}

fn panics(value: u64, every: u64) -> bool {
    every > 0 && value % every == 0
}

impl StateMachine for Faulty {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, value: u64) -> u64 {
        // Busy work standing in for a slow update (not a sleep: nothing waits on it).
        let until = Instant::now() + self.busy;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        assert!(
            !panics(value, self.panic_every),
            "injected panic on {value}"
        );
        self.total += value;
        self.count += 1;
        self.total
    }
}

/// What one submitter saw: the values the queue accepted, and how many it refused.
#[derive(Default)]
struct Seen {
    accepted: Vec<u64>,
    refused: u64,
}

/// Submits `n` distinct values in a mix of ways (some tickets dropped at once, some abandoned
/// after a short wait, handles cloned and dropped), until done or the queue refuses one as
/// closed.
fn submit_mix(handle: &Handle<Faulty>, thread: u64, n: u64, panic_every: u64) -> Seen {
    let mut seen = Seen::default();
    let random = RandomState::new();
    for i in 0..n {
        let value = thread * 1_000_000 + i + 1;
        let own = handle.clone(); // a handle made and dropped around every operation
        let outcome: Result<(), Option<u64>> = match random.hash_one(value) % 5 {
            0 => own
                .tell(value)
                .map_err(|e| Some(SubmitError::into_inner(e))),
            1 => own
                .submit(value)
                .map(drop)
                .map_err(|e| Some(e.into_inner())),
            2 => own
                .submit(value)
                .map_err(|e| Some(e.into_inner()))
                .map(|mut ticket| {
                    // Give up waiting almost at once: the command is still applied exactly once.
                    if let Some(result) = ticket.wait_timeout(Duration::from_micros(50)) {
                        check_output(value, result.map_err(CallError::from), panic_every);
                    }
                }),
            _ => match own.call(value) {
                Err(error) if error.is_closed() || error.is_full() || error.is_timeout() => {
                    Err(error.into_inner())
                }
                result => {
                    check_output(value, result, panic_every);
                    Ok(())
                }
            },
        };
        drop(own);
        match outcome {
            Ok(()) => seen.accepted.push(value),
            Err(back) => {
                assert_eq!(back, Some(value), "a refused command comes back unchanged");
                seen.refused += 1;
                if handle.is_closed() {
                    break;
                }
            }
        }
    }
    seen
}

/// An accepted command's output: its running total, or the reason it was not applied.
fn check_output(value: u64, result: Result<u64, CallError<u64>>, panic_every: u64) {
    match result {
        Ok(total) => assert!(!panics(value, panic_every) && total >= value),
        Err(CallError::Panicked(message)) => {
            assert!(panics(value, panic_every));
            assert_eq!(message, format!("injected panic on {value}"));
        }
        Err(CallError::NotApplied) => {}
        Err(other) => panic!("unexpected {other:?} for {value}"),
    }
}

/// Checks the books once the queue has stopped: every accepted value was applied exactly once,
/// panicked, or came back unapplied; nothing else happened.
fn check_books(seen: &[Seen], state: &Faulty, unapplied: &[u64], handle: &Handle<Faulty>) {
    let accepted: Vec<u64> = seen
        .iter()
        .flat_map(|s| s.accepted.iter().copied())
        .collect();
    let unapplied_set: std::collections::HashSet<u64> = unapplied.iter().copied().collect();
    assert_eq!(
        unapplied_set.len(),
        unapplied.len(),
        "nothing returned twice"
    );
    assert!(
        unapplied.iter().all(|v| accepted.contains(v)),
        "only accepted commands return"
    );
    let ran: Vec<u64> = accepted
        .iter()
        .copied()
        .filter(|v| !unapplied_set.contains(v))
        .collect();
    let (panicked, applied): (Vec<u64>, Vec<u64>) =
        ran.iter().partition(|&&v| panics(v, state.panic_every));
    assert_eq!(state.count, applied.len() as u64);
    assert_eq!(state.total, applied.iter().sum::<u64>());
    let stats = handle.stats();
    assert_eq!(stats.submitted, accepted.len() as u64);
    assert_eq!(stats.applied, applied.len() as u64);
    assert_eq!(stats.panicked, panicked.len() as u64);
    assert_eq!(stats.not_applied, unapplied.len() as u64);
    let refused: u64 = seen.iter().map(|s| s.refused).sum();
    assert_eq!(
        stats.refused_closed + stats.rejected + stats.timed_out,
        refused
    );
}

fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        if !info.to_string().contains("injected panic") {
            eprintln!("{info}");
        }
    }));
}

#[test]
fn panics_at_random_rates_under_load_lose_nothing() {
    quiet_panics();
    within(LIMIT, || {
        for panic_every in [97, 10, 2] {
            let queue = SingularQueue::builder(Faulty::new(panic_every, Duration::ZERO))
                .capacity(8)
                .on_panic(OnPanic::Continue)
                .spawn()
                .unwrap();
            let seen: Vec<Seen> = thread::scope(|scope| {
                let threads: Vec<_> = (0..8)
                    .map(|t| {
                        let handle = queue.handle();
                        scope.spawn(move || submit_mix(&handle, t, 3_000, panic_every))
                    })
                    .collect();
                threads.into_iter().map(|t| t.join().unwrap()).collect()
            });
            let handle = queue.handle();
            let state = queue.shutdown().unwrap();
            check_books(&seen, &state, &[], &handle);
        }
    });
}

#[test]
fn a_slow_apply_with_sixteen_submitters_and_a_small_queue_loses_nothing() {
    fn run(policy: impl Backpressure<u64>) {
        let queue = SingularQueue::builder(Faulty::new(0, Duration::from_millis(1)))
            .capacity(2)
            .backpressure(policy)
            .spawn()
            .unwrap();
        let seen: Vec<Seen> = thread::scope(|scope| {
            let threads: Vec<_> = (0..16)
                .map(|t| {
                    let handle = queue.handle();
                    scope.spawn(move || submit_mix(&handle, t, 20, 0))
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let handle = queue.handle();
        let state = queue.shutdown().unwrap();
        check_books(&seen, &state, &[], &handle);
    }
    within(LIMIT, || {
        run(Block);
        run(BlockFor(Duration::from_millis(2)));
        run(Reject);
    });
}

/// Starts eight submitters, lets them run, then stops the queue under them.
fn shutdown_under_load(now: bool, panic_every: u64) {
    let queue = SingularQueue::builder(Faulty::new(panic_every, Duration::ZERO))
        .capacity(4)
        .on_panic(OnPanic::Continue)
        .spawn()
        .unwrap();
    let handle = queue.handle();
    let start = Arc::new(Barrier::new(9));
    let submitters: Vec<_> = (0..8)
        .map(|t| {
            let (handle, start) = (queue.handle(), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                submit_mix(&handle, t, 1_000_000, panic_every)
            })
        })
        .collect();
    start.wait();
    // Traffic of our own, so the others are well under way when the queue stops.
    let own: Vec<u64> = (1..=500).map(|i| 900_000_000 + i).collect();
    for &value in &own {
        check_output(value, queue.call(value), panic_every);
    }
    let (state, unapplied) = if now {
        queue.shutdown_now().unwrap()
    } else {
        (queue.shutdown().unwrap(), Vec::new())
    };
    let mut seen: Vec<Seen> = submitters.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        seen.iter().all(|s| s.refused == 1),
        "each submitter ran until refused once"
    );
    seen.push(Seen {
        accepted: own,
        refused: 0,
    });
    check_books(&seen, &state, &unapplied, &handle);
}

#[test]
fn shutdown_racing_submitters_tickets_and_panics_loses_nothing() {
    quiet_panics();
    within(LIMIT, || shutdown_under_load(false, 13));
}

#[test]
fn shutdown_now_racing_submitters_tickets_and_panics_loses_nothing() {
    quiet_panics();
    within(LIMIT, || shutdown_under_load(true, 13));
}

#[test]
fn not_applied_tickets_say_so() {
    // A ticket whose command came back from shutdown_now resolves to NotApplied, never hangs.
    within(LIMIT, || {
        let queue = SingularQueue::builder(Faulty::new(0, Duration::from_millis(1)))
            .capacity(64)
            .spawn()
            .unwrap();
        let tickets: Vec<_> = (1..=64).map(|v| queue.submit(v).unwrap()).collect();
        let (_, unapplied) = queue.shutdown_now().unwrap();
        let not_applied = tickets
            .into_iter()
            .map(|ticket| ticket.wait())
            .filter(|r| matches!(r, Err(WaitError::NotApplied)))
            .count();
        assert_eq!(not_applied, unapplied.len());
    });
}
