//! The HTTP service: axum handlers sharing one queue's handle, each command bounded by a
//! request budget, every queue error mapped to its HTTP status; a timer task that submits
//! periodic work; graceful shutdown on a signal, ending with the owner's async shutdown.

use std::io::{self, Write};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use singular_queue::{CallError, Handle, OnPanic, Reject, SingularQueue, SubmitError};
use tokio::net::TcpListener;

use crate::counters::{Command, Counters};
use crate::metrics::QueueMetrics;

/// How long a request may take, from submit to answer.
const BUDGET: Duration = Duration::from_millis(100);
/// How often the timer submits its housekeeping command.
const TICK: Duration = Duration::from_millis(20);

type Queue = Handle<Counters>;

/// Serves on `addr` until SIGINT or SIGTERM, then drains: in-flight requests finish, the timer
/// stops, the queue applies what it accepted, and the final state is printed.
// ANCHOR: serve
pub(crate) async fn serve(addr: &str) -> io::Result<()> {
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .map_err(io::Error::other)?;
    let queue = SingularQueue::builder(Counters::default())
        .name("counters")
        .capacity(8)
        .backpressure(Reject) // shed load at once: the client hears 503 and retries later
        .on_panic(OnPanic::Continue) // a bad request fails alone; the others go on
        .observer(QueueMetrics::new("counters"))
        .spawn()?;
    let listener = TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    io::stdout().flush()?;

    let ticker = tokio::spawn(tick(queue.handle()));
    axum::serve(listener, routes(queue.handle(), prometheus))
        .with_graceful_shutdown(signal())
        .await?;
    ticker.abort();
    // Every handle is a clone: closing through any of them would do. The owner drains the
    // queue as a task and gets the state back.
    let counters = queue
        .shutdown_async()
        .await
        .expect("with OnPanic::Continue a panic never poisons the state");
    println!("final {}", counters.summary());
    Ok(())
}
// ANCHOR_END: serve

fn routes(queue: Queue, prometheus: PrometheusHandle) -> Router {
    Router::new()
        .route("/counters/{key}", get(read))
        .route("/counters/{key}/add/{n}", post(add))
        .route("/report/{ms}", post(report))
        .route("/health", get(health))
        .route("/metrics", get(move || async move { prometheus.render() }))
        .with_state(queue)
}

async fn add(State(queue): State<Queue>, Path((key, n)): Path<(String, u64)>) -> Answer {
    answer(
        queue
            .call_timeout_async(Command::Add { key, n }, BUDGET)
            .await,
    )
}

async fn read(State(queue): State<Queue>, Path(key): Path<String>) -> Answer {
    answer(queue.call_timeout_async(Command::Get(key), BUDGET).await)
}

async fn report(State(queue): State<Queue>, Path(ms): Path<u64>) -> Answer {
    let work = Duration::from_millis(ms);
    answer(
        queue
            .call_timeout_async(Command::Report(work), BUDGET)
            .await,
    )
}

/// Cheap figures for a load balancer's probe: a few atomic loads, no lock, no queue trip.
async fn health(State(queue): State<Queue>) -> String {
    format!("waiting {} of {}", queue.len(), queue.capacity())
}

// ANCHOR: answer
type Answer = (StatusCode, String);

/// Each way a call can end, as the client should hear it.
fn answer(result: Result<u64, CallError<Command>>) -> Answer {
    match result {
        Ok(value) => (StatusCode::OK, value.to_string()),
        Err(CallError::Full(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "busy: not accepted; retry later".into(),
        ),
        Err(CallError::Closed(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down: not accepted".into(),
        ),
        Err(CallError::Timeout(_)) => (
            StatusCode::GATEWAY_TIMEOUT,
            "not accepted in time; safe to retry".into(),
        ),
        Err(CallError::ReplyTimeout) => (
            StatusCode::GATEWAY_TIMEOUT,
            "accepted, not answered in time: it will be applied; do not retry blindly".into(),
        ),
        Err(CallError::Panicked(message)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed: {message}"),
        ),
        Err(other) => (StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}
// ANCHOR_END: answer

// ANCHOR: tick
/// Periodic work as a command: it runs on the worker, in order with the requests, so it needs
/// no lock. A tick that finds the queue full is skipped (the next one comes soon); a closed
/// queue ends the timer.
async fn tick(queue: Queue) {
    let mut every = tokio::time::interval(TICK);
    loop {
        every.tick().await;
        match queue.try_tell(Command::Tick) {
            Ok(()) | Err(SubmitError::Full(_)) => {}
            Err(_) => return,
        }
    }
}
// ANCHOR_END: tick

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM (what systemd and Kubernetes send).
async fn signal() {
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => drop(terminate.recv().await),
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
