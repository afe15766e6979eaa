//! What travels through the channel from submitters to the worker.

use crate::StateMachine;
use crate::commit::Outcome;
use crate::reply::Reply;
use crate::sync::Instant;

/// Code of the crate's own that the worker runs on the state between two batches (a
/// [`Sharded`](crate::Sharded) snapshot's marker). Dropped unrun if the queue stops or is
/// poisoned first: whatever it captured tells its waiter in its `Drop`.
pub(crate) type Visit<S> = Box<dyn FnOnce(&S) + Send>;

pub(crate) enum Message<S: StateMachine> {
    /// A command, with the reply to complete unless it was a `tell`.
    Apply {
        command: S::Command,
        reply: Option<Reply<S::Output>>,
        /// When it was accepted, if the queue measures queue time.
        enqueued: Option<Instant>,
    },
    /// Commands told together ([`Handle::tell_many`](crate::Handle::tell_many)), holding one
    /// place each, applied in order. Formed only under a policy that never evicts: eviction
    /// takes out one command, never a part of a message.
    Tells {
        commands: Vec<S::Command>,
        /// When they were accepted, if the queue measures queue time.
        enqueued: Option<Instant>,
    },
    /// Run on the state once the commands ahead of it are applied and their batch ended. It
    /// holds no place: the code that sends one bounds how many are in flight.
    Visit(Visit<S>),
    /// From a commit thread: how the commit numbered `seq` ended.
    Committed { seq: u64, outcome: Outcome },
    /// Sent once by the shutdown, after the gate is closed and quiet: the last message. Also
    /// sent, without the gate, as a nudge to the worker of an orphaned queue, which then
    /// finds the end by itself.
    Stop,
    /// Wakes a worker asleep on the normal lane when a priority command comes in; holds no
    /// place and asks for nothing.
    Doorbell,
    /// Test-only: makes the worker's loop panic, as a bug of the crate's own would.
    #[cfg(test)]
    Fail,
}

impl<S: StateMachine> Message<S> {
    /// The command inside a message that a submitter sent.
    pub(crate) fn into_command(self) -> S::Command {
        match self {
            Message::Apply { command, .. } => command,
            _ => unreachable!("a submit sends one command"),
        }
    }

    /// The commands inside a message that [`tell_many`](crate::Handle::tell_many) sent.
    pub(crate) fn into_commands(self) -> Vec<S::Command> {
        match self {
            Message::Tells { commands, .. } => commands,
            _ => unreachable!("a bulk sends its commands together"),
        }
    }

    /// How many places the message holds: one per command.
    /// Whether the message must come after every priority command accepted before it: a
    /// read or a snapshot's marker (which see the state after those), and a `Stop`.
    pub(crate) fn comes_after_priority(&self) -> bool {
        matches!(self, Message::Visit(_) | Message::Stop)
    }

    pub(crate) fn places(&self) -> usize {
        match self {
            Message::Apply { .. } => 1,
            Message::Tells { commands, .. } => commands.len(),
            _ => 0,
        }
    }
}

#[cfg(test)]
impl<S: StateMachine> Message<S> {
    /// The message, unless it is the planted failure, which panics.
    pub(crate) fn or_fail(self) -> Self {
        assert!(!matches!(self, Message::Fail), "a planted failure");
        self
    }
}
