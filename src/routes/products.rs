//! `GET /api/products`: the catalog's public fields, the publishable key (the only key type
//! that can reach the page), the Checkout UI mode, and whether the shop runs on test keys.
//!
//! Parse: GET or HEAD. Decide: nothing — every field is public. Answer: cacheable JSON
//! (`public, max-age=60, s-maxage=300`). No rate limit: the CDN answers most of it.

use crate::app::App;
use crate::http::{self, ApiError, Method, Response};
use serde::Serialize;

/// Answers the catalog.
pub async fn handle<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError> {
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
