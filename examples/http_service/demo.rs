//! Drives the service as a client would, over a real socket, then stops it with a real signal
//! and checks that nothing the queue accepted was lost.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};

use reqwest::{Client, StatusCode};

/// Starts the server, drives it, stops it, and checks its final state.
pub(crate) fn run() -> io::Result<()> {
    let mut server = Command::new(std::env::current_exe()?)
        .args(["serve", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(server.stdout.take().expect("piped")).lines();
    let first = next_line(&mut lines)?;
    let url = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_owned();
    println!("server up at {url}");

    let added = tokio::runtime::Runtime::new()?.block_on(drive(&url));
    stop(&mut server)?;
    let last = next_line(&mut lines)?;
    let state = last.strip_prefix("final ").expect("the final state");
    println!("server stopped cleanly; final state: {state}");
    let counters: BTreeMap<&str, u64> = state
        .split(' ')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, n)| (key, n.parse().expect("a number")))
        .collect();
    assert_eq!(counters["a"], added, "every accepted addition applied once");
    assert_eq!(
        counters["big"],
        u64::MAX,
        "the overflowing addition was not applied"
    );
    assert!(counters["ticks"] > 0, "the timer's command ran");
    println!("nothing lost: a = {added}, as the responses said");
    Ok(())
}

/// Sends the requests; returns how many additions to `a` the queue accepted.
async fn drive(url: &str) -> u64 {
    let client = Client::new();
    let post = |path: String| {
        let request = client.post(format!("{url}{path}"));
        async move {
            let response = request.send().await.expect("the server answers");
            let status = response.status();
            (status, response.text().await.unwrap_or_default())
        }
    };
    let mut added = 0;

    let (status, body) = post("/counters/a/add/1".into()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1"));
    added += 1;

    // A command that panics in `apply` fails alone: 500, and the queue goes on.
    let big = u64::MAX;
    assert_eq!(
        post(format!("/counters/big/add/{big}")).await.0,
        StatusCode::OK
    );
    let (status, body) = post(format!("/counters/big/add/{big}")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    println!("overflowing add -> {status}: {body}");

    // A report holds the worker for 600 ms; its caller gives up after the 100 ms budget (504),
    // and the worker is still busy for 500 ms: a burst now fills the 8 places (each accepted,
    // answered late: 504) and the rest is shed at once (503).
    let (status, body) = post("/report/600".into()).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    let burst = (0..40).map(|_| post("/counters/a/add/1".into()));
    let mut statuses = BTreeMap::new();
    for (status, _) in futures::future::join_all(burst).await {
        *statuses.entry(status.as_u16()).or_insert(0) += 1;
        match status {
            StatusCode::OK | StatusCode::GATEWAY_TIMEOUT => added += 1,
            StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("unexpected {other}"),
        }
    }
    println!("burst of 40 during the report -> {statuses:?}");
    assert!(statuses.contains_key(&503), "the full queue shed load");
    assert!(
        statuses.contains_key(&504),
        "accepted commands answered late"
    );

    let health = client.get(format!("{url}/health")).send().await.unwrap();
    println!("/health -> {}", health.text().await.unwrap());
    let metrics = client.get(format!("{url}/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    for name in [
        "singular_queue_apply_seconds",
        "singular_queue_panicked_total",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
    let apply = metrics
        .lines()
        .filter(|line| line.contains("apply_seconds"));
    println!(
        "/metrics (apply time):\n  {}",
        apply.collect::<Vec<_>>().join("\n  ")
    );
    added
}

/// Sends the server SIGINT, as Ctrl-C would, and waits for it to exit successfully.
fn stop(server: &mut Child) -> io::Result<()> {
    let sent = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status()?;
    assert!(sent.success(), "kill -INT");
    let exit = server.wait()?;
    assert!(exit.success(), "the server exits cleanly: {exit}");
    Ok(())
}

fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> io::Result<String> {
    lines
        .next()
        .unwrap_or_else(|| Err(io::ErrorKind::UnexpectedEof.into()))
}
