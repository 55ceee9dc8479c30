//! `WaitingRoomService`: joining an event's queue, reading one's place, admitting, and the
//! purchase behind an admission token (docs/DESIGN.md, "Waiting room").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;

use crate::domain::{AdmissionPolicy, AdmissionSecret, CustomerId, EventId, Order};
use crate::ports::{Admission, Gate, Place};
use crate::{Error, Result};

use super::{Backends, PurchaseRequest, TicketService};

/// Where a buyer stands, as the buyer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueStatus {
    /// The event needs no admission: buy at once, without a token.
    NotRequired,
    /// Not in the queue (never joined, or the admission was used or has lapsed): join.
    NotQueued,
    /// In the queue.
    Waiting {
        /// 1 = the next to be admitted.
        position: u64,
        /// How long the buyer waits at most if no one ahead gives up
        /// ([`AdmissionPolicy::estimated_wait`]).
        estimated_wait: TimeDelta,
    },
    /// Admitted: buy with `token` before `expires`.
    Admitted {
        /// The signed admission token to show at purchase.
        token: String,
        /// The end of the purchase window.
        expires: DateTime<Utc>,
    },
}

/// The default [`WaitingRoomService::with_policy_max_age`]: one second.
pub const DEFAULT_POLICY_MAX_AGE: Duration = Duration::from_secs(1);

/// Most events remembered as needing no admission before the stale ones are dropped.
const REMEMBERED_EVENTS: usize = 10_000;

/// The waiting room's use cases over [`Backends::waiting_room`].
///
/// Admission happens on read: [`join`](Self::join) and [`status`](Self::status) first run one
/// [`admit`](Self::admit) step for the event, so a room with buyers polling it moves without a
/// background task; a host may also call `admit` on a timer.
///
/// A purchase of an event without a waiting room would cost a waiting-room round trip each; the
/// service remembers such events for [`with_policy_max_age`](Self::with_policy_max_age) (one
/// second by default) and skips the gate meanwhile. A policy set through this service takes
/// effect at once on it; one set through another server takes effect here within that age.
#[derive(Clone)]
pub struct WaitingRoomService {
    backends: Backends,
    secret: AdmissionSecret,
    /// Events seen without a policy, and when (tokio's monotonic clock: a cache age, not a
    /// domain time).
    unrequired: Arc<Mutex<HashMap<EventId, Instant>>>,
    policy_max_age: Duration,
}

impl std::fmt::Debug for WaitingRoomService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitingRoomService").finish_non_exhaustive()
    }
}

impl WaitingRoomService {
    /// A waiting-room service over `backends`, signing tokens with `secret` (every server of a
    /// deployment must share it).
    pub fn new(backends: Backends, secret: AdmissionSecret) -> Self {
        Self {
            backends,
            secret,
            unrequired: Arc::default(),
            policy_max_age: DEFAULT_POLICY_MAX_AGE,
        }
    }

    /// How long a purchase trusts an earlier answer that the event has no waiting room
    /// ([`Duration::ZERO`]: ask the waiting room on every purchase).
    pub fn with_policy_max_age(mut self, max_age: Duration) -> Self {
        self.policy_max_age = max_age;
        self
    }

    fn known_unrequired(&self, event: EventId) -> bool {
        let seen = self.unrequired.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(&event)
            .is_some_and(|at| at.elapsed() < self.policy_max_age)
    }

    fn remember(&self, event: EventId, required: bool) {
        let mut seen = self.unrequired.lock().unwrap_or_else(|e| e.into_inner());
        if required {
            seen.remove(&event);
            return;
        }
        if self.policy_max_age.is_zero() {
            return;
        }
        if seen.len() >= REMEMBERED_EVENTS {
            let max_age = self.policy_max_age;
            seen.retain(|_, at| at.elapsed() < max_age);
        }
        seen.insert(event, Instant::now());
    }

    /// Sets (`Some`) or removes (`None`) the admission policy of an existing event
    /// ([`Error::NotFound`] otherwise).
    pub async fn configure(&self, event: EventId, policy: Option<AdmissionPolicy>) -> Result<()> {
        self.backends
            .catalog
            .event(event)
            .await?
            .ok_or_else(|| Error::not_found("event", event))?;
        // Forget first: a purchase racing this call must not trust an answer from before it.
        self.remember(event, true);
        self.backends.waiting_room.set_policy(event, policy).await
    }

