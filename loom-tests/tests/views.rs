//! Loom models of published views: the worker publishes a view of the state at each batch's
//! end, and readers take the latest without queuing. A view is never torn, a reader never
//! goes back in time, and under `AfterBatch` a caller finds its own command in the view.
#![cfg(singular_queue_loom)]

use loom::thread;
use singular_queue::{ReplyMode, SingularQueue, StateMachine, WaitStrategy};
use singular_queue_loom_tests::{PREEMPTION_BOUND, check_bounded};

/// Two fields that every command moves together: a view with them apart is torn.
#[derive(Default)]
struct Pair {
    left: u64,
    right: u64,
}

impl StateMachine for Pair {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, add: u64) -> u64 {
        self.left += add;
        self.right += add;
        self.left
    }
}

/// A client calls, then reads the view; a second client tells, and reads twice. Each view is
/// whole, the caller's own command is in the view it reads after its call returns, and the
/// second reader never sees the sum go down.
#[test]
fn a_view_is_whole_monotonic_and_holds_the_callers_own_command() {
    check_bounded(
        "a_view_is_whole_monotonic_and_holds_the_callers_own_command",
        PREEMPTION_BOUND,
        || {
            let (builder, view) = SingularQueue::builder(Pair::default())
                .reply_mode(ReplyMode::AfterBatch)
                .wait_strategy(WaitStrategy::Park)
                .publish(|pair: &Pair| (pair.left, pair.right));
            let queue = builder.spawn().unwrap();
            let (handle, other_view) = (queue.handle(), view.clone());
            let teller = thread::spawn(move || {
                handle.tell(2).unwrap();
                let first = *other_view.latest();
                let second = *other_view.latest();
                for (left, right) in [first, second] {
                    assert_eq!(left, right, "a torn view");
                }
                assert!(second.0 >= first.0, "went back: {first:?} then {second:?}");
            });
            let after = queue.call(1).unwrap();
            let (left, right) = *view.latest();
            assert_eq!(left, right, "a torn view");
            assert!(
                left >= after,
                "the view {left} lacks the caller's own command ({after})"
            );
            teller.join().unwrap();
            assert_eq!(queue.shutdown().unwrap().left, 3);
            assert_eq!(*view.latest(), (3, 3));
        },
    );
}
