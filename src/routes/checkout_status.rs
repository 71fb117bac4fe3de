//! `GET /api/checkout-status?session_id=cs_...`: fulfils from the landing
//! page too (Stripe's advice) and answers only what the success page shows —
//! the order number, the lines and Stripe's totals; no email, no name, no address, no Stripe
//! object.
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
use crate::http::{self, ApiError, BoxError, Response};
use crate::order::{MoneyState, Order, OrderItem, OrderState, OrderTotals};
use crate::session;
use crate::store::RunKey;
use crate::stripe::types::Session;
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
    /// The latest dispute's Stripe status (`needs_response`, `won`, ...), shown beside the
    /// refunded amount; absent when the charge was never disputed.
    pub dispute_status: Option<String>,
    /// The order's number (e.g. `RR-7K4P-2M`), once fulfilled.
    pub order_number: Option<String>,
    /// Subtotal, discount, shipping (with the rate's name), tax and total as Stripe computed
    /// them.
    pub totals: Option<OrderTotals>,
}

/// The request: a `session_id` Stripe could have issued, in this shop's mode.
pub struct StatusQuery {
    /// `cs_...`.
    pub session_id: String,
}

impl StatusQuery {
    /// Parse: GET, a well-formed id (400), same-site (403), the key's mode (404 otherwise).
    pub fn parse<B>(app: &App, req: &http::Request<B>) -> Result<StatusQuery, ApiError> {
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
        if wrong_mode {
            return Err(not_found());
        }
        Ok(StatusQuery { session_id })
    }
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "session_id: no such checkout session")
}

impl CheckoutStatus {
    /// The one way the answer is built: from the order as recorded and, when the order is not
    /// settled, the session as Stripe just returned it (its status and totals win).
    fn new(order: Option<&Order>, session: Option<&Session>) -> CheckoutStatus {
        let status = match (session, order.map(|o| o.state)) {
            (Some(s), _) => s.status.clone().unwrap_or_else(|| "open".into()),
            (None, Some(OrderState::Expired)) => "expired".into(),
            (None, _) => "complete".into(),
        };
        CheckoutStatus {
            status,
            payment_status: session.map_or_else(
                || order.map(|o| o.payment_status.clone()).unwrap_or_default(),
                |s| s.payment_status.clone(),
            ),
            fulfillment: order.map_or("pending", |o| o.state.as_str()),
            amount_total: session.map_or_else(|| order.and_then(|o| o.amount_total), |s| s.amount_total),
            currency: session.map_or_else(|| order.and_then(|o| o.currency.clone()), |s| s.currency.clone()),
            items: order.map(|o| o.items.clone()).unwrap_or_default(),
            money_state: order.and_then(Order::money_state).map(MoneyState::as_str),
            amount_refunded: order.map_or(0, |o| o.money.amount_refunded),
            dispute_status: order.and_then(|o| o.money.dispute.as_ref()).map(|d| d.status.clone()),
            order_number: order.and_then(|o| o.number.clone()),
            totals: session.map_or_else(|| order.and_then(|o| o.totals.clone()), fulfillment::totals),
        }
    }
}

/// Whether an order is settled (fulfilled, failed, expired): answered from the store without
/// asking Stripe, since the webhook and the reconciliation keep it current.
fn is_settled(order: &Order) -> bool {
    order.state != OrderState::AwaitingPayment
}

/// Handles the request: parse, decide (the store, else fulfil from the success page), answer.
pub async fn handle<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let StatusQuery { session_id } = StatusQuery::parse(app, &req)?;
    let ip = http::client_ip(req.headers());
    app.limiter.check(&app.store, "checkout-status", ip, app.config.checkout_status_limit).await?;
    // Settled: answer from the store. A fulfilled order whose owner's action is
    // still unfinished goes on to `fulfill`, which may take a lapsed run over.
    if let Some(order) = app.store.order(&session_id).await?
        && is_settled(&order)
        && !(order.state == OrderState::Fulfilled && app.store.run_pending(RunKey::Fulfillment(&session_id)).await?)
    {
        return Ok(http::json(StatusCode::OK, &CheckoutStatus::new(Some(&order), None)));
    }
    let outcome = match fulfillment::fulfill(app, &session_id, Trigger::SuccessPage).await {
        Ok(o) => o,
        Err(FulfillError::NotOurs) => return Err(not_found().with_reason("session not created by this shop")),
        Err(FulfillError::Stripe(e)) if e.is_not_found() => return Err(not_found().with_reason(e.to_string())),
        Err(FulfillError::Stripe(e)) => return Err(ApiError::upstream(format!("status {session_id}: {e}"))),
        Err(FulfillError::Store(e)) => return Err(super::store_error(&format!("status {session_id}"), &e)),
    };
    let order = app.store.order(&session_id).await?;
    Ok(http::json(StatusCode::OK, &CheckoutStatus::new(order.as_ref(), Some(&outcome.session))))
}
