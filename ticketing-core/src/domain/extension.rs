//! Hold extension: a buyer who needs more time to pay moves the payment deadline of a pending
//! order, a bounded number of times and never past a total cap counted from the purchase
//! (seats.io caps a hold at two hours; pretix lets a cart be renewed).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::event::MAX_HOLD_TIME;

/// How far and how often the holder of a pending order may move its payment deadline.
///
/// An extension moves the deadline by [`step`](Self::step) (the event's hold time when `None`),
/// at most [`max_extensions`](Self::max_extensions) times per order, and never past the order's
/// creation plus [`max_total`](Self::max_total): the last extension gives what is left of the
/// cap. The default allows two extensions of the event's hold time within 30 minutes in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldExtension {
    /// How far one extension moves the deadline; `None` is the event's hold time, so a buyer
    /// gets the same window again.
    pub step: Option<Duration>,
    /// Extensions per order; 0 turns extension off.
    pub max_extensions: u32,
    /// Longest time from the purchase to the (extended) deadline. At most [`MAX_HOLD_TIME`]
    /// counts; a longer cap is taken as that.
    pub max_total: Duration,
}

impl Default for HoldExtension {
    fn default() -> Self {
        Self {
            step: None,
            max_extensions: 2,
            max_total: Duration::from_secs(30 * 60),
        }
    }
}

impl HoldExtension {
    /// No extension at all.
    pub fn disabled() -> Self {
        Self {
            max_extensions: 0,
            ..Self::default()
        }
    }

    /// The latest a payment deadline can be after its order's purchase, for an event whose hold
    /// time is `hold_time`: the hold time, or the cap when extensions are on (whichever is
    /// later). What waits for the last deadline of an event (dropping its seat-lock state) waits
    /// this long.
    pub fn longest_hold(&self, hold_time: TimeDelta) -> TimeDelta {
        if self.max_extensions == 0 {
            return hold_time;
        }
        hold_time.max(cap_span(self.max_total))
    }

    /// The deadline one more extension gives an order created at `created` whose deadline is
    /// `deadline`, for an event whose hold time is `hold_time`: `deadline + step`, cut at
    /// `created + max_total`. [`ExtensionRefusal::CapReached`] when that is no later than
    /// `deadline`, [`ExtensionRefusal::Disabled`] when the policy allows no extension. The
    /// number of extensions is the repository's to count.
    pub fn next_deadline(
        &self,
        created: DateTime<Utc>,
        deadline: DateTime<Utc>,
        hold_time: TimeDelta,
    ) -> Result<DateTime<Utc>, ExtensionRefusal> {
        if self.max_extensions == 0 {
            return Err(ExtensionRefusal::Disabled);
        }
        let step = self.step.map_or(hold_time, cap_span);
        let cap = created + cap_span(self.max_total);
        let next = (deadline + step).min(cap);
        if next <= deadline {
            return Err(ExtensionRefusal::CapReached);
        }
        Ok(next)
    }
}

/// A configured span as the domain's, at most [`MAX_HOLD_TIME`].
fn cap_span(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d)
        .unwrap_or(MAX_HOLD_TIME)
        .min(MAX_HOLD_TIME)
}

/// Why an order's deadline was not moved. Nothing changed, in the repository or the seat lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExtensionRefusal {
    /// The service's policy allows no extension.
    Disabled,
    /// The order is paid, cancelled or refunded: there is no deadline to move.
    NotPending,
    /// The deadline has passed (whether or not the sweep expired the order yet).
    Expired,
    /// The order was extended as often as the policy allows.
    LimitReached,
    /// The deadline is at the policy's total cap already.
    CapReached,
}

impl ExtensionRefusal {
    /// A stable lower-case name for logs and wire formats.
    pub fn name(self) -> &'static str {
        match self {
            ExtensionRefusal::Disabled => "disabled",
            ExtensionRefusal::NotPending => "not_pending",
            ExtensionRefusal::Expired => "expired",
            ExtensionRefusal::LimitReached => "limit_reached",
            ExtensionRefusal::CapReached => "cap_reached",
        }
    }
}

impl fmt::Display for ExtensionRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExtensionRefusal::Disabled => "hold extension is turned off",
            ExtensionRefusal::NotPending => "the order is not awaiting payment",
            ExtensionRefusal::Expired => "the payment deadline has passed",
            ExtensionRefusal::LimitReached => "the order was extended as often as allowed",
            ExtensionRefusal::CapReached => "the deadline is at the longest hold allowed",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::minutes(minutes)
    }

    #[test]
    fn a_step_is_the_hold_time_unless_given_and_the_cap_cuts_the_last_one() {
        let policy = HoldExtension::default();
        let hold = TimeDelta::minutes(10);
        assert_eq!(policy.next_deadline(at(0), at(10), hold), Ok(at(20)));
        assert_eq!(policy.next_deadline(at(0), at(25), hold), Ok(at(30)));
        assert_eq!(
            policy.next_deadline(at(0), at(30), hold),
            Err(ExtensionRefusal::CapReached)
        );
        let fixed = HoldExtension {
            step: Some(Duration::from_secs(120)),
            ..policy
        };
        assert_eq!(fixed.next_deadline(at(0), at(10), hold), Ok(at(12)));
        assert_eq!(
            HoldExtension::disabled().next_deadline(at(0), at(10), hold),
            Err(ExtensionRefusal::Disabled)
        );
    }

    #[test]
    fn a_cap_below_the_hold_time_allows_nothing() {
        let policy = HoldExtension {
            max_total: Duration::from_secs(5 * 60),
            ..HoldExtension::default()
        };
        assert_eq!(
            policy.next_deadline(at(0), at(10), TimeDelta::minutes(10)),
            Err(ExtensionRefusal::CapReached)
        );
    }
}
