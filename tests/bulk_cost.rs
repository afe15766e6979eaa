//! What a bulk costs: in proportion to its length, however small the queue. Alone in its
//! test binary, so that the allocation count is this test's own.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use singular_queue::SingularQueue;
use support::{Sum, within};

/// Counts the bytes this test binary allocates, on every thread.
struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
/// Bytes allocated and not yet freed, and the most there ever were.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged, and only counts.
#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is the system allocator's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above, with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Found by review: each part of a bulk larger than the queue copied the whole rest into a
/// new vector (quadratic in the bulk), and each part's message kept the whole bulk's buffer.
/// A bulk of 20,000 commands through a queue of 4 places allocates a small multiple of the
/// bulk, not thousands of bulks, and never holds more than a small multiple alive.
#[test]
fn a_bulk_larger_than_the_queue_costs_in_proportion_to_its_length() {
    within(Duration::from_secs(30), || {
        const COMMANDS: usize = 20_000;
        let queue = SingularQueue::builder(Sum::default())
            .capacity(4)
            .spawn()
            .unwrap();
        let bulk: Vec<u64> = (0..COMMANDS as u64).collect();
        let bytes = COMMANDS * std::mem::size_of::<u64>();
        let before = ALLOCATED.load(Ordering::Relaxed);
        PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        let live_before = LIVE.load(Ordering::Relaxed);
        queue.tell_many(bulk).unwrap();
        queue.wait_until_quiet().unwrap();
        let allocated = ALLOCATED.load(Ordering::Relaxed) - before;
        assert!(
            allocated < 20 * bytes,
            "{allocated} bytes for a bulk of {bytes}"
        );
        let held = PEAK.load(Ordering::Relaxed) - live_before;
        assert!(
            held < 3 * bytes,
            "{held} bytes alive at once for a bulk of {bytes}"
        );
        let expected: u64 = (0..COMMANDS as u64).sum();
        assert_eq!(queue.shutdown().unwrap().total, expected);
    });
}
