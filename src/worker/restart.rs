//! Restart after a panic: the worker replaces a state that `apply` may have left half updated
//! with a fresh one from the user's factory, and goes on with the commands behind the panic.

use std::mem;

use super::{Worker, deliver};
use crate::StateMachine;
use crate::WaitError;
use crate::on_panic;
use crate::reply::Reply;

/// The user's factory of fresh states, given the old one.
pub(crate) type Restart<S> = Box<dyn FnMut(&mut S) -> S + Send>;

impl<S: StateMachine> Worker<S> {
    /// After `apply` panicked with `message` on the command whose reply is `reply`: replaces
    /// the state, then tells the caller, then abandons the commands applied to the old state
    /// since its last commit started (their held outputs fail as not committed, in their
    /// turn). Those come last so that the queue is quiet only once the restart is over (found
    /// by review).
    ///
    /// The state is replaced in this order: the old state's `on_stop` runs; the factory
    /// makes the new state from the old; the old is dropped; the new one's `on_start` runs
    /// and its views are published. A panic in the factory poisons the old state (the group
    /// then fails with the poison, as any group of a poisoned state); one in the new state's
    /// `on_start` poisons the new.
    pub(super) fn restart(&mut self, reply: Option<Reply<S::Output>>, message: String) {
        let replaced = self.replace_state(&message);
        deliver(reply, Err(WaitError::Panicked(message.clone())));
        if replaced {
            self.abandon_group(format!(
                "applied to a state that was restarted, before its commit, after a panic: \
                 {message}"
            ));
        }
    }

    /// Replaces the state; returns whether the factory made one.
    fn replace_state(&mut self, message: &str) -> bool {
        let state = &mut self.state;
        let _ = on_panic::catch(|| state.on_stop());
        let factory = self.restart.as_mut().expect("restarting");
        let fresh = match on_panic::catch(|| factory(state)) {
            Ok(fresh) => fresh,
            Err(failure) => {
                self.poison(format!(
                    "the restart after a panic ({message}) failed: {failure}"
                ));
                return false;
            }
        };
        let old = mem::replace(&mut self.state, fresh);
        let _ = on_panic::catch(move || drop(old));
        self.shared.counters.worker.restarts.bump(1);
        self.run_hook(S::on_start);
        self.publish();
        true
    }
}
