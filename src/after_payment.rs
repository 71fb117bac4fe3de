//! After payment: refunds and disputes keep an order's money state true.
//!
//! An event about a charge, refund or dispute is only a hint. Whatever its name or age, the
//! order's money is derived from the Charge, its Refunds and its Disputes as Stripe returns them
//! now ([`derive()`]); the store keeps one row per refund and per dispute whose status only
//! moves forward, and moves the order there in one transaction with the event id, a history
//! entry and the claim on the owner's hook ([`crate::order::decide`] says what changed). So
//! events that arrive late, twice or out of order, and reads that are stale, leave the order in
//! the same state, and each fact reaches the owner's hooks once.

use crate::app::App;
use crate::fulfillment::{self, FulfillError, Trigger};
use crate::hooks::{self, Run};
use crate::order::derive;
use crate::store::{Applied, EventRef, RunKey, StoreError};
use crate::stripe::types::{Charge, Dispute, EventObject, List, PaymentIntent, Refund, Session};
use crate::stripe::{EventType, Form, StripeError};

/// The ids an after-payment event names: its PaymentIntent and, when known, its Charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// `pi_...`.
    pub payment_intent: String,
    /// `ch_...`, when the object names it.
    pub charge: Option<String>,
}

/// Reads the subject of an after-payment event's object (a Charge, Refund or Dispute).
pub fn subject(kind: EventType, object: &EventObject<'_>) -> Option<Subject> {
    let text = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().filter(|s| !s.is_empty()).map(String::from);
    let charge = if kind.object_is_charge() { text(&object.id) } else { text(&object.charge) };
    Some(Subject { payment_intent: text(&object.payment_intent)?, charge })
}

/// Why an after-payment event could not be handled: Stripe or the store failed, or a hook run
/// is not finished (the caller answers 5xx, Stripe retries).
#[derive(Debug)]
pub enum HandleError {
    /// Stripe failed or could not be reached (boxed: the error is large, the path rare).
    Stripe(Box<StripeError>),
    /// The store failed.
    Store(StoreError),
    /// A hook run is not finished: the order's fulfilment run (`on_fulfilled`), or the run this
    /// event's change claimed, held by another caller or failed.
    HookRunUnsettled(Run),
}

impl std::fmt::Display for HandleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandleError::Stripe(e) => write!(f, "{e}"),
            HandleError::Store(e) => write!(f, "{e}"),
            HandleError::HookRunUnsettled(run) => write!(f, "hook run not finished: {run:?}"),
        }
    }
}

impl From<StoreError> for HandleError {
    fn from(e: StoreError) -> Self {
        HandleError::Store(e)
    }
}

impl From<StripeError> for HandleError {
    fn from(e: StripeError) -> Self {
        HandleError::Stripe(Box::new(e))
    }
}

/// What handling one after-payment event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// The event was new: recorded (the order may or may not have changed), hooks ran.
    Processed,
    /// Seen before: nothing changed (an unfinished hook run was waited for or resumed).
    Duplicate,
    /// Not a payment this shop took, or a charge Stripe does not know for our key.
    NotOurs,
}

