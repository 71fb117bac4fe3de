//! The routes, each a function of the library, and the one dispatcher the
//! Vercel entry points, the dev server and the tests all call.

use crate::app::App;
use crate::http::{self, ApiError, BoxError, Response};
use bytes::Bytes;
use http::Method;
use serde::Serialize;

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

/// Handles a request with the instance's shared state (see [`App::shared`]).
pub async fn handle<B>(route: Route, req: http::Request<B>) -> Response
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    match App::shared() {
        Ok(app) => dispatch(route, app, req).await,
        Err(e) => e.into_response(),
    }
}

/// Handles a request with the given state; every error becomes its response.
pub async fn dispatch<B>(route: Route, app: &App, req: http::Request<B>) -> Response
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let result = match route {
        Route::Products => products(app, req).await,
        Route::CreateCheckout => crate::checkout::create_checkout(app, req).await,
        Route::ApplyDiscount => crate::discount::apply_discount(app, req).await,
        Route::Webhook => crate::webhook::receive(app, req).await,
        Route::CheckoutStatus => crate::status::checkout_status(app, req).await,
        Route::Reconcile => crate::reconcile::reconcile(app, req).await,
    };
    result.unwrap_or_else(ApiError::into_response)
}

/// `GET /api/products`: the catalog's public fields, the publishable key (the
/// only key type that can reach the page), the Checkout UI mode, and whether
/// the shop runs on test keys.
pub async fn products<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError> {
    http::require_method(req.method(), &[Method::GET, Method::HEAD])?;
    #[derive(Serialize)]
    struct Products<'a> {
        products: &'a [crate::catalog::Product],
        publishable_key: Option<&'a str>,
        ui_mode: &'static str,
        /// The keys are test keys: the storefront shows a "Test mode" ribbon.
        test_mode: bool,
    }
    let body = Products {
        products: crate::catalog::products(),
        publishable_key: app.config.publishable_key.as_ref().map(|k| k.as_str()),
        ui_mode: app.config.ui_mode.as_str(),
        test_mode: app.config.mode() == crate::config::Mode::Test,
    };
    let mut resp = http::json(http::StatusCode::OK, &body);
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::header::HeaderValue::from_static("public, max-age=60, s-maxage=300"),
    );
    Ok(resp)
}
