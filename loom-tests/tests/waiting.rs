//! Loom models of waiting: for room (several tasks, a cancelled one, a shutdown racing a
//! poll), under per-call limits and a custom policy, for a ticket with a deadline, and for the
//! replies of batches cut by `max_batch`.
#![cfg(singular_queue_loom)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Waker};

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use singular_queue::{
    Backpressure, BatchInfo, Decision, Load, ReplyMode, SingularQueue, StateMachine, SubmitError,
};
use singular_queue_loom_tests::{
    CountingWaker, DEADLINE, PREEMPTION_BOUND, assert_accounted, block_on, check_bounded,
    held_full_queue, queue, shut_down,
};

type Task = Pin<Box<dyn Future<Output = Result<(), SubmitError<u32>>>>>;

/// Polls every task on this thread until all are done, polling each again only after its own
/// waker was woken: a lost wake-up leaves the loop yielding forever, which loom reports.
fn block_on_all(mut tasks: Vec<(Task, StdArc<CountingWaker>)>) -> Vec<Result<(), u32>> {
    let mut outcomes: Vec<Option<Result<(), u32>>> = tasks.iter().map(|_| None).collect();
    let mut seen: Vec<usize> = tasks.iter().map(|_| usize::MAX).collect();
    while outcomes.iter().any(Option::is_none) {
        let mut polled = false;
        for (index, (task, woken)) in tasks.iter_mut().enumerate() {
            let wakes = woken.0.load(Ordering::Acquire);
            if outcomes[index].is_some() || wakes == seen[index] {
                continue;
            }
            seen[index] = wakes;
            polled = true;
            let waker = Waker::from(StdArc::clone(woken));
            if let Poll::Ready(outcome) = task.as_mut().poll(&mut Context::from_waker(&waker)) {
                outcomes[index] = Some(outcome.map_err(SubmitError::into_inner));
            }
        }
        if !polled {
            thread::yield_now();
        }
    }
    outcomes.into_iter().map(Option::unwrap).collect()
}

fn waker() -> StdArc<CountingWaker> {
    StdArc::new(CountingWaker(AtomicUsize::new(0)))
}

/// Two tasks wait for room in a full queue at once: each freed slot wakes every waiter, so
/// both get in, in some order, and nobody sleeps with room free.
#[test]
fn two_tasks_waiting_for_room_both_get_in() {
    check_bounded("two_tasks_waiting_for_room_both_get_in", 2, || {
        let queue = queue(1);
        queue.tell(1).unwrap(); // fills the queue, unless the worker took it already
        let (first, second) = (queue.handle(), queue.handle());
        let tasks: Vec<(Task, _)> = vec![
            (Box::pin(async move { first.tell_async(2).await }), waker()),
            (Box::pin(async move { second.tell_async(3).await }), waker()),
        ];
        assert_eq!(block_on_all(tasks), [Ok(()), Ok(())]);
        let (mut log, stats) = shut_down(queue);
        log[1..].sort_unstable();
        assert_eq!(log, [1, 2, 3]);
        assert_eq!(stats.submitted, 3);
    });
}

/// Hazard 12: a task cancelled (its future dropped) while registered for room takes its waker
/// back at once, and the other waiting task is still woken and gets in.
#[test]
fn a_task_cancelled_while_waiting_for_room_takes_its_waker_back() {
    check_bounded(
        "a_task_cancelled_while_waiting_for_room_takes_its_waker_back",
        PREEMPTION_BOUND,
        || {
            let queue = queue(1);
            queue.tell(1).unwrap();
            let (cancelled, waiting) = (queue.handle(), queue.handle());
            let mut doomed: Task = Box::pin(async move { cancelled.tell_async(2).await });
            let doomed_waker = waker();
            let polled =
                doomed
                    .as_mut()
                    .poll(&mut Context::from_waker(&Waker::from(StdArc::clone(
                        &doomed_waker,
                    ))));
            let doomed_got_in = polled.is_ready();
            drop(doomed); // cancelled: its command is dropped with it, unaccepted
            assert_eq!(StdArc::strong_count(&doomed_waker), 1, "waker taken back");
            let tasks: Vec<(Task, _)> = vec![(
                Box::pin(async move { waiting.tell_async(3).await }),
                waker(),
            )];
            assert_eq!(block_on_all(tasks), [Ok(())]);
            let (log, _) = shut_down(queue);
            let expected: &[u32] = if doomed_got_in { &[1, 2, 3] } else { &[1, 3] };
            assert_eq!(log, expected);
        },
    );
}

