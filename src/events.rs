//! One typed event ⇒ one action: what the shop does with an authentic Stripe event, whoever
//! brings it (the webhook, or the reconciliation run listing missed events).
//!
//! The event's type is parsed once into [`EventType`]: Checkout Session events fulfil (see
//! [`crate::fulfillment`]); refund and dispute events move the order's money (see
//! [`crate::after_payment`]); product and price events update the catalog copy (see
//! [`crate::products`]); every other type is acknowledged and ignored. An event is
//! acknowledged only once it was durably recorded and the owner's hook it caused has run;
//! otherwise [`act`] fails with an [`ActError`] and the caller answers 5xx so Stripe retries.

use crate::after_payment::{self, HandleError, Handled};
use crate::app::App;
use crate::config::Mode;
use crate::fulfillment::{self, FulfillError, Trigger};
use crate::hooks::{self, Run};
use crate::store::{Applied, EventRef, RunKey, StoreError, Via};
use crate::stripe::types::Event;
use crate::stripe::{EventFamily, EventType, StripeError};
use std::fmt;

/// Logged (level error) when Stripe answers 404 for the session of an authentic event.
pub const UNKNOWN_SESSION_HINT: &str = "Stripe does not know this event's session (404): STRIPE_SECRET_KEY and \
     this webhook endpoint are probably in different Stripe accounts or sandboxes (or test and live mode); \
     use the secret key of the account whose endpoint signs these events";

/// Every event type the shop acts on, as Stripe names them (the rest are acknowledged and
/// ignored): derived from [`EventType`], the one list.
pub fn handled_event_types() -> impl Iterator<Item = &'static str> {
    EventType::ALL.iter().map(|t| t.as_str())
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

/// Why an event could not be acted on: the caller answers 5xx and Stripe retries.
#[derive(Debug)]
pub enum ActError {
    /// Stripe failed or could not be reached (boxed: the error is large, the path rare).
    Stripe(Box<StripeError>),
    /// The store failed.
    Store(StoreError),
    /// The owner's hook run the event caused is not finished (held by another caller, or it
    /// failed); the next delivery resumes it.
    HookRunUnsettled(Run),
}

impl fmt::Display for ActError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActError::Stripe(e) => write!(f, "stripe: {e}"),
            ActError::Store(e) => write!(f, "store: {e}"),
            ActError::HookRunUnsettled(run) => write!(f, "hook run not finished: {run:?}"),
        }
    }
}

impl From<StoreError> for ActError {
    fn from(e: StoreError) -> Self {
        ActError::Store(e)
    }
}

/// Acts on a verified event brought `via` the webhook or the reconciliation run.
pub async fn act(app: &App, event: &Event<'_>, via: Via) -> Result<Disposition, ActError> {
    let live = app.config.mode() == Mode::Live;
    if event.livemode != live {
        crate::log::warn("event from the other mode ignored", &[("event_id", &event.id)]);
        return Ok(Disposition::Ignored);
    }
    let Some(kind) = EventType::parse(&event.kind) else {
        // Sampled: an endpoint subscribed to more types than the shop handles would
        // otherwise write a line per delivery. Stripe's Dashboard lists every delivery
        // with our answer (`"result":"ignored"`).
        let fields = [("event_id", &*event.id), ("type", &*event.kind)];
        crate::log::info_sampled(&event.kind, "event type not handled", &fields);
        return Ok(Disposition::Ignored);
    };
    match kind.family() {
        // Boxed: what an event causes (Stripe calls, a transaction, the owner's hook) is a
        // future of several KB, which every request would otherwise carry and move, including
        // the many acknowledged and ignored.
        EventFamily::AfterPayment => Box::pin(on_after_payment(app, event, kind, via)).await,
        EventFamily::CheckoutSession => {
            let session_id = event.object.id.as_deref().unwrap_or("");
            if !crate::session::is_session_id(session_id) {
                crate::log::warn("checkout event without a session id", &[("event_id", &event.id)]);
                return Ok(Disposition::Ignored);
            }
            Box::pin(on_checkout(app, event, session_id, kind, via)).await
        }
        EventFamily::Catalog => Box::pin(on_catalog(app, event, kind)).await,
    }
}

