//! The owner's actions on an order (`POST /api/order-action`): refund, ship, deliver, cancel,
//! note. Each is done once per idempotency key the owner's client makes ([`claim`]: the key is
//! claimed in the store before acting; a concurrent duplicate waits for the first answer), and
//! each appends to the order's history ([`crate::store::Store::apply_action`]).
//!
//! Money still moves only the ways Stripe's objects say: a refund is `POST /v1/refunds`, and
//! the refund Stripe answers is recorded through the same path as a refund event
//! ([`crate::order::decide`] in [`crate::store::Store::apply_money`], under the event id
//! `order-action:KEY:refund`), so a refund made here and one made in the Dashboard end alike
//! and each reaches `on_refunded` once. The delivery ([`crate::order::ShippingState`]) moves by
//! [`crate::order::move_shipment`]'s rules; `on_shipped` and `on_cancelled` run through claimed
//! runs (`order-action:KEY`), as every hook does.

use crate::app::App;
use crate::hooks::{self, Run};
use crate::order::{IllegalMove, MoneyFacts, Order, OrderState, RefundRef, ShipmentMove};
use crate::store::{ActionApplied, ActionRecord, Applied, EventRef, KeyClaim, OrderLog, RunKey, StoreError, Via};
use crate::stripe::types::Refund;
use crate::stripe::{Form, StripeError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::{Duration, Instant};

/// How long a duplicate request waits for the first one's answer before it is told the action
/// is in progress.
pub const KEY_WAIT: Duration = Duration::from_secs(5);
/// How long a claimed key is left to its request before another may take it over (longer
/// than a function may live).
pub const KEY_LEASE_SECS: i64 = 60;

/// Stripe's refund reasons an owner may give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// Charged twice.
    Duplicate,
    /// A fraudulent payment.
    Fraudulent,
    /// The shopper asked.
    RequestedByCustomer,
}

impl RefundReason {
    /// Stripe's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundReason::Duplicate => "duplicate",
            RefundReason::Fraudulent => "fraudulent",
            RefundReason::RequestedByCustomer => "requested_by_customer",
        }
    }
}

/// One owner action, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Refund `amount` (minor units; `None`: all that is left) for `reason`.
    Refund {
        /// At most what is still refundable.
        amount: Option<i64>,
        /// Stripe's reason, if given.
        reason: Option<RefundReason>,
    },
    /// A change of the delivery (ship, deliver, note) that moves no money.
    Shipment(ShipmentMove),
    /// Refund what is left, then mark the order cancelled (a paid, unshipped order).
    Cancel,
}

impl Action {
    /// `refund`, `ship`, `deliver`, `cancel` or `note`.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Refund { .. } => "refund",
            Action::Cancel => "cancel",
            Action::Shipment(ShipmentMove::Ship { .. }) => "ship",
            Action::Shipment(ShipmentMove::Deliver) => "deliver",
            Action::Shipment(ShipmentMove::Cancel) => "cancel",
            Action::Shipment(ShipmentMove::Note(_)) => "note",
        }
    }
}

/// Why an action was not done. The first ones are refusals (4xx, the owner is told why); the
/// rest are failures (5xx, the key is let go so a retry acts again).
#[derive(Debug)]
pub enum ActionError {
    /// No order has this number.
    NoSuchOrder,
    /// The order is not paid.
    Unpaid,
    /// The charge has an open dispute.
    Disputed,
    /// Nothing is left to refund.
    NothingToRefund,
    /// More than is still refundable (what is).
    OverRefund(i64),
    /// Stripe refused the refund (its text is logged, never answered).
    RefundRefused,
    /// The delivery cannot move as asked.
    Illegal(IllegalMove),
    /// Stripe failed or could not be reached.
    Stripe(Box<StripeError>),
    /// The store failed.
    Store(StoreError),
    /// A hook run this action claimed is not finished.
    HookRunUnsettled(Run),
}

impl std::fmt::Display for ActionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionError::Stripe(e) => write!(f, "order action: {e}"),
            ActionError::Store(e) => write!(f, "order action: store: {e}"),
            e => write!(f, "order action: {e:?}"),
        }
    }
}

impl From<StoreError> for ActionError {
    fn from(e: StoreError) -> Self {
        ActionError::Store(e)
    }
}

