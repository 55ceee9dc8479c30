//! Step 4 of the batch transaction, invariant 6: each customer's tickets for an event, summed
//! over the batch, against the per-customer limit.

use std::collections::{BTreeMap, HashMap};

use sqlx::{MySqlConnection, Row};
use ticketing_core::Error;
use ticketing_core::domain::EventId;
use ticketing_core::ports::NewOrder;

use crate::error::StoreResult;
use crate::tickets::sql;

/// The tickets one batch adds to one customer's counter row, and the limit it must stay within.
struct Usage {
    add: u32,
    bound: u32,
    orders: Vec<usize>,
}

impl Usage {
    fn new(bound: u32) -> Self {
        Self {
            add: 0,
            bound,
            orders: Vec::new(),
        }
    }

    fn add(&mut self, order: usize, n: u32, bound: u32) {
        self.add += n;
        self.bound = self.bound.min(bound);
        self.orders.push(order);
    }
}

/// Adds each customer's sum in one upsert (customers in key order, so batches lock counter rows
/// in one order), and returns the orders (indexes into `orders`) of every customer now over the
/// limit. The new values are ours, locked until COMMIT: when the upsert created every row (a
/// flash sale's buyers are new to the event) they are the sums themselves; otherwise one read
/// per event fetches them.
pub(super) async fn raise(
    conn: &mut MySqlConnection,
    orders: &[&NewOrder],
) -> StoreResult<Vec<usize>> {
    let mut usage: BTreeMap<(EventId, String), Usage> = BTreeMap::new();
    for (i, new) in orders.iter().enumerate() {
        let order = &new.order;
        usage
            .entry((order.event_id, order.customer.as_str().to_owned()))
            .or_insert_with(|| Usage::new(new.per_customer_limit))
            .add(i, order.tickets.len() as u32, new.per_customer_limit);
    }
    if usage.is_empty() {
        return Ok(Vec::new());
    }
    let sums = usage
        .iter()
        .map(|((event, customer), u)| (event.as_uuid(), customer.as_str(), u.add));
    let mut upsert = sql::add_customer_usage(sums);
    let done = upsert.build().execute(&mut *conn).await?;
    // Per row, the upsert reports 1 for a new row and 2 for a raised one (every sum is at least
    // 1, so no row is left as it was). A total of one per key means every row is new and holds
    // exactly this batch's sum: compare it without reading it back.
    if done.rows_affected() == usage.len() as u64 {
        return Ok(usage
            .values()
            .filter(|u| u.add > u.bound)
            .flat_map(|u| u.orders.iter().copied())
            .collect());
    }
    let values = read(conn, &usage).await?;
    let mut over = Vec::new();
    for (key, u) in &usage {
        match values.get(key) {
            Some(active) if *active <= u.bound => {}
            Some(_) => over.extend(&u.orders),
            None => {
                return Err(
                    Error::internal("a counter row vanished inside its transaction").into(),
                );
            }
        }
    }
    Ok(over)
}

/// The counter values of `usage`'s customers, one read per event.
async fn read(
    conn: &mut MySqlConnection,
    usage: &BTreeMap<(EventId, String), Usage>,
) -> StoreResult<HashMap<(EventId, String), u32>> {
    let mut per_event: BTreeMap<EventId, Vec<&str>> = BTreeMap::new();
    for (event, customer) in usage.keys() {
        per_event.entry(*event).or_default().push(customer);
    }
    let mut values = HashMap::new();
    for (event, customers) in per_event {
        let rows = sql::select_customer_usage(event.as_uuid(), customers)
            .build()
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            values.insert((event, row.try_get("customer_id")?), row.try_get("active")?);
        }
    }
    Ok(values)
}
