//! The routes: one module per `api/*.rs` function (same name, `-` ⇒ `_`), each reading
//! parse ⇒ decide ⇒ answer with its contract in its module doc, and the one dispatcher the
//! dev server and the tests call (each Vercel entry point calls its route's `handle`).
//!
//! Every route checks the request's head (method, same-site, what it names) and then, before
//! reading a body or calling Stripe, its rate limit.

use crate::app::App;
use crate::cart::{Cart, CartError, CartRequest};
use crate::config::RateLimit;
use crate::events::ActError;
use crate::hooks::Run;
use crate::http::{self, ApiError, BoxError, JSON_BODY_LIMIT, Response, StatusCode};
use crate::owner_actions::ActionError;
use crate::products::ProductsError;
use crate::ratelimit::Limited;
use crate::reconcile::ReconcileError;
use crate::stock::StockError;
use crate::store::StoreError;
use bytes::Bytes;
use http::Method;
use std::net::IpAddr;

/// The route table: each line is one function — its `Route` variant, its `api/*.rs` path and
/// its module — and everything else (the enum, [`Route::ALL`], [`Route::path`],
/// [`dispatch`]) is derived from it. A new function is `api/NAME.rs`, `src/routes/NAME.rs`,
/// its `[[bin]]` in `Cargo.toml`, and one line here.
macro_rules! route_table {
    ($($(#[$doc:meta])* $variant:ident => $path:literal, $module:ident;)*) => {
        $(pub mod $module;)*

        /// Every `/api/*` function.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Route {
            $($(#[$doc])* $variant,)*
        }

        impl Route {
            /// All routes.
            pub const ALL: &[Route] = &[$(Route::$variant,)*];

            /// The URL path, which is also the `api/*.rs` file name.
            pub fn path(self) -> &'static str {
                match self {
                    $(Route::$variant => $path,)*
                }
            }
        }

        /// Handles a request with the given state; every error becomes its response, logged
        /// once here (the dev server's and the tests' edge; each function's is [`crate::vercel`]).
        pub async fn dispatch<B>(route: Route, app: &App, req: http::Request<B>) -> Response
        where
            B: http_body::Body<Data = Bytes> + Send,
            B::Error: Into<BoxError>,
        {
            let result = match route {
                $(Route::$variant => $module::handle(app, req).await,)*
            };
            http::answer(result)
        }
    };
}

route_table! {
    /// `GET /api/products`.
    Products => "/api/products", products;
    /// `POST /api/create-checkout`.
    CreateCheckout => "/api/create-checkout", create_checkout;
    /// `POST /api/apply-discount`.
    ApplyDiscount => "/api/apply-discount", apply_discount;
    /// `POST /api/webhook`.
    Webhook => "/api/webhook", webhook;
    /// `GET /api/checkout-status`.
    CheckoutStatus => "/api/checkout-status", checkout_status;
    /// `GET /api/reconcile` (Vercel Cron).
    Reconcile => "/api/reconcile", reconcile;
    /// `GET /api/orders` (the owner's order list).
    Orders => "/api/orders", orders;
    /// `POST /api/order-action` (the owner's actions on an order).
    OrderAction => "/api/order-action", order_action;
    /// `GET /api/health` (the doctor's checks and the health view).
    Health => "/api/health", health;
    /// `POST /api/stock` (the owner sets a product's stock).
    Stock => "/api/stock", stock;
}

impl Route {
    /// The route serving a URL path.
    pub fn from_path(path: &str) -> Option<Route> {
        Route::ALL.iter().copied().find(|r| r.path() == path)
    }
}

// The behaviours' own errors, mapped to HTTP here (and only here): a route answers them with
// `?`. Statuses: a refused cart 400, a limit 429, Stripe 502, a database that refuses
// connections now 503 with `Retry-After` (the webhook too: a 5xx, so Stripe retries), the
// store's other failures and unfinished runs 500.

/// What a client is told to wait when the database refused a connection (`Retry-After`).
pub const STORE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// A store failure as the answer, its private reason prefixed by `context`: 503 with
/// [`STORE_RETRY_AFTER`] when the database is unavailable, else 500.
pub fn store_error(context: &str, e: &StoreError) -> ApiError {
    if e.is_unavailable() {
        ApiError::unavailable(format!("{context}: {e}"), STORE_RETRY_AFTER)
    } else {
        ApiError::internal(format!("{context}: {e}"))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        store_error("store", &e)
    }
}

impl From<CartError> for ApiError {
    fn from(e: CartError) -> Self {
        match e {
            CartError::Invalid(m) => ApiError::bad_request(m),
            CartError::Unavailable(m) => ApiError::new(StatusCode::CONFLICT, m),
        }
    }
}

impl From<ProductsError> for ApiError {
    fn from(e: ProductsError) -> Self {
        match e {
            ProductsError::NotFilled => ApiError::unavailable(
                e.to_string(),
                std::time::Duration::from_secs(crate::products::FILL_RETRY_SECS as u64),
            ),
            ProductsError::Stripe(e) => ApiError::upstream(format!("catalog: stripe: {e}")),
            ProductsError::Store(e) => store_error("catalog: store", &e),
        }
    }
}

impl From<StockError> for ApiError {
    fn from(e: StockError) -> Self {
        match e {
            StockError::SoldOut { .. } => ApiError::new(StatusCode::CONFLICT, e.message()),
            StockError::Store(e) => store_error("stock: store", &e),
        }
    }
}

impl From<Limited> for ApiError {
    fn from(e: Limited) -> Self {
        ApiError::too_many_requests(e.retry_after).with_reason(e.reason)
    }
}

impl From<ActError> for ApiError {
    fn from(e: ActError) -> Self {
        match e {
            ActError::Stripe(e) => ApiError::upstream(format!("event: stripe: {e}")),
            ActError::Store(e) => store_error("event: store", &e),
            ActError::HookRunUnsettled(Run::Unavailable) => ApiError::unavailable(
                "event: hook run not finished: the database refused a connection",
                STORE_RETRY_AFTER,
            ),
            e => ApiError::internal(format!("event: {e}")),
        }
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        let conflict = |message: &'static str| ApiError::new(StatusCode::CONFLICT, message);
        match e {
            ActionError::NoSuchOrder => ApiError::new(StatusCode::NOT_FOUND, "no such order"),
            ActionError::Unpaid => conflict("the order is not paid; there is nothing to act on yet"),
            ActionError::Disputed => conflict("the charge has an open dispute; Stripe refuses refunds until it closes"),
            ActionError::NothingToRefund => conflict("nothing is left to refund on this order"),
            ActionError::OverRefund(left) => ApiError::new(
                StatusCode::CONFLICT,
                format!("amount: more than is still refundable ({left} in minor units)"),
            ),
            ActionError::RefundRefused => {
                conflict("Stripe refused the refund; reload the order to see what is still refundable")
            }
            ActionError::Illegal(m) => conflict(m.message()),
            ActionError::Stripe(e) => ApiError::upstream(format!("order action: stripe: {e}")),
            ActionError::Store(e) => store_error("order action: store", &e),
            ActionError::HookRunUnsettled(Run::Unavailable) => ApiError::unavailable(
                "order action: hook run not finished: the database refused a connection",
                STORE_RETRY_AFTER,
            ),
            e => ApiError::internal(e.to_string()),
        }
    }
}

impl From<ReconcileError> for ApiError {
    fn from(e: ReconcileError) -> Self {
        match e {
            ReconcileError::ListEvents(_) | ReconcileError::Act(ActError::Stripe(_)) => {
                ApiError::upstream(e.to_string())
            }
            ReconcileError::Store(e) => store_error("reconcile: store", &e),
            ReconcileError::Act(ActError::Store(e)) => store_error("reconcile: event: store", &e),
            ReconcileError::Act(ActError::HookRunUnsettled(Run::Unavailable)) => ApiError::unavailable(
                "reconcile: hook run not finished: the database refused a connection",
                STORE_RETRY_AFTER,
            ),
            e => ApiError::internal(e.to_string()),
        }
    }
}

/// An order as the owner names it (`/api/orders?order=`, `/api/order-action`'s `order`): a
/// Checkout Session id as given, or an order number, uppercased; 400 for anything else.
pub fn order_reference(raw: &str) -> Result<String, ApiError> {
    let order = raw.trim();
    if crate::session::is_session_id(order) {
        return Ok(order.to_string());
    }
    if order.is_empty() || order.len() > 32 || !order.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(ApiError::bad_request("order: not an order number"));
    }
    Ok(order.to_ascii_uppercase())
}

/// An owner's action as POSTed (see [`read_owner_post`]).
#[derive(Debug)]
pub struct OwnerPost {
    /// The `Idempotency-Key` header.
    pub key: String,
    /// The body, at most [`JSON_BODY_LIMIT`].
    pub body: Bytes,
}

/// The shared front half of the owner's actions (`order-action`, `stock`): POST;
/// `ADMIN_TOKEN` unset ⇒ 404; the per-IP limit `RATE_LIMIT_ORDER_ACTIONS`, counted before the
/// token is checked (429); `Authorization: Bearer <ADMIN_TOKEN>` in constant time (401);
/// same-site only (403); `application/json` only (415); an `Idempotency-Key` (400 without);
/// the body within the limit.
pub async fn read_owner_post<B>(app: &App, req: http::Request<B>) -> Result<OwnerPost, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    http::require_method(&parts.method, &[Method::POST])?;
    let Some(token) = &app.config.admin_token else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no such route").with_reason("ADMIN_TOKEN is not set"));
    };
    let ip = http::client_ip(&parts.headers);
    app.limiter.check(&app.store, "order_actions", ip, app.config.order_actions_limit).await?;
    http::authorize_bearer(token, &parts.headers, "ADMIN_TOKEN")?;
    http::require_same_site(&parts.headers, &app.config.site_url)?;
    http::require_json(&parts.headers)?;
    let key = order_action::idempotency_key(&parts.headers)?;
    let body = http::read_body(&parts.headers, body, JSON_BODY_LIMIT).await?;
    Ok(OwnerPost { key, body })
}

