//! Waiting until the queue is quiet: a tester's way to assert after concurrent submits without
//! sleeping. Quiet means every accepted command is done with (applied and its batch ended, set
//! aside, or evicted with `on_evict` run) and no submit is under way.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use singular_queue::{
    BatchInfo, DropOldest, Handle, ReplyMode, SingularQueue, StateMachine, WouldDeadlock,
};
use support::{Op, Sum, held_queue, within};

const THREADS: u64 = 8;
const EACH: u64 = 2_000;

/// Publishes what it applied, and what its batches committed, for readers on other threads.
#[derive(Default)]
struct Published {
    applied: Arc<AtomicU64>,
    committed: Arc<AtomicU64>,
    in_batch: u64,
}

impl StateMachine for Published {
    type Command = u64;
    type Output = ();

    fn apply(&mut self, add: u64) {
        self.applied.fetch_add(add, Ordering::Release);
        self.in_batch += add;
    }

    fn on_batch_end(&mut self, _: BatchInfo) {
        self.committed.fetch_add(self.in_batch, Ordering::Release);
        self.in_batch = 0;
    }
}

/// `THREADS` threads each tell `EACH` ones through `handle`, and are joined.
fn tell_from_many_threads<S: StateMachine<Command = u64>>(handle: &Handle<S>) {
    let tellers: Vec<_> = (0..THREADS)
        .map(|_| {
            let handle = handle.clone();
            thread::spawn(move || (0..EACH).for_each(|_| handle.tell(1).unwrap()))
        })
        .collect();
    tellers.into_iter().for_each(|t| t.join().unwrap());
}

#[test]
fn after_quiet_every_told_command_is_applied_and_committed() {
    within(Duration::from_secs(60), || {
        let state = Published::default();
        let (applied, committed) = (Arc::clone(&state.applied), Arc::clone(&state.committed));
        let queue = SingularQueue::builder(state)
            .capacity(16)
            .reply_mode(ReplyMode::AfterBatch)
            .spawn()
            .unwrap();
        for round in 1..=3 {
            tell_from_many_threads(&queue.handle());
            queue.wait_until_quiet().unwrap();
            let expected = round * THREADS * EACH;
            assert_eq!(applied.load(Ordering::Acquire), expected);
            assert_eq!(
                committed.load(Ordering::Acquire),
                expected,
                "on_batch_end ran"
            );
            assert_eq!(queue.stats().applied, expected);
        }
        queue.shutdown().unwrap();
    });
}

#[test]
fn after_quiet_every_evicted_command_reached_on_evict() {
    within(Duration::from_secs(60), || {
        let evicted = Arc::new(Mutex::new(0_u64));
        let sink = Arc::clone(&evicted);
        let queue = SingularQueue::builder(Sum::default())
            .capacity(2)
            .backpressure(DropOldest)
            .on_evict(move |n| *sink.lock() += n)
            .spawn()
            .unwrap();
        tell_from_many_threads(&queue.handle());
        queue.wait_until_quiet().unwrap();
        let stats = queue.stats();
        assert_eq!(
            *evicted.lock(),
            stats.dropped,
            "on_evict ran for each eviction"
        );
        assert_eq!(stats.applied + stats.dropped, THREADS * EACH);
        assert_eq!(queue.shutdown().unwrap().count, stats.applied);
    });
}

#[test]
fn a_busy_worker_is_not_quiet_until_it_is_released() {
    within(Duration::from_secs(60), || {
        let (queue, release) = held_queue(4, singular_queue::Block);
        queue.tell(Op::Add(1)).unwrap();
        assert_eq!(
            queue.wait_until_quiet_timeout(Duration::from_millis(20)),
            Ok(false)
        );
        release.send(()).unwrap();
        queue.wait_until_quiet().unwrap();
        assert_eq!(queue.stats().applied, 2);
        assert_eq!(queue.shutdown().unwrap().applied, [1]);
    });
}

#[test]
fn a_shut_down_queue_is_quiet() {
    let queue = SingularQueue::new(Sum::default());
    let handle = queue.handle();
    queue.tell(1).unwrap();
    queue.shutdown().unwrap();
    assert_eq!(handle.wait_until_quiet(), Ok(()));
}

/// Waits until its own queue is quiet from inside `apply`: it never would be.
struct WaitsForItself(
    Option<Handle<WaitsForItself>>,
    Vec<Result<(), WouldDeadlock>>,
);

impl StateMachine for WaitsForItself {
    type Command = Handle<WaitsForItself>;
    type Output = ();

    fn apply(&mut self, me: Handle<WaitsForItself>) {
        self.1.push(me.wait_until_quiet());
        self.0 = Some(me);
    }
}

#[test]
fn waiting_for_quiet_where_only_this_thread_could_serve_is_refused() {
    within(Duration::from_secs(60), || {
        let queue = SingularQueue::new(WaitsForItself(None, Vec::new()));
        queue.call(queue.handle()).unwrap();
        let mut state = queue.shutdown().unwrap();
        assert_eq!(state.1, [Err(WouldDeadlock)]);
        drop(state.0.take());

        let mut manual = SingularQueue::builder(Sum::default()).manual();
        assert_eq!(
            manual.handle().wait_until_quiet(),
            Ok(()),
            "nothing to serve"
        );
        manual.tell(1).unwrap();
        assert_eq!(manual.handle().wait_until_quiet(), Err(WouldDeadlock));
        assert_eq!(
            manual
                .handle()
                .wait_until_quiet_timeout(Duration::from_secs(60)),
            Err(WouldDeadlock)
        );
        manual.run_until_idle();
        assert_eq!(manual.handle().wait_until_quiet(), Ok(()));
        assert_eq!(
            WouldDeadlock.to_string(),
            "waiting would deadlock: the queue waits for this thread"
        );
    });
}

/// Another thread waits until a hand-stepped queue is quiet; the owner's steps get it there.
#[test]
fn a_waiter_on_another_thread_is_woken_by_the_owners_steps() {
    within(Duration::from_secs(60), || {
        let mut queue = SingularQueue::builder(Sum::default()).manual();
        for n in 1..=3 {
            queue.tell(n).unwrap();
        }
        let handle = queue.handle();
        let waiter = thread::spawn(move || {
            handle.wait_until_quiet().unwrap();
            handle.stats().applied
        });
        while !waiter.is_finished() {
            queue.step();
            thread::yield_now();
        }
        assert_eq!(waiter.join().unwrap(), 3);
    });
}
