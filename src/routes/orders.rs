//! `GET /api/orders`: the owner's order list, newest first, a page at a time.
//!
//! Parse: GET; `ADMIN_TOKEN` unset ⇒ 404 (the route does not exist for this shop); the per-IP
//! limit `RATE_LIMIT_ORDERS`, counted before the token is checked so guesses are limited
//! (429); `Authorization: Bearer <ADMIN_TOKEN>` compared in constant time
//! ([`http::authorize_bearer`]; anything else 401 with one generic body; a token shorter than
//! 32 characters refuses every call, a logged configuration error); `limit` (1..=100, default
//! 20) and `starting_after` (the last session id of the previous page). Decide: one page from
//! the store, each order with its history. Answer: [`OrdersPage`], `no-store`: numbers, times,
//! states, lines, totals, the shipping country — never a name, a street address, an email, a
//! card or a secret.

use crate::app::App;
use crate::http::{self, ApiError, Method, Response, StatusCode};
use crate::session;
use crate::store::{HistoryEntry, Order, OrderItem, OrderState, OrderTotals};
use serde::Serialize;

/// Orders per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page.
pub const MAX_LIMIT: u32 = 100;

/// One page of the owner's list.
#[derive(Debug, Serialize)]
pub struct OrdersPage {
    /// Orders, newest first.
    pub data: Vec<OrderRow>,
    /// Whether older orders follow.
    pub has_more: bool,
    /// Pass as `starting_after` for the next page.
    pub next_starting_after: Option<String>,
}

/// One order as the owner's list shows it.
#[derive(Debug, Serialize)]
pub struct OrderRow {
    /// The order number, once fulfilled.
    pub order_number: Option<String>,
    /// The Checkout Session (find it in the Stripe Dashboard).
    pub session_id: String,
    /// When it was first recorded (Unix seconds).
    pub created_at: i64,
    /// `fulfilled`, `awaiting_payment`, `payment_failed` or `expired`.
    pub fulfillment: &'static str,
    /// After payment: `paid`, `partially_refunded`, `refunded`, `disputed`, `dispute_won`,
    /// `dispute_lost`; absent until paid.
    pub money_state: Option<&'static str>,
    /// Refunded so far, minor units.
    pub amount_refunded: i64,
    /// Currency.
    pub currency: Option<String>,
    /// Lines bought.
    pub items: Vec<OrderItem>,
    /// Stripe's totals.
    pub totals: Option<OrderTotals>,
    /// Where it ships (country code only).
    pub shipping_country: Option<String>,
    /// Refunds and disputes, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Live or test mode.
    pub livemode: bool,
}

impl OrderRow {
    fn new(order: Order, history: Vec<HistoryEntry>) -> OrderRow {
        OrderRow {
            money_state: (order.state == OrderState::Fulfilled).then(|| order.money.state().as_str()),
            amount_refunded: order.money.amount_refunded,
            fulfillment: order.state.as_str(),
            shipping_country: order.shipping.and_then(|s| s.address.country),
            order_number: order.number,
            session_id: order.session_id,
            created_at: order.created_at,
            currency: order.currency,
            items: order.items,
            totals: order.totals,
            history,
            livemode: order.livemode,
        }
    }
}

/// Answers a page of orders to the owner.
pub async fn handle<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError> {
    http::require_method(req.method(), &[Method::GET])?;
    let Some(token) = &app.config.admin_token else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no such route").with_reason("ADMIN_TOKEN is not set"));
    };
    let ip = http::client_ip(req.headers());
    app.limiter.check(&app.store, "orders", ip, app.config.orders_limit).await?;
    http::authorize_bearer(token, req.headers(), "ADMIN_TOKEN")?;
    let limit = match http::query_param(req.uri(), "limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::bad_request("limit: must be 1..=100"))?,
    };
    let starting_after = http::query_param(req.uri(), "starting_after");
    if starting_after.as_deref().is_some_and(|id| !session::is_session_id(id)) {
        return Err(ApiError::bad_request("starting_after: not a Checkout Session id"));
    }
    let mut orders = app.store.orders_page(starting_after.as_deref(), limit + 1).await?;
    let has_more = orders.len() > limit as usize;
    orders.truncate(limit as usize);
    let mut data = Vec::with_capacity(orders.len());
    for order in orders {
        let history = app.store.history(&order.session_id).await?;
        data.push(OrderRow::new(order, history));
    }
    let next_starting_after = if has_more { data.last().map(|o| o.session_id.clone()) } else { None };
    Ok(http::json(StatusCode::OK, &OrdersPage { data, has_more, next_starting_after }))
}
