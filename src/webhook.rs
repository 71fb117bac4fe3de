//! `POST /api/webhook`: verify the raw bytes, then act on the event.
//!
//! Forged or malformed deliveries get one generic 400 (the typed reason is
//! logged). Every authentic event is acknowledged with 2xx — including types
//! we do not handle and shapes we do not expect — except when recording it
//! failed, which answers 5xx so Stripe retries: nothing is acknowledged that
//! was not durably recorded.

use crate::after_payment::{self, HandleError, Handled};
use crate::app::App;
use crate::config::Mode;
use crate::fulfillment::{self, FulfillError};
use crate::hooks::{self, Run, RunKey};
use crate::http::{self, ApiError, BoxError, Response};
use crate::signature::{self, SignatureError};
use crate::store::{Applied, EventRef};
use crate::stripe::event::{self, Event, Shape};
use bytes::Bytes;
use http::{Method, StatusCode};

/// Logged (level error) when Stripe answers 404 for the session of an authentic event.
pub const UNKNOWN_SESSION_HINT: &str = "Stripe does not know this event's session (404): STRIPE_SECRET_KEY and \
     this webhook endpoint are probably in different Stripe accounts or sandboxes (or test and live mode); \
     use the secret key of the account whose endpoint signs these events";

/// Largest webhook body accepted (Stripe's events are far smaller).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The Checkout Session events fulfilment acts on.
pub const CHECKOUT_EVENT_TYPES: &[&str] = &[
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
];

/// Every event type the shop acts on (the rest are acknowledged and ignored).
pub fn handled_event_types() -> impl Iterator<Item = &'static str> {
    CHECKOUT_EVENT_TYPES.iter().chain(after_payment::EVENT_TYPES).copied()
}

/// What happened to an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Acted on and recorded.
    Processed,
    /// Seen before: acknowledged, nothing done.
    Duplicate,
    /// Authentic but not for us (type, shape or mode): acknowledged.
    Ignored,
}

impl Disposition {
    /// `processed`, `duplicate` or `ignored`.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Processed => "processed",
            Disposition::Duplicate => "duplicate",
            Disposition::Ignored => "ignored",
        }
    }
}

/// Receives one delivery.
pub async fn receive<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    http::require_method(&parts.method, &[Method::POST])?;
    let payload = http::read_body(&parts.headers, body, BODY_LIMIT).await?;
    let header = parts.headers.get("stripe-signature").map(|v| v.to_str().unwrap_or("\u{0}"));
    let event =
        authenticate(&payload, header, &app.config.webhook_secrets, crate::store::now()).map_err(|e| match e {
            SignatureError::NoSecretConfigured => {
                ApiError::internal("STRIPE_WEBHOOK_SECRET is not set: refusing every event")
            }
            e => ApiError::bad_request("invalid webhook").with_reason(format!("webhook rejected: {e}")),
        })?;
    let disposition = match event {
        Ok(event) => handle(app, &event).await?,
        Err(shape) => {
            crate::log::warn("authentic event with an unexpected shape", &[("error", shape.0)]);
            Disposition::Ignored
        }
    };
    let body = match disposition {
        Disposition::Processed => r#"{"received":true,"result":"processed"}"#,
        Disposition::Duplicate => r#"{"received":true,"result":"duplicate"}"#,
        Disposition::Ignored => r#"{"received":true,"result":"ignored"}"#,
    };
    Ok(http::json_static(StatusCode::OK, body))
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

