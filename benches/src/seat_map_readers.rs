//! `--seat-map-readers N`: clients that read the event's seat map in a loop while the sale runs,
//! as a crowd refreshing the map would, so a run shows what they cost the buyers.
//!
//! By default a reader asks as a browser does (`--seat-map-client browser`): it accepts gzip and
//! sends the ETag of the map it holds, so an unchanged map costs a `304`. `plain` asks for the
//! whole JSON every time, the worst case a scraper can make.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use clap::ValueEnum;
use serde::Serialize;
use ticketing_core::domain::EventId;
use tokio::task::JoinHandle;

use crate::client::HttpClient;

/// How a reader asks for the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReaderClient {
    /// `Accept-Encoding: gzip` and `If-None-Match` with the last ETag, as a browser refreshing
    /// the map does.
    #[default]
    Browser,
    /// The whole JSON every time.
    Plain,
}

impl ReaderClient {
    /// The request headers for a reader holding the map tagged `etag`.
    fn headers(self, etag: Option<&str>) -> Vec<(&'static str, &str)> {
        match (self, etag) {
            (ReaderClient::Plain, _) => Vec::new(),
            (ReaderClient::Browser, None) => vec![("accept-encoding", "gzip")],
            (ReaderClient::Browser, Some(etag)) => {
                vec![("accept-encoding", "gzip"), ("if-none-match", etag)]
            }
        }
    }
}

/// What the readers did.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ReaderStats {
    /// Reader tasks.
    pub readers: usize,
    /// How they asked.
    pub client: ReaderClient,
    /// Seat maps read (200 OK).
    pub maps: u64,
    /// Reads answered `304 Not Modified` (the reader's map was still the map).
    pub not_modified: u64,
    /// Reads that failed (an error status or no answer).
    pub failures: u64,
    /// Reads (200 and 304) per second while the readers ran.
    pub reads_per_s: f64,
    /// Body bytes of the maps read (200), on average, as sent (gzipped for `browser`).
    pub mean_map_bytes: f64,
}

impl ReaderStats {
    /// One line for the terminal.
    pub fn describe(&self) -> String {
        format!(
            "seat-map readers ({:?}): {} tasks, {:.0} reads/s: {} maps ({:.0} bytes each), {} not modified, {} failed",
            self.client,
            self.readers,
            self.reads_per_s,
            self.maps,
            self.mean_map_bytes,
            self.not_modified,
            self.failures
        )
    }
}

/// Readers running until [`SeatMapReaders::stop`].
///
/// They run on a Tokio runtime of their own, in a thread of their own: on the buyers' runtime
/// 200 readers in a tight loop queued ahead of the buyers' tasks, so the load generator itself
/// added to the buyers' latency what the server did not. Separate threads share the cores the
/// way separate clients would, through the operating system's scheduler.
pub struct SeatMapReaders {
    readers: usize,
    client: ReaderClient,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    started: Instant,
    thread: std::thread::JoinHandle<()>,
}

#[derive(Default)]
struct Counts {
    maps: AtomicU64,
    not_modified: AtomicU64,
    failures: AtomicU64,
    bytes: AtomicU64,
}

impl SeatMapReaders {
    /// Starts `readers` tasks, reader `i` reading `GET /api/events/{event}/seats` from server
    /// `i % targets.len()` in a loop as `client` asks, waiting `pause` after each read (zero: at
    /// once), over an HTTP client of their own (one connection each, so they do not take the
    /// buyers' connections).
    pub fn start(
        targets: &[String],
        event: EventId,
        readers: usize,
        client_kind: ReaderClient,
        pause: Duration,
        timeout: Duration,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let urls: Vec<String> = (0..readers)
            .map(|i| format!("{}/api/events/{event}/seats", targets[i % targets.len()]))
            .collect();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("seat-map-reader")
            .enable_all()
            .build()?;
        let (thread_stop, thread_counts) = (stop.clone(), counts.clone());
        let thread = std::thread::Builder::new()
            .name("seat-map-readers".into())
            .spawn(move || {
                runtime.block_on(read_until_stopped(
                    urls,
                    client_kind,
                    pause,
                    timeout,
                    thread_stop,
                    thread_counts,
                ))
            })?;
        Ok(Self {
            readers,
            client: client_kind,
            stop,
            counts,
            started: Instant::now(),
            thread,
        })
    }

    /// Stops the readers (each finishes its read) and counts what they did.
    pub async fn stop(self) -> ReaderStats {
        self.stop.store(true, Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-9);
        let thread = self.thread;
        // A reader that panicked has counted what it read; the counts stand either way.
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        let maps = self.counts.maps.load(Ordering::Relaxed);
        let not_modified = self.counts.not_modified.load(Ordering::Relaxed);
        ReaderStats {
            readers: self.readers,
            client: self.client,
            maps,
            not_modified,
            failures: self.counts.failures.load(Ordering::Relaxed),
            reads_per_s: (maps + not_modified) as f64 / elapsed,
            mean_map_bytes: self.counts.bytes.load(Ordering::Relaxed) as f64 / (maps.max(1) as f64),
        }
    }
}

/// One task per URL reading it in a loop until `stop`.
async fn read_until_stopped(
    urls: Vec<String>,
    client_kind: ReaderClient,
    pause: Duration,
    timeout: Duration,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) {
    let client = HttpClient::new(urls.len(), timeout);
    let tasks: Vec<JoinHandle<()>> = urls
        .into_iter()
        .map(|url| {
            let (client, stop, counts) = (client.clone(), stop.clone(), counts.clone());
            tokio::spawn(read_in_a_loop(
                url,
                client,
                client_kind,
                pause,
                stop,
                counts,
            ))
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

/// One reader: reads `url`, counts the answer, keeps the map's ETag, waits `pause`.
async fn read_in_a_loop(
    url: String,
    client: HttpClient,
    client_kind: ReaderClient,
    pause: Duration,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) {
    let mut etag: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        let headers = client_kind.headers(etag.as_deref());
        match client.get_with(&url, &headers).await {
            Ok(answer) if answer.status == StatusCode::OK => {
                counts.maps.fetch_add(1, Ordering::Relaxed);
                let bytes = answer.body.len() as u64;
                counts.bytes.fetch_add(bytes, Ordering::Relaxed);
                etag = answer
                    .headers
                    .get(header::ETAG)
                    .and_then(|tag| tag.to_str().ok())
                    .map(str::to_owned);
            }
            Ok(answer) if answer.status == StatusCode::NOT_MODIFIED => {
                counts.not_modified.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                counts.failures.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}
