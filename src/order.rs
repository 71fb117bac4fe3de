//! The order as the shop knows it: its fulfilment state ([`OrderState`]), its lines and
//! Stripe's totals, its money ([`Money`], [`MoneyState`]) and the rules by which each may move
//! ([`OrderState::rank`], [`decide`]), its history and its number. The store persists these
//! types; the behaviours above decide with them.
//!
//! [`Order`] is an order as read; [`OrderUpdate`] is what fulfilment writes (no field is filled
//! in just to write a row).

use crate::stripe::types::{Charge, Dispute, Refund, ShippingDetails};
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
    /// The owner's record of its delivery (shipping state, tracking, note), when one was
    /// written (see [`Order::shipment`]).
    pub shipment_record: Option<Shipment>,
    /// The shopper's email from the Checkout Session: personal data, for the shop's messages and
    /// the owner's order view only (never on the shopper's pages or in the CSV).
    pub customer_email: Option<String>,
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
    /// The shopper's email, when the session has one.
    pub customer_email: Option<String>,
    /// The stock reservation the session carries (`metadata[reservation]`), if any: sold when
    /// the order is fulfilled, released when it expires or its payment fails.
    pub stock: Option<StockSale>,
}

/// An order's stock reservation, as its fulfilment's transaction reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockSale {
    /// The reservation id.
    pub reservation: String,
    /// What to do when it was released before the payment completed and its units are gone.
    pub rule: crate::config::OversoldRule,
}

impl Order {
    /// The money state the shop shows: only a fulfilled (paid) order has one.
    pub fn money_state(&self) -> Option<MoneyState> {
        (self.state == OrderState::Fulfilled).then(|| self.money.state())
    }

    /// Whether nothing in it ships: no shipping details and no shipping rate in Stripe's
    /// totals (an order recorded before totals were kept counts as shippable).
    pub fn is_digital(&self) -> bool {
        self.shipping.is_none() && self.totals.as_ref().is_some_and(|t| t.shipping_rate.is_none())
    }

    /// Where its delivery stands: the owner's record, or before any, [`Shipment::initial`];
    /// `None` until it is paid.
    pub fn shipment(&self) -> Option<Shipment> {
        (self.state == OrderState::Fulfilled)
            .then(|| self.shipment_record.clone().unwrap_or_else(|| Shipment::initial(self.is_digital())))
    }
}

/// Where an order's delivery stands, beside (and apart from) its money state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShippingState {
    /// Paid, not sent yet.
    #[default]
    Unshipped,
    /// Handed to a carrier.
    Shipped,
    /// Arrived (a digital order is delivered at payment).
    Delivered,
    /// Cancelled before it shipped (what was left of the charge refunded).
    Cancelled,
}

impl ShippingState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unshipped => "unshipped",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "unshipped" => Self::Unshipped,
            "shipped" => Self::Shipped,
            "delivered" => Self::Delivered,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// An order's delivery as the owner records it: its state, the tracking details once shipped
/// and the owner's private note.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shipment {
    /// Where it stands.
    pub state: ShippingState,
    /// The carrier (once shipped).
    pub carrier: Option<String>,
    /// The carrier's tracking number (once shipped).
    pub tracking_number: Option<String>,
    /// The tracking page, https only (optional).
    pub tracking_url: Option<String>,
    /// The owner's private note.
    pub note: Option<String>,
}

impl Shipment {
    /// A paid order's delivery before the owner recorded anything: a digital order is
    /// delivered at payment, anything else unshipped.
    pub fn initial(digital: bool) -> Shipment {
        let state = if digital { ShippingState::Delivered } else { ShippingState::Unshipped };
        Shipment { state, ..Shipment::default() }
    }
}

