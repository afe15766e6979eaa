//! What a submitter does when the queue is full: the policy trait and the built-in policies.

use std::any::Any;
use std::fmt;
use std::time::Duration;

/// Decides, for each submitted command, what happens if the queue has no room for it.
///
/// The queue asks its policy before it offers each command, passing the command and a view of
/// the queue's [`Load`], and carries out the [`Decision`]. The built-in policies ([`Block`],
/// [`BlockFor`], [`Reject`], [`DropOldest`]) are implementations of this trait like any other;
/// set one with [`Builder::backpressure`](crate::Builder::backpressure).
///
/// `decide` runs on the submitting thread, on every submit: keep it quick, and do not submit
/// to the same queue from it. It runs before the submit enters the queue's shutdown gate, so a
/// shutdown never waits for it.
///
/// # Examples
///
/// Shed low-priority work early, and let high-priority work wait for room:
///
/// ```
/// use singular_queue::{Backpressure, Decision, Load, SingularQueue, StateMachine};
///
/// enum Job {
///     Low(u32),
///     High(u32),
/// }
///
/// struct ShedLowPriority;
///
/// impl Backpressure<Job> for ShedLowPriority {
///     fn decide(&self, job: &Job, load: &Load<'_>) -> Decision {
///         match job {
///             // More than 80% full: refuse low-priority jobs at once.
///             Job::Low(_) if load.depth() * 5 > load.capacity() * 4 => Decision::Reject,
///             Job::Low(_) => Decision::RejectIfFull,
///             Job::High(_) => Decision::Wait,
///         }
///     }
/// }
///
/// # struct Jobs(u32);
/// # impl StateMachine for Jobs {
/// #     type Command = Job;
/// #     type Output = ();
/// #     fn apply(&mut self, (Job::Low(n) | Job::High(n)): Job) { self.0 += n; }
/// # }
/// let queue = SingularQueue::builder(Jobs(0))
///     .capacity(10)
///     .backpressure(ShedLowPriority)
///     .spawn()
///     .unwrap();
/// queue.call(Job::High(2)).unwrap();
/// queue.call(Job::Low(1)).unwrap(); // the queue is empty: not shed
/// assert_eq!(queue.shutdown().unwrap().0, 3);
/// ```
pub trait Backpressure<C>: Send + Sync + 'static {
    /// What to do with `command` if the queue is full when it is offered.
    fn decide(&self, command: &C, load: &Load<'_>) -> Decision;
}

/// What a [`Backpressure`] policy tells the queue to do with one command.
///
/// Every variant but [`Reject`](Decision::Reject) first offers the command; they differ only
/// in what happens when the queue is full at that moment.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// If full, wait for room as long as it takes.
    Wait,
    /// If full, wait for room at most this long, then refuse with
    /// [`SubmitError::Timeout`](crate::SubmitError::Timeout).
    WaitFor(Duration),
    /// If full, refuse at once with [`SubmitError::Full`](crate::SubmitError::Full).
    RejectIfFull,
    /// If full, evict the oldest command still waiting, and retry until this one fits. The
    /// evicted command's submitter is told ([`WaitError::Dropped`](crate::WaitError::Dropped))
    /// and the command goes to [`Builder::on_evict`](crate::Builder::on_evict).
    EvictOldest,
    /// Refuse now with [`SubmitError::Full`](crate::SubmitError::Full), whatever the room.
    Reject,
}

/// How loaded the queue is, as a [`Backpressure`] policy sees it.
///
/// Reading [`depth`](Load::depth) reads a few counters, as [`Handle::len`](crate::Handle::len)
/// does; the built-in policies never read it.
pub struct Load<'a> {
    capacity: usize,
    depth: &'a dyn Fn() -> usize,
}

impl<'a> Load<'a> {
    pub(crate) fn new(capacity: usize, depth: &'a dyn Fn() -> usize) -> Self {
        Self { capacity, depth }
    }

    /// How many commands the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many commands are waiting now (already stale when you read it, under load).
    pub fn depth(&self) -> usize {
        (self.depth)()
    }
}

