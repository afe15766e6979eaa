//! How threads wait: spin briefly, then yield, then sleep (hazard 6).
//!
//! A handoff to a thread running on another core completes in well under a microsecond, while
//! parking and waking a thread costs several. So a waiter first spins, a few times with
//! growing pauses, then yields its core a few times, and only then parks. Every spin is
//! bounded: with more runnable threads than cores, a spinning waiter steals the cycles the
//! thread it waits for needs.

use crate::sync::{spin_hint, yield_now};

/// How the worker waits for commands and callers wait for outputs, set with
/// [`Builder::wait_strategy`](crate::Builder::wait_strategy).
///
/// Submitters waiting for room in a full queue under [`Block`](crate::Block) retry with the
/// same backoff before they block, but never busy-spin: under `BusySpin` they wait as under
/// `SpinThenPark`, since room may take as long as the slowest update. Under `Park` they block
/// at once.
///
/// # Oversubscription
///
/// Spinning pays off only while the thread being waited for runs on another core. With more
/// busy threads than cores, spinning steals the cycles that thread needs: one busy-spinning
/// Disruptor configuration fell to 56 operations per second with more threads than cores.
/// [`BusySpin`](WaitStrategy::BusySpin) is for machines where the worker and its callers own
/// their cores; the default bounds its spinning and then sleeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WaitStrategy {
    /// Sleep at once (lowest CPU use, highest latency).
    Park,
    /// Spin a few microseconds, then yield a few times, then sleep (the default).
    #[default]
    SpinThenPark,
    /// Never sleep: spin, yielding between spins. Lowest latency on dedicated cores; wasteful
    /// and slow on shared ones.
    BusySpin,
}

/// Spins `SPIN_STEPS` times, with pauses of 1, 2, 4, … 32 spin hints.
#[cfg(not(singular_queue_loom))]
const SPIN_STEPS: u32 = 6;
/// Then yields until this many steps in all.
#[cfg(not(singular_queue_loom))]
const STEPS: u32 = 10;
/// Under loom a spin is only a retry: one step keeps the models small.
#[cfg(singular_queue_loom)]
const SPIN_STEPS: u32 = 0;
#[cfg(singular_queue_loom)]
const STEPS: u32 = 1;

/// One waiter's progress from spinning to sleeping.
pub(crate) struct Backoff {
    strategy: WaitStrategy,
    step: u32,
}

impl Backoff {
    pub(crate) fn new(strategy: WaitStrategy) -> Self {
        Self { strategy, step: 0 }
    }

    /// Waits a little before the caller checks again.
    // Under loom `SPIN_STEPS` is 0, so the first branch is never taken there.
    #[cfg_attr(singular_queue_loom, allow(clippy::absurd_extreme_comparisons))]
    pub(crate) fn snooze(&mut self) {
        if self.step < SPIN_STEPS {
            (0..1u32 << self.step).for_each(|_| spin_hint());
        } else {
            yield_now();
        }
        self.step = self.step.saturating_add(1);
    }

    /// Whether the caller should stop spinning and sleep.
    pub(crate) fn is_completed(&self) -> bool {
        match self.strategy {
            WaitStrategy::Park => true,
            WaitStrategy::SpinThenPark => self.step >= STEPS,
            WaitStrategy::BusySpin => false,
        }
    }
}
