//! `tell_many`: each command holds one place, is applied exactly once and in order, or comes
//! back with the reason; under every policy, under load, and when the queue closes or the
//! worker is the caller.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use singular_queue::{
    Backpressure, BatchInfo, Block, BlockFor, CommandTimes, Decision, DropOldest, Load, Observer,
    OnPanic, Reject, SingularQueue, StateMachine, SubmitError,
};
use support::{Op, Probe, Recorder, Sum, free_places, held_queue, quiet_panics, within};

const THREADS: usize = 4;
const PER_THREAD: u64 = 3_000;

/// Each thread's commands, `(thread, 0..PER_THREAD)`, cut into bulks of 1 to 97 commands.
fn bulks(thread: usize) -> Vec<Vec<(usize, u64)>> {
    let mut bulks = Vec::new();
    let mut next = 0;
    let mut size = 1 + thread as u64 * 13;
    while next < PER_THREAD {
        let end = (next + size % 97 + 1).min(PER_THREAD);
        bulks.push((next..end).map(|n| (thread, n)).collect());
        next = end;
        size += 7;
    }
    bulks
}

/// Runs `submit` for each thread's bulks on `THREADS` threads at once.
fn from_threads<R: Send + 'static>(
    submit: impl Fn(usize, Vec<(usize, u64)>) -> R + Send + Sync + 'static,
) -> Vec<Vec<R>> {
    let submit = Arc::new(submit);
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let submit = Arc::clone(&submit);
            thread::spawn(move || {
                bulks(thread)
                    .into_iter()
                    .map(|bulk| submit(thread, bulk))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Checks that each thread's applied commands are in the order it told them.
fn assert_in_order_per_thread(log: &[(usize, u64)]) {
    let mut last = [None::<u64>; THREADS];
    for &(thread, n) in log {
        assert!(
            last[thread] < Some(n),
            "thread {thread}: {n} after {last:?}"
        );
        last[thread] = Some(n);
    }
}

#[test]
fn under_block_every_command_is_applied_once_and_in_order() {
    within(Duration::from_secs(60), || {
        let queue = SingularQueue::builder(Recorder::default())
            .capacity(16)
            .spawn()
            .unwrap();
        let handle = queue.handle();
        from_threads(move |_, bulk| handle.tell_many(bulk).unwrap());
        let stats = queue.stats();
        let log = queue.shutdown().unwrap().log;
        let total = THREADS as u64 * PER_THREAD;
        assert_eq!(log.len() as u64, total);
        assert_in_order_per_thread(&log);
        assert_eq!(stats.submitted, total);
        assert_eq!(stats.rejected, 0);
    });
}

#[test]
fn under_reject_what_does_not_fit_comes_back_and_nothing_else() {
    within(Duration::from_secs(60), || {
        let queue = SingularQueue::builder(Recorder::default())
            .capacity(8)
            .backpressure(Reject)
            .spawn()
            .unwrap();
        let handle = queue.handle();
        let outcomes = from_threads(move |_, bulk| {
            let told = bulk.clone();
            match handle.tell_many(bulk) {
                Ok(()) => told,
                Err(SubmitError::Full(rest)) => {
                    let accepted = told.len() - rest.len();
                    assert_eq!(rest, told[accepted..], "the rest, in order");
                    told[..accepted].to_vec()
                }
                Err(other) => panic!("{other}"),
            }
        });
        let stats = queue.stats();
        let log = queue.shutdown().unwrap().log;
        let accepted: Vec<_> = outcomes.into_iter().flatten().flatten().collect();
        assert_eq!(log.len(), accepted.len());
        let applied: HashSet<_> = log.iter().copied().collect();
        assert_eq!(applied, accepted.into_iter().collect());
        assert_in_order_per_thread(&log);
        let total = THREADS as u64 * PER_THREAD;
        assert_eq!(stats.submitted, log.len() as u64);
        assert_eq!(stats.rejected, total - log.len() as u64);
    });
}

#[test]
fn a_bulk_takes_exactly_the_free_places_and_no_more() {
    let mut queue = SingularQueue::builder(Sum::default())
        .capacity(5)
        .backpressure(Reject)
        .manual();
    queue.tell(100).unwrap();
    assert_eq!(
        queue.tell_many((1..=6).collect()),
        Err(SubmitError::Full(vec![5, 6]))
    );
    assert_eq!(free_places(&queue.handle()), 0);
    assert_eq!(queue.step(), 5, "the single command and the bulk of four");
    assert_eq!(free_places(&queue.handle()), 5);
    let stats = queue.stats();
    assert_eq!((stats.submitted, stats.rejected), (5, 2));
    assert_eq!(queue.shutdown().unwrap().total, 100 + 1 + 2 + 3 + 4);
}

#[test]
fn an_empty_bulk_is_nothing_accepted_and_nothing_refused() {
    let queue = SingularQueue::builder(Sum::default()).manual();
    assert_eq!(queue.tell_many(Vec::new()), Ok(()));
    let stats = queue.stats();
    assert_eq!(
        (stats.submitted, stats.rejected, stats.refused_closed),
        (0, 0, 0)
    );
}

#[test]
fn under_block_for_the_rest_times_out_after_the_first_part_went_in() {
    let (queue, release) = held_queue(3, BlockFor(Duration::from_millis(20)));
    let ops = (1..=5).map(Op::Add).collect();
    let rest = match queue.tell_many(ops) {
        Err(SubmitError::Timeout(rest)) => rest,
        other => panic!("{other:?}"),
    };
    let rest: Vec<_> = rest.iter().map(Op::number).collect();
    assert_eq!(rest, [Some(4), Some(5)]);
    release.send(()).unwrap();
    let stats = queue.stats();
    assert_eq!(stats.timed_out, 2);
    assert_eq!(queue.shutdown().unwrap().applied, [1, 2, 3]);
}

#[test]
fn a_bulk_waiting_for_room_is_handed_back_when_the_queue_closes() {
    within(Duration::from_secs(10), || {
        let (queue, release) = held_queue(2, Block);
        let handle = queue.handle();
        let teller = thread::spawn(move || handle.tell_many((1..=5).map(Op::Add).collect()));
        // The first two fit; the teller then waits for room until the queue is shut down.
        support::wait_for("the bulk's first part", Duration::from_secs(5), || {
            free_places(&queue.handle()) == 0 && queue.stats().submitted == 3
        });
        let closer = thread::spawn(move || unapplied(queue.shutdown_now()));
        let rest = match teller.join().unwrap() {
            Err(SubmitError::Closed(rest)) => rest,
            other => panic!("{other:?}"),
        };
        release.send(()).unwrap();
        assert_eq!(closer.join().unwrap(), [1, 2], "accepted, then set aside");
        let rest: Vec<_> = rest.iter().map(Op::number).collect();
        assert_eq!(rest, [Some(3), Some(4), Some(5)]);
    });
}

#[test]
fn a_bulk_to_a_closed_queue_comes_back_whole_and_counted() {
    let queue = SingularQueue::builder(Sum::default()).spawn().unwrap();
    let handle = queue.handle();
    queue.shutdown().unwrap();
    assert_eq!(
        handle.tell_many(vec![1, 2, 3]),
        Err(SubmitError::Closed(vec![1, 2, 3]))
    );
    assert_eq!(handle.stats().refused_closed, 3);
}

#[test]
fn shutdown_now_sets_aside_every_command_of_a_waiting_bulk() {
    let (queue, release) = held_queue(8, Block);
    queue.tell_many((1..=6).map(Op::Add).collect()).unwrap();
    let handle = queue.handle();
    let stopper = thread::spawn(move || queue.shutdown_now());
    support::wait_for("the queue to close", Duration::from_secs(5), || {
        handle.is_closed()
    });
    release.send(()).unwrap();
    assert_eq!(unapplied(stopper.join().unwrap()), [1, 2, 3, 4, 5, 6]);
    assert_eq!(handle.stats().not_applied, 6);
}

/// What `shutdown_now` set aside, by number; nothing may have been applied but the hold.
fn unapplied(stopped: Result<(Probe, Vec<Op>), singular_queue::Poisoned<Probe>>) -> Vec<u64> {
    let (state, unapplied) = stopped.map_err(|p| p.to_string()).unwrap();
    assert!(state.applied.is_empty());
    unapplied.iter().filter_map(Op::number).collect()
}

#[test]
fn under_drop_oldest_each_command_is_applied_or_evicted_exactly_once() {
    within(Duration::from_secs(60), || {
        let evicted = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&evicted);
        let queue = SingularQueue::builder(Recorder::default())
            .capacity(4)
            .backpressure(DropOldest)
            .on_evict(move |entry| sink.lock().push(entry))
            .spawn()
            .unwrap();
        let handle = queue.handle();
        from_threads(move |_, bulk| handle.tell_many(bulk).unwrap());
        let stats = queue.stats();
        let log = queue.shutdown().unwrap().log;
        let evicted = evicted.lock().clone();
        let total = THREADS * PER_THREAD as usize;
        assert_eq!(log.len() + evicted.len(), total);
        let all: HashSet<_> = log.iter().chain(&evicted).copied().collect();
        assert_eq!(all.len(), total, "no command twice");
        assert_eq!(stats.dropped, evicted.len() as u64);
        assert_in_order_per_thread(&log);
    });
}

/// Refuses odd numbers, whatever the room.
struct NoOdds;

impl Backpressure<u64> for NoOdds {
    fn decide(&self, n: &u64, _: &Load<'_>) -> Decision {
        if n % 2 == 1 {
            Decision::Reject
        } else {
            Decision::Wait
        }
    }
}

#[test]
fn a_policy_of_your_own_judges_each_command_and_stops_the_bulk_at_the_first_refused() {
    let queue = SingularQueue::builder(Sum::default())
        .backpressure(NoOdds)
        .spawn()
        .unwrap();
    assert_eq!(
        queue.tell_many(vec![2, 4, 5, 6, 8]),
        Err(SubmitError::Full(vec![5, 6, 8]))
    );
    let stats = queue.stats();
    assert_eq!((stats.submitted, stats.rejected), (2, 3));
    assert_eq!(queue.shutdown().unwrap().total, 6);
}

#[test]
fn a_bulk_from_the_worker_into_its_own_full_queue_is_refused_not_hung() {
    within(Duration::from_secs(10), || {
        let queue = SingularQueue::builder(support::Exec)
            .capacity(2)
            .spawn()
            .unwrap();
        let handle = queue.handle();
        let outcome = queue
            .call(Box::new(move || {
                let job = || -> support::Job { Box::new(String::new) };
                match handle.tell_many(vec![job(), job(), job()]) {
                    Err(SubmitError::Deadlock(rest)) => format!("deadlock, {} back", rest.len()),
                    Err(other) => format!("{other}"),
                    Ok(()) => "accepted".to_owned(),
                }
            }))
            .unwrap();
        assert_eq!(outcome, "deadlock, 1 back");
        queue.shutdown().unwrap();
    });
}

#[test]
fn a_panic_inside_a_bulk_fails_that_command_alone_under_continue() {
    quiet_panics();
    let queue = SingularQueue::builder(Probe::default())
        .on_panic(OnPanic::Continue)
        .spawn()
        .unwrap();
    queue
        .tell_many(vec![Op::Add(1), Op::Panic, Op::Add(2)])
        .unwrap();
    let handle = queue.handle();
    assert_eq!(queue.shutdown().unwrap().applied, [1, 2]);
    let stats = handle.stats();
    assert_eq!((stats.applied, stats.panicked), (2, 1));
}

#[test]
fn a_panic_inside_a_bulk_sets_aside_the_rest_under_stop() {
    quiet_panics();
    let queue = SingularQueue::builder(Probe::default()).spawn().unwrap();
    queue
        .tell_many(vec![Op::Add(1), Op::Panic, Op::Add(2), Op::Add(3)])
        .unwrap();
    let handle = queue.handle();
    let poisoned = queue.shutdown().unwrap_err();
    let unapplied: Vec<_> = poisoned.unapplied().iter().filter_map(Op::number).collect();
    assert_eq!(unapplied, [2, 3]);
    let stats = handle.stats();
    assert_eq!(
        (stats.applied, stats.panicked, stats.not_applied),
        (1, 1, 2)
    );
}

#[test]
fn a_bulk_is_applied_in_one_batch_even_beyond_max_batch() {
    let mut queue = SingularQueue::builder(Infos::default())
        .max_batch(4)
        .manual();
    queue.tell_many((0..10).collect()).unwrap();
    queue.tell(10).unwrap();
    assert_eq!(queue.step(), 10);
    assert_eq!(queue.step(), 1);
    let sizes: Vec<usize> = queue.shutdown().unwrap().0.iter().map(|i| i.size).collect();
    assert_eq!(sizes, [10, 1]);
}

#[test]
fn bulks_and_single_tells_share_the_places_exactly_under_load() {
    within(Duration::from_secs(60), || {
        let queue = SingularQueue::builder(Recorder::default())
            .capacity(3)
            .spawn()
            .unwrap();
        let singles = Arc::new(AtomicUsize::new(0));
        let (handle, count) = (queue.handle(), Arc::clone(&singles));
        from_threads(move |thread, bulk| {
            if thread % 2 == 0 {
                handle.tell_many(bulk).unwrap();
            } else {
                for entry in bulk {
                    handle.tell(entry).unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        queue.wait_until_quiet().unwrap();
        assert_eq!(free_places(&queue.handle()), 3);
        let log = queue.shutdown().unwrap().log;
        assert_eq!(log.len() as u64, THREADS as u64 * PER_THREAD);
        assert_eq!(singles.load(Ordering::Relaxed) as u64, PER_THREAD * 2);
        assert_in_order_per_thread(&log);
    });
}

/// Records every `BatchInfo` it is given.
#[derive(Default)]
struct Infos(Vec<BatchInfo>);

impl StateMachine for Infos {
    type Command = u64;
    type Output = ();
    fn apply(&mut self, _: u64) {}
    fn on_batch_end(&mut self, info: BatchInfo) {
        self.0.push(info);
    }
}

/// Found by review: `remaining` counted the channel's messages, and a bulk is one message.
#[test]
fn batch_info_remaining_counts_the_commands_of_a_waiting_bulk() {
    let mut queue = SingularQueue::builder(Infos::default())
        .max_batch(1)
        .manual();
    queue.tell(0).unwrap();
    queue.tell_many(vec![1, 2, 3, 4, 5]).unwrap();
    assert_eq!(queue.step(), 1);
    assert_eq!(queue.handle().len(), 5);
    let infos = queue.shutdown().unwrap().0;
    assert_eq!(infos[0].remaining, 5, "{infos:?}");
}

/// Hands every command's measured times to the test.
struct Times(std::sync::mpsc::Sender<CommandTimes>);

impl Observer for Times {
    fn command(&mut self, times: &CommandTimes) {
        let _ = self.0.send(*times);
    }
}

/// Found by review: a bulk's later part was stamped when it was sent, so its wait for room
/// vanished from the queue time. The wait measured here runs from the moment the first part
/// is known to be in until the worker is released, with the teller asleep in between.
#[test]
fn a_bulks_queue_time_includes_its_wait_for_room() {
    within(Duration::from_secs(10), || {
        let (times_tx, times) = std::sync::mpsc::channel();
        let queue = SingularQueue::builder(Probe::default())
            .capacity(1)
            .observer(Times(times_tx))
            .spawn()
            .unwrap();
        let (hold, started, release) = Op::hold();
        queue.tell(hold).unwrap();
        started.recv().unwrap();
        let handle = queue.handle();
        let (tid_tx, tid) = std::sync::mpsc::channel();
        let teller = thread::spawn(move || {
            tid_tx.send(support::current_tid()).unwrap();
            handle.tell_many(vec![Op::Add(1), Op::Add(2)]).unwrap();
        });
        let tid = tid.recv().unwrap();
        support::wait_for("the bulk's first part", Duration::from_secs(5), || {
            queue.stats().submitted == 2
        });
        let first_part_in = Instant::now();
        support::wait_until_asleep(&[tid]); // the second part waits for room
        let waited_at_least = first_part_in.elapsed();
        release.send(()).unwrap();
        teller.join().unwrap();
        queue.wait_until_quiet().unwrap();
        let all: Vec<CommandTimes> = times.try_iter().collect();
        assert_eq!(all.len(), 3, "the hold, 1 and 2");
        assert!(
            all[2].queue_time >= waited_at_least,
            "{all:?} {waited_at_least:?}"
        );
    });
}
