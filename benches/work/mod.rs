//! The work each design does per command, shared by the benchmarks that compare designs: the
//! same state and the same logic in every design.

use std::hint::black_box;

/// What every design applies.
pub(crate) trait Work: Default + Send + 'static {
    fn apply(&mut self, x: u64) -> u64;
}

/// A few nanoseconds of work: the handoff is all there is.
#[derive(Default)]
pub(crate) struct Counter(u64);

impl Work for Counter {
    fn apply(&mut self, x: u64) -> u64 {
        self.0 = self.0.wrapping_add(x);
        self.0
    }
}

/// About half a microsecond to a microsecond of work per command, depending on the machine.
#[derive(Default)]
pub(crate) struct Expensive(u64);

impl Work for Expensive {
    fn apply(&mut self, x: u64) -> u64 {
        let mut h = self.0 ^ x;
        for _ in 0..400 {
            h = black_box(h.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17));
        }
        self.0 = h;
        h
    }
}
