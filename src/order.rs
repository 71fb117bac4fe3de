//! The order as the shop knows it: its fulfilment state ([`OrderState`]), its lines and
//! Stripe's totals, its money ([`Money`], [`MoneyState`]) and the rules by which each may move
//! ([`OrderState::rank`], [`decide`]), its history and its number. The store persists these
//! types; the behaviours above decide with them.
//!
//! [`Order`] is an order as read; [`OrderUpdate`] is what fulfilment writes (no field is filled
//! in just to write a row).

use crate::stripe::types::{Charge, Dispute, ShippingDetails};
use serde::{Deserialize, Serialize};

/// Where an order stands. States only move forward (by rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Session complete, payment not yet arrived (delayed methods).
    AwaitingPayment,
    /// The delayed payment failed; nothing to ship.
    PaymentFailed,
    /// The session expired unpaid.
    Expired,
    /// Paid and fulfilled, exactly once.
    Fulfilled,
}

impl OrderState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingPayment => "awaiting_payment",
            Self::PaymentFailed => "payment_failed",
            Self::Expired => "expired",
            Self::Fulfilled => "fulfilled",
        }
    }
    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "awaiting_payment" => Self::AwaitingPayment,
            "payment_failed" => Self::PaymentFailed,
            "expired" => Self::Expired,
            "fulfilled" => Self::Fulfilled,
            _ => return None,
        })
    }
    /// Order of states: an update never moves an order to a lower rank.
    pub fn rank(self) -> i64 {
        match self {
            Self::AwaitingPayment => 1,
            Self::PaymentFailed | Self::Expired => 2,
            Self::Fulfilled => 3,
        }
    }
}

/// One purchased line as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    /// Product name.
    pub name: String,
    /// Quantity.
    pub quantity: u32,
    /// The line's amount before discounts (quantity × unit price) as Stripe computed it, minor
    /// units; absent in orders recorded before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_subtotal: Option<i64>,
}

/// An order's totals exactly as Stripe computed them (the retrieved session), so a page can
/// show every part and they add up: `amount_subtotal − amount_discount + amount_shipping +
/// amount_tax = amount_total`, or, when `tax_included`, the same without `amount_tax`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTotals {
    /// The lines before discounts.
    pub amount_subtotal: i64,
    /// Discounts.
    pub amount_discount: i64,
    /// Shipping (before tax).
    pub amount_shipping: i64,
    /// Tax.
    pub amount_tax: i64,
    /// What was charged.
    pub amount_total: i64,
    /// The tax is included in the prices (inclusive tax), not added.
    pub tax_included: bool,
    /// The chosen shipping rate's name, when the order ships.
    pub shipping_rate: Option<String>,
}

/// An order: what fulfilment learned from the session (and records), as the store has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Checkout Session id.
    pub session_id: String,
    /// Current state.
    pub state: OrderState,
    /// Stripe's `payment_status` when last updated.
    pub payment_status: String,
    /// Total, minor units.
    pub amount_total: Option<i64>,
    /// Currency.
    pub currency: Option<String>,
    /// Lines bought.
    pub items: Vec<OrderItem>,
    /// Live or test mode.
    pub livemode: bool,
    /// Fulfilment records for this session (exactly-once ⇒ 0 or 1; 0 in an order not recorded yet).
    pub fulfillments: i64,
    /// The PaymentIntent that paid for it, when recorded.
    pub payment_intent: Option<String>,
    /// Refunds and disputes (see [`crate::after_payment`]).
    pub money: Money,
    /// The short human order number (e.g. `RR-7K4P-2M`), assigned when it was fulfilled.
    pub number: Option<String>,
    /// The totals Stripe computed (absent in orders recorded before they were kept).
    pub totals: Option<OrderTotals>,
    /// Where it ships and to whom: personal data for the owner's hooks and order list only,
    /// never in what the shopper's pages are answered.
    pub shipping: Option<ShippingDetails>,
    /// When it was first recorded (Unix seconds).
    pub created_at: i64,
}

