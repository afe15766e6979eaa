//! Telling many commands at once: one pass through the gate, one read-modify-write for as many
//! places as there are, and one message, for as many commands as fit.

use super::{Lane, LaneId, Shared};
use crate::backpressure::{Decision, Limit};
use crate::message::Message;
use crate::sync::Instant;
use crate::{StateMachine, SubmitError};

/// The commands of a bulk still to send, front first. Parts are taken from the front without
/// moving the rest, so a bulk of any size costs time in proportion to its length, and each
/// part's message holds only its own commands.
type Rest<C> = std::vec::IntoIter<C>;

/// What a bulk's try came to: `Ok` with the outcome, or `Err` with the commands still to send.
type Attempt<C> = Result<Result<(), SubmitError<Rest<C>>>, Rest<C>>;

impl<S: StateMachine> Shared<S> {
    /// Hands `commands` to the worker in order, as many at a time as there are free places,
    /// doing what the policy says when none is free; or hands back the commands not accepted,
    /// with the reason. Under a policy that may evict, or one of the user's own, each command
    /// goes its own way as a `tell` would. Every part carries the time of this call: a
    /// command's queue time includes its wait for room.
    pub(crate) fn send_many(
        &self,
        id: LaneId,
        commands: Vec<S::Command>,
    ) -> Result<(), SubmitError<Vec<S::Command>>> {
        let lane = self.lane(id);
        // `None`: refuse what does not fit; `Some(timeout)`: wait for room, at most `timeout`.
        let wait = match lane.policy.fixed() {
            _ if commands.is_empty() => return Ok(()),
            Some(Decision::Wait) => Some(None),
            Some(Decision::WaitFor(timeout)) => Some(Some(timeout)),
            Some(Decision::RejectIfFull) => None,
            _ => return self.send_each(id, commands),
        };
        let enqueued = self.track_queue_time.then(Instant::now);
        let outcome = match (
            self.attempt_many(lane, commands.into_iter(), enqueued),
            wait,
        ) {
            (Ok(outcome), _) => outcome,
            (Err(rest), None) => Err(SubmitError::Full(rest)),
            (Err(rest), Some(timeout)) => self.wait_for_room(lane, rest, timeout, |rest| {
                self.attempt_many(lane, rest, enqueued)
            }),
        };
        self.settle_many(
            lane,
            outcome.map_err(|refused| refused.map(Iterator::collect)),
        )
    }

    /// One try through the gate: takes as many places as are free, up to one per command, and
    /// sends that many commands from the front as one message. `Err` with the rest if any is
    /// left (none was free, or not enough).
    fn attempt_many(
        &self,
        lane: &Lane<S>,
        mut commands: Rest<S::Command>,
        enqueued: Option<Instant>,
    ) -> Attempt<S::Command> {
        let Some(_pass) = self.gate.enter() else {
            return Ok(Err(SubmitError::Closed(commands)));
        };
        let taken = lane.vacancies.take_up_to(commands.len());
        if taken == 0 {
            return Err(commands);
        }
        // All that is left fits: untouched, the caller's vector travels as it is.
        let all = taken == commands.len();
        let part = if all {
            std::mem::take(&mut commands).collect()
        } else {
            commands.by_ref().take(taken).collect()
        };
        match self.send_held(
            lane,
            Message::Tells {
                commands: part,
                enqueued,
            },
        ) {
            Err(refused) => Ok(Err(refused.map(|message| {
                let mut back = message.into_commands();
                back.extend(commands);
                back.into_iter()
            }))),
            Ok(()) if all => Ok(Ok(())),
            Ok(()) => Err(commands),
        }
    }

    /// Sends each command as `tell` would, stopping at the first refused: it comes back with
    /// every command behind it, all counted as refused for its reason.
    fn send_each(
        &self,
        lane: LaneId,
        commands: Vec<S::Command>,
    ) -> Result<(), SubmitError<Vec<S::Command>>> {
        let mut commands = commands.into_iter();
        while let Some(command) = commands.next() {
            if let Err(refused) = self.send(lane, command, None, Limit::Policy) {
                let rest: Vec<_> = commands.collect();
                self.lane(lane).count_refused(&refused, rest.len());
                return Err(refused.map(|command| std::iter::once(command).chain(rest).collect()));
            }
        }
        Ok(())
    }

    /// Counts the commands a bulk hands back, by the reason.
    fn settle_many(
        &self,
        lane: &Lane<S>,
        outcome: Result<(), SubmitError<Vec<S::Command>>>,
    ) -> Result<(), SubmitError<Vec<S::Command>>> {
        outcome.inspect_err(|refused| {
            let count = match refused {
                SubmitError::Closed(rest)
                | SubmitError::Full(rest)
                | SubmitError::Timeout(rest)
                | SubmitError::Deadlock(rest)
                | SubmitError::CrossShard(rest) => rest.len(),
            };
            lane.count_refused(refused, count);
        })
    }
}