/// A change the owner asks of an order's delivery (the shipping half of an owner action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipmentMove {
    /// Handed to a carrier, with its tracking details.
    Ship {
        /// Carrier name.
        carrier: String,
        /// Tracking number.
        tracking_number: String,
        /// Tracking page (https), optional.
        tracking_url: Option<String>,
    },
    /// Arrived.
    Deliver,
    /// Cancelled before shipping (the caller refunds what is left first).
    Cancel,
    /// Sets the private note (`None` clears it).
    Note(Option<String>),
}

/// Why a delivery cannot move as asked (answered 409 with [`IllegalMove::message`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IllegalMove {
    /// Shipping or delivering a cancelled order.
    Cancelled,
    /// Shipping a digital order (nothing ships).
    Digital,
    /// Shipping an order already shipped with another tracking number.
    ShippedOtherwise,
    /// Delivering an order that was never shipped.
    NotShipped,
    /// Cancelling an order that already shipped or was delivered.
    AlreadyShipped,
}

impl IllegalMove {
    /// What the owner is told.
    pub fn message(self) -> &'static str {
        match self {
            IllegalMove::Cancelled => "the order was cancelled; it cannot ship or be delivered",
            IllegalMove::Digital => "the order is digital: nothing ships, it was delivered at payment",
            IllegalMove::ShippedOtherwise => "the order already shipped with another tracking number",
            IllegalMove::NotShipped => "the order has not shipped yet; ship it first",
            IllegalMove::AlreadyShipped => "the order already shipped; it can no longer be cancelled",
        }
    }
}

/// The shipping rules: `unshipped` ⇒ `shipped` ⇒ `delivered`, or `unshipped` ⇒ `cancelled`; a
/// digital order never ships. Shipping again with the same tracking number, delivering a
/// delivered order, cancelling a cancelled one and setting the same note change nothing
/// (`Ok(None)`: an idempotent success); any other move is refused. On a change, the new
/// delivery and what the owner's hooks are told.
pub fn move_shipment(
    current: &Shipment,
    digital: bool,
    asked: &ShipmentMove,
) -> Result<Option<(Shipment, Vec<HookCall>)>, IllegalMove> {
    use ShippingState::*;
    let mut next = current.clone();
    let mut calls = Vec::new();
    match asked {
        ShipmentMove::Note(note) => {
            if &current.note == note {
                return Ok(None);
            }
            next.note = note.clone();
        }
        ShipmentMove::Ship { carrier, tracking_number, tracking_url } => match current.state {
            Cancelled => return Err(IllegalMove::Cancelled),
            _ if digital => return Err(IllegalMove::Digital),
            Shipped | Delivered if current.tracking_number.as_deref() != Some(tracking_number.as_str()) => {
                return Err(IllegalMove::ShippedOtherwise);
            }
            Shipped | Delivered => return Ok(None),
            Unshipped => {
                next.state = Shipped;
                next.carrier = Some(carrier.clone());
                next.tracking_number = Some(tracking_number.clone());
                next.tracking_url = tracking_url.clone();
                calls.push(HookCall::Shipped {
                    carrier: carrier.clone(),
                    tracking_number: tracking_number.clone(),
                    tracking_url: tracking_url.clone(),
                });
            }
        },
        ShipmentMove::Deliver => match current.state {
            Cancelled => return Err(IllegalMove::Cancelled),
            Unshipped => return Err(IllegalMove::NotShipped),
            Delivered => return Ok(None),
            Shipped => next.state = Delivered,
        },
        ShipmentMove::Cancel => match current.state {
            Cancelled => return Ok(None),
            Shipped | Delivered if digital => return Err(IllegalMove::Digital),
            Shipped | Delivered => return Err(IllegalMove::AlreadyShipped),
            Unshipped => {
                next.state = Cancelled;
                calls.push(HookCall::Cancelled);
            }
        },
    }
    Ok(Some((next, calls)))
}

/// One owner action in an order's history (see `routes::order_action`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionEntry {
    /// When it was done (Unix seconds).
    pub at: i64,
    /// `refund`, `ship`, `deliver`, `cancel` or `note`.
    pub action: String,
    /// Its fields (amounts, reason, refund id, tracking, note) as recorded.
    pub details: serde_json::Value,
    /// The owner's idempotency key.
    pub idempotency_key: String,
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
}

