//! `--seat-map-readers N`: clients that read the event's seat map in a loop while the sale runs,
//! as a crowd refreshing the map would, so a run shows what they cost the buyers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde::Serialize;
use ticketing_core::domain::EventId;
use tokio::task::JoinHandle;

use crate::client::HttpClient;

/// What the readers did.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ReaderStats {
    /// Reader tasks.
    pub readers: usize,
    /// Seat maps read (200 OK).
    pub maps: u64,
    /// Reads that failed (an error status or no answer).
    pub failures: u64,
    /// Maps read per second while the readers ran.
    pub maps_per_s: f64,
    /// Bytes of the maps read, on average.
    pub mean_map_bytes: f64,
}

impl ReaderStats {
    /// One line for the terminal.
    pub fn describe(&self) -> String {
        format!(
            "seat-map readers: {} tasks read {} maps ({:.0}/s, {:.0} bytes each), {} failed",
            self.readers, self.maps, self.maps_per_s, self.mean_map_bytes, self.failures
        )
    }
}

/// Readers running until [`SeatMapReaders::stop`].
pub struct SeatMapReaders {
    readers: usize,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    started: Instant,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Default)]
struct Counts {
    maps: AtomicU64,
    failures: AtomicU64,
    bytes: AtomicU64,
}

impl SeatMapReaders {
    /// Starts `readers` tasks, reader `i` reading `GET /api/events/{event}/seats` from server
    /// `i % targets.len()` in a loop, waiting `pause` after each read (zero: at once), over a
    /// client of their own (one connection each, so they do not take the buyers' connections).
    pub fn start(
        targets: &[String],
        event: EventId,
        readers: usize,
        pause: Duration,
        timeout: Duration,
    ) -> Self {
        let client = HttpClient::new(readers, timeout);
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let tasks = (0..readers)
            .map(|i| {
                let url = format!("{}/api/events/{event}/seats", targets[i % targets.len()]);
                let (client, stop, counts) = (client.clone(), stop.clone(), counts.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        match client.get(&url).await {
                            Ok(answer) if answer.status == StatusCode::OK => {
                                counts.maps.fetch_add(1, Ordering::Relaxed);
                                let bytes = answer.body.len() as u64;
                                counts.bytes.fetch_add(bytes, Ordering::Relaxed);
                                if !pause.is_zero() {
                                    tokio::time::sleep(pause).await;
                                }
                            }
                            _ => {
                                counts.failures.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            readers,
            stop,
            counts,
            started: Instant::now(),
            tasks,
        }
    }

    /// Stops the readers (each finishes its read) and counts what they did.
    pub async fn stop(self) -> ReaderStats {
        self.stop.store(true, Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-9);
        for task in self.tasks {
            let _ = task.await;
        }
        let maps = self.counts.maps.load(Ordering::Relaxed);
        ReaderStats {
            readers: self.readers,
            maps,
            failures: self.counts.failures.load(Ordering::Relaxed),
            maps_per_s: maps as f64 / elapsed,
            mean_map_bytes: self.counts.bytes.load(Ordering::Relaxed) as f64 / (maps.max(1) as f64),
        }
    }
}
