//! `POST /api/create-checkout`: a Checkout Session whose every amount comes from the catalog
//! and whose discount, if any, the server decided.
//!
//! Parse: the cart ([`super::read_cart`]: POST, same-site, JSON, the per-IP limit, the body
//! limit, every line checked against the catalog). Decide: the cart's units are reserved
//! ([`stock::reserve`], one transaction); then a code tried here counts as a guess, then
//! [`discount::resolve`]; the session's parameters ([`session::params`]), expiring
//! [`stock::CHECKOUT_EXPIRY_SECS`] ahead and naming its reservation. Answer: `{"url"}` (hosted)
//! or `{"client_secret"}` (embedded); 4xx for a bad cart, 409 `{"error": {"message": "NAME is
//! sold out"}}` (or `"only N left of NAME"`) with nothing sent to Stripe, 429 past the limits,
//! 502 when Stripe fails (its message is logged, never answered), 503 when the store cannot
//! take the reservation. Any failure after the reservation releases it at once.

use crate::app::App;
use crate::config::UiMode;
use crate::discount;
use crate::ratelimit::Guess;
use crate::http::{self, ApiError, BoxError, Response};
use crate::session;
use crate::stock;
use crate::stripe::{Client, types::Session};
use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

/// The discount decided for the cart's code, then the session created at Stripe for a
/// reservation.
async fn create(
    app: &App,
    request: &crate::cart::CartRequest,
    cart: &crate::cart::Cart,
    client_ip: Option<std::net::IpAddr>,
    held: &stock::Held,
) -> Result<Session, ApiError> {
    let discount = match request.code.as_deref() {
        Some(code) => {
            // A code tried here is a code guess too: a new one counts against the same
            // distinct-code limit as apply-discount, so checkout cannot serve as a faster
            // enumeration oracle; the code the shopper already applied costs nothing.
            match discount::count_guess(app, client_ip, code).await? {
                Guess::Admitted => discount::resolve(app, cart, code).await,
                // Not countable: exactly a code that does not apply (fail closed).
                Guess::Uncounted => None,
            }
        }
        None => None,
    };
    let mut form = session::params(&app.config, cart, discount.as_ref());
    session::hold(&mut form, &held.id, held.expires_at);
    app.stripe
        .post("/v1/checkout/sessions", &form, &Client::new_idempotency_key())
        .await
        .map_err(|e| ApiError::upstream(format!("create session: {e}")))
}

/// Creates the session and answers `{"url"}` (hosted) or `{"client_secret"}` (embedded).
pub async fn handle<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let super::CartPost { request, cart, client_ip } =
        super::read_cart(app, req, "create-checkout", app.config.create_checkout_limit).await?;
    // Stock first: nothing is sent to Stripe (not even a code's look-up) for a cart the shop
    // cannot fill; whatever fails after it gives the units back at once.
    let held = stock::reserve(app, &cart).await?;
    let session = match create(app, &request, &cart, client_ip, &held).await {
        Ok(session) => session,
        Err(e) => {
            stock::release_now(app, &held).await;
            return Err(e);
        }
    };
    if let Err(e) = app.store.set_reservation_session(&held.id, &session.id).await {
        // The sweep releases it once expired; its events find it by the session's metadata.
        crate::log::warn("reservation's session not recorded", &[("reservation", &held.id), ("error", &e.to_string())]);
    }
    let answer = match app.config.ui_mode {
        UiMode::Hosted => json!({ "url": session.url.ok_or_else(|| ApiError::upstream("session without url"))? }),
        UiMode::Embedded => json!({
            "client_secret": session.client_secret.ok_or_else(|| ApiError::upstream("session without client_secret"))?
        }),
    };
    crate::log::info("checkout session created", &[("session_id", &session.id)]);
    Ok(http::json(StatusCode::OK, &answer))
}
