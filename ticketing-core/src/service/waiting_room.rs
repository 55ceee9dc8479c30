//! `WaitingRoomService`: joining an event's queue, reading one's place, admitting, and the
//! purchase behind an admission token (docs/DESIGN.md, "Waiting room").

use chrono::{DateTime, TimeDelta, Utc};

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

/// The waiting room's use cases over [`Backends::waiting_room`].
///
/// Admission happens on read: [`join`](Self::join) and [`status`](Self::status) first run one
/// [`admit`](Self::admit) step for the event, so a room with buyers polling it moves without a
/// background task; a host may also call `admit` on a timer.
#[derive(Clone)]
pub struct WaitingRoomService {
    backends: Backends,
    secret: AdmissionSecret,
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
        Self { backends, secret }
    }

    /// Sets (`Some`) or removes (`None`) the admission policy of an existing event
    /// ([`Error::NotFound`] otherwise).
    pub async fn configure(&self, event: EventId, policy: Option<AdmissionPolicy>) -> Result<()> {
        self.backends
            .catalog
            .event(event)
            .await?
            .ok_or_else(|| Error::not_found("event", event))?;
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
        let now = self.backends.now();
        let verified = token.map(|t| self.secret.verify(t, event, &customer, now));
        let id = verified.and_then(Result::ok);
        let room = &self.backends.waiting_room;
        match room.begin_purchase(event, &customer, id, now).await? {
            Gate::NotRequired => return tickets.purchase(request).await,
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
