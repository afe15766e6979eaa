//! Found in review: `call_async` refuses on the queue's own worker (Reentrant), but `tell_async` /
//! `submit_async` wait for room there with no check: the worker waits for itself forever.

mod support;

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use futures::executor::block_on;
use singular_queue::{Handle, SingularQueue, StateMachine};
use support::within;

struct Selfish {
    me: Arc<Mutex<Option<Handle<Selfish>>>>,
    out: mpsc::Sender<String>,
    go: mpsc::Receiver<()>,
}

impl StateMachine for Selfish {
    type Command = u64;
    type Output = ();
    fn apply(&mut self, n: u64) {
        if n == 0 {
            self.go.recv().unwrap(); // command 1 is queued: the one slot is taken
            let me = self.me.lock().unwrap().clone().unwrap();
            // The queue (capacity 1) is full: command 1 waits behind this one.
            let outcome = block_on(me.tell_async(2));
            let _ = self.out.send(format!("{outcome:?}"));
        }
    }
}

#[test]
fn tell_async_on_its_own_full_queue_from_the_worker_does_not_hang() {
    within(Duration::from_secs(10), || {
        let me = Arc::new(Mutex::new(None));
        let (out, outcome) = mpsc::channel();
        let (go_tx, go) = mpsc::channel();
        let queue = SingularQueue::builder(Selfish {
            me: Arc::clone(&me),
            out,
            go,
        })
        .capacity(1)
        .spawn()
        .unwrap();
        *me.lock().unwrap() = Some(queue.handle());
        // Command 0 occupies the worker only once command 1 fills the slot: send both while
        // the worker cannot take 1 before 0 is applying. (0 is taken first; 1 then fills.)
        queue.tell(0).unwrap();
        queue.tell(1).unwrap();
        go_tx.send(()).unwrap();
        let got = outcome
            .recv_timeout(Duration::from_secs(5))
            .expect("the worker waits for itself in tell_async");
        assert_eq!(got, "Err(Deadlock(..))");
        me.lock().unwrap().take();
    });
}
