//! The shop owner's hooks — [`on_fulfilled`], [`on_refunded`], [`on_refund_failed`], [`on_dispute`],
//! [`on_shipped`], [`on_cancelled`], [`on_oversold`] — and the one
//! discipline that runs them: a run is claimed in the same transaction that changed the
//! order, the hook runs after the commit, then the run is marked done. A delivery is
//! acknowledged only once its run is done; a run whose instance died is taken over after
//! [`RUN_LEASE_SECS`] by the next delivery (or success-page visit), so every hook runs at
//! least once and should be idempotent (keyed by session id, by event id for the
//! after-payment hooks, by the action's idempotency key for the owner's actions: their runs are
//! [`RunKey::Event`] runs named `order-action:KEY`, and an owner action's refund is recorded as
//! the event `order-action:KEY:refund`).

use crate::app::App;
pub use crate::order::HookCall;
use crate::order::Order;
pub use crate::store::RunKey;
use crate::store::StoreError;
use std::time::{Duration, Instant};

/// ───────────────────────── SHOP OWNER: EDIT HERE ─────────────────────────
/// What "fulfil" means for this shop: ship, email, grant access. Runs once the order was
/// durably recorded as paid; key anything it does on `order.session_id`. The order carries its
/// number (`order.number`), Stripe's totals (`order.totals`, with the chosen shipping rate) and,
/// when it ships, `order.shipping` (name and address: personal data, so ours logs only the
/// country). Ours logs.
pub fn on_fulfilled(order: &Order) {
    let items = order.items.iter().map(|i| format!("{} x{}", i.name, i.quantity)).collect::<Vec<_>>().join(", ");
    let number = order.number.as_deref().unwrap_or("-");
    let country = order.shipping.as_ref().and_then(|s| s.address.country.as_deref()).unwrap_or("-");
    let rate = order.totals.as_ref().and_then(|t| t.shipping_rate.as_deref()).unwrap_or("-");
    crate::log::info(
        "order fulfilled",
        &[
            ("order_number", number),
            ("session_id", &order.session_id),
            ("items", &items),
            ("ship_to_country", country),
            ("shipping_rate", rate),
        ],
    );
}

/// Money went back to the shopper, once per refund, when Stripe says it `succeeded` (a pending
/// refund already counts in the order's refunded amount; the hook waits for the outcome): `refund.amount` now, `refund.amount_refunded` in all
/// (minor units of `order.currency`). Stop a shipment, revoke access. Ours logs.
pub fn on_refunded(order: &Order, refund: &Refunded) {
    crate::log::info(
        "order refunded",
        &[
            ("session_id", &order.session_id),
            ("amount", &refund.amount.to_string()),
            ("amount_refunded", &refund.amount_refunded.to_string()),
            ("money_state", order.money.state().as_str()),
        ],
    );
}

/// A refund failed or was canceled: its money came back to the shop (`refund.amount_refunded`
/// is what stays refunded). Resume a stopped shipment, or tell the shopper. Ours logs.
pub fn on_refund_failed(order: &Order, refund: &RefundFailed) {
    crate::log::info(
        "refund failed",
        &[
            ("session_id", &order.session_id),
            ("amount", &refund.amount.to_string()),
            ("status", &refund.status),
            ("amount_refunded", &refund.amount_refunded.to_string()),
        ],
    );
}

/// A dispute was opened on the order's charge (or an inquiry escalated to a chargeback), or closed with an outcome (`won`, `lost`, or
/// `warning_closed` for an inquiry). Hold the shipment, gather evidence. Ours logs.
pub fn on_dispute(order: &Order, dispute: &DisputeNotice) {
    let (what, status, amount) = match dispute {
        DisputeNotice::Opened { status, amount } => ("dispute opened", status, amount),
        DisputeNotice::Closed { status, amount } => ("dispute closed", status, amount),
    };
    crate::log::info(what, &[("session_id", &order.session_id), ("status", status), ("amount", &amount.to_string())]);
}