impl fmt::Debug for Load<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Load")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// Wait for room as long as it takes: the default policy.
///
/// The submitter blocks until the worker makes room. Nothing is refused while the queue is
/// open, and a slow worker slows its submitters down. A blocking submitter retries briefly
/// (spinning, then yielding, as the queue's [`WaitStrategy`](crate::WaitStrategy) allows, never
/// busy-spinning) before it sleeps: a sleeping submitter costs the worker a wake-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Block;

/// Wait for room at most this long, then refuse with
/// [`SubmitError::Timeout`](crate::SubmitError::Timeout), handing the command back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockFor(pub Duration);

/// Never wait: refuse with [`SubmitError::Full`](crate::SubmitError::Full) when the queue is
/// full, handing the command back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Reject;

/// Never wait and never refuse: when the queue is full, evict the oldest waiting command.
///
/// The command being applied is never evicted. The evicted command's submitter learns it:
/// its `call` returns, or its ticket resolves to, [`WaitError::Dropped`](crate::WaitError::Dropped);
/// a `tell`ed command is counted in [`Stats::dropped`](crate::Stats::dropped). The evicted
/// command itself goes to the [`Builder::on_evict`](crate::Builder::on_evict) callback, or is
/// dropped if there is none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DropOldest;

impl<C> Backpressure<C> for Block {
    fn decide(&self, _: &C, _: &Load<'_>) -> Decision {
        Decision::Wait
    }
}

impl<C> Backpressure<C> for BlockFor {
    fn decide(&self, _: &C, _: &Load<'_>) -> Decision {
        Decision::WaitFor(self.0)
    }
}

impl<C> Backpressure<C> for Reject {
    fn decide(&self, _: &C, _: &Load<'_>) -> Decision {
        Decision::RejectIfFull
    }
}

impl<C> Backpressure<C> for DropOldest {
    fn decide(&self, _: &C, _: &Load<'_>) -> Decision {
        Decision::EvictOldest
    }
}

/// The queue's policy as it keeps it: the built-in ones known by name, so that a submit asks
/// none of them anything while the queue has room, and calls no trait object when it is full.
pub(crate) enum Policy<C> {
    /// A policy whose decision depends only on the queue being full.
    Fixed(Decision),
    /// A policy of the user's own, asked about every command before it is offered.
    Own(Box<dyn Backpressure<C>>),
}

impl<C: 'static> Policy<C> {
    /// Keeps `policy`, recognising the built-in ones.
    pub(crate) fn new<P: Backpressure<C>>(policy: P) -> Self {
        let any: &dyn Any = &policy;
        let fixed = if any.is::<Block>() {
            Decision::Wait
        } else if let Some(BlockFor(timeout)) = any.downcast_ref::<BlockFor>() {
            Decision::WaitFor(*timeout)
        } else if any.is::<Reject>() {
            Decision::RejectIfFull
        } else if any.is::<DropOldest>() {
            Decision::EvictOldest
        } else {
            return Policy::Own(Box::new(policy));
        };
        Policy::Fixed(fixed)
    }

    /// The decision for every command if it is the same for all, whatever the load: then a
    /// submit need not ask before it offers.
    pub(crate) fn fixed(&self) -> Option<Decision> {
        match self {
            Policy::Fixed(decision) => Some(*decision),
            Policy::Own(_) => None,
        }
    }

    /// What to do with `command` if the queue is full.
    pub(crate) fn decide(&self, command: &C, load: &Load<'_>) -> Decision {
        match self {
            Policy::Fixed(decision) => *decision,
            Policy::Own(policy) => policy.decide(command, load),
        }
    }
}

/// A per-call bound on waiting, from `try_*` and `*_timeout` submits.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Limit {
    /// Whatever the policy decides.
    Policy,
    /// Never wait.
    NoWait,
    /// Wait at most this long.
    Within(Duration),
}

impl Limit {
    /// The policy's decision, with its waiting cut down to this limit.
    pub(crate) fn cap(self, decision: Decision) -> Decision {
        use Decision::{Wait, WaitFor};
        match (self, decision) {
            (Limit::NoWait, Wait | WaitFor(_)) => Decision::RejectIfFull,
            (Limit::Within(limit), Wait) => WaitFor(limit),
            (Limit::Within(limit), WaitFor(wait)) => WaitFor(wait.min(limit)),
            (_, decision) => decision,
        }
    }
}
