//! The HTTP limits of the whole server (`ticketing_server::run` with real flags on a free loopback
//! port, in-memory backends), driven over raw sockets so a test can stall anywhere in a request:
//! the header-read timeout, the request and body-read timeouts, load shedding beyond
//! `--max-in-flight`, the shutdown grace, and 1,000 slowloris connections that do not keep a
//! buyer from buying.
//!
//! Each test fails without its limit; how that was checked is written at each test.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::free_port;
use serde_json::{Value, json};
use ticketing_server::StartError;
use ticketing_server::config::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The tests of this file run one at a time: each times a server's limits, and the 1,000
/// slowloris connections of one test starved another's server of the CPU it needed to read two
/// requests' headers within 20 s (seen once on CI).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `ticketing_server::run` in this process, until [`Server::stop`].
struct Server {
    address: SocketAddr,
    event: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), StartError>>,
}

impl Server {
    /// Starts the server with the in-memory backends, the demo event and `flags`, and waits until
    /// it answers. A port from [`free_port`] can be taken again before the server binds it (by
    /// another test's server or by a client socket of the slowloris test), so the server proves
    /// it is this one with its own admin token, and a server that cannot bind is started again
    /// on another port.
    async fn start(flags: &[&str]) -> Self {
        for _attempt in 0..5 {
            let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let listen = address.to_string();
            let token = uuid::Uuid::new_v4().simple().to_string();
            let mut argv = vec![
                "ticketing-server",
                "--listen",
                &listen,
                "--demo",
                "true",
                "--admin-token",
                &token,
                "--webhook-secret",
                "whsec_test",
                "--jwt-hs256-secret",
                common::JWT_SECRET,
            ];
            argv.extend_from_slice(flags);
            let args = Args::from_flags(argv);
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(ticketing_server::run(args, async move {
                let _ = stopped.await;
            }));
            // With its token, an empty venue is a 400 from this server (a 401 from another).
            let whoami = format!(
                "POST /api/admin/venues HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\
                 authorization: Bearer {token}\r\ncontent-type: application/json\r\n\
                 content-length: 2\r\n\r\n{{}}"
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            while !task.is_finished() {
                if let Ok(answer) = try_exchange(address, whoami.as_bytes()).await
                    && answer.status == 400
                {
                    let config = exchange(address, &get("/demo/config")).await;
                    let event = config.body["event"]["id"].as_str().expect("event id");
                    return Self {
                        address,
                        event: event.to_owned(),
                        stop,
                        task,
                    };
                }
                assert!(
                    Instant::now() < deadline,
                    "the server did not come up on {address}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let ended = task.await.expect("the server task");
            eprintln!("the server did not start on {address} ({ended:?}); another port");
        }
        panic!("the server did not start on any of five ports");
    }

    /// Sends the shutdown signal and returns how long `run` took to return after it.
    async fn stop(self, within: Duration) -> Duration {
        let started = Instant::now();
        self.stop.send(()).unwrap();
        tokio::time::timeout(within, self.task)
            .await
            .unwrap_or_else(|_| panic!("the server did not stop within {within:?}"))
            .expect("the server task")
            .expect("the server ran without error");
        started.elapsed()
    }

    /// A purchase of one seat by `customer`, as raw request bytes.
    fn purchase(&self, customer: &str, row: &str, number: u32) -> Vec<u8> {
        post_as(
            customer,
            "/api/tickets",
            &json!({
                "eventId": self.event,
                "seats": [{"zone": "STALLS", "row": row, "number": number}],
            }),
        )
    }
}

/// One parsed answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Value,
}

impl Answer {
    /// A header's value (case-insensitive name).
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

fn parse(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    Answer {
        status,
        head: head.to_owned(),
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n").into_bytes()
}

/// A JSON `POST` with `customer`'s bearer token, as raw request bytes.
fn post_as(customer: &str, path: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\nauthorization: {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        common::bearer(customer),
        body.len()
    )
    .into_bytes()
}

/// Splits a request after its header: (header, body).
fn split_request(raw: &[u8]) -> (&[u8], &[u8]) {
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header")
        + 4;
    raw.split_at(at)
}

/// Sends a whole request on a new connection and reads the answer to the end.
async fn try_exchange(address: SocketAddr, request: &[u8]) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(address).await?;
    stream.write_all(request).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    Ok(parse(&raw))
}

async fn exchange(address: SocketAddr, request: &[u8]) -> Answer {
    tokio::time::timeout(Duration::from_secs(10), try_exchange(address, request))
        .await
        .expect("an answer within 10 s")
        .expect("the exchange")
}

/// Reads `stream` to its end; how long that took.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut raw = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut raw)).await;
    match read {
        Err(_) => panic!("the server did not close the connection within {within:?}"),
        // A reset is a close too.
        Ok(Ok(_) | Err(_)) => (raw, started.elapsed()),
    }
}

/// A connection that sends only part of a request header is closed, without an answer, once
/// `--header-read-timeout` has passed; a connection sending nothing at all is closed too.
///
/// Checked to fail without the limit by serving with `header_read_timeout(None)` in
/// `limits::serve`: the read below then hits its 5 s timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_header_is_closed_after_the_header_timeout() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let server = Server::start(&["--header-read-timeout", "1s"]).await;
    let mut partial = TcpStream::connect(server.address).await.unwrap();
    partial
        .write_all(b"GET /health HTTP/1.1\r\nhost: test\r\nx-slow: ")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(server.address).await.unwrap();
    let (raw, waited) = read_to_close(&mut partial, Duration::from_secs(5)).await;
    assert!(raw.is_empty(), "no answer to a partial header: {raw:?}");
    assert!(
        waited >= Duration::from_millis(800),
        "closed before the header timeout: {waited:?}"
    );
    let (raw, _) = read_to_close(&mut silent, Duration::from_secs(5)).await;
    assert!(raw.is_empty());
    // The server still serves.
    assert_eq!(exchange(server.address, &get("/health")).await.status, 200);
    server.stop(Duration::from_secs(15)).await;
}

/// A body that stalls longer than `--body-read-timeout` gets `408 REQUEST_TIMEOUT` with the JSON
/// error body, long before the request timeout.
///
/// Checked to fail without the limit by removing the `RequestBodyTimeoutLayer` from the router:
/// the answer then only comes from the 30 s request timeout, past the 5 s the test waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408_after_the_body_read_timeout() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let server = Server::start(&["--body-read-timeout", "1s", "--request-timeout", "30s"]).await;
    let request = server.purchase("stalled", "A", 1);
    let (head, body) = split_request(&request);
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream.write_all(head).await.unwrap();
    stream.write_all(&body[..5]).await.unwrap();
    let (raw, waited) = read_to_close(&mut stream, Duration::from_secs(5)).await;
    let answer = parse(&raw);
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.body["code"], "REQUEST_TIMEOUT", "{answer:?}");
    assert_eq!(
        answer.body["message"],
        "the request body arrived too slowly"
    );
    assert_eq!(answer.body["path"], "/api/tickets");
    assert!(waited >= Duration::from_millis(800), "{waited:?}");
    server.stop(Duration::from_secs(15)).await;
}