    /// The event's admission policy, if it has one.
    pub async fn policy(&self, event: EventId) -> Result<Option<AdmissionPolicy>> {
        self.backends.waiting_room.policy(event).await
    }

    /// Joins the event's queue (idempotent: joining again keeps the place) and says where the
    /// customer stands, after one admission step.
    pub async fn join(&self, event: EventId, customer: &CustomerId) -> Result<QueueStatus> {
        let now = self.backends.now();
        let room = &self.backends.waiting_room;
        let lottery = self.secret.lottery(event, customer, now);
        if let Place::NotRequired = room.join(event, customer, lottery, now).await? {
            return Ok(QueueStatus::NotRequired);
        }
        room.admit(event, now).await?;
        let place = room.place(event, customer, now).await?;
        Ok(self.status_of(event, customer, place))
    }

    /// Where the customer stands, after one admission step; once admitted, with the token.
    pub async fn status(&self, event: EventId, customer: &CustomerId) -> Result<QueueStatus> {
        let now = self.backends.now();
        let room = &self.backends.waiting_room;
        room.admit(event, now).await?;
        let place = room.place(event, customer, now).await?;
        Ok(self.status_of(event, customer, place))
    }

    /// One admission step for the event at the clock's now (see
    /// [`WaitingRoom::admit`](crate::ports::WaitingRoom::admit)).
    pub async fn admit(&self, event: EventId) -> Result<Vec<Admission>> {
        let now = self.backends.now();
        self.backends.waiting_room.admit(event, now).await
    }

    /// The signed token of an admission of `event`.
    pub fn token(&self, event: EventId, admission: &Admission) -> String {
        self.secret
            .sign(event, &admission.customer, admission.id, admission.expires)
    }

    fn status_of(&self, event: EventId, customer: &CustomerId, place: Place) -> QueueStatus {
        match place {
            Place::NotRequired => QueueStatus::NotRequired,
            Place::Absent => QueueStatus::NotQueued,
            Place::Waiting { position, policy } => QueueStatus::Waiting {
                position,
                estimated_wait: policy.estimated_wait(position),
            },
            Place::Admitted(admission) => {
                debug_assert_eq!(&admission.customer, customer);
                QueueStatus::Admitted {
                    token: self.token(event, &admission),
                    expires: admission.expires,
                }
            }
        }
    }

    /// [`TicketService::purchase`] behind the event's waiting room. For an event that requires
    /// admission, `token` must be this customer's live, unused admission token for this event,
    /// else [`Error::NotAdmitted`] (nothing is held or written). A purchase that succeeds uses
    /// the admission up; one that fails leaves it for another try within its window.
    pub async fn purchase(
        &self,
        tickets: &TicketService,
        request: PurchaseRequest,
        token: Option<&str>,
    ) -> Result<Order> {
        let (event, customer) = (request.event, request.customer.clone());
        if self.known_unrequired(event) {
            return tickets.purchase(request).await;
        }
        let now = self.backends.now();
        let verified = token.map(|t| self.secret.verify(t, event, &customer, now));
        let id = verified.and_then(Result::ok);
        let room = &self.backends.waiting_room;
        match room.begin_purchase(event, &customer, id, now).await? {
            Gate::NotRequired => {
                self.remember(event, false);
                return tickets.purchase(request).await;
            }
            Gate::Granted => {}
            Gate::Refused(reason) => {
                // A token that failed its own check says why better than "missing".
                let reason = match verified {
                    Some(Err(token_reason)) => token_reason,
                    _ => reason,
                };
                return Err(Error::NotAdmitted { event, reason });
            }
        }
        let id =
            id.ok_or_else(|| Error::internal("the gate granted a purchase without a token"))?;
        let bought = tickets.purchase(request).await;
        if let Err(error) = room
            .finish_purchase(event, &customer, id, bought.is_ok())
            .await
        {
            // The admission stays in use until its window ends: it lapses by itself.
            tracing::warn!(%error, %event, "could not finish the admission of a purchase");
        }
        bought
    }
}
