//! `GET /api/orders`: the owner's order list, newest first, a page at a time.
//!
//! Parse: GET; `ADMIN_TOKEN` unset ⇒ 404 (the route does not exist for this shop); the per-IP
//! limit `RATE_LIMIT_ORDERS`, counted before the token is checked so guesses are limited
//! (429); `Authorization: Bearer <ADMIN_TOKEN>` compared in constant time
//! ([`http::authorize_bearer`]; anything else 401 with one generic body; a token shorter than
//! 32 characters refuses every call, a logged configuration error); `limit` (1..=100, default
//! 20), `starting_after` (the last session id of the previous page) and `state` (`paid` by
//! default, `all`, or one state). Decide: one page from the store, each order with its history;
//! on the first page, the events the reconciliation run could not act on (see
//! [`crate::reconcile`]). Answer: [`OrdersPage`], `no-store`: numbers, times, states (money and
//! shipping), lines, totals, the shipping country, tracking, the owner's actions and private
//! note, failure classes — never a name, a street address, an email, a
//! card, a secret or an error's text.

use crate::app::App;
use crate::http::{self, ApiError, Method, Response, StatusCode};
use crate::order::{ActionEntry, HistoryEntry, MoneyState, Order, OrderItem, OrderState, OrderTotals, ShippingState};
use crate::session;
use crate::store::{FailedEvent, OrderLog};
use serde::Serialize;

/// Orders per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page.
pub const MAX_LIMIT: u32 = 100;
/// Failed events shown on the first page at most.
pub const MAX_FAILED_EVENTS: u32 = 100;

/// One page of the owner's list.
#[derive(Debug, Serialize)]
pub struct OrdersPage {
    /// Orders, newest first.
    pub data: Vec<OrderRow>,
    /// Whether older orders follow.
    pub has_more: bool,
    /// Pass as `starting_after` for the next page.
    pub next_starting_after: Option<String>,
    /// First page only: events the reconciliation run could not act on (most recently tried
    /// first); each run retries them and clears those that succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_events: Option<Vec<FailedEventRow>>,
}

/// An event the reconciliation run went past without acting on it, as the owner sees it.
#[derive(Debug, Serialize)]
pub struct FailedEventRow {
    /// `evt_...` (find it in the Stripe Dashboard).
    pub event_id: String,
    /// The event's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The Checkout Session or PaymentIntent it is about, when known.
    pub object_id: Option<String>,
    /// `failed` (after the bound of attempts) or `held` (an owner's hook run held elsewhere).
    pub state: &'static str,
    /// Attempts so far.
    pub attempts: i64,
    /// Why the last attempt failed: `stripe_unavailable`, `stripe_rate_limited`,
    /// `stripe_rejected`, `stripe_unreadable`, `event_not_found`, `store` or `hook_run_unsettled`.
    pub reason: String,
    /// When the first attempt failed (Unix seconds).
    pub first_attempt_at: i64,
    /// When the last attempt failed (Unix seconds).
    pub last_attempt_at: i64,
}

impl From<FailedEvent> for FailedEventRow {
    fn from(f: FailedEvent) -> Self {
        FailedEventRow {
            state: f.state.as_str(),
            event_id: f.event_id,
            kind: f.kind,
            object_id: f.object_id,
            attempts: f.attempts,
            reason: f.reason,
            first_attempt_at: f.first_at,
            last_attempt_at: f.last_at,
        }
    }
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
    /// The latest dispute's Stripe status (`needs_response`, `won`, ...), shown beside the
    /// refunded amount; absent when the charge was never disputed.
    pub dispute_status: Option<String>,
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
    /// The owner's actions (`POST /api/order-action`), oldest first.
    pub actions: Vec<ActionEntry>,
    /// Where its delivery stands: `unshipped`, `shipped`, `delivered` (a digital order from
    /// payment on) or `cancelled`; absent until paid.
    pub shipping_state: Option<&'static str>,
    /// The carrier, once shipped.
    pub carrier: Option<String>,
    /// The tracking number, once shipped.
    pub tracking_number: Option<String>,
    /// The tracking page, when given.
    pub tracking_url: Option<String>,
    /// The owner's private note.
    pub note: Option<String>,
    /// Live or test mode.
    pub livemode: bool,
}

impl OrderRow {
    /// The row of an order with its history and actions.
    pub fn new(order: Order, log: OrderLog) -> OrderRow {
        let shipment = order.shipment();
        let recorded = shipment.clone().unwrap_or_default();
        OrderRow {
            shipping_state: shipment.map(|s| s.state).map(ShippingState::as_str),
            carrier: recorded.carrier,
            tracking_number: recorded.tracking_number,
            tracking_url: recorded.tracking_url,
            note: recorded.note,
            actions: log.actions,
            money_state: order.money_state().map(MoneyState::as_str),
            amount_refunded: order.money.amount_refunded,
            dispute_status: order.money.dispute.as_ref().map(|d| d.status.clone()),
            fulfillment: order.state.as_str(),
            shipping_country: order.shipping.and_then(|s| s.address.country),
            order_number: order.number,
            session_id: order.session_id,
            created_at: order.created_at,
            currency: order.currency,
            items: order.items,
            totals: order.totals,
            history: log.history,
            livemode: order.livemode,
        }
    }
}