/// Hazard 1 for tasks: a shutdown on one thread closes the queue while a task on another
/// thread is in the middle of a poll, waiting for room. Closing wakes the task, which gets in
/// (before the close) or gets its command back; the shutdown never waits for it.
#[test]
fn a_shutdown_racing_a_poll_in_progress_wakes_the_task_which_gets_in_or_its_command_back() {
    check_bounded(
        "a_shutdown_racing_a_poll_in_progress_...",
        PREEMPTION_BOUND,
        || {
            let queue = queue(1);
            queue.tell(1).unwrap();
            let handle = queue.handle();
            let task = thread::spawn(move || block_on(handle.tell_async(2)));
            let (log, _) = shut_down(queue);
            match task.join().unwrap() {
                Ok(()) => assert_eq!(log, [1, 2]),
                Err(refused) => {
                    assert!(refused.is_closed(), "{refused:?}");
                    assert_eq!(refused.into_inner(), 2);
                    assert_eq!(log, [1]);
                }
            }
        },
    );
}

/// Sheds odd commands when full and lets even ones wait a little.
struct ShedOdd;

impl Backpressure<u32> for ShedOdd {
    fn decide(&self, n: &u32, _: &Load<'_>) -> Decision {
        if n % 2 == 1 {
            Decision::RejectIfFull
        } else {
            Decision::WaitFor(DEADLINE)
        }
    }
}

/// Per-call limits and a custom policy on a queue kept full (its worker held inside `apply`):
/// `try_tell` never waits (`Full`), `tell_timeout` waits at most its time (`Timeout`), the
/// policy sheds odd commands (`Full`) and lets even ones wait a while (`Timeout`). Every
/// refusal hands the command back under the name of its cause, and is counted as such.
#[test]
fn per_call_limits_and_a_custom_policy_refuse_each_command_under_its_own_name() {
    check_bounded(
        "per_call_limits_and_a_custom_policy_...",
        PREEMPTION_BOUND,
        || {
            let (queue, release) = held_full_queue(ShedOdd);
            let refusals = [
                (12, queue.try_tell(12), false),
                (14, queue.tell_timeout(14, DEADLINE), true),
                (15, queue.tell(15), false),
                (16, queue.tell(16), true),
            ];
            for (n, outcome, timed_out) in refusals {
                let refused = outcome.expect_err("the queue stays full");
                assert_eq!(refused.is_timeout(), timed_out, "{n}: {refused:?}");
                assert_eq!(refused.is_full(), !timed_out, "{n}: {refused:?}");
                assert_eq!(refused.into_inner(), n);
            }
            release.release();
            let handle = queue.handle();
            assert_eq!(queue.shutdown().unwrap().log, [1, 2]);
            let stats = handle.stats();
            assert_eq!((stats.rejected, stats.timed_out), (2, 2));
            assert_accounted(&stats, 2);
        },
    );
}

/// `Ticket::wait_timeout` racing the completion: it returns the result, or `None` and leaves
/// the ticket valid, and then `wait` returns the result exactly once.
#[test]
fn a_ticket_wait_timeout_racing_completion_yields_the_result_exactly_once() {
    check_bounded(
        "a_ticket_wait_timeout_racing_completion_...",
        PREEMPTION_BOUND,
        || {
            let queue = queue(1);
            let mut ticket = queue.submit(7).unwrap();
            let output = match ticket.wait_timeout(DEADLINE) {
                Some(result) => result.unwrap(),
                None => ticket.wait().unwrap(),
            };
            assert_eq!(output, 1);
            assert_eq!(shut_down(queue).0, [7]);
        },
    );
}

/// Records each batch's size; publishes how many commands are committed.
struct Batches {
    applied: usize,
    sizes: Vec<usize>,
    committed: Arc<AtomicUsize>,
}

impl StateMachine for Batches {
    type Command = ();
    type Output = usize;
    fn apply(&mut self, (): ()) -> usize {
        self.applied += 1;
        self.applied
    }
    fn on_batch_end(&mut self, info: BatchInfo) {
        self.sizes.push(info.size);
        self.committed.store(self.applied, Ordering::Release);
    }
}

