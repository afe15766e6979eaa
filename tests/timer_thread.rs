//! The timer thread behind async `BlockFor` deadlines exits once nothing needs it, and starts
//! again on demand.
//!
//! In a file of its own, so that it runs in a process of its own: no other test arms an alarm
//! while this one watches the thread come and go.

mod support;

use std::future::Future;
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures::executor::block_on;

use singular_queue::BlockFor;
use support::{Op, held_queue, wait_for, within};

/// The timer thread's name, "singular-queue-timer", as the kernel keeps it: 15 bytes.
const TIMER_COMM: &str = "singular-queue-";

/// How many of this process's threads are the timer thread.
fn timer_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == TIMER_COMM)
        .count()
}

/// A waker that tells the test each time it is woken.
struct Tell(mpsc::Sender<()>);

impl Wake for Tell {
    fn wake(self: Arc<Self>) {
        let _ = self.0.send(());
    }
}

#[test]
fn the_timer_thread_exits_once_idle_and_starts_again_on_demand() {
    within(Duration::from_secs(10), || {
        // A full queue, an async submit that waits with a deadline: an alarm is armed. The
        // deadline leaves time to see the timer thread running before it fires.
        let (queue, release) = held_queue(1, BlockFor(Duration::from_millis(500)));
        queue.tell(Op::Add(0)).unwrap();
        let (woken_tx, woken) = mpsc::channel();
        let waker = Waker::from(Arc::new(Tell(woken_tx)));
        let mut context = Context::from_waker(&waker);
        let mut submit = Box::pin(queue.tell_async(Op::Add(1)));
        assert!(submit.as_mut().poll(&mut context).is_pending());
        wait_for("the timer thread starts", Duration::from_secs(5), || {
            timer_threads() == 1
        });
        // The deadline passes: the timer wakes the task, which times out with its command.
        let refused = loop {
            woken.recv().unwrap();
            if let Poll::Ready(result) = submit.as_mut().poll(&mut context) {
                break result.unwrap_err();
            }
        };
        assert!(refused.is_timeout(), "{refused:?}");
        assert_eq!(refused.into_inner().number(), Some(1));
        drop(submit);
        release.send(()).unwrap();
        assert_eq!(queue.shutdown().unwrap().applied, [0]);

        // No alarm is left and no queue runs: the timer thread must go.
        wait_for(
            "the idle timer thread exits",
            Duration::from_secs(5),
            || timer_threads() == 0,
        );

        // A new deadline still fires: the timer starts again on demand.
        let (queue, release) = held_queue(1, BlockFor(Duration::from_millis(50)));
        queue.tell(Op::Add(0)).unwrap();
        let refused = block_on(queue.tell_async(Op::Add(2))).unwrap_err();
        assert!(refused.is_timeout(), "{refused:?}");
        assert_eq!(refused.into_inner().number(), Some(2));
        release.send(()).unwrap();
        assert_eq!(queue.shutdown().unwrap().applied, [0]);
    });
}
