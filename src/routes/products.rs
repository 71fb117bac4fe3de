//! `GET /api/products`: what is on sale ([`crate::products::offer`]: the compiled-in catalog, or
//! the store's copy of the Stripe catalog) with its public fields, the shipping rates, whether
//! Stripe Tax adds tax at checkout, the publishable key (the only key type that can reach the
//! page), the Checkout UI mode, and whether the shop runs on test keys.
//!
//! Parse: GET or HEAD, `If-None-Match`. Decide: nothing — every field is public. Answer: JSON
//! with a strong `ETag` (the body's SHA-256) and a shared cache ([`CACHE_CONTROL`]: Vercel's CDN
//! answers most requests and a price changed in the Dashboard reaches shoppers within a
//! minute); `304 Not Modified` when `If-None-Match` names the current `ETag`. No rate limit: the
//! CDN answers most of it. 502/503 only when the Stripe catalog's copy was never filled and
//! cannot be now.
//!
//! Each product with limited stock says `available`: the units left when at most
//! [`stock::EXACT_BELOW`] (0: sold out), else `"in_stock"`; unlimited products have no
//! `available`. Being cached, it can be a minute or more old: `create-checkout`'s 409 is the truth.

use crate::app::App;
use crate::catalog::Product;
use crate::http::{self, ApiError, Method, Response, header};
use crate::stock;
use bytes::Bytes;
use serde::Serialize;

/// Browsers revalidate every time (a 304 is cheap); Vercel's CDN keeps the answer a minute and
/// serves it stale for five more while it fetches the next.
pub const CACHE_CONTROL: &str = "public, max-age=0, s-maxage=60, stale-while-revalidate=300";

/// A product as listed: the catalog's public fields and, for limited stock, what is left.
#[derive(Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    product: &'a Product,
    /// Absent: unlimited. Else the exact units left when few (0: sold out), or `"in_stock"`
    /// (see [`stock::Availability`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    available: Option<stock::Availability>,
}

/// Every product with its availability; when the store cannot be read, without it (the
/// checkout's 409 is the truth either way).
async fn listed<'a>(app: &App, on_sale: &'a [Product]) -> Vec<Listed<'a>> {
    let levels = app.store.stock_levels().await.unwrap_or_else(|e| {
        crate::log::warn("stock not read for the product list", &[("error", &e.to_string())]);
        Vec::new()
    });
    on_sale
        .iter()
        .map(|product| {
            let level = levels.iter().find(|l| l.product == product.id);
            Listed { product, available: stock::Availability::of(level, product.stock) }
        })
        .collect()
}

/// Answers what is on sale.
pub async fn handle<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError> {
    http::require_method(req.method(), &[Method::GET, Method::HEAD])?;
    let offer = crate::products::offer(app).await?;
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
        products: listed(app, &offer.on_sale).await,
        publishable_key: app.config.publishable_key.as_ref().map(|k| k.as_str()),
        ui_mode: app.config.ui_mode.as_str(),
        test_mode: app.config.mode() == crate::config::Mode::Test,
        shipping_rates: &crate::catalog::catalog().shipping_rates,
        automatic_tax: app.config.automatic_tax,
        tax_behavior: crate::catalog::catalog().tax.behavior.as_str(),
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::internal(format!("products: {e}")))?;
    let etag = format!("\"{}\"", &http::sha256_hex(&bytes)[..32]);
    let mut resp = if matches(req.headers().get(header::IF_NONE_MATCH), &etag) {
        let mut resp = http::json_bytes(http::StatusCode::NOT_MODIFIED, Bytes::new());
        resp.headers_mut().remove(header::CONTENT_TYPE);
        resp
    } else {
        http::json_bytes(http::StatusCode::OK, Bytes::from(bytes))
    };
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static(CACHE_CONTROL));
    if let Ok(v) = header::HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    Ok(resp)
}

/// Whether `If-None-Match` (`*`, or a list of entity tags, weak ones compared weakly as RFC 9110
/// says for this header) names `etag`.
fn matches(if_none_match: Option<&header::HeaderValue>, etag: &str) -> bool {
    let Some(list) = if_none_match.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    list.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_names_the_tag() {
        let v = |s: &'static str| header::HeaderValue::from_static(s);
        let tag = "\"abc\"";
        assert!(matches(Some(&v("\"abc\"")), tag));
        assert!(matches(Some(&v("\"x\", W/\"abc\"")), tag));
        assert!(matches(Some(&v("*")), tag));
        assert!(!matches(Some(&v("\"abd\"")), tag));
        assert!(!matches(Some(&v("abc")), tag));
        assert!(!matches(None, tag));
    }
}
