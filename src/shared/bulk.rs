//! Telling many commands at once: one pass through the gate, one read-modify-write for as many
//! places as there are, and one message, for as many commands as fit.

use super::Shared;
use crate::backpressure::{Decision, Limit};
use crate::message::Message;
use crate::sync::Instant;
use crate::{StateMachine, SubmitError};

/// What a bulk's try came to: `Ok` with the outcome, or `Err` with the commands still to send.
type Attempt<C> = Result<Result<(), SubmitError<Vec<C>>>, Vec<C>>;

impl<S: StateMachine> Shared<S> {
    /// Hands `commands` to the worker in order, as many at a time as there are free places,
    /// doing what the policy says when none is free; or hands back the commands not accepted,
    /// with the reason. Under a policy that may evict, or one of the user's own, each command
    /// goes its own way as a `tell` would.
    pub(crate) fn send_many(
        &self,
        commands: Vec<S::Command>,
    ) -> Result<(), SubmitError<Vec<S::Command>>> {
        let timeout = match self.config.policy.fixed() {
            _ if commands.is_empty() => return Ok(()),
            Some(Decision::Wait) => None,
            Some(Decision::WaitFor(timeout)) => Some(timeout),
            Some(Decision::RejectIfFull) => {
                return match self.attempt_many(commands) {
                    Ok(outcome) => self.settle_many(outcome),
                    Err(rest) => self.settle_many(Err(SubmitError::Full(rest))),
                };
            }
            _ => return self.send_each(commands),
        };
        let outcome = match self.attempt_many(commands) {
            Ok(outcome) => outcome,
            Err(rest) => self.wait_for_room(rest, timeout, |rest| self.attempt_many(rest)),
        };
        self.settle_many(outcome)
    }

    /// One try through the gate: takes as many places as are free, up to one per command, and
    /// sends that many commands from the front as one message. `Err` with the rest if any is
    /// left (none was free, or not enough).
    fn attempt_many(&self, mut commands: Vec<S::Command>) -> Attempt<S::Command> {
        let Some(_pass) = self.gate.enter() else {
            return Ok(Err(SubmitError::Closed(commands)));
        };
        let taken = self.vacancies.take_up_to(commands.len());
        if taken == 0 {
            return Err(commands);
        }
        // All of them fit: the caller's vector travels as it is, without a copy.
        let rest = commands.split_off(taken);
        let enqueued = self.config.track_queue_time.then(Instant::now);
        let sent = self.send_held(Message::Tells { commands, enqueued });
        match sent {
            Err(refused) => Ok(Err(refused.map(|message| {
                let mut commands = message.into_commands();
                commands.extend(rest);
                commands
            }))),
            Ok(()) if rest.is_empty() => Ok(Ok(())),
            Ok(()) => Err(rest),
        }
    }

    /// Sends each command as `tell` would, stopping at the first refused: it comes back with
    /// every command behind it, all counted as refused for its reason.
    fn send_each(&self, commands: Vec<S::Command>) -> Result<(), SubmitError<Vec<S::Command>>> {
        let mut commands = commands.into_iter();
        while let Some(command) = commands.next() {
            if let Err(refused) = self.send(command, None, Limit::Policy) {
                let rest: Vec<_> = commands.collect();
                self.count_refused(&refused, rest.len());
                return Err(refused.map(|command| std::iter::once(command).chain(rest).collect()));
            }
        }
        Ok(())
    }

    /// Counts the commands a bulk hands back, by the reason.
    fn settle_many(
        &self,
        outcome: Result<(), SubmitError<Vec<S::Command>>>,
    ) -> Result<(), SubmitError<Vec<S::Command>>> {
        outcome.inspect_err(|refused| {
            let count = match refused {
                SubmitError::Closed(rest)
                | SubmitError::Full(rest)
                | SubmitError::Timeout(rest)
                | SubmitError::Deadlock(rest) => rest.len(),
            };
            self.count_refused(refused, count);
        })
    }
}
