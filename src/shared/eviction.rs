//! Eviction under `DropOldest` (hazard 2): the oldest waiting command makes room for the
//! newest, whose submitter takes over its place; the evicted command's submitter is told once
//! the evicting submitter has left the gate.

use super::{Lane, Offered, Shared};
use crate::backpressure::{Decision, Limit};
use crate::message::Message;
use crate::on_panic;
use crate::sync::atomic::Ordering;
use crate::wait::Backoff;
use crate::waits;
use crate::{StateMachine, WaitError, WaitStrategy};

impl<S: StateMachine> Shared<S> {
    /// Evicts the oldest waiting command to make room for `message` (hazard 2), and counts the
    /// eviction; the evicted command's submitter is told once the pass is dropped.
    ///
    /// The worker removes a command from the channel before applying it, so the command in
    /// progress can never be evicted. A full queue with nothing in the channel to evict is a
    /// moment's (the worker is giving a place back, another evicting submitter is about to
    /// send, a submitter or a permit holder has taken a place and not yet sent or counted it):
    /// the submitter backs off (spinning, then yielding) and tries again. Only when permits
    /// hold every place does nothing come by itself: then it waits, evicting the first command
    /// a permit sends, as `limit` allows (a `try_*` is refused with `Full`).
    pub(super) fn send_evicting(
        &self,
        lane: &Lane<S>,
        mut message: Message<S>,
        limit: Limit,
    ) -> Offered<S> {
        let mut backoff = Backoff::new(WaitStrategy::BusySpin);
        loop {
            message = match self.try_evicting(lane, message) {
                Ok(offered) => return offered,
                Err(full) => full,
            };
            if lane.reserved.load(Ordering::SeqCst) >= lane.capacity {
                return Self::wait_or_refuse(message, limit.cap(Decision::Wait), true);
            }
            backoff.snooze();
        }
    }

    /// One try to get `message` in: into a free place (`Done`), or into the place of the
    /// oldest command, which it evicts (counted, and returned in `Evicted` to be told). `Err`
    /// with the message if there was neither. A handle's or an orphaned owner's nudge found in
    /// the channel is sent again: it is not this submitter's to swallow (its own command may
    /// never be sent).
    pub(super) fn try_evicting(
        &self,
        lane: &Lane<S>,
        message: Message<S>,
    ) -> Result<Offered<S>, Message<S>> {
        let message = match self.try_offer(lane, message) {
            Ok(outcome) => return Ok(Offered::Done(outcome)),
            Err(full) => full,
        };
        match lane.rx.try_recv() {
            Ok(oldest @ Message::Apply { .. }) => {
                lane.counters.dropped.add(1);
                Ok(Offered::Evicted(self.send_held(lane, message), oldest))
            }
            // Not a bulk (`Message::Tells`): bulks are formed only under policies that never
            // evict. So what else is found is a nudge, a commit's report or a visit: sent
            // again, behind later commands (a snapshot's cut allows a marker that moves back:
            // see `sharded/cut.rs`).
            Ok(other) => {
                let _ = lane.tx.try_send(other);
                Err(message)
            }
            Err(_) => Err(message),
        }
    }

    /// Tells each evicted command's submitter, then hands the command to `on_evict`; then the
    /// evicted commands are done with. `on_evict`, or the command's `Drop` without it, is user
    /// code: a panic there is caught, so that every evicted command is told and counted, and
    /// the evicting submit, whose command was accepted, still returns `Ok`.
    pub(super) fn tell_evicted(&self, lane: &Lane<S>, evicted: Vec<Message<S>>) {
        if evicted.is_empty() {
            return;
        }
        // A wait until quiet on this thread, in `on_evict`, would wait for this thread.
        let _telling = waits::telling_evictions(self.id());
        let count = evicted.len() as u64;
        for message in evicted {
            let Message::Apply { command, reply, .. } = message else {
                unreachable!("only commands are evicted");
            };
            if let Some(reply) = reply {
                reply.send(Err(WaitError::Dropped));
            }
            let _ = on_panic::catch(|| match &self.on_evict {
                Some(on_evict) => on_evict(command),
                None => drop(command),
            });
        }
        lane.counters.evictions_told.add(count);
        self.quiet.wake_all_after_change();
    }
}