/// The shared back half of the owner's actions: the key is claimed in the store for the
/// request (its canonical JSON) before anything is done ([`crate::owner_actions::claim`]); the
/// same key with the same request answers the first answer again (`Idempotent-Replayed:
/// true`; a concurrent duplicate is told 409 that it is in progress), with another request
/// 409. Then `act`: its answer (200) or its 4xx is kept with the key; on a 5xx the key is let
/// go, so a retry acts again.
pub async fn idempotent(
    app: &App,
    key: &str,
    canonical: &str,
    act: impl AsyncFnOnce() -> Result<serde_json::Value, ApiError>,
) -> Result<Response, ApiError> {
    use crate::store::KeyClaim;
    match crate::owner_actions::claim(app, key, &crate::owner_actions::request_hash(canonical)).await? {
        KeyClaim::Claimed => {}
        KeyClaim::Done(status, answer) => return Ok(replay(status, &answer)),
        KeyClaim::InProgress => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "an action with this Idempotency-Key is still in progress; retry in a moment",
            ));
        }
        KeyClaim::Mismatch => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "this Idempotency-Key was already used for another request; use a fresh key for a new action",
            ));
        }
    }
    let (status, answer) = match act().await {
        Ok(answer) => (StatusCode::OK, answer),
        Err(e) if e.status.is_client_error() => {
            e.log();
            (e.status, serde_json::json!({"error": {"message": e.message}}))
        }
        Err(e) => {
            if let Err(release) = app.store.release_action_key(key).await {
                crate::log::warn("idempotency key not released", &[("error", &release.to_string())]);
            }
            return Err(e);
        }
    };
    if let Err(e) = app.store.finish_action_key(key, status.as_u16(), &answer.to_string()).await {
        // Done, but its answer is not kept: a retry within the lease is told "in progress",
        // after it acts again (every step is idempotent under this key).
        crate::log::warn("owner action answer not kept", &[("error", &e.to_string())]);
    }
    Ok(http::json(status, &answer))
}

