//! After payment: refunds and disputes keep an order's money state true.
//!
//! An event about a charge, refund or dispute is only a hint. Whatever its name or age, the
//! order's money state is derived from the Charge and its Disputes as Stripe returns them now
//! ([`derive()`]), and the store moves the order there in one transaction with the event id, a
//! history entry and the claim on the owner's hook ([`decide`] says what changed). So events
//! that arrive late, twice or out of order leave the order in the same state.

use crate::app::App;
use crate::fulfillment::{self, FulfillError, Trigger};
use crate::hooks::{self, HookCall, Run, RunKey};
use crate::store::{EventRef, MoneyApplied, StoreError};
use crate::stripe::types::{Charge, Dispute, EventObject, List, PaymentIntent, Session};
use crate::stripe::{Form, StripeError};
use serde::{Deserialize, Serialize};

/// The event types handled here (enable them on the webhook endpoint; the reconciliation run
/// lists them too).
pub const EVENT_TYPES: &[&str] = &[
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
];

/// Where an order's money stands, beside its fulfilment state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoneyState {
    /// Paid, nothing refunded or disputed.
    Paid,
    /// Part of the charge was refunded.
    PartiallyRefunded,
    /// The whole charge was refunded.
    Refunded,
    /// A dispute (or inquiry) is open.
    Disputed,
    /// The last dispute closed in the shop's favour.
    DisputeWon,
    /// The last dispute was lost: the money went back to the cardholder.
    DisputeLost,
}

impl MoneyState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
            Self::Disputed => "disputed",
            Self::DisputeWon => "dispute_won",
            Self::DisputeLost => "dispute_lost",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "paid" => Self::Paid,
            "partially_refunded" => Self::PartiallyRefunded,
            "refunded" => Self::Refunded,
            "disputed" => Self::Disputed,
            "dispute_won" => Self::DisputeWon,
            "dispute_lost" => Self::DisputeLost,
            _ => return None,
        })
    }
}

/// The latest dispute on an order's charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeRef {
    /// `du_...`.
    pub id: String,
    /// Stripe's dispute status.
    pub status: String,
    /// Disputed amount, minor units.
    pub amount: i64,
}

impl DisputeRef {
    /// Whether the dispute is still open (closed: `won`, `lost`, `warning_closed`, `prevented`).
    pub fn is_open(&self) -> bool {
        !matches!(self.status.as_str(), "won" | "lost" | "warning_closed" | "prevented")
    }
}

/// An order's money: what was refunded and the latest dispute.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Money {
    /// Refunded so far, minor units.
    pub amount_refunded: i64,
    /// Amount charged, minor units (0 when unknown).
    pub amount: i64,
    /// The latest dispute, if the charge was ever disputed.
    pub dispute: Option<DisputeRef>,
}

impl Money {
    /// The state this money is in: an open or decided dispute wins over refunds; an inquiry
    /// closed as `warning_closed` (or a `prevented` dispute) leaves the refund state.
    pub fn state(&self) -> MoneyState {
        match self.dispute.as_ref().map(|d| d.status.as_str()) {
            Some("won") => MoneyState::DisputeWon,
            Some("lost") => MoneyState::DisputeLost,
            Some(_) if self.dispute.as_ref().is_some_and(DisputeRef::is_open) => MoneyState::Disputed,
            _ if self.amount_refunded > 0 && self.amount_refunded >= self.amount => MoneyState::Refunded,
            _ if self.amount_refunded > 0 => MoneyState::PartiallyRefunded,
            _ => MoneyState::Paid,
        }
    }
}

/// The money of a charge as Stripe returns it now, with its disputes.
pub fn derive(charge: &Charge, disputes: &[Dispute]) -> Money {
    let latest = disputes.iter().max_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    Money {
        amount_refunded: charge.amount_refunded,
        amount: charge.amount,
        dispute: latest.map(|d| DisputeRef { id: d.id.clone(), status: d.status.clone(), amount: d.amount }),
    }
}

