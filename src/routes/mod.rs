//! The routes: one module per `api/*.rs` function (same name, `-` ⇒ `_`), each reading
//! parse ⇒ decide ⇒ answer with its contract in its module doc, and the one dispatcher the
//! dev server and the tests call (each Vercel entry point calls its route's `handle`).
//!
//! Every route checks the request's head (method, same-site, what it names) and then, before
//! reading a body or calling Stripe, its rate limit.

pub mod apply_discount;
pub mod checkout_status;
pub mod create_checkout;
pub mod products;
pub mod reconcile;
pub mod webhook;

use crate::app::App;
use crate::cart::{Cart, CartRequest};
use crate::config::RateLimit;
use crate::http::{self, ApiError, BoxError, JSON_BODY_LIMIT, Response};
use bytes::Bytes;
use http::Method;
use std::net::IpAddr;

/// Every `/api/*` function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /api/products`.
    Products,
    /// `POST /api/create-checkout`.
    CreateCheckout,
    /// `POST /api/apply-discount`.
    ApplyDiscount,
    /// `POST /api/webhook`.
    Webhook,
    /// `GET /api/checkout-status`.
    CheckoutStatus,
    /// `GET /api/reconcile` (Vercel Cron).
    Reconcile,
}

impl Route {
    /// All routes.
    pub const ALL: [Route; 6] = [
        Route::Products,
        Route::CreateCheckout,
        Route::ApplyDiscount,
        Route::Webhook,
        Route::CheckoutStatus,
        Route::Reconcile,
    ];

    /// The URL path, which is also the `api/*.rs` file name.
    pub fn path(self) -> &'static str {
        match self {
            Route::Products => "/api/products",
            Route::CreateCheckout => "/api/create-checkout",
            Route::ApplyDiscount => "/api/apply-discount",
            Route::Webhook => "/api/webhook",
            Route::CheckoutStatus => "/api/checkout-status",
            Route::Reconcile => "/api/reconcile",
        }
    }

    /// The route serving a URL path.
    pub fn from_path(path: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.path() == path)
    }
}

/// Handles a request with the given state; every error becomes its response.
pub async fn dispatch<B>(route: Route, app: &App, req: http::Request<B>) -> Response
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let result = match route {
        Route::Products => products::handle(app, req).await,
        Route::CreateCheckout => create_checkout::handle(app, req).await,
        Route::ApplyDiscount => apply_discount::handle(app, req).await,
        Route::Webhook => webhook::handle(app, req).await,
        Route::CheckoutStatus => checkout_status::handle(app, req).await,
        Route::Reconcile => reconcile::handle(app, req).await,
    };
    result.unwrap_or_else(ApiError::into_response)
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
/// then the cart checked against the catalog.
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
    let cart = request.validate()?;
    Ok(CartPost { request, cart, client_ip })
}
