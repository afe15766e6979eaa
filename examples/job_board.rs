//! A job board: producers queue jobs, an operator cancels some of them through the priority
//! lane (so a cancel overtakes the jobs waiting), a dashboard watches a published view without
//! ever queuing, and a job that crashes its runner restarts the board from what it had
//! finished.
//!
//! Run it with `cargo run --example job_board`.

use std::collections::HashSet;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use singular_queue::{SingularQueue, StateMachine};

enum Command {
    Run(u64),
    Cancel(u64),
}

/// What the board has done. `running` is set while a job runs: a job that panics leaves it
/// set, which is why a crash restarts the board rather than going on.
#[derive(Default)]
struct Board {
    finished: u64,
    skipped: u64,
    cancelled: HashSet<u64>,
    running: Option<u64>,
}

/// What the dashboard shows: a copy of the board's figures, made after each batch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Summary {
    finished: u64,
    skipped: u64,
}

/// Jobs whose number is a multiple of this crash the runner.
const CRASHING: u64 = 997;

impl StateMachine for Board {
    type Command = Command;
    type Output = ();

    fn apply(&mut self, command: Command) {
        match command {
            Command::Cancel(job) => {
                self.cancelled.insert(job);
            }
            Command::Run(job) if self.cancelled.remove(&job) => self.skipped += 1,
            Command::Run(job) => {
                self.running = Some(job);
                let mut work = job;
                for _ in 0..200 {
                    work = black_box(work.rotate_left(5) ^ 0x9e37);
                }
                assert!(job % CRASHING != 0, "job {job} crashed the runner");
                self.running = None;
                self.finished += 1;
            }
        }
    }
}

const PRODUCERS: u64 = 4;
const JOBS_EACH: u64 = 5_000;

fn main() {
    // The crashes are part of the demonstration: keep them off the terminal.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains("crashed the runner") {
            default_hook(info);
        }
    }));
    let (builder, dashboard) = SingularQueue::builder(Board::default())
        .capacity(256)
        .priority_lane(16)
        // A crash leaves `running` set: start again from the figures, which are whole.
        .restart_on_panic(|old: &mut Board| Board {
            finished: old.finished,
            skipped: old.skipped,
            cancelled: std::mem::take(&mut old.cancelled),
            running: None,
        })
        .publish(|board: &Board| Summary {
            finished: board.finished,
            skipped: board.skipped,
        });
    let board = builder.spawn().expect("spawn the board");

    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (dashboard, done) = (dashboard.clone(), Arc::clone(&done));
        thread::spawn(move || {
            let (mut looks, mut last) = (0u64, Summary::default());
            while !done.load(Ordering::Acquire) {
                let now = *dashboard.latest();
                assert!(now.finished >= last.finished && now.skipped >= last.skipped);
                last = now;
                looks += 1;
                thread::yield_now();
            }
            looks
        })
    };
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let handle = board.handle();
            thread::spawn(move || {
                for i in 1..=JOBS_EACH {
                    handle.tell(Command::Run(producer * JOBS_EACH + i)).unwrap();
                }
            })
        })
        .collect();
    let operator = {
        let urgent = board.priority().expect("built with a priority lane");
        // Cancels every tenth job, the latest first: those are still waiting, or not yet
        // queued, and each cancel overtakes the jobs waiting in the normal lane.
        thread::spawn(move || {
            for i in (10..=JOBS_EACH).rev().step_by(10) {
                for producer in 0..PRODUCERS {
                    urgent
                        .tell(Command::Cancel(producer * JOBS_EACH + i))
                        .unwrap();
                }
            }
        })
    };
    for producer in producers {
        producer.join().unwrap();
    }
    operator.join().unwrap();
    board.wait_until_quiet().unwrap();
    done.store(true, Ordering::Release);
    let looks = watcher.join().unwrap();

    let stats = board.stats();
    let summary = *dashboard.latest();
    let board = board.shutdown().expect("no crash poisoned the board");
    let jobs = PRODUCERS * JOBS_EACH;
    // Every job is finished, skipped because cancelled, or crashed the runner (once each: a
    // crashing job that was cancelled in time never ran); a cancel that came after its job
    // ran is left over.
    let crashed = stats.restarts;
    assert_eq!(board.finished + board.skipped + crashed, jobs);
    assert!(crashed <= (1..=jobs).filter(|job| job % CRASHING == 0).count() as u64);
    assert_eq!(stats.panicked, crashed);
    assert_eq!(
        summary,
        Summary {
            finished: board.finished,
            skipped: board.skipped
        }
    );
    let cancels = stats.priority_lane.expect("a priority lane").submitted;
    assert_eq!(board.skipped + board.cancelled.len() as u64, cancels);
    println!(
        "{jobs} jobs: {} finished, {} cancelled before they ran, {crashed} crashed the runner \
         and restarted the board; {} cancels came too late; the dashboard looked {looks} times",
        board.finished,
        board.skipped,
        board.cancelled.len(),
    );
}
