//! Review probe (held up): huge and overflowing timeouts behave as "no limit".

mod support;

use std::thread;
use std::time::Duration;

use futures::executor::block_on;
use singular_queue::BlockFor;
use support::{Op, held_queue, within};

#[test]
fn huge_timeouts_wait_for_room_and_outputs_without_panicking() {
    within(Duration::from_secs(30), || {
        for timeout in [
            Duration::MAX,
            Duration::from_secs(u64::MAX / 4),
            Duration::from_secs(1 << 40),
        ] {
            let (queue, release) = held_queue(1, BlockFor(timeout));
            queue.tell(Op::Add(1)).unwrap();
            let h = queue.handle();
            let blocked = thread::spawn({
                let h = h.clone();
                move || {
                    h.call_timeout(Op::Add(2), timeout)
                        .map_err(|e| format!("{e:?}"))
                }
            });
            let asynced = thread::spawn({
                let h = h.clone();
                move || block_on(h.tell_async(Op::Add(3))).map_err(|e| format!("{e:?}"))
            });
            let timed = thread::spawn({
                let h = h.clone();
                move || {
                    h.tell_timeout(Op::Add(4), timeout)
                        .map_err(|e| format!("{e:?}"))
                }
            });
            // Wait until all three wait for room (retry on an observable condition).
            let mut ticket = loop {
                if let Ok(t) = h.try_submit(Op::Add(0)) {
                    break Some(t);
                }
                if h.stats().depth == 1 && blocked.is_finished() {
                    break None;
                }
                thread::sleep(Duration::from_millis(20));
                if queue.stats().depth == 1 {
                    break None;
                }
            };
            release.send(()).unwrap();
            assert!(blocked.join().unwrap().is_ok());
            assert!(asynced.join().unwrap().is_ok());
            assert!(timed.join().unwrap().is_ok());
            if let Some(t) = ticket.as_mut() {
                assert!(t.wait_timeout(timeout).is_some());
            }
            let probe = queue.shutdown().unwrap();
            let mut got = probe.applied.clone();
            got.sort();
            got.retain(|&n| n != 0);
            assert_eq!(got, [1, 2, 3, 4], "{timeout:?}");
        }
    });
}