/// One change of an order's money, for its history and the owner's hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The state before.
    pub from: MoneyState,
    /// The state after.
    pub to: MoneyState,
    /// The money moved: refunded delta (negative when a refund failed), or the disputed amount.
    pub amount: i64,
    /// The dispute status after the change, if a dispute is involved.
    pub dispute_status: Option<String>,
    /// What the owner's hooks are told (empty: nothing for them).
    pub calls: Vec<HookCall>,
}

/// What moving from `old` to `fresh` changes, if anything. Money only moves the ways it can:
/// a closed dispute never reopens (a stale read cannot undo it), and the refunded amount only
/// goes down when a refund failed (`refund_failed`: the event says so).
pub fn decide(old: &Money, fresh: &Money, refund_failed: bool) -> Option<(Money, Change)> {
    let mut new = fresh.clone();
    if fresh.amount_refunded < old.amount_refunded && !refund_failed {
        new.amount_refunded = old.amount_refunded;
    }
    if let (Some(o), Some(f)) = (&old.dispute, &fresh.dispute)
        && o.id == f.id
        && !o.is_open()
    {
        new.dispute = old.dispute.clone();
    }
    if new.amount == 0 {
        new.amount = old.amount;
    }
    if new.amount_refunded == old.amount_refunded && new.dispute == old.dispute {
        return None;
    }
    let delta = new.amount_refunded - old.amount_refunded;
    let mut calls = Vec::new();
    if delta > 0 {
        calls.push(HookCall::Refunded { amount: delta, amount_refunded: new.amount_refunded });
    }
    let was_open = old.dispute.as_ref().is_some_and(DisputeRef::is_open);
    let dispute_changed = new.dispute != old.dispute;
    match &new.dispute {
        Some(d) if d.is_open() && (!was_open || old.dispute.as_ref().is_some_and(|o| o.id != d.id)) => {
            calls.push(HookCall::DisputeOpened { status: d.status.clone(), amount: d.amount });
        }
        Some(d) if !d.is_open() && dispute_changed => {
            calls.push(HookCall::DisputeClosed { status: d.status.clone(), amount: d.amount });
        }
        _ => {}
    }
    let amount = if delta != 0 { delta } else { new.dispute.as_ref().map_or(0, |d| d.amount) };
    let change = Change {
        from: old.state(),
        to: new.state(),
        amount,
        dispute_status: new.dispute.as_ref().filter(|_| dispute_changed).map(|d| d.status.clone()),
        calls,
    };
    Some((new, change))
}

/// The ids an after-payment event names: its PaymentIntent and, when known, its Charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// `pi_...`.
    pub payment_intent: String,
    /// `ch_...`, when the object names it.
    pub charge: Option<String>,
}

/// Reads the subject of an after-payment event's object (a Charge, Refund or Dispute).
pub fn subject(kind: &str, object: &EventObject<'_>) -> Option<Subject> {
    let text = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().filter(|s| !s.is_empty()).map(String::from);
    let charge = if kind == "charge.refunded" { text(&object.id) } else { text(&object.charge) };
    Some(Subject { payment_intent: text(&object.payment_intent)?, charge })
}

/// Why an after-payment event could not be handled: Stripe or the store failed (5xx, Stripe
/// retries).
#[derive(Debug)]
pub enum HandleError {
    /// Stripe failed or could not be reached.
    Stripe(StripeError),
    /// The store failed.
    Store(StoreError),
    /// The order's fulfilment run (the owner's `on_fulfilled`) is not finished.
    FulfilmentPending(Run),
}

impl std::fmt::Display for HandleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandleError::Stripe(e) => write!(f, "{e}"),
            HandleError::Store(e) => write!(f, "{e}"),
            HandleError::FulfilmentPending(run) => write!(f, "fulfilment run not finished: {run:?}"),
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
        HandleError::Stripe(e)
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
    /// The event's hook run is held by another caller or failed: answer 5xx.
    Unsettled(Run),
}

