//! Fulfilment as Stripe's guide describes it: one idempotent
//! [`fulfill`] that retrieves the session with its line items, checks
//! `payment_status`, and records the order — and its fulfilment — exactly
//! once, safe under concurrent calls (the store's transaction decides).
//! Called from Checkout Session events, the success page, and an after-payment event that
//! finds an order of ours not recorded yet ([`Trigger`]).

use crate::after_payment::Money;
use crate::app::App;
use crate::events::CheckoutEvent;
use crate::hooks::{self, Run, RunKey};
use crate::session::is_ours;
use crate::store::{Applied, EventRef, Order, OrderItem, OrderState, StoreError};
use crate::stripe::{
    Form, StripeError,
    types::{LineItem, List, Session},
};
use std::time::Duration;

/// Why fulfilment could not run: Stripe or the store failed (the webhook
/// answers 5xx so Stripe retries), or the session is not one of ours.
#[derive(Debug)]
pub enum FulfillError {
    /// Not a `mode=payment` session created by this shop (see [`crate::session::SESSION_TAG`]).
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

/// Why [`fulfill`] runs.
#[derive(Debug, Clone)]
pub enum Trigger<'a> {
    /// The shopper's landing page (checkout-status): nothing to record beside the order, and no
    /// waiting for another caller's run.
    SuccessPage,
    /// A Checkout Session event, recorded in the same transaction so a duplicate delivery does
    /// nothing; a webhook waits briefly for another caller's run.
    Event(EventRef<'a>, CheckoutEvent),
    /// A refund or dispute event found a session of ours whose order is not recorded yet.
    AfterPayment,
}

/// Retrieves the session and records where it stands.
pub async fn fulfill(app: &App, session_id: &str, trigger: Trigger<'_>) -> Result<Outcome, FulfillError> {
    let (event, payment_failed) = match trigger {
        Trigger::Event(e, kind) => (Some(e), kind == CheckoutEvent::AsyncPaymentFailed),
        Trigger::SuccessPage | Trigger::AfterPayment => (None, false),
    };
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
    let order = Order {
        session_id: session.id.clone(),
        state,
        payment_status: session.payment_status.clone(),
        amount_total: session.amount_total,
        currency: session.currency.clone(),
        items,
        livemode: session.livemode,
        payment_intent: session.payment_intent.clone(),
        fulfillments: 0,
        money: Money { amount: session.amount_total.unwrap_or(0), ..Money::default() },
    };
    // A webhook waits briefly for another caller's run; the success page does not.
    let wait = if event.is_some() { hooks::HELD_WAIT } else { Duration::ZERO };
    let applied = app.store.apply(&order, event).await.map_err(FulfillError::Store)?;
    let run = if applied == (Applied::Recorded { newly_fulfilled: true }) {
        // Just recorded from `order`: this call fulfilled it.
        hooks::run_fulfillment(app, &Order { fulfillments: 1, ..order }).await
    } else if state == OrderState::Fulfilled {
        hooks::resume(app, RunKey::Fulfillment(&order.session_id), wait).await
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
