use std::error::Error;
use std::fmt;

use crate::StateMachine;

/// The state came back from a queue that caught a panic which may have left it inconsistent.
///
/// Returned by [`SingularQueue::shutdown`](crate::SingularQueue::shutdown) and
/// [`SingularQueue::shutdown_now`](crate::SingularQueue::shutdown_now) when `apply` panicked
/// under [`OnPanic::Stop`](crate::OnPanic::Stop), or when `on_start` or `on_stop` panicked.
/// Like [`std::sync::PoisonError`], it still gives you the state: you decide whether to trust
/// it. It also gives back the commands that were accepted but never applied, in order.
///
/// # Examples
///
/// ```
/// use singular_queue::{SingularQueue, StateMachine};
///
/// #[derive(Debug)]
/// struct Fragile(Vec<u32>);
///
/// impl StateMachine for Fragile {
///     type Command = u32;
///     type Output = ();
///     fn apply(&mut self, n: u32) {
///         assert!(n != 0, "zero is not allowed");
///         self.0.push(n);
///     }
/// }
///
/// # std::panic::set_hook(Box::new(|_| {}));
/// let queue = SingularQueue::new(Fragile(Vec::new()));
/// queue.call(1).unwrap();
/// assert!(queue.call(0).unwrap_err().is_panicked());
///
/// let poisoned = queue.shutdown().unwrap_err();
/// assert_eq!(poisoned.message(), "zero is not allowed");
/// assert_eq!(poisoned.into_inner().0, vec![1]);
/// ```
pub struct Poisoned<S: StateMachine> {
    state: S,
    unapplied: Vec<S::Command>,
    message: String,
}

impl<S: StateMachine> Poisoned<S> {
    pub(crate) fn new(state: S, unapplied: Vec<S::Command>, message: String) -> Self {
        Self {
            state,
            unapplied,
            message,
        }
    }

    /// The message of the panic that poisoned the state.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The commands accepted after the panic (or left at shutdown), never applied, in order.
    pub fn unapplied(&self) -> &[S::Command] {
        &self.unapplied
    }

    /// Returns the state, possibly inconsistent.
    pub fn into_inner(self) -> S {
        self.state
    }

    /// Returns the state and the commands that were never applied, in order.
    pub fn into_parts(self) -> (S, Vec<S::Command>) {
        (self.state, self.unapplied)
    }
}

impl<S: StateMachine> fmt::Debug for Poisoned<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poisoned")
            .field("message", &self.message)
            .field("unapplied", &self.unapplied.len())
            .finish_non_exhaustive()
    }
}

impl<S: StateMachine> fmt::Display for Poisoned<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the state machine panicked: {}", self.message)
    }
}

impl<S: StateMachine> Error for Poisoned<S> {}