/// What an action did: the order as it stands now, its history, and the refund it made.
#[derive(Debug, Clone)]
pub struct Acted {
    /// The order, read after the action.
    pub order: Order,
    /// Its history and actions.
    pub log: OrderLog,
    /// The refund made (refund, cancel), as Stripe answered it.
    pub refund: Option<RefundRef>,
}

/// The hash of a request's canonical form, kept with its key (another request with the same
/// key is refused).
pub fn request_hash(canonical: &str) -> String {
    crate::http::sha256_hex(canonical.as_bytes())
}

/// Claims `key` for the request hashing to `hash`; while another call holds it, waits up to
/// [`KEY_WAIT`] for its answer ([`KeyClaim::InProgress`] if none comes).
pub async fn claim(app: &App, key: &str, hash: &str) -> Result<KeyClaim, StoreError> {
    let deadline = Instant::now() + KEY_WAIT;
    let mut pause = Duration::from_millis(20);
    loop {
        match app.store.claim_action_key(key, hash, KEY_LEASE_SECS).await? {
            KeyClaim::InProgress if Instant::now() < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            claim => return Ok(claim),
        }
    }
}

/// The order an order number (or a Checkout Session id, for an order not paid yet) names.
pub async fn find(app: &App, order: &str) -> Result<Option<Order>, StoreError> {
    if crate::session::is_session_id(order) {
        return app.store.order(order).await;
    }
    match app.store.session_for_order_number(order).await? {
        Some(session_id) => app.store.order(&session_id).await,
        None => Ok(None),
    }
}

/// Does `action` on `order` for the key `key` (held by this call, see [`claim`]).
pub async fn act(app: &App, order: &Order, key: &str, action: &Action) -> Result<Acted, ActionError> {
    if order.state != OrderState::Fulfilled {
        return Err(ActionError::Unpaid);
    }
    let digital = order.is_digital();
    let (refund, details, shipment) = match action {
        Action::Refund { amount, reason } => {
            let refund = refund(app, order, key, *amount, *reason).await?;
            let details = json!({
                "amount": refund.as_ref().map(|r| r.amount).or(*amount),
                "reason": reason.map(RefundReason::as_str),
                "refund_id": refund.as_ref().map(|r| r.id.as_str()),
                "status": refund.as_ref().map(|r| r.status.as_str()),
            });
            (refund, details, None)
        }
        Action::Shipment(asked) => {
            let details = match asked {
                ShipmentMove::Ship { carrier, tracking_number, tracking_url } => {
                    json!({"carrier": carrier, "tracking_number": tracking_number, "tracking_url": tracking_url})
                }
                ShipmentMove::Note(text) => json!({"text": text}),
                ShipmentMove::Deliver | ShipmentMove::Cancel => json!({}),
            };
            (None, details, Some((digital, asked.clone())))
        }
        Action::Cancel => {
            // The rules first: a cancel that cannot happen refunds nothing.
            let current = order.shipment().unwrap_or_default();
            let fresh = crate::order::move_shipment(&current, digital, &ShipmentMove::Cancel)
                .map_err(ActionError::Illegal)?
                .is_some();
            let left = app.store.money_facts(&order.session_id).await?;
            let refund = if fresh && refundable(&left, order) > 0 {
                refund(app, order, key, None, Some(RefundReason::RequestedByCustomer)).await?
            } else {
                None
            };
            let details = json!({
                "refunded": refund.as_ref().map_or(0, |r| r.amount),
                "refund_id": refund.as_ref().map(|r| r.id.as_str()),
            });
            (refund, details, Some((digital, ShipmentMove::Cancel)))
        }
    };
    let run_id = format!("order-action:{key}");
    let record = ActionRecord {
        session_id: &order.session_id,
        idempotency_key: key,
        action: action.name(),
        details,
        shipment,
        run_id: &run_id,
    };
    let run = match app.store.apply_action(&record).await? {
        ActionApplied::Illegal(illegal) => return Err(ActionError::Illegal(illegal)),
        ActionApplied::Duplicate => hooks::resume(app, RunKey::Event(&run_id), hooks::HELD_WAIT).await,
        ActionApplied::Recorded(calls) if !calls.is_empty() => {
            hooks::run_claimed(app, RunKey::Event(&run_id), &order.session_id, &calls).await
        }
        ActionApplied::Recorded(_) | ActionApplied::Unchanged => Run::Done,
    };
    if !run.settled() {
        return Err(ActionError::HookRunUnsettled(run));
    }
    let order = app.store.order(&order.session_id).await?.ok_or(ActionError::NoSuchOrder)?;
    let log = app.store.histories(&[order.session_id.as_str()]).await?.remove(&order.session_id).unwrap_or_default();
    Ok(Acted { order, log, refund })
}

