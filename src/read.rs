//! Queued reads: a read-only closure run on the worker, in order with the commands.

use crate::on_panic;
use crate::reply::{self, Reply};
use crate::sync::{Arc, Mutex};
use crate::waits::{self, Awaited};
use crate::{CallError, Handle, StateMachine, Ticket, WaitError, WouldDeadlock};

impl<S: StateMachine> Handle<S> {
    /// Runs `f` on the state, on the worker, after every command this queue accepted before
    /// it, and returns what `f` returns: a read that needs no `Get` variant in your command
    /// type.
    ///
    /// The read is **linearizable**: it takes effect at one point between its call and its
    /// return, in the queue's one order of commands, so it sees every command accepted before
    /// it (this thread's own included) and none accepted after it ran. The worker ends its
    /// batch before running it (`on_batch_end` runs), so `f` sees the state after a batch;
    /// under a pipelined commit ([`Commit::later`](crate::Commit::later)) that may include
    /// commands whose commit is still running.
    ///
    /// A read holds no place in the queue: each reading thread has one in flight at most,
    /// and it never waits for room, whatever the policy. It is not counted in
    /// [`Stats`](crate::Stats), which count commands. `f` runs on the worker between two
    /// commands: keep it short, and take what you need out of the state (clone it) rather
    /// than work on it there.
    ///
    /// # Errors
    ///
    /// The closure comes back inside [`CallError::Closed`] if the queue is closed, and inside
    /// [`CallError::Reentrant`] or [`CallError::Deadlock`] if this thread is a worker the
    /// queue waits for (a read from `apply` would wait for itself).
    /// [`CallError::Panicked`] if `f` panicked: the state is not poisoned (`f` only reads
    /// it), and the queue goes on. [`CallError::NotApplied`] if the queue stopped before the
    /// read's turn (`shutdown_now`, or a state poisoned by an earlier command): `f` never ran,
    /// and is dropped (a panic in its `Drop` is caught).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use singular_queue::{SingularQueue, StateMachine};
    ///
    /// #[derive(Default)]
    /// struct Kv(HashMap<String, u64>);
    ///
    /// impl StateMachine for Kv {
    ///     type Command = (String, u64); // writes only: no `Get` variant
    ///     type Output = ();
    ///     fn apply(&mut self, (key, value): (String, u64)) {
    ///         self.0.insert(key, value);
    ///     }
    /// }
    ///
    /// let kv = SingularQueue::new(Kv::default());
    /// kv.tell(("a".into(), 1)).unwrap();
    /// // Sees the tell above: a read runs after every command accepted before it.
    /// let a = kv.read(|kv: &Kv| kv.0.get("a").copied()).unwrap();
    /// assert_eq!(a, Some(1));
    /// ```
    pub fn read<R, F>(&self, f: F) -> Result<R, CallError<F>>
    where
        F: FnOnce(&S) -> R + Send + 'static,
        R: Send + 'static,
    {
        let (reply, slot) = reply::pair();
        // Recorded before the read is sent, so the reply settles it; the worker alone answers
        // a read (no commit holds it back).
        let _waiting = match slot.wait_for(self.shared().id(), Awaited::Worker) {
            Ok(waiting) => waiting,
            Err(WouldDeadlock) => return Err(self.refuse_read(f)),
        };
        let kept = self.send_read(f, reply)?;
        let outcome = slot.wait(self.shared().wait_strategy());
        drop(kept);
        Ok(outcome?)
    }

    /// Like [`read`](Handle::read), waiting as a task.
    ///
    /// # Cancel safety
    ///
    /// The read is sent before the first await. Dropping the future before the worker reaches
    /// the read cancels it: `f` is dropped where the future is, and never runs. Dropped after
    /// `f` ran, the result is dropped.
    ///
    /// # Errors
    ///
    /// As [`read`](Handle::read).
    ///
    /// # Examples
    ///
    /// ```
    /// use singular_queue::{SingularQueue, StateMachine, model};
    /// # struct Counter(u64);
    /// # impl StateMachine for Counter {
    /// #     type Command = u64;
    /// #     type Output = u64;
    /// #     fn apply(&mut self, add: u64) -> u64 { self.0 += add; self.0 }
    /// # }
    ///
    /// let queue = SingularQueue::new(Counter(0));
    /// queue.tell(3).unwrap();
    /// let seen = model::block_on(queue.read_async(|c: &Counter| c.0)).unwrap();
    /// assert_eq!(seen, 3);
    /// ```
    pub async fn read_async<R, F>(&self, f: F) -> Result<R, CallError<F>>
    where
        F: FnOnce(&S) -> R + Send + 'static,
        R: Send + 'static,
    {
        let queue = self.shared().id();
        if waits::wait_for_node(queue).is_err() {
            return Err(self.refuse_read(f));
        }
        let (reply, slot) = reply::pair();
        let kept = self.send_read(f, reply)?;
        let strategy = self.shared().wait_strategy();
        let outcome = Ticket::awaiting(slot, strategy, queue, Awaited::Worker).await;
        drop(kept);
        Ok(outcome?)
    }

    /// Sends the read to the worker; the closure comes back inside `Closed` if the queue
    /// refuses it. Returns the reader's hold on the closure.
    fn send_read<R, F>(&self, f: F, reply: Reply<R>) -> Result<Kept<F>, CallError<F>>
    where
        F: FnOnce(&S) -> R + Send + 'static,
        R: Send + 'static,
    {
        // Kept here too, so that a read the queue refuses comes back to its caller.
        let kept = Kept(Arc::new(Mutex::new(Some(f))));
        let taken = Arc::clone(&kept.0);
        let read = Box::new(move |state: &S| {
            // Gone if the reader stopped waiting (a cancelled `read_async`).
            let Some(f) = taken.lock().take() else { return };
            reply.send(on_panic::catch(|| f(state)).map_err(WaitError::Panicked));
        });
        if let Err(refused) = self.shared().visit(read) {
            drop(refused);
            let f = kept.0.lock().take().expect("a refused read never ran");
            return Err(CallError::Closed(f));
        }
        Ok(kept)
    }

    /// The refusal of a read that would never return: this thread is the queue's worker, or
    /// a worker that the queue waits for.
    fn refuse_read<F>(&self, f: F) -> CallError<F> {
        if self.shared().is_worker() {
            CallError::Reentrant(f)
        } else {
            CallError::Deadlock(f)
        }
    }
}

/// The reader's hold on its closure until the worker takes it. Dropped when the read is
/// over: a closure the worker never took (the queue stopped first, or the reader stopped
/// waiting) is dropped then, under `catch`, so that a panic in a capture's `Drop` cannot take
/// the error's place (found by review).
struct Kept<F>(Arc<Mutex<Option<F>>>);

impl<F> Drop for Kept<F> {
    fn drop(&mut self) {
        let unrun = self.0.lock().take();
        let _ = on_panic::catch(move || drop(unrun));
    }
}