/// One refund of an order's charge, as Stripe has it (and as the store keeps it: one row per
/// refund). Its status only moves forward ([`RefundRef::rank`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRef {
    /// `re_...`.
    pub id: String,
    /// Refunded amount, minor units.
    pub amount: i64,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    /// Stripe's `reason` (`duplicate`, `fraudulent`, `requested_by_customer`, ...), if any.
    pub reason: Option<String>,
    /// Unix time it was created.
    pub created: i64,
}

impl RefundRef {
    /// The order of statuses: `pending`/`requires_action` ⇒ `succeeded` ⇒ `failed`/`canceled`,
    /// never back (an unknown status ranks lowest, so it never overrides a known one).
    pub fn rank(&self) -> i64 {
        match self.status.as_str() {
            "pending" | "requires_action" => 1,
            "succeeded" => 2,
            "failed" | "canceled" => 3,
            _ => 0,
        }
    }

    /// Whether its money is out of the shop (as Stripe counts `amount_refunded`: pending and
    /// succeeded refunds, not failed or canceled ones).
    pub fn counts(&self) -> bool {
        matches!(self.status.as_str(), "pending" | "requires_action" | "succeeded")
    }
}

/// One dispute (or inquiry) on an order's charge; its status only moves forward
/// ([`DisputeRef::rank`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeRef {
    /// `du_...`.
    pub id: String,
    /// Stripe's dispute status.
    pub status: String,
    /// Disputed amount, minor units.
    pub amount: i64,
    /// Unix time it was opened (0 when not known).
    pub created: i64,
}

impl DisputeRef {
    /// Whether the dispute is still open (closed: `won`, `lost`, `warning_closed`, `prevented`).
    pub fn is_open(&self) -> bool {
        !matches!(self.status.as_str(), "won" | "lost" | "warning_closed" | "prevented")
    }

    /// Whether it is an inquiry (`warning_*`), not yet a chargeback.
    pub fn is_inquiry(&self) -> bool {
        self.status.starts_with("warning_")
    }

    /// The order of statuses: an inquiry (`warning_needs_response` ⇒ `warning_under_review`)
    /// may escalate to a chargeback (`needs_response` ⇒ `under_review`), and every dispute
    /// ends closed; never back.
    pub fn rank(&self) -> i64 {
        match self.status.as_str() {
            "warning_needs_response" => 1,
            "warning_under_review" => 2,
            "needs_response" => 3,
            "under_review" => 4,
            "won" | "lost" | "warning_closed" | "prevented" => 5,
            _ => 0,
        }
    }
}

/// An order's money as shown: what was refunded and the latest dispute (derived from
/// [`MoneyFacts`], never nudged by an event).
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
    /// The state this money is in: an open or lost dispute wins over refunds; a dispute won
    /// leaves `dispute_won` unless money was refunded after all (the refund state shows, the
    /// dispute's status beside it); an inquiry closed as `warning_closed` (or a `prevented`
    /// dispute) leaves the refund state.
    pub fn state(&self) -> MoneyState {
        let refunded = match self.amount_refunded {
            0 => None,
            r if r >= self.amount => Some(MoneyState::Refunded),
            _ => Some(MoneyState::PartiallyRefunded),
        };
        match self.dispute.as_ref() {
            Some(d) if d.is_open() => MoneyState::Disputed,
            Some(d) if d.status == "lost" => MoneyState::DisputeLost,
            Some(d) if d.status == "won" => refunded.unwrap_or(MoneyState::DisputeWon),
            _ => refunded.unwrap_or(MoneyState::Paid),
        }
    }
}

