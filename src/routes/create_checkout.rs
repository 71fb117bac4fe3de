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
//! 409 "NAME is no longer available" (or "The price of NAME has changed") when Stripe refuses
//! a line's Price that the Stripe catalog's copy still sold (the copy is refreshed), 502 when
//! Stripe fails otherwise (its message is logged, never answered), 503 when the store cannot
//! take the reservation. Any failure after the reservation releases it at once.

use crate::app::App;
use crate::cart::{Cart, CartError, Line};
use crate::catalog::Lookup;
use crate::config::{CatalogSource, UiMode};
use crate::discount;
use crate::ratelimit::Guess;
use crate::http::{self, ApiError, BoxError, Response};
use crate::session;
use crate::stock;
use crate::stripe::{Client, EventType, StripeError, types::Session};
use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

/// The discount decided for the cart's code, then the session created at Stripe for a
/// reservation.
async fn create(
    app: &App,
    request: &crate::cart::CartRequest,
    cart: &Cart,
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
    match app.stripe.post("/v1/checkout/sessions", &form, &Client::new_idempotency_key()).await {
        Ok(session) => Ok(session),
        Err(e) => match stale_line(app, cart, &e) {
            Some(line) => Err(withdrawn_at_checkout(app, line, &e).await),
            None => Err(ApiError::upstream(format!("create session: {e}"))),
        },
    }
}

/// The cart line whose Price Stripe refused (`param` `line_items[i][price]`: archived, or its
/// product archived, since the store's copy last heard), with the Stripe catalog only.
fn stale_line<'a>(app: &App, cart: &'a Cart, e: &StripeError) -> Option<&'a Line> {
    if app.config.catalog_source == CatalogSource::File {
        return None;
    }
    let StripeError::Api { status: 400, param: Some(param), .. } = e else {
        return None;
    };
    let index = param.strip_prefix("line_items[")?.strip_suffix("][price]")?;
    cart.lines.get(index.parse::<usize>().ok()?)
}

/// Stripe refused a line's Price the copy still sold: the copy learns of it now (the Product
/// retrieved, as its event would have it), and the shopper gets the 409 a withdrawn product
/// gets ("no longer available"; "price changed" when the Product has a new usable Price), never
/// Stripe's message, which is logged.
async fn withdrawn_at_checkout(app: &App, line: &Line, e: &StripeError) -> ApiError {
    let product = &line.product;
    crate::log::warn("stripe refused a price the catalog copy sold", &[("product", &product.id), ("error", &e.to_string())]);
    if let Err(e) = crate::products::on_event(app, EventType::ProductUpdated, &product.id).await {
        crate::log::warn("catalog copy not refreshed", &[("product", &product.id), ("error", &e.to_string())]);
    }
    let still_sold = match crate::products::offer(app).await {
        Ok(offer) => matches!(offer.find(&product.id), Lookup::OnSale(p) if p.price != product.price),
        Err(_) => false,
    };
    if still_sold {
        return ApiError::new(
            StatusCode::CONFLICT,
            format!("The price of {} has changed. Please check your cart.", product.name),
        );
    }
    CartError::no_longer_available(&product.name).into()
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