/// A kept answer, answered again.
fn replay(status: u16, answer: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(answer).unwrap_or_default();
    let mut resp = http::json(status, &body);
    resp.headers_mut().insert("idempotent-replayed", http::header::HeaderValue::from_static("true"));
    resp
}

/// A cart POSTed by the storefront, read and checked (see [`read_cart`]).
#[derive(Debug)]
pub struct CartPost {
    /// The body as sent: lines and the optional code.
    pub request: CartRequest,
    /// The cart checked against the catalog.
    pub cart: Cart,
    /// The client's IP, for further limits.
    pub client_ip: Option<IpAddr>,
}

/// The shared front half of the cart routes (`create-checkout`, `apply-discount`): POST only,
/// same-site, JSON, the per-IP rate limit `scope` (before any body is read), the body limit,
/// then the cart checked against what is on sale ([`crate::products::offer`]: a product no
/// longer sold is a 409 naming it).
pub async fn read_cart<B>(app: &App, req: http::Request<B>, scope: &str, limit: RateLimit) -> Result<CartPost, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    http::require_method(&parts.method, &[Method::POST])?;
    http::require_same_site(&parts.headers, &app.config.site_url)?;
    http::require_json(&parts.headers)?;
    let client_ip = http::client_ip(&parts.headers);
    app.limiter.check(&app.store, scope, client_ip, limit).await?;
    let bytes = http::read_body(&parts.headers, body, JSON_BODY_LIMIT).await?;
    let request: CartRequest = http::parse_json(&bytes)?;
    let cart = request.validate_in(&*crate::products::offer(app).await?)?;
    Ok(CartPost { request, cart, client_ip })
}