/// What is still refundable: charged − refunded (pending and succeeded refunds count).
fn refundable(facts: &MoneyFacts, order: &Order) -> i64 {
    let charged = if facts.amount != 0 { facts.amount } else { order.amount_total.unwrap_or(0) };
    charged - facts.money().amount_refunded
}

/// The Stripe `Idempotency-Key` of an action's refund: the same action (order and key)
/// always sends the same one, so Stripe refunds once however often it is retried.
pub fn stripe_key(order_number: &str, key: &str) -> String {
    format!("order-action-{}", crate::http::sha256_hex(format!("{order_number}\n{key}").as_bytes()))
}

/// Refunds `amount` (default: what is left) of the order's charge and records the refund
/// Stripe answers as a refund event would. `None` when an earlier attempt under this key
/// already recorded its refund.
async fn refund(
    app: &App,
    order: &Order,
    key: &str,
    amount: Option<i64>,
    reason: Option<RefundReason>,
) -> Result<Option<RefundRef>, ActionError> {
    let event_id = format!("order-action:{key}:refund");
    let event = EventRef { id: &event_id, kind: "order_action.refund", via: Via::Owner, source: &app.source };
    if app.store.event_seen(&event_id).await? {
        // A retry after the refund was made and recorded: its hooks may still be owed.
        let run = hooks::resume(app, RunKey::Event(&event_id), hooks::HELD_WAIT).await;
        return if run.settled() { Ok(None) } else { Err(ActionError::HookRunUnsettled(run)) };
    }
    let pi = order.payment_intent.as_deref().ok_or(ActionError::Unpaid)?;
    let facts = app.store.money_facts(&order.session_id).await?;
    if facts.money().dispute.as_ref().is_some_and(|d| d.is_open()) {
        return Err(ActionError::Disputed);
    }
    let left = refundable(&facts, order);
    if left <= 0 {
        return Err(ActionError::NothingToRefund);
    }
    let amount = amount.unwrap_or(left);
    if amount > left {
        return Err(ActionError::OverRefund(left));
    }
    let number = order.number.as_deref().unwrap_or(&order.session_id);
    let mut form = Form::new();
    form.push("payment_intent", pi);
    form.push("amount", amount.to_string());
    if let Some(r) = reason {
        form.push("reason", r.as_str());
    }
    form.push("metadata[order_number]", number);
    form.push("metadata[idempotency_key]", key);
    let made: Refund = match app.stripe.post("/v1/refunds", &form, &stripe_key(number, key)).await {
        Ok(r) => r,
        Err(e) => {
            let refused = matches!(&e, StripeError::Api { status: 400..=499, .. }) && !e.is_not_found();
            crate::log::warn("refund refused", &[("session_id", &order.session_id), ("error", &e.to_string())]);
            return Err(match &e {
                StripeError::Api { code: Some(code), .. } if code == "charge_disputed" => ActionError::Disputed,
                StripeError::Api { code: Some(code), .. } if code == "charge_already_refunded" => {
                    ActionError::NothingToRefund
                }
                _ if refused => ActionError::RefundRefused,
                _ => ActionError::Stripe(Box::new(e)),
            });
        }
    };
    let made = RefundRef {
        id: made.id,
        amount: made.amount,
        status: made.status.unwrap_or_else(|| "pending".into()),
        reason: made.reason,
        created: made.created,
    };
    let fresh = MoneyFacts { refunds: vec![made.clone()], ..MoneyFacts::default() };
    let run = match app.store.apply_money(&order.session_id, pi, &fresh, event).await? {
        Applied::DuplicateEvent => hooks::resume(app, RunKey::Event(&event_id), hooks::HELD_WAIT).await,
        Applied::Recorded(Some(change)) if !change.calls.is_empty() => {
            hooks::run_claimed(app, RunKey::Event(&event_id), &order.session_id, &change.calls).await
        }
        Applied::Recorded(_) => Run::Done,
    };
    if !run.settled() {
        return Err(ActionError::HookRunUnsettled(run));
    }
    Ok(Some(made))
}