/// What fulfilment writes about an order: where it stands and what Stripe's session says. The
/// store keeps the first creation time, draws the number and keeps the money apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderUpdate {
    /// Checkout Session id.
    pub session_id: String,
    /// The state to move to (never back: see [`OrderState::rank`]).
    pub state: OrderState,
    /// Stripe's `payment_status`.
    pub payment_status: String,
    /// Total, minor units.
    pub amount_total: Option<i64>,
    /// Currency.
    pub currency: Option<String>,
    /// Lines bought.
    pub items: Vec<OrderItem>,
    /// Live or test mode.
    pub livemode: bool,
    /// The PaymentIntent that pays for it, when there is one.
    pub payment_intent: Option<String>,
    /// The totals Stripe computed.
    pub totals: Option<OrderTotals>,
    /// Where it ships and to whom.
    pub shipping: Option<ShippingDetails>,
}

impl Order {
    /// The money state the shop shows: only a fulfilled (paid) order has one.
    pub fn money_state(&self) -> Option<MoneyState> {
        (self.state == OrderState::Fulfilled).then(|| self.money.state())
    }
}

/// One entry of an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// The event that caused it.
    pub event_id: String,
    /// When it was recorded (Unix seconds).
    pub at: i64,
    /// Money state before.
    pub from: String,
    /// Money state after.
    pub to: String,
    /// Money moved, minor units.
    pub amount: i64,
    /// The dispute's status, when a dispute changed.
    pub dispute_status: Option<String>,
}

/// Where an order's money stands, beside its fulfilment state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoneyState {
    /// Paid, nothing refunded or disputed.
    Paid,
    /// Part of the charge was refunded.
    PartiallyRefunded,
    /// The whole charge was refunded.
    Refunded,
    /// A dispute (or inquiry) is open.
    Disputed,
    /// The last dispute closed in the shop's favour.
    DisputeWon,
    /// The last dispute was lost: the money went back to the cardholder.
    DisputeLost,
}

impl MoneyState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
            Self::Disputed => "disputed",
            Self::DisputeWon => "dispute_won",
            Self::DisputeLost => "dispute_lost",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "paid" => Self::Paid,
            "partially_refunded" => Self::PartiallyRefunded,
            "refunded" => Self::Refunded,
            "disputed" => Self::Disputed,
            "dispute_won" => Self::DisputeWon,
            "dispute_lost" => Self::DisputeLost,
            _ => return None,
        })
    }
}

/// The latest dispute on an order's charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeRef {
    /// `du_...`.
    pub id: String,
    /// Stripe's dispute status.
    pub status: String,
    /// Disputed amount, minor units.
    pub amount: i64,
}

impl DisputeRef {
    /// Whether the dispute is still open (closed: `won`, `lost`, `warning_closed`, `prevented`).
    pub fn is_open(&self) -> bool {
        !matches!(self.status.as_str(), "won" | "lost" | "warning_closed" | "prevented")
    }
}

/// An order's money: what was refunded and the latest dispute.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Money {
    /// Refunded so far, minor units.
    pub amount_refunded: i64,
    /// Amount charged, minor units (0 when unknown).
    pub amount: i64,
    /// The latest dispute, if the charge was ever disputed.
    pub dispute: Option<DisputeRef>,
}

impl Money {
    /// The state this money is in: an open or decided dispute wins over refunds; an inquiry
    /// closed as `warning_closed` (or a `prevented` dispute) leaves the refund state.
    pub fn state(&self) -> MoneyState {
        match self.dispute.as_ref().map(|d| d.status.as_str()) {
            Some("won") => MoneyState::DisputeWon,
            Some("lost") => MoneyState::DisputeLost,
            Some(_) if self.dispute.as_ref().is_some_and(DisputeRef::is_open) => MoneyState::Disputed,
            _ if self.amount_refunded > 0 && self.amount_refunded >= self.amount => MoneyState::Refunded,
            _ if self.amount_refunded > 0 => MoneyState::PartiallyRefunded,
            _ => MoneyState::Paid,
        }
    }
}

/// The money of a charge as Stripe returns it now, with its disputes.
pub fn derive(charge: &Charge, disputes: &[Dispute]) -> Money {
    let latest = disputes.iter().max_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    Money {
        amount_refunded: charge.amount_refunded,
        amount: charge.amount,
        dispute: latest.map(|d| DisputeRef { id: d.id.clone(), status: d.status.clone(), amount: d.amount }),
    }
}

/// One change of an order's money, for its history and the owner's hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The state before.
    pub from: MoneyState,
    /// The state after.
    pub to: MoneyState,
    /// The money moved: refunded delta (negative when a refund failed), or the disputed amount.
    pub amount: i64,
    /// The dispute status after the change, if a dispute is involved.
    pub dispute_status: Option<String>,
    /// What the owner's hooks are told (empty: nothing for them).
    pub calls: Vec<HookCall>,
}

