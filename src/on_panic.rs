use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What the queue does after `apply` panics, set with
/// [`Builder::on_panic`](crate::Builder::on_panic).
///
/// Either way the panic is caught and the submitter of the command that panicked receives
/// [`WaitError::Panicked`](crate::WaitError::Panicked) with the panic's message (a `tell`ed
/// command is counted in [`Stats::panicked`](crate::Stats::panicked)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OnPanic {
    /// Treat the state as poisoned (the default). The queue closes: later submits are refused
    /// with [`SubmitError::Closed`](crate::SubmitError::Closed), commands already accepted
    /// resolve to [`WaitError::NotApplied`](crate::WaitError::NotApplied), and `shutdown`
    /// returns the state inside [`Poisoned`](crate::Poisoned), with those commands.
    #[default]
    Stop,
    /// Keep going with the next command. Choose this when `apply` leaves the state consistent
    /// even when it panics (for example, it validates before it mutates).
    Continue,
}

/// Runs user code, catching a panic: returns the panic's message instead of unwinding.
pub(crate) fn catch<T>(user_code: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(user_code)).map_err(into_message)
}

/// The message of a panic. The payload is dropped, and forgotten if even dropping it panics:
/// nothing a payload does may take the worker down.
fn into_message(payload: Box<dyn Any + Send>) -> String {
    let message = message(&*payload);
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
    message
}

/// The message a panic was raised with, or a placeholder for a payload that is not a string.
fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
