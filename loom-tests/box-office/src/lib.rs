//! A box office that sells the seats of one show: the example of a user's crate, tested step
//! by step with a hand-stepped queue (`tests/steps.rs`) and model-checked with loom
//! (`tests/model.rs`). The guide's chapter *Model-checking your own code* walks through it.

use singular_queue::model::sync::Arc;
use singular_queue::model::sync::atomic::{AtomicU32, Ordering};
use singular_queue::{Handle, SingularQueue, StateMachine};

// ANCHOR: seats
/// The seats left, owned by the queue's worker.
#[derive(Debug)]
pub struct Seats {
    left: u32,
    /// Published after each command for readers on other threads (a dashboard): from
    /// `singular_queue::model::sync`, so that loom sees it too.
    left_now: Arc<AtomicU32>,
}

/// What a buyer asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Sells a seat if one is left.
    Buy,
    /// Sells a seat, trusting the caller to have checked that one is left. Fast, and wrong
    /// under concurrency: `tests/model.rs` shows loom finding the oversold seat.
    BuyChecked,
    /// Gives a seat back.
    Return,
}

/// A buy that found no seat left.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SoldOut;

impl StateMachine for Seats {
    type Command = Command;
    /// The seats left after the command.
    type Output = Result<u32, SoldOut>;

    fn apply(&mut self, command: Command) -> Result<u32, SoldOut> {
        match command {
            Command::Buy if self.left == 0 => return Err(SoldOut),
            Command::Buy => self.left -= 1,
            Command::BuyChecked => {
                self.left = self
                    .left
                    .checked_sub(1)
                    .expect("oversold: no seat was left");
            }
            Command::Return => self.left += 1,
        }
        self.left_now.store(self.left, Ordering::Release);
        Ok(self.left)
    }
}
// ANCHOR_END: seats

impl Seats {
    /// A show with `seats` seats, and the counter it publishes the seats left to.
    pub fn new(seats: u32) -> (Self, Arc<AtomicU32>) {
        let left_now = Arc::new(AtomicU32::new(seats));
        let seats = Self {
            left: seats,
            left_now: Arc::clone(&left_now),
        };
        (seats, left_now)
    }

    /// The seats left.
    pub fn left(&self) -> u32 {
        self.left
    }
}

/// The box office: the queue, and the seats-left counter for readers that must not wait.
#[derive(Debug)]
pub struct BoxOffice {
    queue: SingularQueue<Seats>,
    left_now: Arc<AtomicU32>,
}

impl BoxOffice {
    /// Opens a box office for a show of `seats` seats; at most `capacity` buyers wait in line.
    pub fn open(seats: u32, capacity: usize) -> Self {
        let (seats, left_now) = Seats::new(seats);
        let queue = SingularQueue::builder(seats)
            .capacity(capacity)
            .spawn()
            .expect("spawn the box office's worker");
        Self { queue, left_now }
    }

    /// A handle for a buyer's thread.
    pub fn handle(&self) -> Handle<Seats> {
        self.queue.handle()
    }

    /// The seats left, as last published: never waits, may be a moment old.
    pub fn seats_left(&self) -> u32 {
        self.left_now.load(Ordering::Acquire)
    }

    /// Closes the box office once every buyer in line is served; returns the seats.
    pub fn close(self) -> Seats {
        self.queue.shutdown().expect("no command panics")
    }
}