/// What moving from `old` to `fresh` changes, if anything. Money only moves the ways it can:
/// a closed dispute never reopens (a stale read cannot undo it), and the refunded amount only
/// goes down when a refund failed (`refund_failed`: the event says so).
pub fn decide(old: &Money, fresh: &Money, refund_failed: bool) -> Option<(Money, Change)> {
    let mut new = fresh.clone();
    if fresh.amount_refunded < old.amount_refunded && !refund_failed {
        new.amount_refunded = old.amount_refunded;
    }
    if let (Some(o), Some(f)) = (&old.dispute, &fresh.dispute)
        && o.id == f.id
        && !o.is_open()
    {
        new.dispute = old.dispute.clone();
    }
    if new.amount == 0 {
        new.amount = old.amount;
    }
    if new.amount_refunded == old.amount_refunded && new.dispute == old.dispute {
        return None;
    }
    let delta = new.amount_refunded - old.amount_refunded;
    let mut calls = Vec::new();
    if delta > 0 {
        calls.push(HookCall::Refunded { amount: delta, amount_refunded: new.amount_refunded });
    }
    let was_open = old.dispute.as_ref().is_some_and(DisputeRef::is_open);
    let dispute_changed = new.dispute != old.dispute;
    match &new.dispute {
        Some(d) if d.is_open() && (!was_open || old.dispute.as_ref().is_some_and(|o| o.id != d.id)) => {
            calls.push(HookCall::DisputeOpened { status: d.status.clone(), amount: d.amount });
        }
        Some(d) if !d.is_open() && dispute_changed => {
            calls.push(HookCall::DisputeClosed { status: d.status.clone(), amount: d.amount });
        }
        _ => {}
    }
    let amount = if delta != 0 { delta } else { new.dispute.as_ref().map_or(0, |d| d.amount) };
    let change = Change {
        from: old.state(),
        to: new.state(),
        amount,
        dispute_status: new.dispute.as_ref().filter(|_| dispute_changed).map(|d| d.status.clone()),
        calls,
    };
    Some((new, change))
}

/// One after-payment hook call, as stored with its run (so a taken-over run calls the same).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "hook", rename_all = "snake_case")]
pub enum HookCall {
    /// `on_refunded`.
    Refunded {
        /// Refunded by this change.
        amount: i64,
        /// Refunded in all.
        amount_refunded: i64,
    },
    /// `on_dispute`, opened.
    DisputeOpened {
        /// Stripe's status.
        status: String,
        /// Disputed amount.
        amount: i64,
    },
    /// `on_dispute`, closed.
    DisputeClosed {
        /// The outcome.
        status: String,
        /// Disputed amount.
        amount: i64,
    },
}

/// The characters of an order number: Crockford's base 32 (no I, L, O or U to misread).
const ORDER_NUMBER_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The shop's prefix on every order number.
pub const ORDER_NUMBER_PREFIX: &str = "RR";