/// What the shop knows of an order's charge: its amount and one record per refund and per
/// dispute. The shown [`Money`] is derived from these ([`MoneyFacts::money`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MoneyFacts {
    /// Amount charged, minor units (0 when unknown).
    pub amount: i64,
    /// Every refund of the charge.
    pub refunds: Vec<RefundRef>,
    /// Every dispute of the charge.
    pub disputes: Vec<DisputeRef>,
    /// The money as a store recorded it before it kept a row per refund and per dispute, for an
    /// order with no rows yet whose money had moved: the baseline its first change starts from
    /// (so what the owner was told then is not told again). `None` otherwise.
    pub recorded_before_rows: Option<Money>,
}

impl MoneyFacts {
    /// The money these facts make: refunded = the refunds that count; the latest dispute. An
    /// order recorded before refund and dispute rows were kept, with none yet, shows what was
    /// recorded then.
    pub fn money(&self) -> Money {
        if let Some(before) = self.legacy() {
            return before.clone();
        }
        let latest = self.disputes.iter().max_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Money {
            amount_refunded: self.refunds.iter().filter(|r| r.counts()).map(|r| r.amount).sum(),
            amount: self.amount,
            dispute: latest.cloned(),
        }
    }
}

impl MoneyFacts {
    /// The pre-rows baseline, when it applies (no rows yet, and money had moved).
    fn legacy(&self) -> Option<&Money> {
        self.recorded_before_rows.as_ref().filter(|_| self.refunds.is_empty() && self.disputes.is_empty())
    }
}

