//! A tokio HTTP service (axum) whose state lives in a singular queue.
//!
//! ```text
//! cargo run --example http_service                          # the demo: serve, drive, stop
//! cargo run --example http_service -- serve 127.0.0.1:3000  # just serve, until Ctrl-C
//! ```
//!
//! Every handler shares one `Handle` and bounds its call by a request budget
//! (`call_timeout_async`); the queue's errors become HTTP statuses (`Full` → 503, `Timeout` and
//! `ReplyTimeout` → 504, `Panicked` → 500). A timer task submits periodic work as a command.
//! `/metrics` exports the queue's measurements (an `Observer`) in Prometheus' format, and
//! `/health` reads the queue's length without a lock. On SIGINT or SIGTERM the server stops
//! accepting connections, finishes the requests in flight, and the owner drains the queue
//! with `shutdown_async`.
//!
//! The demo runs the server as a child process on 127.0.0.1, drives it with an HTTP client
//! (a slow request, a burst the queue sheds, a request whose command panics), stops it with a
//! real SIGINT, and checks that the counters it printed at exit hold exactly the additions
//! the queue accepted: the 200s, and the 504s that were accepted but answered late.

mod counters;
mod demo;
mod metrics;
mod server;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => {
            let addr = args.get(1).map_or("127.0.0.1:3000", String::as_str);
            report_worker_panics_in_one_line();
            tokio::runtime::Runtime::new()?.block_on(server::serve(addr))
        }
        _ => demo::run(),
    }
}

// ANCHOR: panic_hook
/// The queue catches a panic in `apply` and answers its caller, but the panic still goes
/// through the process's panic hook first, which by default prints a message and (with
/// `RUST_BACKTRACE`) a backtrace. A service logs it instead, once, in its own format.
fn report_worker_panics_in_one_line() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some("counters") {
            eprintln!("caught on the worker, answered 500: {info}");
        } else {
            default(info);
        }
    }));
}
// ANCHOR_END: panic_hook
