//! `POST /api/create-checkout`: a Checkout Session whose every amount comes
//! from the catalog and whose discount, if any, the server decided.

use crate::app::App;
use crate::cart::{self, Cart};
use crate::config::{Config, UiMode};
use crate::discount::{self, AppliedDiscount};
use crate::http::{self, ApiError, BoxError, Response};
use crate::stripe::{Client, Form, types::Session};
use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

/// Creates the session and answers `{"url"}` (hosted) or `{"client_secret"}` (embedded).
pub async fn create_checkout<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let limit = app.config.create_checkout_limit;
    let (request, cart, ip) = cart::read(app, req, "create-checkout", limit).await?;
    let discount = match request.code.as_deref() {
        Some(code) => {
            // A code tried here is a code guess too: a new one counts against the same
            // distinct-code limit as apply-discount, so checkout cannot serve as a faster
            // enumeration oracle; the code the shopper already applied costs nothing.
            discount::count_guess(app, ip, code).await?;
            discount::resolve(app, &cart, code).await
        }
        None => None,
    };
    let form = session_params(&app.config, &cart, discount.as_ref());
    let session: Session = app
        .stripe
        .post("/v1/checkout/sessions", &form, &Client::new_idempotency_key())
        .await
        .map_err(|e| ApiError::upstream(format!("create session: {e}")))?;
    let answer = match app.config.ui_mode {
        UiMode::Hosted => json!({ "url": session.url.ok_or_else(|| ApiError::upstream("session without url"))? }),
        UiMode::Embedded => json!({
            "client_secret": session.client_secret.ok_or_else(|| ApiError::upstream("session without client_secret"))?
        }),
    };
    crate::log::info("checkout session created", &[("session_id", &session.id)]);
    Ok(http::json(StatusCode::OK, &answer))
}

/// The form sent to `POST /v1/checkout/sessions`. URLs come from `SITE_URL`,
/// amounts from the catalog, the discount from [`discount::resolve`].
pub fn session_params(config: &Config, cart: &Cart, discount: Option<&AppliedDiscount>) -> Form {
    let mut f = Form::new();
    f.push("mode", "payment").push("ui_mode", config.ui_mode.as_str());
    for (i, line) in cart.lines.iter().enumerate() {
        let p = line.product;
        match &p.price {
            Some(price) => {
                f.push(format!("line_items[{i}][price]"), price.as_str());
            }
            None => {
                let pd = format!("line_items[{i}][price_data]");
                f.push(format!("{pd}[currency]"), p.currency.as_str())
                    .push(format!("{pd}[unit_amount]"), p.unit_amount.to_string())
                    .push(format!("{pd}[product_data][name]"), p.name.as_str());
                if !p.description.is_empty() {
                    f.push(format!("{pd}[product_data][description]"), p.description.as_str());
                }
            }
        }
        f.push(format!("line_items[{i}][quantity]"), line.quantity.to_string());
    }
    f.push(format!("metadata[{}]", crate::fulfillment::SESSION_TAG.0), crate::fulfillment::SESSION_TAG.1);
    let landing = format!("{}/success.html?session_id={{CHECKOUT_SESSION_ID}}", config.site_url);
    match config.ui_mode {
        UiMode::Hosted => {
            f.push("success_url", landing).push("cancel_url", format!("{}/cancel.html", config.site_url));
        }
        UiMode::Embedded => {
            f.push("return_url", landing);
        }
    }
    if let Some(d) = discount {
        f.push("discounts[0][promotion_code]", d.promotion_code.as_str());
    }
    f
}