/// The owner marked the order shipped (`POST /api/order-action`, `ship`): tell the shopper,
/// with the tracking. Runs once per action (keyed by its idempotency key). Ours logs.
pub fn on_shipped(order: &Order, shipped: &Shipped) {
    let number = order.number.as_deref().unwrap_or("-");
    crate::log::info(
        "order shipped",
        &[("order_number", number), ("session_id", &order.session_id), ("carrier", &shipped.carrier)],
    );
}

/// The owner cancelled the order before it shipped (`POST /api/order-action`, `cancel`); what
/// was left of the charge was refunded (`order.money`). Release stock, tell the shopper. Ours
/// logs.
pub fn on_cancelled(order: &Order) {
    let number = order.number.as_deref().unwrap_or("-");
    crate::log::info("order cancelled", &[("order_number", number), ("session_id", &order.session_id)]);
}
/// The order was paid after its stock reservation was released (the session's expiry sweep
/// raced the payment) and too few units were left (`STOCK_OVERSOLD`): `refunded` says whether
/// the rule refunded it (else it is fulfilled anyway and its missing units are counted
/// oversold in the store: restock, or tell the shopper). Runs once per order. Ours logs.
pub fn on_oversold(order: &Order, refunded: bool) {
    let number = order.number.as_deref().unwrap_or("-");
    let what = if refunded { "refunded" } else { "fulfilled" };
    crate::log::warn(
        "order paid without stock",
        &[("order_number", number), ("session_id", &order.session_id), ("outcome", what)],
    );
}
// ─────────────────────────────────────────────────────────────────────────

/// What [`on_shipped`] is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    /// Carrier name.
    pub carrier: String,
    /// Tracking number.
    pub tracking_number: String,
    /// Tracking page (https), if given.
    pub tracking_url: Option<String>,
}

/// What [`on_refunded`] is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refunded {
    /// Refunded by this change, minor units.
    pub amount: i64,
    /// Refunded in all, minor units.
    pub amount_refunded: i64,
}

/// What [`on_refund_failed`] is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundFailed {
    /// The refund's amount, minor units.
    pub amount: i64,
    /// `failed` or `canceled`.
    pub status: String,
    /// Refunded in all after it, minor units.
    pub amount_refunded: i64,
}

/// What [`on_dispute`] is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisputeNotice {
    /// A dispute or inquiry was opened, with Stripe's status.
    Opened {
        /// e.g. `needs_response`, `warning_needs_response`.
        status: String,
        /// Disputed amount, minor units.
        amount: i64,
    },
    /// It closed: `won`, `lost`, `warning_closed` or `prevented`.
    Closed {
        /// The outcome.
        status: String,
        /// Disputed amount, minor units.
        amount: i64,
    },
}

/// Calls the hook a stored call names.
fn call(call: &HookCall, order: &Order) {
    match call.clone() {
        HookCall::Refunded { amount, amount_refunded } => on_refunded(order, &Refunded { amount, amount_refunded }),
        HookCall::RefundFailed { amount, status, amount_refunded } => {
            on_refund_failed(order, &RefundFailed { amount, status, amount_refunded })
        }
        HookCall::DisputeOpened { status, amount } => on_dispute(order, &DisputeNotice::Opened { status, amount }),
        HookCall::DisputeClosed { status, amount } => on_dispute(order, &DisputeNotice::Closed { status, amount }),
        HookCall::Shipped { carrier, tracking_number, tracking_url } => {
            on_shipped(order, &Shipped { carrier, tracking_number, tracking_url })
        }
        HookCall::Cancelled => on_cancelled(order),
        HookCall::Oversold { refunded } => on_oversold(order, refunded),
    }
}

