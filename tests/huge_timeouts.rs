//! Found in review to hold up: huge and overflowing timeouts mean "no limit" (no overflow,
//! no panic, no early timeout) for room waits, sync and async, and for ticket waits.

mod support;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use futures::executor::block_on;
use singular_queue::{BlockFor, Handle};
use support::{Op, Probe, current_tid, held_queue, wait_until_asleep, within};

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
            // Each waiter announces its thread just before it waits for room.
            let (ready_tx, ready) = mpsc::channel();
            let spawn_waiter = |submit: fn(&Handle<Probe>, Duration) -> Result<(), String>| {
                let (h, ready) = (h.clone(), ready_tx.clone());
                thread::spawn(move || {
                    ready.send(current_tid()).unwrap();
                    submit(&h, timeout)
                })
            };
            let waiters = [
                spawn_waiter(|h, timeout| {
                    h.call_timeout(Op::Add(2), timeout)
                        .map(drop)
                        .map_err(|e| format!("{e:?}"))
                }),
                spawn_waiter(|h, _| {
                    block_on(h.tell_async(Op::Add(3))).map_err(|e| format!("{e:?}"))
                }),
                spawn_waiter(|h, timeout| {
                    h.tell_timeout(Op::Add(4), timeout)
                        .map_err(|e| format!("{e:?}"))
                }),
            ];
            let tids: Vec<u32> = (0..waiters.len()).map(|_| ready.recv().unwrap()).collect();
            // Asleep means waiting for room with the huge deadline, none having given up.
            wait_until_asleep(&tids);
            release.send(()).unwrap();
            for waiter in waiters {
                assert_eq!(waiter.join().unwrap(), Ok(()));
            }
            let mut ticket = h.submit(Op::Add(5)).unwrap();
            assert_eq!(ticket.wait_timeout(timeout), Some(Ok(5)));
            let probe = queue.shutdown().unwrap();
            let mut got = probe.applied.clone();
            got.sort();
            assert_eq!(got, [1, 2, 3, 4, 5], "{timeout:?}");
        }
    });
}
