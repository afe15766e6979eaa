//! A bank's ledger split over shards, one worker thread each. Accounts are routed by their
//! branch, so a transfer within a branch is one command, applied by one shard. A transfer
//! between branches on different shards is refused as one command (it spans shards), so the
//! teller does it in two steps: a withdrawal, then, once that is applied, a deposit.
//!
//! An auditor takes consistent snapshots across the shards while the tellers work. Money in
//! flight between the two steps is missing from a snapshot, but no snapshot ever holds a
//! deposit without its withdrawal: the total is never more than was opened. At the end, with
//! nothing in flight, it is exactly what was opened.
//!
//! `cargo run --example sharded_kv`

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use singular_queue::{Sharded, ShardedHandle, StateMachine, SubmitError, by_keys};

/// An account: its branch (the routing group) and its number in the branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Account {
    branch: u32,
    number: u32,
}

enum Command {
    Open(Account, i64),
    /// Between two accounts of one shard: all or nothing.
    Transfer {
        from: Account,
        to: Account,
        amount: i64,
    },
    Withdraw(Account, i64),
    Deposit(Account, i64),
}

/// One shard's part of the ledger.
#[derive(Default)]
struct Ledger(HashMap<Account, i64>);

impl StateMachine for Ledger {
    type Command = Command;
    /// Whether the command took effect (a withdrawal needs the funds).
    type Output = bool;

    fn apply(&mut self, command: Command) -> bool {
        match command {
            Command::Open(account, balance) => self.0.insert(account, balance).is_none(),
            Command::Transfer { from, to, amount } => {
                self.withdraw(from, amount) && self.deposit(to, amount)
            }
            Command::Withdraw(account, amount) => self.withdraw(account, amount),
            Command::Deposit(account, amount) => self.deposit(account, amount),
        }
    }
}

impl Ledger {
    fn withdraw(&mut self, account: Account, amount: i64) -> bool {
        let balance = self
            .0
            .get_mut(&account)
            .filter(|balance| **balance >= amount);
        balance.map(|balance| *balance -= amount).is_some()
    }

    fn deposit(&mut self, account: Account, amount: i64) -> bool {
        *self.0.entry(account).or_default() += amount;
        true
    }
}

/// Routes by branch: every account of a branch lives on one shard.
fn branches(command: &Command) -> Vec<u32> {
    match command {
        Command::Open(account, _)
        | Command::Withdraw(account, _)
        | Command::Deposit(account, _) => vec![account.branch],
        Command::Transfer { from, to, .. } => vec![from.branch, to.branch],
    }
}

const BRANCHES: u32 = 8;
const ACCOUNTS: u32 = 16;
const OPENING: i64 = 1_000;
const TOTAL: i64 = (BRANCHES * ACCOUNTS) as i64 * OPENING;

/// Moves money from `teller`'s accounts; returns how many transfers took two steps.
fn teller(ledger: &ShardedHandle<Ledger>, teller: u32) -> u64 {
    let mut two_steps = 0;
    for i in 0..20_000_u32 {
        let from = Account {
            branch: (i * 7 + teller) % BRANCHES,
            number: i % ACCOUNTS,
        };
        let to = Account {
            branch: (from.branch + i % 3) % BRANCHES,
            number: (i / 3) % ACCOUNTS,
        };
        let transfer = Command::Transfer {
            from,
            to,
            amount: 5,
        };
        match ledger.tell(transfer) {
            Ok(()) => {}
            Err(SubmitError::CrossShard(_)) => {
                two_steps += 1;
                // The deposit is sent only once the withdrawal is applied: a causal chain
                // across two shards.
                if ledger.call(Command::Withdraw(from, 5)).unwrap() {
                    ledger.tell(Command::Deposit(to, 5)).unwrap();
                }
            }
            Err(other) => panic!("{other}"),
        }
    }
    two_steps
}

/// Takes snapshots until `done`; returns how many, and the least total seen.
fn audit(ledger: &ShardedHandle<Ledger>, done: &AtomicBool) -> (u64, i64) {
    let (mut snapshots, mut least) = (0, TOTAL);
    while !done.load(Ordering::Acquire) {
        let totals = ledger
            .snapshot(|ledger: &Ledger| ledger.0.values().sum::<i64>())
            .expect("a consistent snapshot");
        let total: i64 = totals.iter().sum();
        assert!(total <= TOTAL, "a deposit without its withdrawal: {total}");
        least = least.min(total);
        snapshots += 1;
    }
    (snapshots, least)
}

fn main() {
    let ledger = Sharded::builder(2, by_keys(branches), |_| Ledger::default())
        .name("ledger")
        .configure(|_, shard| shard.capacity(256))
        .spawn()
        .expect("spawn the shards");
    for branch in 0..BRANCHES {
        for number in 0..ACCOUNTS {
            let account = Account { branch, number };
            assert!(ledger.call(Command::Open(account, OPENING)).unwrap());
        }
    }

    let done = AtomicBool::new(false);
    let (two_steps, (snapshots, least)) = thread::scope(|scope| {
        let auditor = scope.spawn(|| audit(&ledger, &done));
        let tellers: Vec<_> = (0..4)
            .map(|n| {
                let ledger = ledger.handle();
                scope.spawn(move || teller(&ledger, n))
            })
            .collect();
        let two_steps: u64 = tellers.into_iter().map(|t| t.join().unwrap()).sum();
        done.store(true, Ordering::Release);
        (two_steps, auditor.join().unwrap())
    });

    // Nothing in flight now: the books balance exactly.
    let totals = ledger
        .snapshot(|ledger: &Ledger| ledger.0.values().sum::<i64>())
        .expect("a consistent snapshot");
    let stats = ledger.stats();
    println!("{snapshots} snapshots while the tellers worked; the least total seen {least}");
    println!(
        "final shard totals {totals:?}: {} of {TOTAL}",
        totals.iter().sum::<i64>()
    );
    println!(
        "{} commands applied; {two_steps} transfers spanned shards and took two steps",
        stats.total.applied
    );
    for (shard, figures) in stats.shards.iter().enumerate() {
        let mean = figures.mean_batch_size();
        println!(
            "shard {shard}: {} applied, {mean:.1} per batch",
            figures.applied
        );
    }
    assert_eq!(
        totals.iter().sum::<i64>(),
        TOTAL,
        "money was created or lost"
    );
    assert_eq!(stats.cross_shard, two_steps);
    let accounts: usize = ledger
        .shutdown()
        .into_iter()
        .map(|s| s.unwrap().0.len())
        .sum();
    assert_eq!(accounts, (BRANCHES * ACCOUNTS) as usize);
}
