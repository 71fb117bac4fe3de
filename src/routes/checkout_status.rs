//! `GET /api/checkout-status?session_id=cs_...`: fulfils from the landing
//! page too (Stripe's advice) and answers only what the success page shows —
//! no email, no address, no Stripe object.
//!
//! Parse: GET, a `session_id` Stripe could have issued, same-site. Decide: a settled order
//! from the store, else [`fulfillment::fulfill`] from the success page. Answer:
//! [`CheckoutStatus`]; 400 for a malformed id, 403 cross-site, 404 for a session that is not
//! this shop's (or of the other mode), 429 past the limit, 502 when Stripe fails.
//!
//! Anyone on the internet can call it, so it must not spend the owner's
//! Stripe quota once the answer is known: an id Stripe cannot have (over
//! [`session::MAX_SESSION_ID_LEN`]) is 400 before anything else, a cross-site request
//! is 403, and an order already settled (fulfilled, failed, expired) is
//! answered from the store without calling Stripe.

use crate::app::App;
use crate::config::Mode;
use crate::fulfillment::{self, FulfillError, Trigger};
use crate::hooks::RunKey;
use crate::http::{self, ApiError, BoxError, Response};
use crate::session;
use crate::store::{Order, OrderItem, OrderState};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Serialize;

/// The success page's view of an order.
#[derive(Debug, Serialize)]
pub struct CheckoutStatus {
    /// Session status: `open`, `complete`, `expired`.
    pub status: String,
    /// `paid`, `unpaid`, `no_payment_required`.
    pub payment_status: String,
    /// `fulfilled`, `awaiting_payment`, `payment_failed`, `expired` or `pending`.
    pub fulfillment: &'static str,
    /// Amount charged, minor units.
    pub amount_total: Option<i64>,
    /// Currency.
    pub currency: Option<String>,
    /// Names and quantities bought.
    pub items: Vec<OrderItem>,
    /// After payment: `paid`, `partially_refunded`, `refunded`, `disputed`, `dispute_won` or
    /// `dispute_lost`; absent until the order is paid.
    pub money_state: Option<&'static str>,
    /// Refunded so far, minor units.
    pub amount_refunded: i64,
}

/// The answer for a settled order, straight from the store (the webhook and
/// the reconciliation keep its after-payment money state current); `None`
/// for an order still waiting (ask Stripe).
fn settled(order: &Order) -> Option<CheckoutStatus> {
    let status = match order.state {
        OrderState::Fulfilled | OrderState::PaymentFailed => "complete",
        OrderState::Expired => "expired",
        OrderState::AwaitingPayment => return None,
    };
    Some(CheckoutStatus {
        status: status.into(),
        payment_status: order.payment_status.clone(),
        fulfillment: order.state.as_str(),
        amount_total: order.amount_total,
        currency: order.currency.clone(),
        items: order.items.clone(),
        money_state: (order.state == OrderState::Fulfilled).then(|| order.money.state().as_str()),
        amount_refunded: order.money.amount_refunded,
    })
}

/// Handles the request.
pub async fn handle<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    http::require_method(req.method(), &[Method::GET])?;
    let session_id = http::query_param(req.uri(), "session_id").unwrap_or_default();
    if !session::is_session_id(&session_id) {
        return Err(ApiError::bad_request("session_id: not a Checkout Session id"));
    }
    http::refuse_cross_site(req.headers(), &app.config.site_url)?;
    let wrong_mode = match app.config.mode() {
        Mode::Test => session_id.starts_with("cs_live_"),
        Mode::Live => session_id.starts_with("cs_test_"),
    };
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "session_id: no such checkout session");
    if wrong_mode {
        return Err(not_found());
    }
    let ip = http::client_ip(req.headers());
    app.limiter.check(&app.store, "checkout-status", ip, app.config.checkout_status_limit).await?;
    // Settled: answer from the store. A fulfilled order whose owner's action is
    // still unfinished goes on to `fulfill`, which may take a lapsed run over.
    if let Some(order) = app.store.order(&session_id).await?
        && let Some(body) = settled(&order)
        && !(order.state == OrderState::Fulfilled && app.store.run_pending(RunKey::Fulfillment(&session_id)).await?)
    {
        return Ok(http::json(StatusCode::OK, &body));
    }
    let outcome = match fulfillment::fulfill(app, &session_id, Trigger::SuccessPage).await {
        Ok(o) => o,
        Err(FulfillError::NotOurs) => return Err(not_found().with_reason("session not created by this shop")),
        Err(FulfillError::Stripe(e)) if e.is_not_found() => return Err(not_found().with_reason(e.to_string())),
        Err(FulfillError::Stripe(e)) => return Err(ApiError::upstream(format!("status {session_id}: {e}"))),
        Err(FulfillError::Store(e)) => return Err(ApiError::internal(format!("status {session_id}: {e}"))),
    };
    let order = app.store.order(&session_id).await?;
    let s = outcome.session;
    let body = CheckoutStatus {
        status: s.status.unwrap_or_else(|| "open".into()),
        payment_status: s.payment_status,
        fulfillment: order.as_ref().map_or("pending", |o| o.state.as_str()),
        amount_total: s.amount_total,
        currency: s.currency,
        money_state: order.as_ref().filter(|o| o.state == OrderState::Fulfilled).map(|o| o.money.state().as_str()),
        amount_refunded: order.as_ref().map_or(0, |o| o.money.amount_refunded),
        items: order.map(|o| o.items).unwrap_or_default(),
    };
    Ok(http::json(StatusCode::OK, &body))
}