/// The facts of a charge as Stripe returns them now: the charge, its refunds, its disputes.
pub fn derive(charge: &Charge, refunds: &[Refund], disputes: &[Dispute]) -> MoneyFacts {
    MoneyFacts {
        amount: charge.amount,
        refunds: refunds
            .iter()
            .map(|r| RefundRef {
                id: r.id.clone(),
                amount: r.amount,
                status: r.status.clone().unwrap_or_default(),
                reason: r.reason.clone(),
                created: r.created,
            })
            .collect(),
        disputes: disputes
            .iter()
            .map(|d| DisputeRef { id: d.id.clone(), status: d.status.clone(), amount: d.amount, created: d.created })
            .collect(),
        recorded_before_rows: None,
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
    /// The refunds whose record changed (new, or a status moved forward): to write.
    pub refunds: Vec<RefundRef>,
    /// The disputes whose record changed: to write.
    pub disputes: Vec<DisputeRef>,
    /// What the owner's hooks are told (empty: nothing for them).
    pub calls: Vec<HookCall>,
}

/// Merges records by id: a record Stripe shows now moves forward (by `rank`), never back; a
/// record a stale read lacks is kept. Returns the merged list and the records that changed,
/// each with its status before (`None`: new).
fn merge<T: Clone + PartialEq>(
    old: &[T],
    fresh: &[T],
    id: impl Fn(&T) -> &str,
    rank: impl Fn(&T) -> i64,
) -> (Vec<T>, Vec<(Option<T>, T)>) {
    let mut merged = old.to_vec();
    let mut changed = Vec::new();
    for f in fresh {
        match merged.iter_mut().find(|m| id(m) == id(f)) {
            Some(m) if rank(f) > rank(m) => {
                changed.push((Some(m.clone()), f.clone()));
                *m = f.clone();
            }
            Some(_) => {}
            None => {
                changed.push((None, f.clone()));
                merged.push(f.clone());
            }
        }
    }
    (merged, changed)
}

/// What moving from `old` to `fresh` changes, if anything. Money only moves the ways Stripe's
/// objects can: each refund's and each dispute's status only forward (a stale read cannot undo
/// a refund or reopen a dispute), the refunded amount is the sum of the refunds that count.
/// The owner's hooks are told once per fact: a refund that succeeded, a refund that failed or
/// was canceled, a dispute opened, an inquiry escalated to a chargeback, a dispute closed.
pub fn decide(old: &MoneyFacts, fresh: &MoneyFacts) -> Option<(MoneyFacts, Change)> {
    let (refunds, moved_refunds) = merge(&old.refunds, &fresh.refunds, |r| &r.id, RefundRef::rank);
    let (disputes, moved_disputes) = merge(&old.disputes, &fresh.disputes, |d| &d.id, DisputeRef::rank);
    let amount = if fresh.amount != 0 { fresh.amount } else { old.amount };
    if moved_refunds.is_empty() && moved_disputes.is_empty() {
        // Nothing Stripe says moved (a learned charge amount alone is no change to tell).
        return None;
    }
    let legacy = old.legacy().cloned();
    let new = MoneyFacts { amount, refunds, disputes, recorded_before_rows: None };
    let (before, after) = (old.money(), new.money());
    let mut calls = Vec::new();
    if let Some(told) = &legacy {
        // The first rows of an order recorded before rows were kept: tell only what moved past
        // what the owner was told then (the old rule: the refunded amount's change).
        let delta = after.amount_refunded - told.amount_refunded;
        if delta > 0 {
            calls.push(HookCall::Refunded { amount: delta, amount_refunded: after.amount_refunded });
        } else if delta < 0 {
            let status = "failed".to_string();
            calls.push(HookCall::RefundFailed { amount: -delta, status, amount_refunded: after.amount_refunded });
        }
    } else {
        for (was, r) in &moved_refunds {
            let was_rank = was.as_ref().map_or(0, RefundRef::rank);
            if r.status == "succeeded" {
                calls.push(HookCall::Refunded { amount: r.amount, amount_refunded: after.amount_refunded });
            } else if r.rank() == 3 && was_rank < 3 {
                calls.push(HookCall::RefundFailed {
                    amount: r.amount,
                    status: r.status.clone(),
                    amount_refunded: after.amount_refunded,
                });
            }
        }
    }
    for (was, d) in &moved_disputes {
        // A pre-rows order's recorded dispute is what the owner was told of it.
        let told = legacy.as_ref().and_then(|m| m.dispute.clone()).filter(|t| t.id == d.id);
        let was = was.clone().or(told);
        if was.as_ref().is_some_and(|w| w.status == d.status) {
            continue;
        }
        let (status, amount) = (d.status.clone(), d.amount);
        match &was {
            _ if !d.is_open() => calls.push(HookCall::DisputeClosed { status, amount }),
            None => calls.push(HookCall::DisputeOpened { status, amount }),
            Some(w) if w.is_inquiry() && !d.is_inquiry() => calls.push(HookCall::DisputeOpened { status, amount }),
            Some(_) => {}
        }
    }
    let delta = after.amount_refunded - before.amount_refunded;
    let dispute_changed = !moved_disputes.is_empty();
    let moved_refund_amount: i64 = moved_refunds.iter().map(|(_, r)| r.amount).sum();
    let change = Change {
        from: before.state(),
        to: after.state(),
        // The refunded amount's change; else what the refunds that moved are worth (a pending
        // refund that succeeded); else the dispute's amount.
        amount: if delta != 0 {
            delta
        } else if !moved_refunds.is_empty() {
            moved_refund_amount
        } else {
            after.dispute.as_ref().map_or(0, |d| d.amount)
        },
        dispute_status: after.dispute.as_ref().filter(|_| dispute_changed).map(|d| d.status.clone()),
        refunds: moved_refunds.into_iter().map(|(_, r)| r).collect(),
        disputes: moved_disputes.into_iter().map(|(_, d)| d).collect(),
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
    /// `on_refund_failed`: a refund failed or was canceled, its money came back.
    RefundFailed {
        /// The refund's amount.
        amount: i64,
        /// `failed` or `canceled`.
        status: String,
        /// Refunded in all, after it.
        amount_refunded: i64,
    },
    /// `on_dispute`, opened (or an inquiry escalated to a chargeback).
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
    /// `on_shipped`: the owner handed the order to a carrier.
    Shipped {
        /// Carrier name.
        carrier: String,
        /// Tracking number.
        tracking_number: String,
        /// Tracking page, if given.
        tracking_url: Option<String>,
    },
    /// `on_cancelled`: the owner cancelled the order (what was left is refunded).
    Cancelled,
    /// `on_oversold`: the order was paid after its stock reservation was released and its
    /// units were gone (`STOCK_OVERSOLD`).
    Oversold {
        /// Whether the rule refunds it (else it is fulfilled anyway).
        refunded: bool,
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

    fn refund(id: &str, amount: i64, status: &str) -> RefundRef {
        RefundRef { id: id.into(), amount, status: status.into(), reason: None, created: 1 }
    }

    fn dispute(id: &str, status: &str, created: i64) -> DisputeRef {
        DisputeRef { id: id.into(), amount: 2500, status: status.into(), created }
    }

    fn facts(refunds: &[RefundRef], disputes: &[DisputeRef]) -> MoneyFacts {
        MoneyFacts { amount: 2500, refunds: refunds.to_vec(), disputes: disputes.to_vec(), recorded_before_rows: None }
    }

    #[test]
    fn an_order_recorded_before_rows_were_kept_is_not_told_again() {
        // 500 refunded and a dispute won, told under the old rule; no rows yet.
        let told = Money {
            amount_refunded: 500,
            amount: 2500,
            dispute: Some(DisputeRef { id: "du_1".into(), status: "won".into(), amount: 2500, created: 0 }),
        };
        let old = MoneyFacts { amount: 2500, recorded_before_rows: Some(told), ..MoneyFacts::default() };
        assert_eq!(old.money().amount_refunded, 500);
        // A second refund arrives: Stripe lists both, and the won dispute.
        let fresh =
            facts(&[refund("re_1", 500, "succeeded"), refund("re_2", 300, "succeeded")], &[dispute("du_1", "won", 1)]);
        let (new, c) = decide(&old, &fresh).unwrap();
        assert_eq!(c.calls, vec![HookCall::Refunded { amount: 300, amount_refunded: 800 }], "only the new 300");
        assert_eq!((c.from, c.to, c.amount), (MoneyState::PartiallyRefunded, MoneyState::PartiallyRefunded, 300));
        assert_eq!(decide(&new, &fresh), None);
    }

    #[test]
    fn states_follow_the_refunds_and_the_latest_dispute() {
        let state = |r: &[RefundRef], d: &[DisputeRef]| facts(r, d).money().state();
        assert_eq!(state(&[], &[]), MoneyState::Paid);
        assert_eq!(state(&[refund("re_1", 100, "succeeded")], &[]), MoneyState::PartiallyRefunded);
        assert_eq!(state(&[refund("re_1", 100, "pending")], &[]), MoneyState::PartiallyRefunded);
        assert_eq!(state(&[refund("re_1", 100, "failed")], &[]), MoneyState::Paid);
        assert_eq!(state(&[refund("re_1", 2500, "succeeded")], &[]), MoneyState::Refunded);
        assert_eq!(state(&[], &[dispute("du_1", "needs_response", 1)]), MoneyState::Disputed);
        assert_eq!(state(&[], &[dispute("du_1", "warning_under_review", 1)]), MoneyState::Disputed);
        assert_eq!(state(&[], &[dispute("du_1", "won", 1)]), MoneyState::DisputeWon);
        assert_eq!(state(&[], &[dispute("du_1", "lost", 1)]), MoneyState::DisputeLost);
        // A refund after a won dispute shows: the refund state, the dispute beside it.
        let won_then_refunded = facts(&[refund("re_1", 2500, "succeeded")], &[dispute("du_1", "won", 1)]);
        assert_eq!(won_then_refunded.money().state(), MoneyState::Refunded);
        assert_eq!(won_then_refunded.money().dispute.map(|d| d.status), Some("won".into()));
        // An inquiry closed without a dispute returns to normal (and keeps the refund state).
        assert_eq!(
            state(&[refund("re_1", 100, "succeeded")], &[dispute("du_1", "warning_closed", 1)]),
            MoneyState::PartiallyRefunded
        );
        // The latest dispute counts, whatever order the list has.
        assert_eq!(
            state(&[], &[dispute("du_2", "needs_response", 2), dispute("du_1", "won", 1)]),
            MoneyState::Disputed
        );
    }

    #[test]
    fn each_refund_is_told_once_when_it_succeeds_and_once_when_it_fails() {
        let paid = facts(&[], &[]);
        let (pending, c) = decide(&paid, &facts(&[refund("re_1", 1000, "pending")], &[])).unwrap();
        assert_eq!((c.amount, c.to), (1000, MoneyState::PartiallyRefunded));
        assert!(c.calls.is_empty(), "a pending refund is not told yet");
        let (done, c) = decide(&pending, &facts(&[refund("re_1", 1000, "succeeded")], &[])).unwrap();
        assert_eq!(c.calls, vec![HookCall::Refunded { amount: 1000, amount_refunded: 1000 }]);
        assert_eq!(c.amount, 1000, "the history says what the refund that moved is worth");
        // The same facts again are no change: no history, no hook.
        assert_eq!(decide(&done, &done), None);
        // A stale read (before the refund existed, or still pending) changes nothing.
        assert_eq!(decide(&done, &paid), None);
        assert_eq!(decide(&done, &pending), None);
        let (failed, c) = decide(&done, &facts(&[refund("re_1", 1000, "failed")], &[])).unwrap();
        assert_eq!(c.calls, vec![HookCall::RefundFailed { amount: 1000, status: "failed".into(), amount_refunded: 0 }]);
        assert_eq!((c.amount, failed.money().amount_refunded), (-1000, 0));
        // ...and never comes back.
        assert_eq!(decide(&failed, &facts(&[refund("re_1", 1000, "succeeded")], &[])), None);
    }

    #[test]
    fn a_stale_read_of_one_refund_never_rolls_back_another() {
        // R1 (1000) recorded; R2 (500) recorded; a slow handler's read shows only R1.
        let both = facts(&[refund("re_1", 1000, "succeeded"), refund("re_2", 500, "succeeded")], &[]);
        let stale = facts(&[refund("re_1", 1000, "succeeded")], &[]);
        assert_eq!(decide(&both, &stale), None);
        assert_eq!(both.money().amount_refunded, 1500);
    }

    #[test]
    fn disputes_open_escalate_and_close_and_a_closed_dispute_never_reopens() {
        let paid = facts(&[], &[]);
        let (inquiry, c) = decide(&paid, &facts(&[], &[dispute("du_1", "warning_needs_response", 1)])).unwrap();
        assert_eq!(c.to, MoneyState::Disputed);
        assert_eq!(c.calls, vec![HookCall::DisputeOpened { status: "warning_needs_response".into(), amount: 2500 }]);
        // The inquiry escalates to a chargeback: told again.
        let (open, c) = decide(&inquiry, &facts(&[], &[dispute("du_1", "needs_response", 1)])).unwrap();
        assert_eq!(c.calls, vec![HookCall::DisputeOpened { status: "needs_response".into(), amount: 2500 }]);
        // A status change while open is recorded but calls no hook.
        let (review, c) = decide(&open, &facts(&[], &[dispute("du_1", "under_review", 1)])).unwrap();
        assert!(c.calls.is_empty());
        assert_eq!(c.dispute_status.as_deref(), Some("under_review"));
        // A stale read of the inquiry changes nothing (it would otherwise escalate twice).
        assert_eq!(decide(&review, &inquiry), None);
        let (lost, c) = decide(&review, &facts(&[], &[dispute("du_1", "lost", 1)])).unwrap();
        assert_eq!(c.calls, vec![HookCall::DisputeClosed { status: "lost".into(), amount: 2500 }]);
        assert_eq!(lost.money().state(), MoneyState::DisputeLost);
        assert_eq!(decide(&lost, &facts(&[], &[dispute("du_1", "needs_response", 1)])), None);
        // Closed before its `created` was seen: straight to the outcome, one hook call.
        let (_, c) = decide(&paid, &facts(&[], &[dispute("du_1", "won", 1)])).unwrap();
        assert_eq!((c.to, c.calls.len()), (MoneyState::DisputeWon, 1));
    }

    fn shipped(number: &str) -> Shipment {
        Shipment {
            state: ShippingState::Shipped,
            carrier: Some("UPS".into()),
            tracking_number: Some(number.into()),
            ..Shipment::default()
        }
    }

    fn ship(number: &str) -> ShipmentMove {
        ShipmentMove::Ship { carrier: "UPS".into(), tracking_number: number.into(), tracking_url: None }
    }

    #[test]
    fn shipping_moves_forward_and_repeats_are_idempotent() {
        let unshipped = Shipment::initial(false);
        let (s, calls) = move_shipment(&unshipped, false, &ship("1Z")).unwrap().unwrap();
        assert_eq!(s, shipped("1Z"));
        assert!(matches!(calls.as_slice(), [HookCall::Shipped { .. }]));
        assert_eq!(move_shipment(&s, false, &ship("1Z")), Ok(None), "the same number again changes nothing");
        assert_eq!(move_shipment(&s, false, &ship("2Z")), Err(IllegalMove::ShippedOtherwise));
        let (d, calls) = move_shipment(&s, false, &ShipmentMove::Deliver).unwrap().unwrap();
        assert_eq!((d.state, calls.len()), (ShippingState::Delivered, 0));
        assert_eq!(d.tracking_number.as_deref(), Some("1Z"), "delivery keeps the tracking");
        assert_eq!(move_shipment(&d, false, &ShipmentMove::Deliver), Ok(None));
        assert_eq!(move_shipment(&d, false, &ship("1Z")), Ok(None));
        assert_eq!(move_shipment(&d, false, &ShipmentMove::Cancel), Err(IllegalMove::AlreadyShipped));
        assert_eq!(move_shipment(&s, false, &ShipmentMove::Cancel), Err(IllegalMove::AlreadyShipped));
        assert_eq!(move_shipment(&unshipped, false, &ShipmentMove::Deliver), Err(IllegalMove::NotShipped));
    }

    #[test]
    fn a_cancelled_order_never_ships_and_a_digital_one_is_delivered_at_payment() {
        let (c, calls) = move_shipment(&Shipment::initial(false), false, &ShipmentMove::Cancel).unwrap().unwrap();
        assert_eq!((c.state, calls), (ShippingState::Cancelled, vec![HookCall::Cancelled]));
        assert_eq!(move_shipment(&c, false, &ShipmentMove::Cancel), Ok(None));
        assert_eq!(move_shipment(&c, false, &ship("1Z")), Err(IllegalMove::Cancelled));
        assert_eq!(move_shipment(&c, false, &ShipmentMove::Deliver), Err(IllegalMove::Cancelled));
        let digital = Shipment::initial(true);
        assert_eq!(digital.state, ShippingState::Delivered);
        assert_eq!(move_shipment(&digital, true, &ship("1Z")), Err(IllegalMove::Digital));
        assert_eq!(move_shipment(&digital, true, &ShipmentMove::Cancel), Err(IllegalMove::Digital));
        assert_eq!(move_shipment(&digital, true, &ShipmentMove::Deliver), Ok(None));
    }

    #[test]
    fn notes_change_only_the_note() {
        let s = shipped("1Z");
        let (n, calls) = move_shipment(&s, false, &ShipmentMove::Note(Some("gift".into()))).unwrap().unwrap();
        assert_eq!((n.state, n.note.as_deref(), calls.len()), (ShippingState::Shipped, Some("gift"), 0));
        assert_eq!(move_shipment(&n, false, &ShipmentMove::Note(Some("gift".into()))), Ok(None));
        let (cleared, _) = move_shipment(&n, false, &ShipmentMove::Note(None)).unwrap().unwrap();
        assert_eq!(cleared.note, None);
    }
}