/// The owner's query: a page size, where the page starts, which orders.
pub struct OrdersQuery {
    /// 1..=[`MAX_LIMIT`].
    pub limit: u32,
    /// The last session id of the previous page.
    pub starting_after: Option<String>,
    /// `state`: `paid` (the default: fulfilled orders), `all`, or one state (`awaiting_payment`,
    /// `payment_failed`, `expired`, `fulfilled`); `None` is all. Abandoned checkouts (anyone can
    /// make them) stay out of the owner's default view.
    pub state: Option<OrderState>,
}

impl OrdersQuery {
    /// Parse: `limit` (1..=100, default 20) and `starting_after` (a session id), 400 otherwise.
    pub fn parse(uri: &::http::Uri) -> Result<OrdersQuery, ApiError> {
        let limit = match http::query_param(uri, "limit") {
            None => DEFAULT_LIMIT,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| ApiError::bad_request("limit: must be 1..=100"))?,
        };
        let starting_after = http::query_param(uri, "starting_after");
        if starting_after.as_deref().is_some_and(|id| !session::is_session_id(id)) {
            return Err(ApiError::bad_request("starting_after: not a Checkout Session id"));
        }
        let state = match http::query_param(uri, "state").as_deref() {
            None | Some("paid") => Some(OrderState::Fulfilled),
            Some("all") => None,
            Some(other) => Some(OrderState::parse(other).ok_or_else(|| {
                ApiError::bad_request("state: must be paid, all, awaiting_payment, payment_failed, expired or fulfilled")
            })?),
        };
        Ok(OrdersQuery { limit, starting_after, state })
    }
}

/// The owner's view of one order (`GET /api/orders?order=RR-XXXX-XX`): its row and the
/// personal details the list never carries — the shopper's email, the shipping name and
/// address — for the owner to ship and answer. Behind the same token; `no-store`.
#[derive(Debug, Serialize)]
pub struct OrderView {
    /// The order as the list shows it.
    pub order: OrderRow,
    /// Who bought it and where it goes.
    pub customer: Customer,
}

/// The personal details of one order, for the owner only.
#[derive(Debug, Serialize)]
pub struct Customer {
    /// The email the shopper gave at checkout.
    pub email: Option<String>,
    /// The name and address it ships to (absent for digital orders).
    pub shipping: Option<crate::stripe::types::ShippingDetails>,
}

/// Answers one order with its personal details (the owner's order view).
async fn one_order(app: &App, reference: &str) -> Result<Response, ApiError> {
    let reference = super::order_reference(reference)?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "order: no such order");
    let order = crate::owner_actions::find(app, &reference).await?.ok_or_else(not_found)?;
    let session_id = order.session_id.clone();
    let mut histories = app.store.histories(&[session_id.as_str()]).await?;
    let customer = Customer { email: order.customer_email.clone(), shipping: order.shipping.clone() };
    let log = histories.remove(&session_id).unwrap_or_default();
    Ok(http::json(StatusCode::OK, &OrderView { order: OrderRow::new(order, log), customer }))
}

/// Answers a page of orders to the owner: the route's guard (404 unset, the limit, the
/// token), the query, then one statement for the page, one for its histories and owner actions
/// and, on the first page, one for the failed events.
pub async fn handle<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError> {
    http::require_method(req.method(), &[Method::GET])?;
    let Some(token) = &app.config.admin_token else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no such route").with_reason("ADMIN_TOKEN is not set"));
    };
    let ip = http::client_ip(req.headers());
    app.limiter.check(&app.store, "orders", ip, app.config.orders_limit).await?;
    http::authorize_bearer(token, req.headers(), "ADMIN_TOKEN")?;
    if let Some(reference) = http::query_param(req.uri(), "order") {
        return one_order(app, &reference).await;
    }
    let OrdersQuery { limit, starting_after, state } = OrdersQuery::parse(req.uri())?;
    let mut orders = app.store.orders_page(starting_after.as_deref(), limit + 1, state).await?;
    let has_more = orders.len() > limit as usize;
    orders.truncate(limit as usize);
    let ids: Vec<&str> = orders.iter().map(|o| o.session_id.as_str()).collect();
    let mut histories = app.store.histories(&ids).await?;
    let data: Vec<OrderRow> = orders
        .into_iter()
        .map(|order| {
            let log = histories.remove(&order.session_id).unwrap_or_default();
            OrderRow::new(order, log)
        })
        .collect();
    let next_starting_after = if has_more { data.last().map(|o| o.session_id.clone()) } else { None };
    let failed_events = match starting_after {
        Some(_) => None,
        None => Some(app.store.failures_shown(&crate::reconcile::source(app), MAX_FAILED_EVENTS).await?.into_iter().map(Into::into).collect()),
    };
    Ok(http::json(StatusCode::OK, &OrdersPage { data, has_more, next_starting_after, failed_events }))
}
