//! `POST /api/stock`: the owner sets how many units of a product are on hand.
//!
//! Parse: as `/api/order-action` ([`super::read_owner_post`]: POST; `ADMIN_TOKEN` unset ⇒ 404;
//! the per-IP limit `RATE_LIMIT_ORDER_ACTIONS` (429); the bearer token in constant time (401);
//! same-site only (403); `application/json` only (415); an `Idempotency-Key` (400)); the body
//! exactly `{"product": ID, "stock": N}` — `N` a whole number 0..=1,000,000 of units on hand
//! (reserved units included), or `null` for unlimited; a product the catalog does not sell is
//! 404, anything else 400.
//!
//! Decide: the key is claimed as for an order action ([`super::idempotent`]: a replay answers
//! the first answer, another body under the same key is 409); then [`stock::set`].
//!
//! Answer: 200, `no-store`, the product's stock ([`stock::StockState`]: `stock`, `reserved`,
//! `available`, `sold`, `oversold`). Units held by open checkouts stay held: setting fewer
//! units than are reserved leaves nothing available until they are released.

use crate::app::App;
use crate::http::{self, ApiError, BoxError, Response, StatusCode};
use crate::stock;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The most units a product can be given.
pub const MAX_STOCK: i64 = 1_000_000;

/// The body: the product and its units on hand (`null`: unlimited); both required.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StockRequest {
    /// The shop's product id.
    pub product: String,
    /// Units on hand, or `null` for unlimited (required: `Option` without a default).
    #[serde(deserialize_with = "required_nullable")]
    pub stock: Option<i64>,
}

/// A field that must be present and may be `null`.
fn required_nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<i64>::deserialize(d)
}

/// Sets a product's stock (see the module doc for the contract).
pub async fn handle<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let super::OwnerPost { key, body } = super::read_owner_post(app, req).await?;
    let request: StockRequest = http::parse_json(&body)?;
    if request.stock.is_some_and(|n| !(0..=MAX_STOCK).contains(&n)) {
        return Err(ApiError::bad_request("stock: a whole number of units from 0 to 1000000, or null for unlimited"));
    }
    let offer = crate::products::offer(app).await?;
    if offer.find(&request.product) == crate::catalog::Lookup::Unknown {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "product: no such product in the catalog"));
    }
    let canonical = serde_json::to_string(&request).map_err(|e| ApiError::internal(format!("stock: {e}")))?;
    super::idempotent(app, &key, &format!("stock:{canonical}"), async || {
        let state = stock::set(app, &request.product, request.stock).await?;
        Ok(serde_json::to_value(state).unwrap_or_default())
    })
    .await
}