/// `max_batch` cuts: three commands under group commit with `max_batch(2)`: no batch holds
/// more than two, each batch is committed before its own replies go out, and every command is
/// answered.
#[test]
fn max_batch_cuts_batches_and_each_is_committed_before_its_replies() {
    check_bounded(
        "max_batch_cuts_batches_and_each_is_committed_before_its_replies",
        PREEMPTION_BOUND,
        || {
            let committed = Arc::new(AtomicUsize::new(0));
            let queue = SingularQueue::builder(Batches {
                applied: 0,
                sizes: Vec::new(),
                committed: Arc::clone(&committed),
            })
            .capacity(3)
            .max_batch(2)
            .reply_mode(ReplyMode::AfterBatch)
            .spawn()
            .unwrap();
            let tickets: Vec<_> = (0..3).map(|_| queue.submit(()).unwrap()).collect();
            for ticket in tickets {
                let position = ticket.wait().unwrap();
                assert!(committed.load(Ordering::Acquire) >= position);
            }
            let handle = queue.handle();
            let state = queue.shutdown().unwrap();
            assert!(state.sizes.iter().all(|&size| (1..=2).contains(&size)));
            assert_eq!(state.sizes.iter().sum::<usize>(), 3);
            assert_accounted(&handle.stats(), 3);
        },
    );
}

/// A shutdown wakes every task waiting for room at once, even while the worker is busy and
/// frees no slot: here the worker stays inside `apply` until the task has its answer, so a
/// close that woke nobody would hang.
#[test]
fn a_shutdown_wakes_waiting_tasks_at_once_even_while_the_worker_is_busy() {
    check_bounded(
        "a_shutdown_wakes_waiting_tasks_at_once_even_while_the_worker_is_busy",
        PREEMPTION_BOUND,
        || {
            let (queue, release) = held_full_queue(singular_queue::Block);
            let handle = queue.handle();
            let mut task: Task = Box::pin(async move { handle.tell_async(3).await });
            let woken = waker();
            let waker = Waker::from(StdArc::clone(&woken));
            assert!(
                task.as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
            );
            let stopper = thread::spawn(move || queue.shutdown().unwrap().log);
            let refused = block_on_all(vec![(task, woken)]);
            assert_eq!(refused, [Err(3)], "refused, its command handed back");
            release.release();
            assert_eq!(stopper.join().unwrap(), [1, 2]);
        },
    );
}

/// Fails the commit of its first batch, and remembers that batch's size.
#[derive(Default)]
struct FirstCommitFails {
    applied: usize,
    batches: usize,
    first_batch: usize,
}

impl StateMachine for FirstCommitFails {
    type Command = ();
    type Output = ();
    fn apply(&mut self, (): ()) {
        self.applied += 1;
    }
    fn try_on_batch_end(&mut self, info: BatchInfo) -> Result<(), singular_queue::CommitError> {
        self.batches += 1;
        if self.batches == 1 {
            self.first_batch = info.size;
            return Err("disk full".into());
        }
        Ok(())
    }
}

/// Two callers racing a commit that fails under `OnCommitError::Continue`: exactly the callers
/// of the failed batch hear `NotCommitted`, the others their output; both commands are
/// applied, and the queue goes on.
#[test]
fn a_failed_commit_under_continue_fails_exactly_its_own_batch() {
    check_bounded(
        "a_failed_commit_under_continue_...",
        PREEMPTION_BOUND,
        || {
            let queue = SingularQueue::builder(FirstCommitFails::default())
                .reply_mode(singular_queue::ReplyMode::AfterBatch)
                .on_commit_error(singular_queue::OnCommitError::Continue)
                .capacity(2)
                .spawn()
                .unwrap();
            let handle = queue.handle();
            let other = thread::spawn(move || handle.call(()));
            let mine = queue.call(());
            let answers = [mine, other.join().unwrap()];
            let lost = answers
                .iter()
                .filter(|a| matches!(a, Err(e) if e.is_not_committed()))
                .count();
            assert!(
                answers
                    .iter()
                    .all(|a| a.is_ok() || matches!(a, Err(e) if e.is_not_committed()))
            );
            let state = queue.shutdown().unwrap();
            assert_eq!((state.applied, lost), (2, state.first_batch));
        },
    );
}
