//! Best available on Redis: `best_available.lua` chooses and holds a block in one step, over one
//! chunk of the zone's rows per call.
//!
//! A zone can have 200,000 seats, and Redis runs one script at a time, so no call reads more than
//! about [`SNAPSHOT_CHUNK`] seats (whole rows; a longer row is one chunk on its own). The chunks
//! are asked in row order, first for a block without orphans; when none has one, again for a
//! block with the fewest orphans any chunk showed, and, should that have gone meanwhile, for any
//! block. Each call is atomic, so no seat is ever held twice; on a zone that does not change
//! meanwhile the result is exactly `choose_block`'s over all rows.

use ticketing_core::domain::{Row, SeatRef};
use ticketing_core::ports::{BestAvailableOutcome, BestAvailableRequest};

use crate::error::RedisLockError;
use crate::lock::RedisSeatLock;
use crate::snapshot::SNAPSHOT_CHUNK;
use crate::values::{self, millis};

const SCRIPT: &str = "best_available";

/// What one chunk's call answered.
enum ChunkAnswer {
    NotLoaded,
    Held(Vec<SeatRef>),
    /// No block with at most the allowed orphans; the fewest any block here leaves, `None` when
    /// there is no block at all.
    None(Option<u8>),
}

impl RedisSeatLock {
    /// [`SeatLock::hold_best_available`](ticketing_core::ports::SeatLock::hold_best_available)
    /// over the request's rows in chunks.
    pub(crate) async fn hold_best_available_in_chunks(
        &self,
        request: &BestAvailableRequest,
    ) -> Result<BestAvailableOutcome, RedisLockError> {
        let chunks = chunks(&request.rows);
        let mut fewest: Option<u8> = None;
        // Pass 1 asks for no orphan; pass 2 for the fewest seen in pass 1; pass 3 for any.
        for pass in 0..3 {
            let max_orphans = match (pass, fewest) {
                (0, _) => 0,
                (1, Some(fewest)) => fewest,
                (1, None) => return Ok(BestAvailableOutcome::NoBlock),
                _ => 2,
            };
            for rows in &chunks {
                match self.ask_chunk(request, rows, max_orphans).await? {
                    ChunkAnswer::NotLoaded => return Ok(BestAvailableOutcome::NotLoaded),
                    ChunkAnswer::Held(seats) => return Ok(BestAvailableOutcome::Held { seats }),
                    ChunkAnswer::None(seen) if pass == 0 => {
                        fewest = match (fewest, seen) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                    }
                    ChunkAnswer::None(_) => {}
                }
            }
        }
        Ok(BestAvailableOutcome::NoBlock)
    }

    async fn ask_chunk(
        &self,
        request: &BestAvailableRequest,
        rows: &[Row],
        max_orphans: u8,
    ) -> Result<ChunkAnswer, RedisLockError> {
        let keys = self.keys(request.event);
        let mut invocation = self.scripts.best_available.prepare_invoke();
        invocation
            .key(&keys.loaded)
            .key(&keys.seats)
            .arg(request.order.to_string())
            .arg(millis(request.now))
            .arg(millis(request.until))
            .arg(request.zone.as_str())
            .arg(request.quantity)
            .arg(max_orphans);
        let excluded: Vec<&SeatRef> = request
            .excluded
            .iter()
            .filter(|seat| seat.zone == request.zone && rows.iter().any(|r| r.label == seat.row))
            .collect();
        invocation.arg(excluded.len());
        for seat in excluded {
            invocation.arg(seat.key());
        }
        for row in rows {
            invocation.arg(row.label.as_str()).arg(row.seats);
        }
        let reply = self.run(&invocation).await?;
        let parts = values::array(SCRIPT, &reply)?;
        let status = parts.first().map(|v| values::text(SCRIPT, v)).transpose()?;
        match (status.as_deref(), parts.len()) {
            (Some("not_loaded"), 1) => Ok(ChunkAnswer::NotLoaded),
            (Some("none"), 2) => {
                let fewest = values::int(SCRIPT, &parts[1])?;
                Ok(ChunkAnswer::None(u8::try_from(fewest).ok()))
            }
            (Some("held"), 3) => {
                let label = values::text(SCRIPT, &parts[1])?;
                let first = values::int(SCRIPT, &parts[2])?;
                let row = rows
                    .iter()
                    .find(|r| r.label.as_str() == label)
                    .ok_or_else(|| {
                        RedisLockError::reply(SCRIPT, format!("row {label} was not asked for"))
                    })?;
                let first = u32::try_from(first)
                    .ok()
                    .filter(|f| *f >= 1 && f + request.quantity - 1 <= row.seats)
                    .ok_or_else(|| {
                        RedisLockError::reply(
                            SCRIPT,
                            format!("seat {first} is outside row {label}"),
                        )
                    })?;
                let seats = (first..first + request.quantity)
                    .map(|number| SeatRef {
                        zone: request.zone.clone(),
                        row: row.label.clone(),
                        number,
                    })
                    .collect();
                Ok(ChunkAnswer::Held(seats))
            }
            _ => Err(RedisLockError::reply(SCRIPT, format!("{reply:?}"))),
        }
    }
}

/// The rows in runs of whole rows of at most [`SNAPSHOT_CHUNK`] seats (a longer row alone).
fn chunks(rows: &[Row]) -> Vec<&[Row]> {
    let mut chunks = Vec::new();
    let (mut start, mut seats) = (0, 0usize);
    for (i, row) in rows.iter().enumerate() {
        let row_seats = row.seats as usize;
        if i > start && seats + row_seats > SNAPSHOT_CHUNK {
            chunks.push(&rows[start..i]);
            (start, seats) = (i, 0);
        }
        seats += row_seats;
    }
    if start < rows.len() {
        chunks.push(&rows[start..]);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(seats: &[u32]) -> Vec<Row> {
        seats
            .iter()
            .enumerate()
            .map(|(i, &seats)| Row {
                label: (i + 1).to_string().parse().unwrap(),
                seats,
            })
            .collect()
    }

    #[test]
    fn chunks_are_whole_rows_of_at_most_a_chunk_of_seats() {
        let layout = rows(&[600, 400, 1, 1_500, 10]);
        let sizes: Vec<usize> = chunks(&layout).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![2, 1, 1, 1]);
        assert!(chunks(&[]).is_empty());
    }
}
