//! The waiting room: admission control in front of the purchase of an event that requires it
//! (docs/DESIGN.md, "Waiting room").
//!
//! Buyers join an event's queue, leave it as admissions (at the policy's rate or up to its cap,
//! in FIFO or lottery order), and show their admission at purchase. Join, admit and the purchase
//! gate are each one atomic step of the backend (a Lua script on Redis, a transaction in SQL, one
//! mutex in memory), so concurrent servers never admit beyond the cap nor let two purchases use
//! one admission. Time is always the caller's `now`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;
use crate::domain::{AdmissionPolicy, AdmissionRefusal, CustomerId, EventId};

/// One buyer let out of the queue: they may buy until `expires`, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The buyer.
    pub customer: CustomerId,
    /// The admission's id, unique within the event: the token id that a purchase shows and the
    /// gate checks, so a used admission cannot be replayed.
    pub id: u64,
    /// The end of the purchase window (admit time + the policy's window).
    pub expires: DateTime<Utc>,
}

/// Where a buyer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// The event has no admission policy: anyone may buy.
    NotRequired,
    /// Neither waiting nor admitted: never joined, or the admission was used or has lapsed.
    Absent,
    /// In the queue.
    Waiting {
        /// 1 = the next to be admitted.
        position: u64,
        /// The event's policy, for the estimated wait.
        policy: AdmissionPolicy,
    },
    /// Admitted and not yet used.
    Admitted(Admission),
}

/// The gate's answer to a purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// The event has no admission policy: go ahead, no token needed.
    NotRequired,
    /// The admission is live and now marked in use by this purchase; call
    /// [`WaitingRoom::finish_purchase`] when it ends.
    Granted,
    /// No purchase with this admission.
    Refused(AdmissionRefusal),
}

/// How full an event's waiting room is at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Occupancy {
    /// Buyers in the queue.
    pub waiting: u64,
    /// Live admissions (not used, window not over): what the cap counts.
    pub admitted: u64,
}

/// The waiting room's store. Every method is one atomic step of the backend.
#[async_trait]
pub trait WaitingRoom: Send + Sync {
    /// Sets (`Some`) or removes (`None`) the event's admission policy. Changing the policy keeps
    /// the queue and the admissions; removing it lets anyone buy.
    async fn set_policy(&self, event: EventId, policy: Option<AdmissionPolicy>) -> Result<()>;

    /// The event's admission policy, if it has one.
    async fn policy(&self, event: EventId) -> Result<Option<AdmissionPolicy>>;

    /// Puts `customer` in the event's queue and says where they stand. Idempotent: a buyer who
    /// waits keeps their place and a buyer with a live admission keeps it. In the random order
    /// the queue is ordered by `lottery` (below [`LOTTERY_BOUND`](crate::domain::LOTTERY_BOUND),
    /// ties by arrival), in FIFO by arrival; the first join's number counts. Answers
    /// [`Place::NotRequired`] and stores nothing for an event without a policy.
    async fn join(
        &self,
        event: EventId,
        customer: &CustomerId,
        lottery: u64,
        now: DateTime<Utc>,
    ) -> Result<Place>;

    /// Where `customer` stands at `now`, changing nothing.
    async fn place(
        &self,
        event: EventId,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Place>;

    /// Drops the admissions whose window is over at `now`, then moves as many buyers from the
    /// head of the queue to admitted as the policy allows: up to the cap minus the live
    /// admissions, or up to the rate minus those admitted in `now`'s second. Answers the new
    /// admissions in queue order (none for an event without a policy). Concurrent calls together
    /// never exceed the cap or the rate.
    async fn admit(&self, event: EventId, now: DateTime<Utc>) -> Result<Vec<Admission>>;

    /// The purchase gate: with `admission` (an id from a token whose signature the caller
    /// checked) live — this customer's, not used, not in use by another purchase, window not over
    /// at `now` — marks it in use and answers [`Gate::Granted`]. It keeps counting against the
    /// cap until [`finish_purchase`](Self::finish_purchase). Without a policy, [`Gate::NotRequired`];
    /// without `admission`, [`AdmissionRefusal::Missing`]; otherwise
    /// [`AdmissionRefusal::InUse`] or [`AdmissionRefusal::NotAdmitted`].
    async fn begin_purchase(
        &self,
        event: EventId,
        customer: &CustomerId,
        admission: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Gate>;

    /// Ends a purchase that [`begin_purchase`](Self::begin_purchase) granted: `bought`, the
    /// admission is used up (it stops counting against the cap and its token is refused from
    /// now on); not bought (seats taken, a backend failure), it is live again for another try
    /// within its window. A no-op when the admission is not in use by this customer.
    async fn finish_purchase(
        &self,
        event: EventId,
        customer: &CustomerId,
        admission: u64,
        bought: bool,
    ) -> Result<()>;

    /// How many wait and how many admissions are live at `now`.
    async fn occupancy(&self, event: EventId, now: DateTime<Utc>) -> Result<Occupancy>;

    /// Drops everything of the event's room (policy, queue, admissions), for an event that is
    /// over ([`ClosedEventSweep`](crate::service::ClosedEventSweep) calls it); other events are
    /// left alone. Afterwards the event needs no admission.
    async fn forget(&self, event: EventId) -> Result<()>;
}
