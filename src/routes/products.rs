//! `GET /api/products`: the catalog's public fields (which products ship, the shipping rates),
//! whether Stripe Tax adds tax at checkout, the publishable key (the only key type that can
//! reach the page), the Checkout UI mode, and whether the shop runs on test keys.
//!
//! Parse: GET or HEAD. Decide: nothing — every field is public. Answer: cacheable JSON
//! (`public, max-age=60, s-maxage=300`). No rate limit: the CDN answers most of it.
//!
//! Each product with limited stock says `available`: the units left when at most
//! [`stock::EXACT_BELOW`] (0: sold out), else `"in_stock"`; unlimited products have no
//! `available`. Being cached, it can be minutes old: `create-checkout`'s 409 is the truth.

use crate::app::App;
use crate::http::{self, ApiError, Method, Response};
use crate::stock;
use serde::Serialize;

/// A product as listed: the catalog's public fields and, for limited stock, what is left.
#[derive(Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    product: &'a crate::catalog::Product,
    /// Absent: unlimited. Else the exact units left when few (0: sold out), or `"in_stock"`
    /// (see [`stock::Availability`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    available: Option<stock::Availability>,
}

/// Every product with its availability; when the store cannot be read, without it (the
/// checkout's 409 is the truth either way).
async fn listed(app: &App) -> Vec<Listed<'static>> {
    let levels = app.store.stock_levels().await.unwrap_or_else(|e| {
        crate::log::warn("stock not read for the product list", &[("error", &e.to_string())]);
        Vec::new()
    });
    crate::catalog::products()
        .iter()
        .map(|product| {
            let level = levels.iter().find(|l| l.product == product.id);
            Listed { product, available: stock::Availability::of(level, product.stock) }
        })
        .collect()
}

/// Answers the catalog.
pub async fn handle<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError> {
    http::require_method(req.method(), &[Method::GET, Method::HEAD])?;
    #[derive(Serialize)]
    struct Products<'a> {
        products: Vec<Listed<'a>>,
        publishable_key: Option<&'a str>,
        ui_mode: &'static str,
        /// The keys are test keys: the storefront shows a "Test mode" ribbon.
        test_mode: bool,
        /// The rates offered at checkout when the cart holds something that ships.
        shipping_rates: &'a [crate::catalog::ShippingRate],
        /// `STRIPE_AUTOMATIC_TAX`: tax is computed at checkout from the address.
        automatic_tax: bool,
        /// With automatic tax, whether prices include it.
        tax_behavior: &'static str,
    }
    let body = Products {
        products: listed(app).await,
        publishable_key: app.config.publishable_key.as_ref().map(|k| k.as_str()),
        ui_mode: app.config.ui_mode.as_str(),
        test_mode: app.config.mode() == crate::config::Mode::Test,
        shipping_rates: &crate::catalog::catalog().shipping_rates,
        automatic_tax: app.config.automatic_tax,
        tax_behavior: crate::catalog::catalog().tax.behavior.as_str(),
    };
    let mut resp = http::json(http::StatusCode::OK, &body);
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::header::HeaderValue::from_static("public, max-age=60, s-maxage=300"),
    );
    Ok(resp)
}
