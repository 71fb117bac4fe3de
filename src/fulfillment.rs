//! Fulfilment as Stripe's guide describes it: one idempotent
//! [`fulfill`] that retrieves the session with its line items, checks
//! `payment_status`, and records the order — and its fulfilment — exactly
//! once, safe under concurrent calls (the store's transaction decides).
//! Called from the webhook and from the success page.

use crate::app::App;
use crate::store::{Applied, EventRef, Order, OrderItem, OrderState, OrderUpdate, StoreError};
use crate::stripe::{
    Form, StripeError,
    types::{LineItem, List, Session},
};
use std::time::{Duration, Instant};

/// The metadata every session this shop creates carries; sessions without it
/// (Payment Links, other integrations on the same account) are never fulfilled here.
pub const SESSION_TAG: (&str, &str) = ("shop", "checkout-rust");

/// Why fulfilment could not run: Stripe or the store failed (the webhook
/// answers 5xx so Stripe retries), or the session is not one of ours.
#[derive(Debug)]
pub enum FulfillError {
    /// Not a `mode=payment` session created by this shop (no [`SESSION_TAG`]).
    NotOurs,
    /// Stripe failed or could not be reached.
    Stripe(StripeError),
    /// The store failed.
    Store(StoreError),
}

impl std::fmt::Display for FulfillError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FulfillError::NotOurs => f.write_str("session not created by this shop"),
            FulfillError::Stripe(e) => write!(f, "{e}"),
            FulfillError::Store(e) => write!(f, "{e}"),
        }
    }
}

/// What a call to [`fulfill`] found and did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The session as Stripe returned it.
    pub session: Session,
    /// What the store did (duplicate event, or recorded).
    pub applied: Option<Applied>,
    /// Where the owner's action for this order stands.
    pub run: Run,
}

/// Where the owner's action ([`on_fulfilled`]) stands after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// Nothing to do: the order is not fulfilled, or its run already finished.
    Done,
    /// This call ran it (first time, or taking over a lapsed run).
    Ran,
    /// Another caller holds a run that has not finished and whose lease has
    /// not lapsed: a webhook asks Stripe to retry later.
    Held,
    /// Running it, or finding out, failed (logged): a webhook answers 5xx.
    Failed,
}

impl Run {
    /// Whether the owner's action is done or was just done by this call.
    pub fn settled(self) -> bool {
        matches!(self, Run::Done | Run::Ran)
    }
}

/// ───────────────────────── SHOP OWNER: EDIT HERE ─────────────────────────
/// What "fulfil" means for this shop: ship, email, grant access. It runs
/// right after the fulfilment was durably recorded, once per order in the
/// normal case. If an instance dies mid-run (or the answer to the commit is
/// lost), a later delivery or success-page visit runs it again once
/// [`RUN_LEASE_SECS`] have passed, so make it idempotent, keyed on
/// `order.session_id`. Ours logs.
pub fn on_fulfilled(order: &Order) {
    let items = order.items.iter().map(|i| format!("{} x{}", i.name, i.quantity)).collect::<Vec<_>>().join(", ");
    crate::log::info("order fulfilled", &[("session_id", &order.session_id), ("items", &items)]);
}
// ─────────────────────────────────────────────────────────────────────────

/// How long a claimed run of [`on_fulfilled`] is left to its instance before
/// another may take it over: longer than a function may live (`maxDuration`
/// is 30 s in vercel.json). On a long-lived server (the dev server, or self
/// hosting) nothing stops a hook slower than this, so keep the hook short.
pub const RUN_LEASE_SECS: i64 = 120;

/// How long a webhook delivery waits for another caller's unfinished run
/// before asking Stripe to retry (the success page does not wait).
pub const HELD_WAIT: Duration = Duration::from_secs(2);