/// Handles a verified after-payment event (`kind` of [`crate::stripe::EventFamily::AfterPayment`]).
pub async fn handle(app: &App, event: EventRef<'_>, subject: &Subject) -> Result<Handled, HandleError> {
    let pi = subject.payment_intent.as_str();
    let (seen, recorded) = app.store.event_seen_and_session(event.id, pi).await?;
    if seen {
        return settle(hooks::resume(app, RunKey::Event(event.id), hooks::HELD_WAIT).await, Handled::Duplicate);
    }
    let session_id = match recorded {
        Some(id) => id,
        None => match our_session(app, pi).await? {
            // Not recorded yet (the refund came first, or the order predates this record):
            // fulfil it now, so the order ends the same whatever the order of arrival.
            Some(id) => {
                let outcome = match fulfillment::fulfill(app, &id, Trigger::AfterPayment).await {
                    Ok(outcome) => outcome,
                    Err(FulfillError::NotOurs) => return Ok(Handled::NotOurs),
                    Err(FulfillError::Stripe(e)) => return Err(HandleError::Stripe(Box::new(e))),
                    Err(FulfillError::Store(e)) => return Err(HandleError::Store(e)),
                };
                if !outcome.run.settled() {
                    return Err(HandleError::HookRunUnsettled(outcome.run));
                }
                id
            }
            None => return Ok(Handled::NotOurs),
        },
    };
    let charge_id = match &subject.charge {
        Some(c) => c.clone(),
        None => {
            let intent: PaymentIntent = app.stripe.get(&format!("/v1/payment_intents/{pi}"), &Form::new()).await?;
            match intent.latest_charge {
                Some(c) => c,
                None => return Ok(Handled::NotOurs),
            }
        }
    };
    let charge: Charge = match app.stripe.get(&format!("/v1/charges/{charge_id}"), &Form::new()).await {
        Ok(c) => c,
        Err(e) if e.is_not_found() => return Ok(Handled::NotOurs),
        Err(e) => return Err(e.into()),
    };
    if charge.payment_intent.as_deref() != Some(pi) {
        return Ok(Handled::NotOurs);
    }
    let mut q = Form::new();
    q.push("charge", &charge.id);
    q.push("limit", "100");
    // Every refund of the charge, each with its own status (a charge has few; one page).
    let refunds = app.stripe.get::<List<Refund>>("/v1/refunds", &q).await?.data;
    let disputes =
        if charge.disputed { app.stripe.get::<List<Dispute>>("/v1/disputes", &q).await?.data } else { Vec::new() };
    let facts = derive(&charge, &refunds, &disputes);
    match app.store.apply_money(&session_id, pi, &facts, event.clone()).await? {
        Applied::DuplicateEvent => {
            settle(hooks::resume(app, RunKey::Event(event.id), hooks::HELD_WAIT).await, Handled::Duplicate)
        }
        Applied::Recorded(Some(change)) if !change.calls.is_empty() => {
            let run = hooks::run_claimed(app, RunKey::Event(event.id), &session_id, &change.calls).await;
            settle(run, Handled::Processed)
        }
        Applied::Recorded(_) => Ok(Handled::Processed),
    }
}

fn settle(run: Run, handled: Handled) -> Result<Handled, HandleError> {
    if run.settled() { Ok(handled) } else { Err(HandleError::HookRunUnsettled(run)) }
}

/// The session of ours that names this PaymentIntent, if any (`GET /v1/checkout/sessions?
/// payment_intent=`): sessions of other integrations on the account are not ours.
async fn our_session(app: &App, payment_intent: &str) -> Result<Option<String>, StripeError> {
    let mut q = Form::new();
    q.push("payment_intent", payment_intent);
    q.push("limit", "1");
    let list: List<Session> = app.stripe.get("/v1/checkout/sessions", &q).await?;
    Ok(list.data.into_iter().find(crate::session::is_ours).map(|s| s.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn subjects_come_from_the_object_each_event_type_carries() {
        let event = |object: Value| serde_json::json!({"id": "evt_1", "type": "t", "livemode": false, "data": {"object": object}});
        let read = |kind: &str, object: Value| {
            let event = event(object);
            let kind = EventType::parse(kind).unwrap();
            subject(kind, &crate::stripe::types::Event::from_value(&event).unwrap().object)
        };
        let charge = serde_json::json!({"id": "ch_1", "object": "charge", "payment_intent": "pi_1"});
        let s = read("charge.refunded", charge).unwrap();
        assert_eq!((s.payment_intent.as_str(), s.charge.as_deref()), ("pi_1", Some("ch_1")));
        let refund = serde_json::json!({"id": "re_1", "charge": null, "payment_intent": "pi_1"});
        assert_eq!(read("refund.created", refund).unwrap().charge, None);
        let dispute = serde_json::json!({"id": "du_1", "charge": "ch_1", "payment_intent": "pi_1"});
        assert_eq!(read("charge.dispute.closed", dispute).unwrap().charge.as_deref(), Some("ch_1"));
        assert_eq!(read("charge.refunded", serde_json::json!({"id": "ch_1", "payment_intent": null})), None);
    }
}
