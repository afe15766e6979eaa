//! Compile-time guarantees of the public types' auto traits.

use static_assertions::{assert_impl_all, assert_not_impl_any};

use crate::{Handle, ManualQueue, SingularQueue, StateMachine, Ticket, View};

/// The smallest state machine, to name concrete types in the assertions below.
struct Unit;

impl StateMachine for Unit {
    type Command = ();
    type Output = ();
    fn apply(&mut self, (): ()) {}
}

assert_impl_all!(Handle<Unit>: Send, Sync, Clone);
assert_impl_all!(Ticket<()>: Send);
// A view can be handed to any thread that should only look.
assert_impl_all!(View<u64>: Send, Sync, Clone);
assert_impl_all!(SingularQueue<Unit>: Send);
assert_not_impl_any!(SingularQueue<Unit>: Clone);
// A hand-stepped queue is served by the thread that built it.
assert_not_impl_any!(ManualQueue<Unit>: Send, Sync, Clone);

/// The same guarantees for every state machine and output, not only `Unit`: this compiles only
/// if they hold generically.
#[allow(dead_code)]
fn hold_for_every_state_machine<S: StateMachine, T: Send>() {
    fn send_sync_clone<X: Send + Sync + Clone>() {}
    fn send<X: Send>() {}
    send_sync_clone::<Handle<S>>();
    send::<Ticket<T>>();
    send::<SingularQueue<S>>();
}

/// The futures of the async calls are `Send` for every state machine, so they can be spawned on
/// multi-threaded executors.
#[allow(dead_code)]
fn async_calls_are_send<S: StateMachine>(handle: &Handle<S>, commands: [S::Command; 3]) {
    fn send<X: Send>(_: &X) {}
    let [a, b, c] = commands;
    send(&handle.call_async(a));
    send(&handle.submit_async(b));
    send(&handle.tell_async(c));
    send(&handle.closed());
}

/// So is the owner's async shutdown.
#[allow(dead_code)]
fn async_shutdown_is_send<S: StateMachine>(queue: SingularQueue<S>) {
    fn send<X: Send>(_: &X) {}
    send(&queue.shutdown_async());
}
