//! One typed event ⇒ one action: what the shop does with an authentic Stripe event, whoever
//! brings it (the webhook, or the reconciliation run listing missed events).
//!
//! Checkout Session events fulfil (see [`crate::fulfillment`]); refund and dispute events move
//! the order's money (see [`crate::after_payment`]); every other type is acknowledged and
//! ignored. An event is acknowledged only once it was durably recorded and the owner's hook it
//! caused has run; otherwise the caller answers 5xx and Stripe retries.

use crate::after_payment::{self, HandleError, Handled};
use crate::app::App;
use crate::config::Mode;
use crate::fulfillment::{self, FulfillError, Trigger};
use crate::hooks::{self, Run, RunKey};
use crate::http::ApiError;
use crate::store::{Applied, EventRef};
use crate::stripe::types::Event;

/// Logged (level error) when Stripe answers 404 for the session of an authentic event.
pub const UNKNOWN_SESSION_HINT: &str = "Stripe does not know this event's session (404): STRIPE_SECRET_KEY and \
     this webhook endpoint are probably in different Stripe accounts or sandboxes (or test and live mode); \
     use the secret key of the account whose endpoint signs these events";

/// The Checkout Session events fulfilment acts on.
pub const CHECKOUT_EVENT_TYPES: &[&str] = &[
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
];

/// A Checkout Session event, by what it means for the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutEvent {
    /// `checkout.session.completed`: paid, or waiting for a delayed payment.
    Completed,
    /// `checkout.session.async_payment_succeeded`.
    AsyncPaymentSucceeded,
    /// `checkout.session.async_payment_failed`: the order failed.
    AsyncPaymentFailed,
    /// `checkout.session.expired`.
    Expired,
}

/// What an event's type means to the shop, decided once from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A Checkout Session event: fulfilment.
    Checkout(CheckoutEvent),
    /// A charge, refund or dispute event: the order's money.
    AfterPayment,
    /// Anything else: acknowledged, ignored.
    Other,
}

impl EventKind {
    /// The kind of an event type.
    pub fn of(kind: &str) -> EventKind {
        match kind {
            "checkout.session.completed" => EventKind::Checkout(CheckoutEvent::Completed),
            "checkout.session.async_payment_succeeded" => EventKind::Checkout(CheckoutEvent::AsyncPaymentSucceeded),
            "checkout.session.async_payment_failed" => EventKind::Checkout(CheckoutEvent::AsyncPaymentFailed),
            "checkout.session.expired" => EventKind::Checkout(CheckoutEvent::Expired),
            k if after_payment::EVENT_TYPES.contains(&k) => EventKind::AfterPayment,
            _ => EventKind::Other,
        }
    }
}

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

/// Acts on a verified event.
pub async fn act(app: &App, event: &Event<'_>) -> Result<Disposition, ApiError> {
    let live = app.config.mode() == Mode::Live;
    if event.livemode != live {
        crate::log::warn("event from the other mode ignored", &[("event_id", &event.id)]);
        return Ok(Disposition::Ignored);
    }
    let checkout = match EventKind::of(&event.kind) {
        EventKind::Checkout(c) => c,
        // Boxed, like the checkout work below: what an event causes (Stripe calls, a
        // transaction, the owner's hook) is a future of several KB, which every request
        // would otherwise carry and move, including the many acknowledged and ignored.
        EventKind::AfterPayment => return Box::pin(after_payment(app, event)).await,
        EventKind::Other => {
            // Sampled: an endpoint subscribed to more types than the shop handles would
            // otherwise write a line per delivery. Stripe's Dashboard lists every delivery
            // with our answer (`"result":"ignored"`).
            let fields = [("event_id", &*event.id), ("type", &*event.kind)];
            crate::log::info_sampled(&event.kind, "event type not handled", &fields);
            return Ok(Disposition::Ignored);
        }
    };
    let session_id = event.object.id.as_deref().unwrap_or("");
    if !crate::session::is_session_id(session_id) {
        crate::log::warn("checkout event without a session id", &[("event_id", &event.id)]);
        return Ok(Disposition::Ignored);
    }
    Box::pin(on_checkout(app, event, session_id, checkout)).await
}

/// Records a checkout event for one of our sessions, once; runs the owner's action.
async fn on_checkout(
    app: &App,
    event: &Event<'_>,
    session_id: &str,
    checkout: CheckoutEvent,
) -> Result<Disposition, ApiError> {
    if app.store.event_seen(&event.id).await? {
        // A redelivery: the event counted already, but the owner's action may
        // not have finished (the answer to our commit can be lost).
        let run = hooks::resume(app, RunKey::Fulfillment(session_id), hooks::HELD_WAIT).await;
        return settled(run, session_id).map(|()| Disposition::Duplicate);
    }
    let ev = EventRef { id: &event.id, kind: &event.kind };
    match fulfillment::fulfill(app, session_id, Trigger::Event(ev, checkout)).await {
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
