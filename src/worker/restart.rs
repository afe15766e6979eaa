//! Restart after a panic: the worker replaces a state that `apply` may have left half updated
//! with a fresh one from the user's factory, and goes on with the commands behind the panic.

use std::mem;

use super::Worker;
use crate::StateMachine;
use crate::on_panic;

/// The user's factory of fresh states, given the old one.
pub(crate) type Restart<S> = Box<dyn FnMut(&mut S) -> S + Send>;

impl<S: StateMachine> Worker<S> {
    /// Replaces the state after `apply` panicked with `message`. In this order: the commands
    /// applied to the old state since its last commit started are abandoned (their held
    /// outputs fail as not committed, in their turn); the old state's `on_stop` runs; the
    /// factory makes the new state from the old; the old is dropped; the new one's `on_start`
    /// runs and its views are published. A panic in the factory poisons the old state; one in
    /// the new state's `on_start` poisons the new.
    pub(super) fn restart(&mut self, message: &str) {
        self.abandon_group(format!(
            "applied to a state that was restarted, before its commit, after a panic: {message}"
        ));
        let state = &mut self.state;
        let _ = on_panic::catch(|| state.on_stop());
        let factory = self.restart.as_mut().expect("restarting");
        let fresh = match on_panic::catch(|| factory(state)) {
            Ok(fresh) => fresh,
            Err(failure) => {
                return self.poison(format!("the restart after a panic failed: {failure}"));
            }
        };
        let old = mem::replace(&mut self.state, fresh);
        let _ = on_panic::catch(move || drop(old));
        self.shared.counters.worker.restarts.bump(1);
        self.run_hook(S::on_start);
        self.publish();
    }
}