/// Runs [`on_fulfilled`] for a run this call holds, then marks it finished;
/// a failure is logged.
async fn run_held_by_us(app: &App, session_id: &str, order: Result<Order, StoreError>) -> Run {
    let result = match order {
        Ok(order) => {
            on_fulfilled(&order);
            app.store.finish_fulfillment_run(session_id).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Run::Ran,
        Err(e) => {
            crate::log::warn("fulfilment run unfinished", &[("session_id", session_id), ("error", &e.to_string())]);
            Run::Failed
        }
    }
}

/// For an order already fulfilled: takes over and runs [`on_fulfilled`] if
/// its run lapsed unfinished; waits up to `wait` for a run another caller
/// holds to finish.
pub async fn resume_lapsed_run(app: &App, session_id: &str, wait: Duration) -> Run {
    let deadline = Instant::now() + wait;
    loop {
        let now = crate::store::now();
        let step = match app.store.reclaim_fulfillment_run(session_id, now, RUN_LEASE_SECS).await {
            Ok(true) => {
                crate::log::warn("resuming an unfinished fulfilment run", &[("session_id", session_id)]);
                let order = app
                    .store
                    .order(session_id)
                    .await
                    .and_then(|o| o.ok_or_else(|| StoreError("fulfilled order missing".into())));
                return run_held_by_us(app, session_id, order).await;
            }
            Ok(false) => app.store.fulfillment_run_pending(session_id).await,
            Err(e) => Err(e),
        };
        match step {
            Ok(false) => return Run::Done,
            Ok(true) if Instant::now() >= deadline => return Run::Held,
            Ok(true) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => {
                crate::log::warn(
                    "fulfilment run not resumed",
                    &[("session_id", session_id), ("error", &e.to_string())],
                );
                return Run::Failed;
            }
        }
    }
}

/// Retrieves the session and records where it stands. `event` (if any) is
/// recorded in the same transaction so a duplicate delivery does nothing;
/// `payment_failed` marks a failed delayed payment.
pub async fn fulfill(
    app: &App,
    session_id: &str,
    event: Option<EventRef<'_>>,
    payment_failed: bool,
) -> Result<Outcome, FulfillError> {
    let session = retrieve(app, session_id).await?;
    let ours = session.metadata.get(SESSION_TAG.0).map(String::as_str) == Some(SESSION_TAG.1)
        && session.mode.as_deref() == Some("payment");
    if !ours {
        return Err(FulfillError::NotOurs);
    }
    let state = match (session.payment_status.as_str(), session.status.as_deref()) {
        ("paid" | "no_payment_required", Some("complete")) => Some(OrderState::Fulfilled),
        _ if payment_failed => Some(OrderState::PaymentFailed),
        (_, Some("expired")) => Some(OrderState::Expired),
        (_, Some("complete")) => Some(OrderState::AwaitingPayment),
        _ => None, // still open: nothing to record yet
    };
    let Some(state) = state else {
        if let Some(e) = event {
            app.store.record_event(e).await.map_err(FulfillError::Store)?;
        }
        return Ok(Outcome { session, applied: None, run: Run::Done });
    };
    let items = session.line_items.as_ref().map(|l| l.data.iter().map(order_item).collect()).unwrap_or_default();
    let update = OrderUpdate {
        session_id: session.id.clone(),
        state,
        payment_status: session.payment_status.clone(),
        amount_total: session.amount_total,
        currency: session.currency.clone(),
        items,
        livemode: session.livemode,
    };
    // A webhook waits briefly for another caller's run; the success page does not.
    let wait = if event.is_some() { HELD_WAIT } else { Duration::ZERO };
    let applied = app.store.apply(&update, event).await.map_err(FulfillError::Store)?;
    let run = if applied == (Applied::Recorded { newly_fulfilled: true }) {
        // Just recorded from `update`, so the stored order is `update` itself.
        let order = Order {
            session_id: update.session_id.clone(),
            state: update.state,
            payment_status: update.payment_status.clone(),
            amount_total: update.amount_total,
            currency: update.currency.clone(),
            items: update.items.clone(),
            fulfillments: 1,
        };
        run_held_by_us(app, &update.session_id, Ok(order)).await
    } else if state == OrderState::Fulfilled {
        resume_lapsed_run(app, &update.session_id, wait).await
    } else {
        Run::Done
    };
    Ok(Outcome { session, applied: Some(applied), run })
}

/// `GET /v1/checkout/sessions/{id}?expand[]=line_items`, following the line
/// items' pages when a cart is longer than one page.
async fn retrieve(app: &App, session_id: &str) -> Result<Session, FulfillError> {
    let mut q = Form::new();
    q.push("expand[]", "line_items");
    let path = format!("/v1/checkout/sessions/{session_id}");
    let mut session: Session = app.stripe.get(&path, &q).await.map_err(FulfillError::Stripe)?;
    if session.line_items.as_ref().is_some_and(|l| l.has_more) {
        let mut q = Form::new();
        q.push("limit", "100");
        let all: List<LineItem> =
            app.stripe.get(&format!("{path}/line_items"), &q).await.map_err(FulfillError::Stripe)?;
        session.line_items = Some(all);
    }
    Ok(session)
}

fn order_item(li: &LineItem) -> OrderItem {
    OrderItem { name: li.description.clone().unwrap_or_else(|| "item".into()), quantity: li.quantity.unwrap_or(1) }
}

/// Whether `id` has the form of a Checkout Session id.
pub fn is_session_id(id: &str) -> bool {
    let rest = id.strip_prefix("cs_test_").or_else(|| id.strip_prefix("cs_live_"));
    rest.is_some_and(|r| (1..=250).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}