/// A Product or Price event: the store's copy of the catalog follows Stripe (the file catalog
/// ignores it). Applying one is idempotent (the object is retrieved, not taken from the event),
/// so nothing records it.
async fn on_catalog(app: &App, event: &Event<'_>, kind: EventType) -> Result<Disposition, ActError> {
    let Some(id) = event.object.id.as_deref() else {
        crate::log::warn("catalog event without an object id", &[("event_id", &event.id)]);
        return Ok(Disposition::Ignored);
    };
    match crate::products::on_event(app, kind, id).await {
        Ok(true) => Ok(Disposition::Processed),
        Ok(false) => Ok(Disposition::Ignored),
        Err(crate::products::ProductsError::Stripe(e)) => Err(ActError::Stripe(e)),
        Err(crate::products::ProductsError::Store(e)) => Err(ActError::Store(e)),
        // Only a first fill refuses this way, and an event never fills: a 5xx all the same.
        Err(e @ crate::products::ProductsError::NotFilled) => {
            Err(ActError::Store(crate::store::StoreError::new(e.to_string())))
        }
    }
}

/// Records a checkout event for one of our sessions, once; runs the owner's action.
async fn on_checkout(
    app: &App,
    event: &Event<'_>,
    session_id: &str,
    kind: EventType,
    via: Via,
) -> Result<Disposition, ActError> {
    if app.store.event_seen(&event.id).await? {
        // A redelivery: the event counted already, but the owner's action may
        // not have finished (the answer to our commit can be lost).
        let run = hooks::resume(app, RunKey::Fulfillment(session_id), hooks::HELD_WAIT).await;
        return settled(run).map(|()| Disposition::Duplicate);
    }
    let ev = EventRef { id: &event.id, kind: &event.kind, via, source: &app.source };
    match fulfillment::fulfill(app, session_id, Trigger::Event(ev, kind)).await {
        Ok(outcome) => {
            settled(outcome.run)?;
            Ok(if matches!(outcome.applied, Some(Applied::DuplicateEvent)) {
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
        Err(FulfillError::Stripe(e)) => Err(ActError::Stripe(Box::new(e))),
        Err(FulfillError::Store(e)) => Err(ActError::Store(e)),
    }
}

/// A refund or dispute event: acknowledged once the order's money is recorded as Stripe has
/// it now and the owner's hook ran; an error when Stripe or the store failed, so Stripe retries.
async fn on_after_payment(app: &App, event: &Event<'_>, kind: EventType, via: Via) -> Result<Disposition, ActError> {
    let Some(subject) = after_payment::subject(kind, &event.object) else {
        crate::log::info("after-payment event without a PaymentIntent", &[("event_id", &event.id)]);
        return Ok(Disposition::Ignored);
    };
    let ev = EventRef { id: &event.id, kind: &event.kind, via, source: &app.source };
    match after_payment::handle(app, ev, &subject).await {
        Ok(Handled::Processed) => Ok(Disposition::Processed),
        Ok(Handled::Duplicate) => Ok(Disposition::Duplicate),
        Ok(Handled::NotOurs) => {
            crate::log::info("event for a payment this shop did not take", &[("event_id", &event.id)]);
            Ok(Disposition::Ignored)
        }
        Err(HandleError::Stripe(e)) => Err(ActError::Stripe(e)),
        Err(HandleError::Store(e)) => Err(ActError::Store(e)),
        Err(HandleError::HookRunUnsettled(run)) => Err(ActError::HookRunUnsettled(run)),
    }
}

/// An event is acknowledged only once the owner's action for its order is
/// done; otherwise an error, and Stripe's retry finds it done or takes it over.
fn settled(run: Run) -> Result<(), ActError> {
    if run.settled() { Ok(()) } else { Err(ActError::HookRunUnsettled(run)) }
}
