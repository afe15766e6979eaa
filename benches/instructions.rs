//! Instructions per command on each side of the handoff, for valgrind's callgrind: a count that
//! does not change with the machine's speed or its load. `bash benches/instructions` runs this
//! under callgrind and prints `instr_per_tell_submit`, `instr_per_tell_worker`,
//! `instr_flume_send` and `instr_flume_recv`, and per command of `tell_many` in bulks of 64,
//! `instr_per_tell_many_submit` and `instr_per_tell_many_worker` (the bulks built in the
//! submit phase, as a caller would).
//!
//! Each phase is a function of its own, which callgrind counts inclusively: `submit_phase` makes
//! `N` tells into a hand-stepped queue (the submit path, with no worker thread to race), and
//! `worker_phase` serves them (the worker's path, batches and all); the flume phases do the
//! same with a bare bounded channel, the transport beneath. One thread throughout, so every
//! count is exact for a given binary.

use std::hint::black_box;

use singular_queue::{SingularQueue, StateMachine};

/// Commands per phase.
const N: u64 = 100_000;

#[derive(Default)]
struct Counter(u64);

impl StateMachine for Counter {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, add: u64) -> u64 {
        self.0 = self.0.wrapping_add(add);
        self.0
    }
}

#[inline(never)]
fn submit_phase(queue: &singular_queue::ManualQueue<Counter>) {
    for n in 0..N {
        queue.tell(black_box(n)).expect("room for every command");
    }
}

/// Commands per bulk in the `tell_many` phases.
const BULK: u64 = 64;

#[inline(never)]
fn tell_many_submit_phase(queue: &singular_queue::ManualQueue<Counter>) {
    for start in (0..N).step_by(BULK as usize) {
        let bulk = (start..N.min(start + BULK)).map(black_box).collect();
        queue.tell_many(bulk).expect("room for every command");
    }
}

#[inline(never)]
fn tell_many_worker_phase(queue: &mut singular_queue::ManualQueue<Counter>) {
    // Step by step, not `run_until_idle`: code of its own, which the compiler cannot fold
    // into `worker_phase` (callgrind would then see one function).
    while black_box(queue.step()) > 0 {}
}

#[inline(never)]
fn worker_phase(queue: &mut singular_queue::ManualQueue<Counter>) {
    black_box(queue.run_until_idle());
}

#[inline(never)]
fn flume_send_phase(tx: &flume::Sender<u64>) {
    for n in 0..N {
        tx.try_send(black_box(n)).expect("room for every message");
    }
}

#[inline(never)]
fn flume_recv_phase(rx: &flume::Receiver<u64>) {
    let mut sum = 0u64;
    while let Ok(n) = rx.try_recv() {
        sum = sum.wrapping_add(n);
    }
    black_box(sum);
}

fn main() {
    let capacity = N as usize;
    let mut queue = SingularQueue::builder(Counter::default())
        .capacity(capacity)
        .manual();
    submit_phase(&queue);
    worker_phase(&mut queue);
    assert_eq!(queue.state().0, (0..N).sum::<u64>());
    tell_many_submit_phase(&queue);
    tell_many_worker_phase(&mut queue);
    assert_eq!(queue.state().0, 2 * (0..N).sum::<u64>());

    let (tx, rx) = flume::bounded(capacity);
    flume_send_phase(&tx);
    flume_recv_phase(&rx);
    println!("commands per phase: {N}");
}
