//! Chaining queues into a pipeline (task chaining): a validation stage feeds a ledger stage,
//! which feeds a notification stage. Each stage is its own queue with its own thread and
//! state; each forwards its results to the next with a plain `tell`. Queues are bounded, so
//! when a later stage falls behind, the earlier stage's worker waits, its queue fills, and the
//! submitters at the front wait too: backpressure flows back up the chain.
//!
//! Run it with `cargo run --example pipeline`.

use std::collections::{HashMap, HashSet};
use std::thread;

use singular_queue::{Handle, SingularQueue, StateMachine};

/// A payment as it arrives from clients: unchecked.
struct Payment {
    id: u64,
    account: String,
    cents: i64,
}

// ANCHOR: validate
/// Stage 1: rejects duplicates and malformed payments, forwards the rest.
struct Validator {
    seen: HashSet<u64>,
    next: Handle<Ledger>,
    rejected: u64,
}

impl StateMachine for Validator {
    type Command = Payment;
    type Output = ();

    fn apply(&mut self, payment: Payment) {
        let valid = payment.cents != 0 && !payment.account.is_empty();
        if valid && self.seen.insert(payment.id) {
            // Blocks while the ledger's queue is full: that is the backpressure.
            self.next
                .tell(payment)
                .expect("the ledger outlives the validator");
        } else {
            self.rejected += 1;
        }
    }
}
// ANCHOR_END: validate

/// Stage 2: keeps balances, and notifies on every overdraft.
struct Ledger {
    balances: HashMap<String, i64>,
    next: Handle<Notifier>,
}

impl StateMachine for Ledger {
    type Command = Payment;
    type Output = ();

    fn apply(&mut self, payment: Payment) {
        let balance = self.balances.entry(payment.account.clone()).or_default();
        *balance += payment.cents;
        if *balance < 0 {
            let note = format!("{} is overdrawn by {} cents", payment.account, -*balance);
            self.next
                .tell(note)
                .expect("the notifier outlives the ledger");
        }
    }
}

/// Stage 3: collects notifications (a real one would send e-mails).
#[derive(Default)]
struct Notifier {
    sent: Vec<String>,
}

impl StateMachine for Notifier {
    type Command = String;
    type Output = ();

    fn apply(&mut self, note: String) {
        self.sent.push(note);
    }
}

const CLIENTS: u64 = 4;
const PAYMENTS_EACH: u64 = 2_500;

fn main() {
    // Built back to front, so each stage can hold a handle to the next. Small capacities make
    // the backpressure easy to see.
    let notifier = SingularQueue::builder(Notifier::default())
        .capacity(4)
        .spawn()
        .unwrap();
    let ledger = SingularQueue::builder(Ledger {
        balances: HashMap::new(),
        next: notifier.handle(),
    })
    .capacity(8)
    .spawn()
    .unwrap();
    let validator = SingularQueue::builder(Validator {
        seen: HashSet::new(),
        next: ledger.handle(),
        rejected: 0,
    })
    .capacity(8)
    .spawn()
    .unwrap();

    thread::scope(|scope| {
        for client in 0..CLIENTS {
            let front = validator.handle();
            scope.spawn(move || {
                for i in 0..PAYMENTS_EACH {
                    // Every client also resends payment 0: duplicates must be rejected.
                    let id = if i == 0 {
                        0
                    } else {
                        client * PAYMENTS_EACH + i
                    };
                    let cents = if i % 2 == 0 { 100 } else { -150 };
                    let account = format!("acct-{}", i % 10);
                    front.tell(Payment { id, account, cents }).unwrap();
                }
            });
        }
    });

    // Shut down front to back: each stage drains into the next before the next stops.
    let validator = validator.shutdown().unwrap();
    let ledger = ledger.shutdown().unwrap();
    let notifier = notifier.shutdown().unwrap();

    let total: i64 = ledger.balances.values().sum();
    println!(
        "validator rejected {} duplicate payments",
        validator.rejected
    );
    println!(
        "ledger holds {} accounts, total balance {total} cents",
        ledger.balances.len()
    );
    println!("notifier sent {} overdraft notices", notifier.sent.len());
    assert_eq!(validator.rejected, CLIENTS - 1);
    let accepted = CLIENTS * PAYMENTS_EACH - validator.rejected;
    let (credits, debits) = (
        CLIENTS * PAYMENTS_EACH / 2 - (CLIENTS - 1),
        CLIENTS * PAYMENTS_EACH / 2,
    );
    assert_eq!(credits + debits, accepted);
    assert_eq!(total, credits as i64 * 100 - debits as i64 * 150);
    assert!(!notifier.sent.is_empty());
}