/// Acts on a verified event.
pub async fn handle(app: &App, event: &Event<'_>) -> Result<Disposition, ApiError> {
    let live = app.config.mode() == Mode::Live;
    if event.livemode != live {
        crate::log::warn("event from the other mode ignored", &[("event_id", &event.id)]);
        return Ok(Disposition::Ignored);
    }
    let payment_failed = match &*event.kind {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" | "checkout.session.expired" => false,
        "checkout.session.async_payment_failed" => true,
        kind if after_payment::EVENT_TYPES.contains(&kind) => return after_payment(app, event).await,
        other => {
            // Sampled: an endpoint subscribed to more types than the shop handles would
            // otherwise write a line per delivery. Stripe's Dashboard lists every delivery
            // with our answer (`"result":"ignored"`).
            crate::log::info_sampled(other, "event type not handled", &[("event_id", &event.id), ("type", other)]);
            return Ok(Disposition::Ignored);
        }
    };
    let session_id = event.object.id.as_deref().unwrap_or("");
    if !fulfillment::is_session_id(session_id) {
        crate::log::warn("checkout event without a session id", &[("event_id", &event.id)]);
        return Ok(Disposition::Ignored);
    }
    if app.store.event_seen(&event.id).await? {
        // A redelivery: the event counted already, but the owner's action may
        // not have finished (the answer to our commit can be lost).
        let run = hooks::resume(app, RunKey::Fulfillment(session_id), hooks::HELD_WAIT).await;
        return settled(run, session_id).map(|()| Disposition::Duplicate);
    }
    let ev = EventRef { id: &event.id, kind: &event.kind };
    match fulfillment::fulfill(app, session_id, Some(ev), payment_failed).await {
        Ok(outcome) => {
            settled(outcome.run, session_id)?;
            Ok(if outcome.applied == Some(Applied::DuplicateEvent) {
                Disposition::Duplicate
            } else {
                Disposition::Processed
            })
        }
        Err(FulfillError::NotOurs) => {
            crate::log::info("event for a session this shop did not create", &[("event_id", &event.id)]);
            Ok(Disposition::Ignored)
        }
        Err(FulfillError::Stripe(e)) if e.is_not_found() => {
            // Retrying cannot help: the session does not exist for our key. An authentic
            // event for a session our key cannot see is almost always a setup mistake.
            crate::log::error(UNKNOWN_SESSION_HINT, &[("event_id", &event.id), ("error", &e.to_string())]);
            Ok(Disposition::Ignored)
        }
        Err(FulfillError::Stripe(e)) => Err(ApiError::upstream(format!("fulfil {session_id}: {e}"))),
        Err(FulfillError::Store(e)) => Err(ApiError::internal(format!("fulfil {session_id}: {e}"))),
    }
}

/// A refund or dispute event: acknowledged once the order's money is recorded as Stripe has
/// it now and the owner's hook ran; 5xx when Stripe or the store failed, so Stripe retries.
async fn after_payment(app: &App, event: &Event<'_>) -> Result<Disposition, ApiError> {
    let Some(subject) = after_payment::subject(&event.kind, &event.object) else {
        crate::log::info("after-payment event without a PaymentIntent", &[("event_id", &event.id)]);
        return Ok(Disposition::Ignored);
    };
    let ev = EventRef { id: &event.id, kind: &event.kind };
    let reason = |e: &dyn std::fmt::Display| format!("{} {}: {e}", event.kind, subject.payment_intent);
    match after_payment::handle(app, ev, &subject).await {
        Ok(Handled::Processed) => Ok(Disposition::Processed),
        Ok(Handled::Duplicate) => Ok(Disposition::Duplicate),
        Ok(Handled::NotOurs) => {
            crate::log::info("event for a payment this shop did not take", &[("event_id", &event.id)]);
            Ok(Disposition::Ignored)
        }
        Ok(Handled::Unsettled(run)) => Err(ApiError::internal(reason(&format!("hook run not finished: {run:?}")))),
        Err(HandleError::Stripe(e)) => Err(ApiError::upstream(reason(&e))),
        Err(e) => Err(ApiError::internal(reason(&e))),
    }
}

/// An event is acknowledged only once the owner's action for its order is
/// done; otherwise 5xx, and Stripe's retry finds it done or takes it over.
fn settled(run: Run, session_id: &str) -> Result<(), ApiError> {
    if run.settled() {
        Ok(())
    } else {
        Err(ApiError::internal(format!("fulfilment run for {session_id} not finished: {run:?}")))
    }
}
