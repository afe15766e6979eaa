//! The box office under loom: every interleaving of two buyers, a dashboard and the closing.
//!
//! `cargo test` runs each model once, on real threads. The exhaustive run:
//!
//! ```sh
//! RUSTFLAGS="--cfg singular_queue_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test --release -p box-office --test model
//! ```

use box_office::{BoxOffice, Command, SoldOut};
use singular_queue::model::{self, thread};
use singular_queue::{CallError, SubmitError};

// ANCHOR: two_buyers
/// Two buyers for the last seat while a dashboard reads the seats left: exactly one buyer gets
/// it, and the dashboard never sees a seat that was not there. Bound 2: about 97,000
/// interleavings, seconds; bound 3 explores about 2 million, minutes.
#[test]
fn two_buyers_for_the_last_seat_exactly_one_gets_it() {
    let runs = model::check_bounded(2, || {
        let office = BoxOffice::open(1, 2);
        let buyers: Vec<_> = (0..2)
            .map(|_| {
                let handle = office.handle();
                thread::spawn(move || handle.call(Command::Buy).unwrap())
            })
            .collect();
        assert!(office.seats_left() <= 1);
        let mut answers: Vec<_> = buyers.into_iter().map(|b| b.join().unwrap()).collect();
        answers.sort();
        assert_eq!(answers, [Ok(0), Err(SoldOut)]);
        assert_eq!(office.close().left(), 0);
    });
    println!("two buyers: {runs} interleavings");
}
// ANCHOR_END: two_buyers

/// A buyer racing the closing: served, or told the office closed with the command handed
/// back; never both, never neither, and the seats add up.
#[test]
fn a_buyer_racing_the_closing_is_served_or_turned_away() {
    let runs = model::check(|| {
        let office = BoxOffice::open(2, 1);
        let handle = office.handle();
        let buyer = thread::spawn(move || handle.call(Command::Buy));
        let seats = office.close();
        match buyer.join().unwrap() {
            Ok(left) => assert_eq!((left, seats.left()), (Ok(1), 1)),
            Err(CallError::Closed(Command::Buy)) => assert_eq!(seats.left(), 2),
            Err(other) => panic!("the buyer was neither served nor turned away: {other}"),
        }
    });
    println!("racing the closing: {runs} interleavings");
}

// ANCHOR: oversells
/// A buyer who checks the dashboard and then buys without a check in `apply`: loom finds the
/// interleaving in which both buyers see the last seat, and the second purchase oversells.
/// (One run on real threads rarely hits it, so this model runs only under loom.)
#[cfg(singular_queue_loom)]
#[test]
#[should_panic(expected = "oversold")]
fn checking_the_dashboard_before_buying_oversells() {
    use singular_queue::model::sync::Arc;
    /// Buys without a check in `apply` if the dashboard shows a seat: the bug.
    fn buy_if_shown(office: &BoxOffice) -> Result<Result<u32, SoldOut>, CallError<Command>> {
        if office.seats_left() == 0 {
            return Ok(Err(SoldOut));
        }
        office.handle().call(Command::BuyChecked)
    }
    model::check(|| {
        let office = Arc::new(BoxOffice::open(1, 2));
        let other = Arc::clone(&office);
        let buyer = thread::spawn(move || buy_if_shown(&other));
        // A call on the model's main thread too: a failing model fails its test; it does not
        // abort the test binary.
        let mine = buy_if_shown(&office);
        for answer in [mine, buyer.join().unwrap()] {
            if let Err(CallError::Panicked(message)) = answer {
                panic!("{message}");
            }
        }
    });
}
// ANCHOR_END: oversells

/// Turning away is never silent: a buyer who finds the line full is told, with the command.
#[test]
fn a_full_line_turns_a_buyer_away_with_the_command() {
    let runs = model::check(|| {
        let office = BoxOffice::open(3, 1);
        let handle = office.handle();
        let buyer = thread::spawn(move || match handle.try_tell(Command::Buy) {
            Ok(()) => 1,
            Err(SubmitError::Full(Command::Buy)) => 0,
            Err(other) => panic!("{other}"),
        });
        let mine = u32::from(office.handle().try_tell(Command::Buy).is_ok());
        let theirs = buyer.join().unwrap();
        assert!(mine + theirs >= 1, "the first in line always gets in");
        assert_eq!(office.close().left(), 3 - mine - theirs);
    });
    println!("a full line: {runs} interleavings");
}