/// A request still unanswered after `--request-timeout` gets `408 REQUEST_TIMEOUT` with the JSON
/// error body, even when its body keeps trickling in (one byte every 200 ms, so the body-read
/// timeout never fires).
///
/// Checked to fail without the limit by removing the `TimeoutLayer` from the router: the body
/// then takes about 20 s to arrive and the test gives up after 6 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_request_timeout_gets_408() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let server = Server::start(&["--request-timeout", "2s", "--body-read-timeout", "1s"]).await;
    let request = server.purchase("trickling", "A", 2);
    let (head, body) = split_request(&request);
    let body = body.to_vec();
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream.write_all(head).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for byte in body {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(6), reader.read_to_end(&mut raw))
        .await
        .expect("an answer before the body was complete");
    trickle.abort();
    let answer = parse(&raw);
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.body["code"], "REQUEST_TIMEOUT", "{answer:?}");
    assert_eq!(answer.body["message"], "the request took too long");
    assert!(started.elapsed() >= Duration::from_millis(1800));
    server.stop(Duration::from_secs(15)).await;
}

/// With `--max-in-flight 2` and two requests held open (their bodies stall), a third request is
/// refused at once with `503 UNAVAILABLE`, `Retry-After` and the JSON error body, while `/health`
/// and `/metrics` still answer; once a held request ends, its slot serves again.
///
/// Checked to fail without the limit by removing the `shed_load` layer from the router: the
/// probes then all get `200` and no `503` comes within the 20 s the test waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_concurrency_limit_get_503_with_retry_after() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let server = Server::start(&[
        "--max-in-flight",
        "2",
        "--body-read-timeout",
        "30s",
        "--request-timeout",
        "30s",
    ])
    .await;
    let mut held = Vec::new();
    for (customer, number) in [("held-1", 3), ("held-2", 4)] {
        let request = server.purchase(customer, "A", number);
        let (head, body) = split_request(&request);
        let mut stream = TcpStream::connect(server.address).await.unwrap();
        stream.write_all(head).await.unwrap();
        stream.write_all(&body[..5]).await.unwrap();
        held.push((stream, body[5..].to_vec()));
    }
    // The held requests take their slots as soon as the server has read their headers (which a
    // loaded CI machine has been seen to take more than 5 s to get to).
    let probe = get(&format!("/api/events/{}", server.event));
    let deadline = Instant::now() + Duration::from_secs(20);
    let shed = loop {
        let answer = exchange(server.address, &probe).await;
        if answer.status == 503 {
            break answer;
        }
        assert_eq!(answer.status, 200, "{answer:?}");
        if Instant::now() >= deadline {
            let mut answers = Vec::new();
            for (stream, _) in &mut held {
                let (raw, _) = read_to_close(stream, Duration::from_millis(500)).await;
                answers.push(String::from_utf8_lossy(&raw).into_owned());
            }
            panic!("no request was shed with two slots held; the held requests got {answers:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(shed.header("retry-after"), Some("1"), "{shed:?}");
    assert_eq!(shed.header("content-type"), Some("application/json"));
    assert_eq!(shed.body["code"], "UNAVAILABLE", "{shed:?}");
    assert!(shed.body["traceId"].as_str().is_some_and(|t| !t.is_empty()));
    let purchase = exchange(server.address, &server.purchase("shed", "A", 5)).await;
    assert_eq!(purchase.status, 503, "{purchase:?}");
    // Probes and scrapes are never shed.
    assert_eq!(exchange(server.address, &get("/health")).await.status, 200);
    assert_eq!(exchange(server.address, &get("/metrics")).await.status, 200);

    // Finish one held request: it is answered, and its slot is free again.
    let (mut stream, rest) = held.remove(0);
    stream.write_all(&rest).await.unwrap();
    let (raw, _) = read_to_close(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(parse(&raw).status, 201, "{}", String::from_utf8_lossy(&raw));
    let again = exchange(server.address, &server.purchase("after", "A", 6)).await;
    assert_eq!(again.status, 201, "{again:?}");
    drop(held);
    server.stop(Duration::from_secs(15)).await;
}

/// After the shutdown signal, a request that finishes within `--shutdown-grace` is answered, a
/// connection that never finishes its request is closed when the grace is over, and `run`
/// returns then instead of waiting for it.
///
/// Checked to fail without the limit by awaiting the connections without the
/// `tokio::time::timeout(limits.shutdown_grace, …)` in `limits::serve`: `run` then never
/// returns (the held request has 60 s timeouts) and `stop` panics after 8 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_after_the_grace_with_a_connection_that_never_finishes() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let server = Server::start(&[
        "--shutdown-grace",
        "2s",
        "--header-read-timeout",
        "60s",
        "--body-read-timeout",
        "60s",
        "--request-timeout",
        "60s",
    ])
    .await;
    // One request that finishes shortly after the signal, one that never does.
    let finishing = server.purchase("finishing", "B", 1);
    let (head, body) = split_request(&finishing);
    let mut finishing_stream = TcpStream::connect(server.address).await.unwrap();
    finishing_stream.write_all(head).await.unwrap();
    let rest = body.to_vec();
    let never = server.purchase("never", "B", 2);
    let (head, body) = split_request(&never);
    let mut never_stream = TcpStream::connect(server.address).await.unwrap();
    never_stream.write_all(head).await.unwrap();
    never_stream.write_all(&body[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let address = server.address;
    let stopping = tokio::spawn(server.stop(Duration::from_secs(8)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    finishing_stream.write_all(&rest).await.unwrap();
    let (raw, _) = read_to_close(&mut finishing_stream, Duration::from_secs(5)).await;
    assert_eq!(parse(&raw).status, 201, "{}", String::from_utf8_lossy(&raw));

    let took = stopping.await.expect("stop");
    assert!(
        took >= Duration::from_millis(1800),
        "returned before the grace: {took:?}"
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
    let (raw, _) = read_to_close(&mut never_stream, Duration::from_secs(2)).await;
    assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));
    assert!(
        TcpStream::connect(address).await.is_err(),
        "the listener is closed"
    );
}

/// The soft limit on open files of this process.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Slowloris: 1,000 connections trickle header bytes (one every 500 ms), reconnecting whenever
/// the server closes them, while a buyer buys and pays for seats over fresh connections. The
/// buyer finishes, and once it has, every slowloris socket is closed by the server within the
/// header timeout, all within 20 s.
///
/// Each trickling socket holds two file descriptors in this process (its end and the server's):
/// the number of connections is capped to fit the soft `ulimit -n` (20,000 on the machine this
/// was written on, so 1,000 run).
///
/// Checked to fail without the limit by serving with `header_read_timeout(None)`: the buyer
/// still buys, but no trickling socket is ever closed and the 20 s budget runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_slowloris_connections_do_not_stop_a_buyer() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    const WANTED: u64 = 1_000;
    let budget = Duration::from_secs(20);
    let started = Instant::now();
    let limit = open_files_limit().unwrap_or(1024);
    let attackers = WANTED.min(limit.saturating_sub(256) / 2);
    if attackers < WANTED {
        eprintln!("ulimit -n is {limit}: running {attackers} slowloris connections, not {WANTED}");
    }
    assert!(
        attackers >= 100,
        "ulimit -n {limit} is too low for this test"
    );
    let header_timeout = Duration::from_secs(2);
    let server = Server::start(&["--header-read-timeout", "2s"]).await;
    let address = server.address;

    let stop = Arc::new(AtomicBool::new(false));
    let mut slowloris = tokio::task::JoinSet::new();
    for i in 0..attackers {
        let stop = stop.clone();
        slowloris.spawn(async move {
            // Spread the connects over the first second.
            tokio::time::sleep(Duration::from_millis(i)).await;
            let mut longest = Duration::ZERO;
            let mut sockets = 0u32;
            loop {
                let Ok(mut stream) = TcpStream::connect(address).await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                sockets += 1;
                let opened = Instant::now();
                let header = format!("GET /health HTTP/1.1\r\nhost: test\r\nx-slow-{i}: ");
                let mut bytes = header.bytes().chain(std::iter::repeat(b'a'));
                let mut buf = [0u8; 64];
                // Trickle until the server closes the socket.
                loop {
                    tokio::select! {
                        read = stream.read(&mut buf) => match read {
                            Ok(0) | Err(_) => break,
                            Ok(n) => panic!("an answer to a partial header: {:?}", &buf[..n]),
                        },
                        () = tokio::time::sleep(Duration::from_millis(500)) => {
                            let byte = bytes.next().unwrap_or(b'a');
                            if stream.write_all(&[byte]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                longest = longest.max(opened.elapsed());
                if stop.load(Ordering::Relaxed) {
                    return (sockets, longest);
                }
            }
        });
    }

    // The buyer: once every attacker is connected, buys and pays for a seat every 200 ms for
    // 5 s, so it overlaps a few rounds of closes and reconnects.
    tokio::time::sleep(Duration::from_millis(attackers + 500)).await;
    let buying = Instant::now();
    let mut bought = 0;
    let mut slowest = Duration::ZERO;
    let seats = ["C", "D", "E"]
        .into_iter()
        .flat_map(|row| (1..=12u32).map(move |number| (row, number)));
    for (row, number) in seats {
        if buying.elapsed() >= Duration::from_secs(5) {
            break;
        }
        let customer = format!("buyer-{row}{number}");
        let one = Instant::now();
        let order = exchange(address, &server.purchase(&customer, row, number)).await;
        assert_eq!(order.status, 201, "{order:?}");
        let id = order.body["id"].as_str().expect("order id");
        let paid = exchange(
            address,
            &post_as(&customer, &format!("/demo/orders/{id}/pay"), &json!({})),
        )
        .await;
        assert_eq!(paid.status, 200, "{paid:?}");
        slowest = slowest.max(one.elapsed());
        bought += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bought_in = buying.elapsed();
    stop.store(true, Ordering::Relaxed);

    let remaining = budget.saturating_sub(started.elapsed());
    let outcome = tokio::time::timeout(remaining, async {
        let mut sockets = 0;
        let mut longest = Duration::ZERO;
        while let Some(joined) = slowloris.join_next().await {
            let (n, l) = joined.expect("a slowloris task");
            sockets += n;
            longest = longest.max(l);
        }
        (sockets, longest)
    })
    .await;
    let Ok((sockets, longest)) = outcome else {
        panic!(
            "slowloris sockets still open after the {budget:?} budget ({} of {attackers} attackers left)",
            slowloris.len()
        );
    };
    eprintln!(
        "{attackers} slowloris connections ({sockets} sockets in all, the longest open {longest:?}); \
         {bought} purchases and payments in {bought_in:?}, the slowest {slowest:?}; {:?} in all",
        started.elapsed()
    );
    assert!(
        longest < header_timeout + Duration::from_secs(3),
        "a slowloris socket stayed open {longest:?}"
    );
    assert!(bought >= 10, "only {bought} purchases in {bought_in:?}");
    assert!(
        slowest < Duration::from_secs(2),
        "a purchase took {slowest:?}"
    );
    server.stop(Duration::from_secs(15)).await;
}

/// The whole server's live seat map: a stream opened on `run`'s server gets a purchase made on
/// another connection (the server follows the outbox by itself), outlives `--request-timeout`,
/// and ends at the shutdown signal, so `run` returns long before `--shutdown-grace` instead of
/// waiting for a stream that never ends.
///
/// Checked to fail without `LiveSeatMap::close` in `run`'s shutdown: `run` then returns only
/// after the 10 s grace, and `stop` panics after 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_change_stream_gets_changes_and_ends_at_shutdown() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let server = Server::start(&["--shutdown-grace", "10s", "--request-timeout", "1s"]).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let request = format!(
        "GET /api/events/{}/seat-changes HTTP/1.1\r\nhost: test\r\n\r\n",
        server.event
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut seen = String::new();
    let mut read_until = async |needle: &str, stream: &mut TcpStream| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !seen.contains(needle) {
            let mut chunk = [0u8; 4096];
            let left = deadline.saturating_duration_since(Instant::now());
            let n = tokio::time::timeout(left, stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} on the stream: {seen}"))
                .unwrap();
            assert!(n > 0, "the stream closed early: {seen}");
            seen.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    };
    read_until("text/event-stream", &mut stream).await;
    // Past the request timeout, the stream is still open and gets the purchase.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let bought = exchange(server.address, &server.purchase("watched", "C", 3)).await;
    assert_eq!(bought.status, 201, "{bought:?}");
    read_until(r#""row":"C","number":3,"state":"held""#, &mut stream).await;
    assert!(seen.contains("event: seats"), "{seen}");

    let took = server.stop(Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    let (rest, _) = read_to_close(&mut stream, Duration::from_secs(2)).await;
    // The chunked body ends with its last chunk.
    assert!(
        String::from_utf8_lossy(&rest).ends_with("0\r\n\r\n") || rest.is_empty(),
        "{}",
        String::from_utf8_lossy(&rest)
    );
}
