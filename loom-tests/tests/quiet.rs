//! Loom models of waiting until a queue is quiet.
#![cfg(singular_queue_loom)]

use loom::thread;
use singular_queue::{BatchInfo, Reject, ReplyMode, SingularQueue, StateMachine};
use singular_queue_loom_tests::{Log, assert_accounted, check, check_bounded, drop_oldest_queue};

/// A waiter for quiet racing the worker and a submit that may be refused (its `submitted`
/// count is taken back): the waiter returns only once the command accepted before it is
/// applied, and is never left asleep once the queue is quiet.
#[test]
fn waiting_until_quiet_racing_a_refused_submit_returns_once_everything_accepted_is_served() {
    check("waiting_until_quiet_racing_a_refused_submit_...", || {
        let queue = SingularQueue::builder(Log::default())
            .capacity(1)
            .backpressure(Reject)
            .spawn()
            .unwrap();
        queue.tell(1).unwrap();
        let handle = queue.handle();
        let racer = thread::spawn(move || handle.tell(2).is_ok());
        queue.wait_until_quiet().unwrap();
        assert!(
            queue.stats().applied >= 1,
            "command 1 was accepted before the wait"
        );
        let accepted = 1 + u64::from(racer.join().unwrap());
        queue.wait_until_quiet().unwrap();
        let stats = queue.stats();
        assert_eq!(stats.applied, accepted);
        let log = queue.shutdown().unwrap().0;
        assert_accounted(&stats, log.len());
    });
}

/// A waiter for quiet while the worker applies command 1 and another thread's command 3
/// evicts its command 2: the eviction is done with before command 1 is, and the waiter must
/// not take it for command 1's.
#[test]
fn an_eviction_done_first_never_passes_for_an_earlier_command_served() {
    check_bounded("an_eviction_done_first_...", 2, || {
        let (queue, _evicted) = drop_oldest_queue();
        queue.tell(1).unwrap();
        let handle = queue.handle();
        let evicter = thread::spawn(move || {
            handle.tell(2).unwrap();
            handle.tell(3).unwrap();
        });
        queue.wait_until_quiet().unwrap();
        assert!(
            queue.stats().applied >= 1,
            "command 1 was accepted before the wait"
        );
        evicter.join().unwrap();
        queue.wait_until_quiet().unwrap();
        let stats = queue.stats();
        assert_eq!(stats.applied + stats.dropped, 3);
        drop(queue);
    });
}

/// Counts what its batches committed.
#[derive(Default)]
struct Committing {
    applied: u64,
    committed: u64,
}

impl StateMachine for Committing {
    type Command = ();
    type Output = u64;
    fn apply(&mut self, (): ()) -> u64 {
        self.applied += 1;
        self.applied
    }
    fn on_batch_end(&mut self, _: BatchInfo) {
        self.committed = self.applied;
    }
}

/// Under group commit, quiet comes only after the batch's `on_batch_end` and its replies: a
/// waiter never sees a command served whose batch is not committed.
#[test]
fn quiet_comes_only_after_the_batch_is_committed_and_answered() {
    check("quiet_comes_only_after_the_batch_...", || {
        let queue = SingularQueue::builder(Committing::default())
            .reply_mode(ReplyMode::AfterBatch)
            .spawn()
            .unwrap();
        let ticket = queue.submit(()).unwrap();
        let handle = queue.handle();
        let waiter = thread::spawn(move || handle.wait_until_quiet().is_ok());
        queue.wait_until_quiet().unwrap();
        assert!(
            ticket.is_ready(),
            "the reply is delivered before the queue is quiet"
        );
        assert!(waiter.join().unwrap());
        let state = queue.shutdown().unwrap();
        assert_eq!((state.applied, state.committed), (1, 1));
    });
}
