//! The service's state: named counters, and a tick count kept by a periodic command.

use std::collections::BTreeMap;
use std::time::Duration;

use singular_queue::StateMachine;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    values: BTreeMap<String, u64>,
    ticks: u64,
}

pub(crate) enum Command {
    /// Adds `n` to the counter `key`. Overflowing panics: a bug a request can trigger.
    Add { key: String, n: u64 },
    /// Reads the counter `key`.
    Get(String),
    /// A slow piece of work (a report over every counter) that holds the worker this long.
    Report(Duration),
    /// The periodic timer's command: housekeeping that must not race the requests.
    Tick,
}

impl StateMachine for Counters {
    type Command = Command;
    type Output = u64;

    fn apply(&mut self, command: Command) -> u64 {
        match command {
            Command::Add { key, n } => {
                let value = self.values.entry(key).or_default();
                *value = value.checked_add(n).expect("counter overflow");
                *value
            }
            Command::Get(key) => self.values.get(&key).copied().unwrap_or(0),
            Command::Report(work) => {
                std::thread::sleep(work); // stands in for real work on the state
                self.values
                    .values()
                    .fold(0, |sum, n| sum.saturating_add(*n))
            }
            Command::Tick => {
                self.ticks += 1;
                self.ticks
            }
        }
    }
}

impl Counters {
    /// One line with every counter and the tick count: `a=9 big=18446744073709551615 ticks=12`.
    pub(crate) fn summary(&self) -> String {
        let counters = self.values.iter().map(|(key, n)| format!("{key}={n}"));
        let ticks = std::iter::once(format!("ticks={}", self.ticks));
        counters.chain(ticks).collect::<Vec<_>>().join(" ")
    }
}
