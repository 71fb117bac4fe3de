//! Fulfilment as Stripe's guide describes it: one idempotent
//! [`fulfill`] that retrieves the session with its line items, checks
//! `payment_status`, and records the order — and its fulfilment — exactly
//! once, safe under concurrent calls (the store's transaction decides).
//! Called from Checkout Session events, the success page, and an after-payment event that
//! finds an order of ours not recorded yet ([`Trigger`]).

use crate::app::App;
use crate::hooks::{self, Run};
use crate::order::{OrderItem, OrderState, OrderTotals, OrderUpdate, StockSale};
use crate::session::is_ours;
use crate::store::{Applied, EventRef, RunKey, SaleOutcome, StoreError};
use crate::stripe::{
    EventType, Form, StripeError,
    types::{Expandable, LineItem, List, Session},
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
    pub applied: Option<Applied<bool>>,
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
    Event(EventRef<'a>, EventType),
    /// A refund or dispute event found a session of ours whose order is not recorded yet.
    AfterPayment,
}

/// Retrieves the session and records where it stands.
pub async fn fulfill(app: &App, session_id: &str, trigger: Trigger<'_>) -> Result<Outcome, FulfillError> {
    let (event, payment_failed) = match trigger {
        Trigger::Event(e, kind) => (Some(e), kind == EventType::CheckoutSessionAsyncPaymentFailed),
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
    let order = OrderUpdate {
        session_id: session.id.clone(),
        state,
        payment_status: session.payment_status.clone(),
        amount_total: session.amount_total,
        currency: session.currency.clone(),
        items,
        livemode: session.livemode,
        payment_intent: session.payment_intent.clone(),
        totals: totals(&session),
        shipping: session.collected_information.as_ref().and_then(|c| c.shipping_details.clone()),
        customer_email: session.customer_details.as_ref().and_then(|c| c.email.clone()),
        stock: session
            .metadata
            .get(crate::session::RESERVATION_KEY)
            .map(|r| StockSale { reservation: r.clone(), rule: app.config.stock_oversold }),
    };
    // A webhook waits briefly for another caller's run; the success page does not.
    let wait = if event.is_some() { hooks::HELD_WAIT } else { Duration::ZERO };
    let (applied, sale) = app.store.apply_sale(&order, event).await.map_err(FulfillError::Store)?;
    let stock_run = match sale {
        SaleOutcome::None if state == OrderState::Fulfilled && order.stock.is_some() => {
            crate::stock::resume(app, &order.session_id).await
        }
        sale => crate::stock::after_sale(app, &order.session_id, sale).await,
    };
    // A payment refunded for want of stock is not fulfilled: its run was closed unrun.
    let run = if applied == Applied::Recorded(true) && sale != SaleOutcome::Refund {
        // This call fulfilled it: the hook gets the order as recorded, its number included.
        match app.store.order(&order.session_id).await {
            Ok(Some(recorded)) => hooks::run_fulfillment(app, &recorded).await,
            // The run stays claimed and unfinished: the next delivery takes it over.
            Ok(None) => {
                crate::log::warn("fulfilled order not read back", &[("session_id", &order.session_id)]);
                Run::Failed
            }
            Err(e) => {
                crate::log::warn(
                    "fulfilled order not read back",
                    &[("session_id", &order.session_id), ("error", &e.to_string())],
                );
                Run::failed(&e)
            }
        }
    } else if state == OrderState::Fulfilled {
        hooks::resume(app, RunKey::Fulfillment(&order.session_id), wait).await
    } else {
        Run::Done
    };
    // An unfinished `on_oversold` run keeps the event unacknowledged, as the fulfilment's does.
    let run = if run.settled() { stock_run } else { run };
    Ok(Outcome { session, applied: Some(applied), run })
}

/// `GET /v1/checkout/sessions/{id}?expand[]=line_items&expand[]=shipping_cost.shipping_rate`
/// (the chosen rate's name), following the line
/// items' pages when a cart is longer than one page.
async fn retrieve(app: &App, session_id: &str) -> Result<Session, FulfillError> {
    let mut q = Form::new();
    q.push("expand[]", "line_items").push("expand[]", "shipping_cost.shipping_rate");
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
    OrderItem {
        name: li.description.clone().unwrap_or_else(|| "item".into()),
        quantity: li.quantity.unwrap_or(1),
        amount_subtotal: Some(li.amount_subtotal),
    }
}

/// The session's totals as Stripe computed them; `None` before it has a total.
pub fn totals(session: &Session) -> Option<OrderTotals> {
    let amount_total = session.amount_total?;
    let details = session.total_details.clone().unwrap_or_default();
    let amount_subtotal = session.amount_subtotal.unwrap_or(amount_total);
    let amount_shipping = details.amount_shipping.unwrap_or(0);
    let before_tax = amount_subtotal - details.amount_discount + amount_shipping;
    let shipping_rate = session.shipping_cost.as_ref().and_then(|c| match c.shipping_rate.as_ref()? {
        Expandable::Object(rate) => rate.display_name.clone(),
        Expandable::Id(_) => None,
    });
    Some(OrderTotals {
        amount_subtotal,
        amount_discount: details.amount_discount,
        amount_shipping,
        amount_tax: details.amount_tax,
        amount_total,
        tax_included: details.amount_tax > 0 && before_tax == amount_total,
        shipping_rate,
    })
}
