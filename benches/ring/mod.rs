//! A candidate transport, measured beside flume before the queue would adopt it: a bounded
//! multi-producer ring with a sequence number per slot (Dmitry Vyukov's design, the one
//! crossbeam's array flavour and std's `sync_channel` use), written in safe Rust as the crate
//! would have to write it: each slot's value sits behind its own lock, uncontended because the
//! sequence number already gives one thread the slot. A consumer that finds the ring empty
//! spins, then sleeps on a condition variable; a producer wakes it only if it said it sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::{Condvar, Mutex};

struct Slot<T> {
    /// `position` when free for the producer of `position`; `position + 1` once it holds that
    /// producer's value.
    seq: AtomicUsize,
    value: Mutex<Option<T>>,
}

struct Ring<T> {
    slots: Box<[Slot<T>]>,
    /// The next position a producer claims.
    tail: AtomicUsize,
    /// The next position the consumer takes (written by the consumer only).
    head: AtomicUsize,
    sleeping: AtomicBool,
    closed: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

pub(crate) struct RingSender<T>(Arc<Ring<T>>);

pub(crate) struct RingReceiver<T>(Arc<Ring<T>>);

/// A ring of `capacity` slots (a power of two).
pub(crate) fn ring<T>(capacity: usize) -> (RingSender<T>, RingReceiver<T>) {
    assert!(capacity.is_power_of_two());
    let slots = (0..capacity)
        .map(|position| Slot {
            seq: AtomicUsize::new(position),
            value: Mutex::new(None),
        })
        .collect();
    let ring = Arc::new(Ring {
        slots,
        tail: AtomicUsize::new(0),
        head: AtomicUsize::new(0),
        sleeping: AtomicBool::new(false),
        closed: AtomicBool::new(false),
        lock: Mutex::new(()),
        wake: Condvar::new(),
    });
    (RingSender(Arc::clone(&ring)), RingReceiver(ring))
}

impl<T> Ring<T> {
    fn slot(&self, position: usize) -> &Slot<T> {
        &self.slots[position & (self.slots.len() - 1)]
    }

    fn wake_consumer(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            let _held = self.lock.lock();
            self.wake.notify_one();
        }
    }
}

impl<T> RingSender<T> {
    /// Sends `value`, waiting (yielding) while the ring is full.
    pub(crate) fn send(&self, value: T) {
        let ring = &*self.0;
        let mut position = ring.tail.load(Ordering::Relaxed);
        loop {
            let slot = ring.slot(position);
            let seq = slot.seq.load(Ordering::Acquire);
            match seq.wrapping_sub(position) as isize {
                0 => match ring.tail.compare_exchange_weak(
                    position,
                    position + 1,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        *slot.value.lock() = Some(value);
                        slot.seq.store(position + 1, Ordering::Release);
                        ring.wake_consumer();
                        return;
                    }
                    Err(now) => position = now,
                },
                lag if lag < 0 => {
                    std::thread::yield_now();
                    position = ring.tail.load(Ordering::Relaxed);
                }
                _ => position = ring.tail.load(Ordering::Relaxed),
            }
        }
    }

    /// Whether the consumer has taken everything sent.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.head.load(Ordering::Acquire) == self.0.tail.load(Ordering::Acquire)
    }
}

impl<T> Drop for RingSender<T> {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::SeqCst);
        let _held = self.0.lock.lock();
        self.0.wake.notify_one();
    }
}

impl<T> RingReceiver<T> {
    fn try_recv(&self) -> Option<T> {
        let ring = &*self.0;
        let head = ring.head.load(Ordering::Relaxed);
        let slot = ring.slot(head);
        if slot.seq.load(Ordering::Acquire) != head + 1 {
            return None;
        }
        let value = slot.value.lock().take();
        slot.seq.store(head + ring.slots.len(), Ordering::Release);
        ring.head.store(head + 1, Ordering::Release);
        value
    }

    /// The next value; `None` once the sender is gone and the ring is empty.
    pub(crate) fn recv(&self) -> Option<T> {
        let ring = &*self.0;
        loop {
            for _ in 0..64 {
                if let Some(value) = self.try_recv() {
                    return Some(value);
                }
                std::hint::spin_loop();
            }
            let mut held = ring.lock.lock();
            ring.sleeping.store(true, Ordering::SeqCst);
            let head = ring.head.load(Ordering::Relaxed);
            if ring.tail.load(Ordering::SeqCst) == head {
                if ring.closed.load(Ordering::SeqCst) {
                    return None;
                }
                ring.wake.wait(&mut held);
            }
            ring.sleeping.store(false, Ordering::Relaxed);
        }
    }
}