/// Handles a verified after-payment event (`kind` one of [`EVENT_TYPES`]).
pub async fn handle(app: &App, event: EventRef<'_>, subject: &Subject) -> Result<Handled, HandleError> {
    if app.store.event_seen(event.id).await? {
        return Ok(settle(hooks::resume(app, RunKey::Event(event.id), hooks::HELD_WAIT).await, Handled::Duplicate));
    }
    let pi = subject.payment_intent.as_str();
    let session_id = match app.store.session_for_payment_intent(pi).await? {
        Some(id) => id,
        None => match our_session(app, pi).await? {
            // Not recorded yet (the refund came first, or the order predates this record):
            // fulfil it now, so the order ends the same whatever the order of arrival.
            Some(id) => {
                let outcome = match fulfillment::fulfill(app, &id, Trigger::AfterPayment).await {
                    Ok(outcome) => outcome,
                    Err(FulfillError::NotOurs) => return Ok(Handled::NotOurs),
                    Err(FulfillError::Stripe(e)) => return Err(HandleError::Stripe(e)),
                    Err(FulfillError::Store(e)) => return Err(HandleError::Store(e)),
                };
                if !outcome.run.settled() {
                    return Err(HandleError::FulfilmentPending(outcome.run));
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
    let disputes = if charge.disputed {
        let mut q = Form::new();
        q.push("charge", &charge.id);
        q.push("limit", "100");
        app.stripe.get::<List<Dispute>>("/v1/disputes", &q).await?.data
    } else {
        Vec::new()
    };
    let money = derive(&charge, &disputes);
    let refund_failed = event.kind == "refund.failed" || event.kind == "refund.updated";
    match app.store.apply_money(&session_id, pi, &money, refund_failed, event.clone()).await? {
        MoneyApplied::DuplicateEvent => {
            Ok(settle(hooks::resume(app, RunKey::Event(event.id), hooks::HELD_WAIT).await, Handled::Duplicate))
        }
        MoneyApplied::Recorded { change: Some(change) } if !change.calls.is_empty() => {
            let run = hooks::run_claimed(app, RunKey::Event(event.id), &session_id, &change.calls).await;
            Ok(settle(run, Handled::Processed))
        }
        MoneyApplied::Recorded { .. } => Ok(Handled::Processed),
    }
}

fn settle(run: Run, handled: Handled) -> Handled {
    if run.settled() { handled } else { Handled::Unsettled(run) }
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

    fn charge(amount: i64, refunded: i64) -> Charge {
        Charge {
            id: "ch_1".into(),
            amount,
            amount_refunded: refunded,
            disputed: false,
            payment_intent: None,
            livemode: false,
        }
    }

    fn dispute(id: &str, status: &str, created: i64) -> Dispute {
        Dispute { id: id.into(), amount: 2500, status: status.into(), created }
    }

    #[test]
    fn states_follow_the_charge_and_its_latest_dispute() {
        assert_eq!(derive(&charge(2500, 0), &[]).state(), MoneyState::Paid);
        assert_eq!(derive(&charge(2500, 100), &[]).state(), MoneyState::PartiallyRefunded);
        assert_eq!(derive(&charge(2500, 2500), &[]).state(), MoneyState::Refunded);
        assert_eq!(derive(&charge(2500, 0), &[dispute("du_1", "needs_response", 1)]).state(), MoneyState::Disputed);
        assert_eq!(
            derive(&charge(2500, 0), &[dispute("du_1", "warning_under_review", 1)]).state(),
            MoneyState::Disputed
        );
        assert_eq!(derive(&charge(2500, 0), &[dispute("du_1", "won", 1)]).state(), MoneyState::DisputeWon);
        assert_eq!(derive(&charge(2500, 0), &[dispute("du_1", "lost", 1)]).state(), MoneyState::DisputeLost);
        // An inquiry closed without a dispute returns to normal (and keeps the refund state).
        assert_eq!(
            derive(&charge(2500, 100), &[dispute("du_1", "warning_closed", 1)]).state(),
            MoneyState::PartiallyRefunded
        );
        // The latest dispute counts, whatever order the list has.
        let both = [dispute("du_2", "needs_response", 2), dispute("du_1", "won", 1)];
        assert_eq!(derive(&charge(2500, 0), &both).state(), MoneyState::Disputed);
    }

    #[test]
    fn a_refund_is_one_change_with_its_delta_and_one_hook_call() {
        let old = derive(&charge(2500, 0), &[]);
        let (new, c) = decide(&old, &derive(&charge(2500, 100), &[]), false).unwrap();
        assert_eq!((c.from, c.to, c.amount), (MoneyState::Paid, MoneyState::PartiallyRefunded, 100));
        assert_eq!(c.calls, vec![HookCall::Refunded { amount: 100, amount_refunded: 100 }]);
        let (_, c) = decide(&new, &derive(&charge(2500, 2500), &[]), false).unwrap();
        assert_eq!((c.from, c.to, c.amount), (MoneyState::PartiallyRefunded, MoneyState::Refunded, 2400));
        // The same state again is no change: no history, no hook.
        assert_eq!(decide(&new, &new, false), None);
    }

    #[test]
    fn refunded_amount_only_goes_down_when_a_refund_failed() {
        let old = derive(&charge(2500, 500), &[]);
        let stale = derive(&charge(2500, 100), &[]);
        assert_eq!(decide(&old, &stale, false), None);
        let (new, c) = decide(&old, &stale, true).unwrap();
        assert_eq!((new.amount_refunded, c.amount, c.to), (100, -400, MoneyState::PartiallyRefunded));
        assert!(c.calls.is_empty());
    }

    #[test]
    fn disputes_open_then_close_and_a_closed_dispute_never_reopens() {
        let paid = derive(&charge(2500, 0), &[]);
        let (open, c) =
            decide(&paid, &derive(&charge(2500, 0), &[dispute("du_1", "needs_response", 1)]), false).unwrap();
        assert_eq!(c.to, MoneyState::Disputed);
        assert_eq!(c.calls, vec![HookCall::DisputeOpened { status: "needs_response".into(), amount: 2500 }]);
        // A status change while open is recorded but calls no hook.
        let (review, c) =
            decide(&open, &derive(&charge(2500, 0), &[dispute("du_1", "under_review", 1)]), false).unwrap();
        assert!(c.calls.is_empty());
        assert_eq!(c.dispute_status.as_deref(), Some("under_review"));
        let (lost, c) = decide(&review, &derive(&charge(2500, 0), &[dispute("du_1", "lost", 1)]), false).unwrap();
        assert_eq!(c.calls, vec![HookCall::DisputeClosed { status: "lost".into(), amount: 2500 }]);
        assert_eq!(lost.state(), MoneyState::DisputeLost);
        // A late, stale read of the open dispute changes nothing.
        assert_eq!(decide(&lost, &derive(&charge(2500, 0), &[dispute("du_1", "needs_response", 1)]), false), None);
        // Closed before its `created` was seen: straight to the outcome, one hook call.
        let (_, c) = decide(&paid, &derive(&charge(2500, 0), &[dispute("du_1", "won", 1)]), false).unwrap();
        assert_eq!((c.to, c.calls.len()), (MoneyState::DisputeWon, 1));
    }

    #[test]
    fn subjects_come_from_the_object_each_event_type_carries() {
        let event = |object: Value| serde_json::json!({"id": "evt_1", "type": "t", "livemode": false, "data": {"object": object}});
        let read = |kind: &str, object: Value| {
            let event = event(object);
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
