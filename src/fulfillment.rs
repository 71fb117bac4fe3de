//! Fulfilment as Stripe's guide describes it: one idempotent
//! [`fulfill`] that retrieves the session with its line items, checks
//! `payment_status`, and records the order — and its fulfilment — exactly
//! once, safe under concurrent calls (the store's transaction decides).
//! Called from the webhook and from the success page.

use crate::app::App;
use crate::hooks::{self, Run, RunKey};
use crate::store::{Applied, EventRef, Order, OrderItem, OrderState, OrderUpdate, StoreError};
use crate::stripe::{
    Form, StripeError,
    types::{LineItem, List, Session},
};
use std::time::Duration;

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
    if !is_ours(&session) {
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
        payment_intent: session.payment_intent.clone(),
    };
    // A webhook waits briefly for another caller's run; the success page does not.
    let wait = if event.is_some() { hooks::HELD_WAIT } else { Duration::ZERO };
    let applied = app.store.apply(&update, event).await.map_err(FulfillError::Store)?;
    let run = if applied == (Applied::Recorded { newly_fulfilled: true }) {
        // Just recorded from `update`, so the stored order is `update` itself.
        hooks::run_fulfillment(app, &Order::recorded(&update)).await
    } else if state == OrderState::Fulfilled {
        hooks::resume(app, RunKey::Fulfillment(&update.session_id), wait).await
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

/// Whether a session is one this shop created: `mode=payment` with [`SESSION_TAG`].
pub fn is_ours(session: &Session) -> bool {
    session.metadata.get(SESSION_TAG.0).map(String::as_str) == Some(SESSION_TAG.1)
        && session.mode.as_deref() == Some("payment")
}

/// Whether `id` has the form of a Checkout Session id.
pub fn is_session_id(id: &str) -> bool {
    let rest = id.strip_prefix("cs_test_").or_else(|| id.strip_prefix("cs_live_"));
    rest.is_some_and(|r| (1..=250).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}
