//! What travels through the channel from submitters to the worker.

use crate::StateMachine;
use crate::reply::Reply;

pub(crate) enum Message<S: StateMachine> {
    /// A command, with the reply to complete unless it was a `tell`.
    Apply {
        command: S::Command,
        reply: Option<Reply<S::Output>>,
    },
    /// Sent once by the shutdown, after the gate is closed and quiet: the last message.
    Stop,
}
