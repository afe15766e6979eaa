//! A linearizability checker for histories of a register per key (get / set /
//! compare-and-set / delete): a Wing & Gong search with Lowe's memoisation. Shared by
//! `tests/linearizability.rs` and the replicated crate's failover test
//! (`raft/tests/linearizable_reads.rs`), which include it by path.

#![allow(dead_code)]

use std::collections::HashSet;
use std::time::Instant;

/// One operation on one key's register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Get,
    Set(u64),
    /// Sets `new` if the value is `expected`.
    Cas {
        expected: Option<u64>,
        new: u64,
    },
    Delete,
}

/// What an operation returned: the value before it (`Get`: the value), and for `Cas`,
/// whether it swapped.
pub(crate) type Output = (Option<u64>, bool);

/// The sequential specification of one key: applies `op` to `value`.
pub(crate) fn step(value: Option<u64>, op: Op) -> (Option<u64>, Output) {
    match op {
        Op::Get => (value, (value, false)),
        Op::Set(new) => (Some(new), (value, true)),
        Op::Cas { expected, new } if value == expected => (Some(new), (value, true)),
        Op::Cas { .. } => (value, (value, false)),
        Op::Delete => (None, (value, value.is_some())),
    }
}

/// A register per key as a state machine: the specification above, applied by `apply`.
#[derive(Default)]
pub(crate) struct Registers(pub(crate) std::collections::HashMap<u64, u64>);

impl singular_queue::StateMachine for Registers {
    type Command = (u64, Op);
    type Output = Output;

    fn apply(&mut self, (key, op): (u64, Op)) -> Output {
        let (next, output) = step(self.0.get(&key).copied(), op);
        match next {
            Some(value) => self.0.insert(key, value),
            None => self.0.remove(&key),
        };
        output
    }
}

/// Groups `events` by key and checks that every key's history is linearizable from empty;
/// returns how many operations it checked. `run` names the run in a failure.
pub(crate) fn check_per_key(events: Vec<(u64, Event)>, run: u64) -> usize {
    let mut histories: std::collections::HashMap<u64, Vec<Event>> = Default::default();
    for (key, event) in events {
        histories.entry(key).or_default().push(event);
    }
    let mut checked = 0;
    for (key, history) in histories {
        assert!(
            linearizable(&history, None),
            "run {run}, key {key}: {history:#?}"
        );
        checked += history.len();
    }
    checked
}

/// A random operation on a register from `roll`, a hash: its value from bits 8 and up, its
/// kind from bits 16 and up.
pub(crate) fn random_op(roll: u64) -> Op {
    let value = (roll >> 8) % 4;
    match (roll >> 16) % 4 {
        0 => Op::Get,
        1 => Op::Set(value),
        2 => Op::Cas {
            expected: (value & 1 == 0).then_some(value / 2),
            new: value,
        },
        _ => Op::Delete,
    }
}

/// An operation as a client saw it: invoked at `start`, returned `output` at `end`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    pub(crate) op: Op,
    pub(crate) output: Output,
    pub(crate) start: Instant,
    pub(crate) end: Instant,
}

impl Event {
    /// `op`, invoked at `start`, returning `output` now.
    pub(crate) fn ended(op: Op, output: Output, start: Instant) -> Self {
        let end = Instant::now();
        Self {
            op,
            output,
            start,
            end,
        }
    }
}

/// Whether some order of `history` respects real time (an operation that returned before
/// another was invoked comes first) and explains every output, starting from `initial`.
pub(crate) fn linearizable(history: &[Event], initial: Option<u64>) -> bool {
    assert!(
        history.len() <= 128,
        "the search tracks done operations in a u128"
    );
    let mut failed = HashSet::new();
    search(history, 0, initial, &mut failed)
}

fn search(
    history: &[Event],
    done: u128,
    value: Option<u64>,
    failed: &mut HashSet<(u128, Option<u64>)>,
) -> bool {
    let pending = || (0..history.len()).filter(move |&i| done & (1 << i) == 0);
    let Some(first_end) = pending().map(|i| history[i].end).min() else {
        return true;
    };
    if failed.contains(&(done, value)) {
        return false;
    }
    // Any pending operation invoked before every pending one returned may go next.
    for i in pending().filter(|&i| history[i].start <= first_end) {
        let (next, output) = step(value, history[i].op);
        if output == history[i].output && search(history, done | (1 << i), next, failed) {
            return true;
        }
    }
    failed.insert((done, value));
    false
}

/// Builds a history from `(op, output, start, end)` with times in ticks from a common origin.
pub(crate) fn history(events: &[(Op, Output, u32, u32)]) -> Vec<Event> {
    let origin = Instant::now();
    let at = |tick: u32| origin + std::time::Duration::from_micros(u64::from(tick));
    events
        .iter()
        .map(|&(op, output, start, end)| Event {
            op,
            output,
            start: at(start),
            end: at(end),
        })
        .collect()
}
