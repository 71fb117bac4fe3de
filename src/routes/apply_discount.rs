//! `POST /api/apply-discount`: the totals the server computes for a cart and a promotion code.
//!
//! Parse: the cart ([`super::read_cart`], with its own per-IP request limit). Decide: a code
//! counts as a guess when it is new to this client ([`count_guess`]), then
//! [`resolve`] within 80 % of the floor. Answer: [`Totals`], the same fields whatever
//! happened — a code that does not apply answers exactly like no code — padded to
//! `DISCOUNT_RESPONSE_FLOOR_MS` so timing tells nothing either; 429 past the limits.

use crate::app::App;
use crate::discount::{count_guess, resolve};
use crate::ratelimit::Guess;
use crate::http::{self, ApiError, BoxError, Response};
use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;
use std::time::{Duration, Instant};

/// The totals `apply-discount` answers: same fields, same order, whatever happened.
#[derive(Debug, Serialize)]
pub struct Totals {
    /// Currency of every amount.
    pub currency: String,
    /// Cart subtotal.
    pub subtotal: i64,
    /// Discount (0 when no code applies).
    pub discount: i64,
    /// `subtotal - discount`.
    pub total: i64,
}

/// `POST /api/apply-discount`: server-computed totals for a cart and a code,
/// padded to the configured floor.
pub async fn handle<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let started = Instant::now();
    let super::CartPost { request, cart, client_ip } =
        super::read_cart(app, req, "apply-discount", app.config.apply_discount_requests_limit).await?;
    // A guess the shared counter could not count is a code that does not apply (fail closed).
    let code = match request.code.as_deref() {
        Some(code) => match count_guess(app, client_ip, code).await? {
            Guess::Admitted => Some(code),
            Guess::Uncounted => None,
        },
        None => None,
    };
    let floor = app.config.discount_floor;
    // The look-up may use at most 80 % of the floor; past that the code
    // simply does not apply, so a slow Stripe cannot stretch the answer.
    // A zero floor (tests, or an owner's explicit choice) disables padding and the budget.
    let discount = match code {
        Some(code) if floor.is_zero() => resolve(app, &cart, code).await,
        Some(code) => tokio::time::timeout(floor.mul_f64(0.8), resolve(app, &cart, code)).await.ok().flatten(),
        None => None,
    };
    let amount = discount.map_or(0, |d| d.amount);
    let totals = Totals {
        currency: cart.currency.clone(),
        subtotal: cart.subtotal,
        discount: amount,
        total: cart.subtotal - amount,
    };
    pad_to(started, floor).await;
    Ok(http::json(StatusCode::OK, &totals))
}

/// Sleeps until `floor` has passed since `started`.
async fn pad_to(started: Instant, floor: Duration) {
    if let Some(rest) = floor.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
}