/// A fresh random order number, `RR-XXXX-XX` (30 random bits); the store makes it unique.
pub fn new_order_number() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("OS randomness unavailable");
    let c: Vec<char> = bytes.iter().map(|b| ORDER_NUMBER_ALPHABET[usize::from(b & 31)] as char).collect();
    format!("{ORDER_NUMBER_PREFIX}-{}{}{}{}-{}{}", c[0], c[1], c[2], c[3], c[4], c[5])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_numbers_are_short_and_readable() {
        let n = new_order_number();
        assert_eq!(n.len(), 10, "{n}");
        assert!(n.starts_with("RR-") && n.as_bytes()[7] == b'-', "{n}");
        assert!(n[3..].chars().all(|c| c == '-' || ORDER_NUMBER_ALPHABET.contains(&(c as u8))), "{n}");
    }

    fn charge(amount: i64, refunded: i64) -> Charge {
        Charge {
            id: "ch_1".into(),
            amount,
            amount_refunded: refunded,
            disputed: false,
            payment_intent: None,
            livemode: false,
        }
    }

    fn dispute(id: &str, status: &str, created: i64) -> Dispute {
        Dispute { id: id.into(), amount: 2500, status: status.into(), created }
    }

    #[test]
    fn states_follow_the_charge_and_its_latest_dispute() {
        assert_eq!(derive(&charge(2500, 0), &[]).state(), MoneyState::Paid);
        assert_eq!(derive(&charge(2500, 100), &[]).state(), MoneyState::PartiallyRefunded);
        assert_eq!(derive(&charge(2500, 2500), &[]).state(), MoneyState::Refunded);
        assert_eq!(derive(&charge(2500, 0), &[dispute("du_1", "needs_response", 1)]).state(), MoneyState::Disputed);
        assert_eq!(
            derive(&charge(2500, 0), &[dispute("du_1", "warning_under_review", 1)]).state(),
            MoneyState::Disputed
        );
        assert_eq!(derive(&charge(2500, 0), &[dispute("du_1", "won", 1)]).state(), MoneyState::DisputeWon);
        assert_eq!(derive(&charge(2500, 0), &[dispute("du_1", "lost", 1)]).state(), MoneyState::DisputeLost);
        // An inquiry closed without a dispute returns to normal (and keeps the refund state).
        assert_eq!(
            derive(&charge(2500, 100), &[dispute("du_1", "warning_closed", 1)]).state(),
            MoneyState::PartiallyRefunded
        );
        // The latest dispute counts, whatever order the list has.
        let both = [dispute("du_2", "needs_response", 2), dispute("du_1", "won", 1)];
        assert_eq!(derive(&charge(2500, 0), &both).state(), MoneyState::Disputed);
    }

    #[test]
    fn a_refund_is_one_change_with_its_delta_and_one_hook_call() {
        let old = derive(&charge(2500, 0), &[]);
        let (new, c) = decide(&old, &derive(&charge(2500, 100), &[]), false).unwrap();
        assert_eq!((c.from, c.to, c.amount), (MoneyState::Paid, MoneyState::PartiallyRefunded, 100));
        assert_eq!(c.calls, vec![HookCall::Refunded { amount: 100, amount_refunded: 100 }]);
        let (_, c) = decide(&new, &derive(&charge(2500, 2500), &[]), false).unwrap();
        assert_eq!((c.from, c.to, c.amount), (MoneyState::PartiallyRefunded, MoneyState::Refunded, 2400));
        // The same state again is no change: no history, no hook.
        assert_eq!(decide(&new, &new, false), None);
    }

    #[test]
    fn refunded_amount_only_goes_down_when_a_refund_failed() {
        let old = derive(&charge(2500, 500), &[]);
        let stale = derive(&charge(2500, 100), &[]);
        assert_eq!(decide(&old, &stale, false), None);
        let (new, c) = decide(&old, &stale, true).unwrap();
        assert_eq!((new.amount_refunded, c.amount, c.to), (100, -400, MoneyState::PartiallyRefunded));
        assert!(c.calls.is_empty());
    }

    #[test]
    fn disputes_open_then_close_and_a_closed_dispute_never_reopens() {
        let paid = derive(&charge(2500, 0), &[]);
        let (open, c) =
            decide(&paid, &derive(&charge(2500, 0), &[dispute("du_1", "needs_response", 1)]), false).unwrap();
        assert_eq!(c.to, MoneyState::Disputed);
        assert_eq!(c.calls, vec![HookCall::DisputeOpened { status: "needs_response".into(), amount: 2500 }]);
        // A status change while open is recorded but calls no hook.
        let (review, c) =
            decide(&open, &derive(&charge(2500, 0), &[dispute("du_1", "under_review", 1)]), false).unwrap();
        assert!(c.calls.is_empty());
        assert_eq!(c.dispute_status.as_deref(), Some("under_review"));
        let (lost, c) = decide(&review, &derive(&charge(2500, 0), &[dispute("du_1", "lost", 1)]), false).unwrap();
        assert_eq!(c.calls, vec![HookCall::DisputeClosed { status: "lost".into(), amount: 2500 }]);
        assert_eq!(lost.state(), MoneyState::DisputeLost);
        // A late, stale read of the open dispute changes nothing.
        assert_eq!(decide(&lost, &derive(&charge(2500, 0), &[dispute("du_1", "needs_response", 1)]), false), None);
        // Closed before its `created` was seen: straight to the outcome, one hook call.
        let (_, c) = decide(&paid, &derive(&charge(2500, 0), &[dispute("du_1", "won", 1)]), false).unwrap();
        assert_eq!((c.to, c.calls.len()), (MoneyState::DisputeWon, 1));
    }
}