/// Where a hook run stands after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// Nothing to do: no run, or it already finished.
    Done,
    /// This call ran it (first time, or taking over a lapsed run).
    Ran,
    /// Another caller holds a run that has not finished and whose lease has not lapsed: a
    /// webhook asks Stripe to retry later.
    Held,
    /// Running it, or finding out, failed (logged): a webhook answers 5xx.
    Failed,
    /// As [`Run::Failed`], because the database refused a connection (see
    /// [`StoreError::is_unavailable`]): a webhook answers 503 with `Retry-After`.
    Unavailable,
}

impl Run {
    /// The failed run a store error leaves: [`Run::Unavailable`] or [`Run::Failed`].
    pub fn failed(e: &StoreError) -> Run {
        if e.is_unavailable() { Run::Unavailable } else { Run::Failed }
    }
}

impl Run {
    /// Whether the hook is done or was just done by this call.
    pub fn settled(self) -> bool {
        matches!(self, Run::Done | Run::Ran)
    }
}

/// How long a claimed run is left to its instance before another may take it over: longer
/// than a function may live (`maxDuration` is 30 s in vercel.json). On a long-lived server
/// nothing stops a hook slower than this, so keep hooks short.
pub const RUN_LEASE_SECS: i64 = 120;

/// How long a webhook delivery waits for another caller's unfinished run before asking
/// Stripe to retry (the success page does not wait).
pub const HELD_WAIT: Duration = Duration::from_secs(2);

/// Runs [`on_fulfilled`] for a run this call holds (the order just recorded), then marks it done.
pub async fn run_fulfillment(app: &App, order: &Order) -> Run {
    on_fulfilled(order);
    crate::email::confirm(app, order).await;
    finish(RunKey::Fulfillment(&order.session_id), app.store.finish_run(RunKey::Fulfillment(&order.session_id)).await)
}

/// Runs an event's after-payment hook calls for a run this call holds, then marks it done.
pub async fn run_claimed(app: &App, key: RunKey<'_>, session_id: &str, calls: &[HookCall]) -> Run {
    let result = match app.store.order(session_id).await {
        Ok(Some(order)) => {
            calls.iter().for_each(|c| call(c, &order));
            crate::email::notify(app, &order, key.id(), calls).await;
            app.store.finish_run(key).await
        }
        Ok(None) => Err(StoreError::new("order missing for a claimed hook run")),
        Err(e) => Err(e),
    };
    finish(key, result)
}

fn finish(key: RunKey<'_>, result: Result<(), StoreError>) -> Run {
    match result {
        Ok(()) => Run::Ran,
        Err(e) => {
            crate::log::warn("hook run unfinished", &[("run", key.id()), ("error", &e.to_string())]);
            Run::failed(&e)
        }
    }
}

/// Takes over and runs a run that lapsed unfinished; waits up to `wait` for a run another
/// caller holds to finish.
pub async fn resume(app: &App, key: RunKey<'_>, wait: Duration) -> Run {
    let deadline = Instant::now() + wait;
    loop {
        let now = crate::clock::now();
        let step = match app.store.reclaim_run(key, now, RUN_LEASE_SECS).await {
            Ok(Some(claimed)) => {
                crate::log::warn("resuming an unfinished hook run", &[("run", key.id())]);
                return match key {
                    RunKey::Fulfillment(id) => match app.store.order(id).await {
                        Ok(Some(order)) => run_fulfillment(app, &order).await,
                        Ok(None) => finish(key, Err(StoreError::new("fulfilled order missing"))),
                        Err(e) => finish(key, Err(e)),
                    },
                    RunKey::Event(_) => run_claimed(app, key, &claimed.session_id, &claimed.calls).await,
                };
            }
            Ok(None) => app.store.run_pending(key).await,
            Err(e) => Err(e),
        };
        match step {
            Ok(false) => return Run::Done,
            Ok(true) if Instant::now() >= deadline => return Run::Held,
            Ok(true) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => {
                crate::log::warn("hook run not resumed", &[("run", key.id()), ("error", &e.to_string())]);
                return Run::failed(&e);
            }
        }
    }
}
