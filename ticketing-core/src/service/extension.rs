//! Hold extension: the holder of a pending order moves its payment deadline (docs/DESIGN.md,
//! "Hold extension").
//!
//! The seat lock first: the order re-holds its own items until the new deadline plus the grace,
//! which extends its own holds and answers `Taken` when another order holds a seat now (after
//! this order's hold lapsed or the lock lost it), so an extension never takes a seat back. Then
//! the repository moves the deadline by compare-and-set. When the repository refuses, the lock
//! is put back to what the repository says (`mirror_order`); should that be lost, the longer hold
//! ends with the order anyway (the sweep and the relay release it when the order expires).

use chrono::{DateTime, Utc};

use crate::domain::{CustomerId, ExtensionRefusal, Order, OrderId, TicketStatus};
use crate::ports::{Extension, ExtensionOutcome, HoldOutcome};
use crate::{Error, Result};

use super::catalog::EventInfo;
use super::holds::mirror_order;
use super::tickets::TicketService;

/// How often an extension re-reads the order after a concurrent change made its decision stale.
const EXTENSION_ATTEMPTS: u32 = 3;

/// The answer of [`TicketService::extend_hold`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedHold {
    /// The order with its new deadline.
    pub order: Order,
    /// Extensions of the order so far, this one included.
    pub extensions: u32,
    /// Extensions the policy still allows (the total cap may end them sooner).
    pub extensions_left: u32,
}

impl TicketService {
    /// Moves the payment deadline of `customer`'s pending order by the configured step
    /// ([`ServiceConfig::hold_extension`](super::ServiceConfig::hold_extension)), within the
    /// policy's count and total cap. Another customer's order is [`Error::NotFound`], as if it did
    /// not exist. Refused with [`Error::HoldNotExtended`] (turned off, not pending, deadline
    /// passed, as often as allowed, at the cap) or [`Error::SeatsTaken`] /
    /// [`Error::SoldOut`] when another order holds its seats or places now; a refusal changes
    /// nothing.
    pub async fn extend_hold(&self, order: OrderId, customer: &CustomerId) -> Result<ExtendedHold> {
        let b = &self.backends;
        for _ in 0..EXTENSION_ATTEMPTS {
            let current = b
                .tickets
                .order(order)
                .await?
                .filter(|o| &o.customer == customer)
                .ok_or_else(|| Error::not_found("order", order))?;
            let now = b.now();
            let info = self.events.get(&*b.catalog, current.event_id).await?;
            let to = self.next_deadline(&current, &info, now)?;
            self.hold_until(&current, &info, now, to).await?;
            let extension = Extension {
                order,
                now,
                from: current.expires_at,
                to,
                max_extensions: self.config.hold_extension.max_extensions,
            };
            let outcome = b.tickets.extend_deadline(&extension).await;
            match outcome {
                Ok(ExtensionOutcome::Extended { extensions }) => {
                    return self.extended(&current, &info, to, extensions).await;
                }
                Ok(ExtensionOutcome::LimitReached) => {
                    self.restore_hold(&info, order).await;
                    return Err(refused(ExtensionRefusal::LimitReached));
                }
                Ok(ExtensionOutcome::DeadlinePassed) => {
                    self.restore_hold(&info, order).await;
                    return Err(refused(ExtensionRefusal::Expired));
                }
                Ok(_) => {
                    self.restore_hold(&info, order).await;
                    tracing::debug!(%order, "extension lost a compare-and-set race, re-reading");
                }
                Err(error) => {
                    // Committed or not, the lock is put in line with whatever the repository
                    // holds now.
                    self.restore_hold(&info, order).await;
                    return Err(error);
                }
            }
        }
        Err(Error::unavailable(
            "repository",
            format!("order {order} kept changing while its hold was extended"),
        ))
    }

    /// The deadline one more extension gives `order` at `now`, or why it gets none.
    fn next_deadline(
        &self,
        order: &Order,
        info: &EventInfo,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>> {
        match order.status {
            TicketStatus::PendingPayment if order.expires_at > now => {}
            TicketStatus::PendingPayment | TicketStatus::Expired => {
                return Err(refused(ExtensionRefusal::Expired));
            }
            _ => return Err(refused(ExtensionRefusal::NotPending)),
        }
        let created = order
            .tickets
            .iter()
            .map(|t| t.created_on)
            .min()
            .unwrap_or(order.expires_at);
        self.config
            .hold_extension
            .next_deadline(created, order.expires_at, info.event.hold_time())
            .map_err(refused)
    }

    /// Holds `order`'s items in the seat lock until `deadline` + grace, as the order itself: its
    /// own holds are extended, a seat or place another order holds now refuses the whole hold
    /// (which then changes nothing, for either order).
    async fn hold_until(
        &self,
        order: &Order,
        info: &EventInfo,
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Result<()> {
        let until = deadline + self.config.grace();
        match self.hold_order(order, info, now, until).await?.1 {
            HoldOutcome::Held => Ok(()),
            HoldOutcome::Taken { seats, zones } => Err(match zones.into_iter().next() {
                Some(zone) if seats.is_empty() => Error::SoldOut {
                    zone,
                    requested: order.tickets.len() as u32,
                },
                _ => Error::SeatsTaken { seats },
            }),
            HoldOutcome::NotLoaded => {
                Err(Error::internal("hold answered NotLoaded after a rebuild"))
            }
        }
    }

    /// The answer after the repository moved the deadline. The seats are held again until the
    /// new deadline, in case a concurrent refusal of the same order put the lock back to the old
    /// one between our hold and our commit (the relay's `mirror_order` would repair it too).
    async fn extended(
        &self,
        before: &Order,
        info: &EventInfo,
        to: DateTime<Utc>,
        extensions: u32,
    ) -> Result<ExtendedHold> {
        let now = self.backends.now();
        if let Err(error) = self.hold_until(before, info, now, to).await {
            tracing::debug!(order = %before.id, %error, "re-holding an extended order");
        }
        let order = self
            .backends
            .tickets
            .order(before.id)
            .await?
            .ok_or_else(|| Error::not_found("order", before.id))?;
        Ok(ExtendedHold {
            order,
            extensions,
            extensions_left: self
                .config
                .hold_extension
                .max_extensions
                .saturating_sub(extensions),
        })
    }

    /// Puts the lock back to what the repository holds for `order` after a refused or failed
    /// extension: its current deadline + grace if it is still unpaid, released if it is over.
    /// If that fails, the longer hold ends with the order: the sweep and the relay release an
    /// expired order's seats whatever the lock's deadline.
    async fn restore_hold(&self, info: &EventInfo, order: OrderId) {
        let b = &self.backends;
        let restored = match b.tickets.order(order).await {
            Ok(Some(current)) => {
                mirror_order(
                    &*b.seat_lock,
                    &current,
                    &info.capacities,
                    self.config.grace(),
                    b.now(),
                )
                .await
            }
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = restored {
            tracing::warn!(%order, %error, "putting the seat lock back after a refused extension failed; it ends with the order");
        }
    }
}

fn refused(reason: ExtensionRefusal) -> Error {
    Error::HoldNotExtended { reason }
}
