//! Shutdown loses nothing: accepted commands are applied (or returned), refused ones come back.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use singular_queue::{CallError, SingularQueue, StateMachine, SubmitError, WaitError};
use support::{Op, Probe, Sum};

#[test]
fn shutdown_racing_eight_submitters_applies_or_refuses_every_command() {
    let queue = SingularQueue::builder(Sum::default())
        .capacity(16)
        .spawn()
        .unwrap();
    let (accepted, refused) = thread::scope(|scope| {
        let submitters: Vec<_> = (0..8u64)
            .map(|t| {
                let handle = queue.handle();
                scope.spawn(move || submit_until_closed(&handle, t))
            })
            .collect();
        // Let the submitters get going, then shut down in the middle of their traffic.
        for _ in 0..1_000 {
            queue.call(0).unwrap();
        }
        let stats_before = queue.stats();
        let handle = queue.handle();
        let sum = queue.shutdown().unwrap();
        let (mut accepted, mut refused) = (0, 0);
        for submitter in submitters {
            let (a, r) = submitter.join().unwrap();
            accepted += a;
            refused += r;
        }
        assert!(stats_before.submitted >= 1_000);
        assert_eq!(
            sum.total, accepted,
            "every accepted command is in the final state"
        );
        let stats = handle.stats();
        assert_eq!(stats.refused_closed, refused);
        assert_eq!(stats.submitted, stats.applied);
        (accepted, refused)
    });
    assert!(accepted > 0);
    assert_eq!(refused, 8, "each submitter stopped at its first refusal");
}

/// Submits distinct values until the queue refuses one; returns (sum accepted, refusals).
fn submit_until_closed(handle: &singular_queue::Handle<Sum>, thread: u64) -> (u64, u64) {
    let mut accepted = 0;
    for i in 0.. {
        let value = thread * 1_000_000_000 + i + 1;
        let refused = match i % 3 {
            0 => handle.tell(value).err().map(SubmitError::into_inner),
            1 => match handle.submit(value) {
                Ok(ticket) => {
                    // Accepted before the shutdown: it must be applied, not dropped.
                    ticket.wait().unwrap();
                    None
                }
                Err(error) => Some(error.into_inner()),
            },
            _ => handle.call(value).err().map(|e| e.into_inner().unwrap()),
        };
        match refused {
            None => accepted += value,
            Some(back) => {
                assert_eq!(back, value, "the refused command comes back unchanged");
                return (accepted, 1);
            }
        }
    }
    unreachable!()
}

#[test]
fn shutdown_applies_everything_accepted_then_runs_on_stop() {
    struct Stopping {
        seen: Vec<u32>,
        stopped_after: Option<usize>,
    }
    impl StateMachine for Stopping {
        type Command = u32;
        type Output = ();
        fn apply(&mut self, n: u32) {
            self.seen.push(n);
        }
        fn on_stop(&mut self) {
            self.stopped_after = Some(self.seen.len());
        }
    }
    let queue = SingularQueue::new(Stopping {
        seen: Vec::new(),
        stopped_after: None,
    });
    for n in 0..500 {
        queue.tell(n).unwrap();
    }
    let state = queue.shutdown().unwrap();
    assert_eq!(state.seen, (0..500).collect::<Vec<_>>());
    assert_eq!(state.stopped_after, Some(500));
}

#[test]
fn shutdown_now_returns_exactly_the_unapplied_commands_in_order() {
    let queue = SingularQueue::builder(Probe::default())
        .capacity(64)
        .spawn()
        .unwrap();
    queue.call(Op::Add(1)).unwrap();
    let (hold, started, release) = Op::hold();
    let held = queue.submit(hold).unwrap();
    started.recv().unwrap();
    // The worker is inside `apply`; these wait in the queue behind it.
    let tickets: Vec<_> = (100..150)
        .map(|n| queue.submit(Op::Add(n)).unwrap())
        .collect();
    for n in 150..160 {
        queue.tell(Op::Add(n)).unwrap();
    }
    let handle = queue.handle();

    let result = thread::scope(|scope| {
        let stopping = scope.spawn(|| queue.shutdown_now());
        // The gate closes right after the "stop now" flag is set.
        while !handle.is_closed() {
            thread::yield_now();
        }
        release.send(()).unwrap();
        stopping.join().unwrap()
    });
    let (state, unapplied) = result.unwrap();

    assert_eq!(held.wait().unwrap(), 1, "the command in progress finishes");
    assert_eq!(state.applied, [1]);
    let numbers: Vec<u64> = unapplied.iter().filter_map(Op::number).collect();
    assert_eq!(numbers, (100..160).collect::<Vec<_>>());
    for ticket in tickets {
        assert_eq!(ticket.wait().unwrap_err(), WaitError::NotApplied);
    }
    let stats = handle.stats();
    assert_eq!(
        (stats.submitted, stats.applied, stats.not_applied),
        (62, 2, 60)
    );
}

#[test]
fn handles_outliving_the_queue_get_their_commands_back() {
    let queue = SingularQueue::new(Sum::default());
    let handle = queue.handle();
    queue.call(1).unwrap();
    assert_eq!(queue.shutdown().unwrap().total, 1);

    assert!(handle.is_closed());
    assert!(matches!(handle.call(2), Err(CallError::Closed(2))));
    assert_eq!(handle.submit(3).unwrap_err().into_inner(), 3);
    assert_eq!(handle.tell(4).unwrap_err(), SubmitError::Closed(4));
    let stats = handle.stats();
    assert_eq!(
        (stats.submitted, stats.applied, stats.refused_closed),
        (1, 1, 3)
    );
}

/// Reports its final total when dropped, wherever that happens.
struct Reporting {
    total: u64,
    report: Arc<AtomicU64>,
}

impl StateMachine for Reporting {
    type Command = u64;
    type Output = ();
    fn apply(&mut self, add: u64) {
        self.total += add;
    }
}

impl Drop for Reporting {
    fn drop(&mut self) {
        self.report.store(self.total, Ordering::SeqCst);
    }
}

#[test]
fn dropping_the_queue_applies_everything_and_joins_the_worker() {
    let report = Arc::new(AtomicU64::new(0));
    let queue = SingularQueue::builder(Reporting {
        total: 0,
        report: Arc::clone(&report),
    })
    .capacity(4)
    .spawn()
    .unwrap();
    let handle = queue.handle();
    for _ in 0..10_000 {
        queue.tell(1).unwrap();
    }
    drop(queue);
    // The drop returned only after the state was handed back and dropped.
    assert_eq!(report.load(Ordering::SeqCst), 10_000);
    assert!(handle.tell(1).unwrap_err().is_closed());
}
