//! `POST /api/webhook`: Stripe's event deliveries.
//!
//! Parse: POST, the raw body (at most [`BODY_LIMIT`]), the `Stripe-Signature` header.
//! Decide: [`authenticate`] on the raw bytes before anything reads them, then the event's one
//! action ([`events::act`]). Answer: `{"received": true, "result": ...}`.
//!
//! Forged or malformed deliveries get one generic 400 (the typed reason is logged). Every
//! authentic event is acknowledged with 2xx — including types we do not handle and shapes we
//! do not expect — except when recording it (or the owner's hook it caused) failed, which
//! answers 5xx so Stripe retries: nothing is acknowledged that was not durably recorded. No
//! rate limit: only a correctly signed body does any work. For the health view, the statement
//! that records an event also records that the webhook brought it (no extra round trip), and a
//! refusal is counted by class in memory and written in bounded batches ([`crate::refusals`]).

use crate::app::App;
use crate::events::{self, Disposition};
use crate::http::{self, ApiError, BoxError, Response};
use crate::signature::{self, SignatureError};
use crate::store::Via;
use crate::stripe::event::{self, Event, Shape};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Serialize;

/// Largest webhook body accepted (Stripe's events are far smaller).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// One delivery as received: the raw body and the `Stripe-Signature` header (a header that is
/// not text is kept as a value no signature matches).
pub struct Delivery {
    /// The exact bytes Stripe signed.
    pub payload: Bytes,
    /// `Stripe-Signature`, if sent.
    pub signature: Option<String>,
}

impl Delivery {
    /// Parse: POST, the raw body within [`BODY_LIMIT`], the signature header.
    pub async fn parse<B>(req: http::Request<B>) -> Result<Delivery, ApiError>
    where
        B: http_body::Body<Data = Bytes> + Send,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        http::require_method(&parts.method, &[Method::POST])?;
        let payload = http::read_body(&parts.headers, body, BODY_LIMIT).await?;
        let signature =
            parts.headers.get("stripe-signature").map(|v| v.to_str().unwrap_or("\u{0}").to_string());
        Ok(Delivery { payload, signature })
    }
}

/// The answer to an authentic delivery.
#[derive(Serialize)]
struct Received {
    received: bool,
    /// [`Disposition::as_str`].
    result: &'static str,
}

/// Receives one delivery: parse, decide (authenticate, then the event's one action), answer.
pub async fn handle<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let delivery = Delivery::parse(req).await?;
    let now = crate::clock::now();
    let event = match authenticate(&delivery.payload, delivery.signature.as_deref(), &app.config.webhook_secrets, now) {
        Ok(event) => event,
        Err(e) => {
            // Counted for the health view in memory; written in bounded batches (crate::refusals).
            // Boxed: its store write would otherwise grow every delivery's future.
            Box::pin(app.refusals.count(&app.store, &app.source, e.class(), now)).await;
            return Err(match e {
                SignatureError::NoSecretConfigured => {
                    ApiError::internal("STRIPE_WEBHOOK_SECRET is not set: refusing every event")
                }
                e => ApiError::bad_request("invalid webhook").with_reason(format!("webhook rejected: {e}")),
            });
        }
    };
    let disposition = match event {
        Ok(event) => events::act(app, &event, Via::Webhook).await.map_err(|e| {
            // The log line names the event (its id and type), never a response.
            let mut error = ApiError::from(e);
            error.reason = format!("{} {}: {}", event.kind, event.id, error.reason);
            error
        })?,
        Err(shape) => {
            crate::log::warn("authentic event with an unexpected shape", &[("error", shape.0)]);
            Disposition::Ignored
        }
    };
    Ok(http::json(StatusCode::OK, &Received { received: true, result: disposition.as_str() }))
}

/// The whole acceptance decision on raw bytes, before anything else reads
/// them: the signature (see [`signature::verify`]), then a complete JSON
/// document — as stripe-node's `constructEvent` and stripe-python's
/// `construct_event` require. The same single pass reads the event
/// ([`event::parse`]): `Ok(Err(shape))` is authentic JSON that is not shaped
/// like an Event, acknowledged and ignored by the caller.
pub fn authenticate<'a>(
    payload: &'a [u8],
    header: Option<&str>,
    secrets: &[crate::config::WebhookSecret],
    now: i64,
) -> Result<Result<Event<'a>, Shape>, SignatureError> {
    signature::verify(payload, header, secrets, now)?;
    event::parse(payload).map_err(|_| SignatureError::BodyNotJson)
}
