//! After-payment objects: the PaymentIntent and Charge behind each paid session, refunds and
//! disputes, their `/v1` read routes, and the control actions that make them happen and emit
//! the events Stripe would send (`refund.created`, `charge.refunded`, `refund.failed`,
//! `refund.updated`, `charge.dispute.created|updated|closed`, `charge.dispute.funds_withdrawn|
//! funds_reinstated`).

use crate::error::ApiError;
use crate::params::{only_params, paginate};
use crate::state::{Inner, State, new_event, now, rand_id};
use serde_json::{Value, json};

/// Records the PaymentIntent (and, once paid, its Charge) of a completed session.
/// `paid` is false while a delayed payment method is still processing.
pub(crate) fn record_payment(st: &mut State, session: &Value, paid: bool) {
    let (Some(pi), Some(amount)) = (session["payment_intent"].as_str(), session["amount_total"].as_i64()) else {
        return;
    };
    let currency = session["currency"].clone();
    let created = now();
    let intent = st.payment_intents.entry(pi.to_string()).or_insert_with(|| {
        json!({
            "id": pi, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
            "amount_received": 0, "capture_method": "automatic", "created": created, "currency": currency,
            "latest_charge": null, "livemode": false, "metadata": {}, "status": "processing",
            "payment_method_types": ["card"]
        })
    });
    if !paid || intent["status"] == "succeeded" {
        return;
    }
    let charge_id = rand_id("ch_", 24);
    intent["status"] = json!("succeeded");
    intent["amount_received"] = json!(amount);
    intent["latest_charge"] = json!(charge_id);
    let email = session["customer_details"]["email"].clone();
    st.charges.insert(
        charge_id.clone(),
        json!({
            "id": charge_id, "object": "charge", "amount": amount, "amount_captured": amount,
            "amount_refunded": 0, "billing_details": { "address": session["customer_details"]["address"],
                "email": email, "name": session["customer_details"]["name"], "phone": null, "tax_id": null },
            "captured": true, "created": created, "currency": currency, "customer": null,
            "description": null, "disputed": false, "failure_code": null, "failure_message": null,
            "livemode": false, "metadata": {}, "paid": true, "payment_intent": pi, "receipt_email": email,
            "refunded": false, "status": "succeeded"
        }),
    );
}

/// The succeeded charge behind a session, for the control routes.
fn charge_of_session(st: &State, session_id: &str) -> Result<String, ApiError> {
    let s = st.sessions.get(session_id).ok_or_else(|| ApiError::no_such(404, "id", "checkout.session", session_id))?;
    s.obj["payment_intent"]
        .as_str()
        .and_then(|pi| st.payment_intents.get(pi))
        .and_then(|pi| pi["latest_charge"].as_str())
        .map(String::from)
        .ok_or_else(|| {
            ApiError::invalid("session", format!("Checkout Session '{session_id}' has no succeeded charge."))
        })
}

/// Refunds `amount` (default: what is left) of a paid session's charge. Returns the refund
/// and the ids of the events created (`refund.created`, `charge.refunded`).
pub(crate) fn refund(
    inner: &Inner,
    st: &mut State,
    session_id: &str,
    amount: Option<i64>,
) -> Result<(Value, Vec<String>), ApiError> {
    let charge_id = charge_of_session(st, session_id)?;
    refund_charge(inner, st, &charge_id, amount, "requested_by_customer", json!({}))
}

/// `POST /v1/refunds` (the minimal shape the shop sends): `payment_intent` (required),
/// optional `amount` (default: what is left), `reason` and `metadata[k]`. Refunds the
/// PaymentIntent's latest charge at once (`succeeded`), as [`refund`] does.
pub(crate) fn create_refund(
    inner: &Inner,
    st: &mut State,
    pairs: &[(String, String)],
    params: &Value,
) -> Result<(Value, Vec<String>), ApiError> {
    only_params(pairs, &["payment_intent", "amount", "reason", "metadata", "expand"])?;
    let pi = params["payment_intent"].as_str().ok_or_else(|| ApiError::missing("payment_intent"))?;
    let charge_id = st
        .payment_intents
        .get(pi)
        .ok_or_else(|| ApiError::no_such(404, "payment_intent", "payment_intent", pi))?["latest_charge"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| ApiError::invalid("payment_intent", format!("PaymentIntent {pi} has no succeeded charge.")))?;
    let amount = match params.get("amount").and_then(Value::as_str) {
        None => None,
        Some(a) => Some(a.parse::<i64>().map_err(|_| ApiError::not_integer("amount"))?),
    };
    let reason = params["reason"].as_str().unwrap_or("requested_by_customer").to_string();
    let metadata = params.get("metadata").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
    refund_charge(inner, st, &charge_id, amount, &reason, metadata)
}

/// Refunds `amount` (default: what is left) of a succeeded charge, refusing as Stripe does
/// (an open dispute, nothing left, more than is left).
fn refund_charge(
    inner: &Inner,
    st: &mut State,
    charge_id: &str,
    amount: Option<i64>,
    reason: &str,
    metadata: Value,
) -> Result<(Value, Vec<String>), ApiError> {
    let charge = &st.charges[charge_id];
    let left = charge["amount"].as_i64().unwrap_or(0) - charge["amount_refunded"].as_i64().unwrap_or(0);
    if open_dispute(st, charge_id).is_some() {
        return Err(ApiError::coded(
            "charge_disputed",
            "charge",
            format!("Charge {charge_id} has been disputed and cannot be refunded while the dispute is open."),
        ));
    }
    if left <= 0 {
        return Err(ApiError::coded(
            "charge_already_refunded",
            "charge",
            format!("Charge {charge_id} has already been refunded."),
        ));
    }
    let amount = amount.unwrap_or(left);
    if amount <= 0 || amount > left {
        return Err(ApiError::invalid(
            "amount",
            format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({left})"),
        ));
    }
    let refund = json!({
        "id": rand_id("re_", 24), "object": "refund", "amount": amount, "balance_transaction": null,
        "charge": charge_id, "created": now(), "currency": charge["currency"], "metadata": metadata,
        "payment_intent": charge["payment_intent"], "reason": reason,
        "receipt_number": null, "status": "succeeded"
    });
    let charge = st.charges.get_mut(charge_id).expect("looked up above");
    let refunded = charge["amount_refunded"].as_i64().unwrap_or(0) + amount;
    charge["amount_refunded"] = json!(refunded);
    charge["refunded"] = json!(refunded >= charge["amount"].as_i64().unwrap_or(0));
    let charge = charge.clone();
    st.refunds.push(refund.clone());
    let events =
        vec![new_event(inner, st, "refund.created", refund.clone()), new_event(inner, st, "charge.refunded", charge)];
    Ok((refund, events))
}

/// Fails a succeeded refund (the bank returned it): the amount goes back on the charge.
/// Emits `refund.failed` and `refund.updated`.
pub(crate) fn fail_refund(inner: &Inner, st: &mut State, refund_id: &str) -> Result<(Value, Vec<String>), ApiError> {
    let r = st
        .refunds
        .iter_mut()
        .find(|r| r["id"] == refund_id)
        .ok_or_else(|| ApiError::no_such(404, "id", "refund", refund_id))?;
    if r["status"] != "succeeded" && r["status"] != "pending" {
        return Err(ApiError::invalid("refund", format!("Refund {refund_id} cannot fail: it is {}.", r["status"])));
    }
    r["status"] = json!("failed");
    r["failure_reason"] = json!("lost_or_stolen_card");
    let (refund, amount) = (r.clone(), r["amount"].as_i64().unwrap_or(0));
    if let Some(c) = refund["charge"].as_str().and_then(|c| st.charges.get_mut(c)) {
        let refunded = (c["amount_refunded"].as_i64().unwrap_or(0) - amount).max(0);
        c["amount_refunded"] = json!(refunded);
        c["refunded"] = json!(false);
    }
    let events = vec![
        new_event(inner, st, "refund.failed", refund.clone()),
        new_event(inner, st, "refund.updated", refund.clone()),
    ];
    Ok((refund, events))
}

fn open_dispute(st: &State, charge_id: &str) -> Option<usize> {
    st.disputes.iter().position(|d| d["charge"] == charge_id && !is_closed(d["status"].as_str().unwrap_or("")))
}

fn is_closed(status: &str) -> bool {
    matches!(status, "won" | "lost" | "warning_closed" | "prevented")
}

/// Opens a dispute (or, with `inquiry`, an inquiry) on a paid session's charge. Emits
/// `charge.dispute.created` and, for a dispute, `charge.dispute.funds_withdrawn`.
pub(crate) fn dispute(
    inner: &Inner,
    st: &mut State,
    session_id: &str,
    inquiry: bool,
) -> Result<(Value, Vec<String>), ApiError> {
    let charge_id = charge_of_session(st, session_id)?;
    if open_dispute(st, &charge_id).is_some() {
        return Err(ApiError::invalid("charge", format!("Charge {charge_id} already has an open dispute.")));
    }
    let charge = st.charges.get_mut(&charge_id).expect("charge_of_session found it");
    let amount = charge["amount"].as_i64().unwrap_or(0) - charge["amount_refunded"].as_i64().unwrap_or(0);
    if amount <= 0 {
        return Err(ApiError::invalid("charge", format!("Charge {charge_id} was fully refunded.")));
    }
    charge["disputed"] = json!(true);
    let status = if inquiry { "warning_needs_response" } else { "needs_response" };
    let dispute = json!({
        "id": rand_id("du_", 24), "object": "dispute", "amount": amount, "balance_transactions": [],
        "charge": charge_id, "created": now(), "currency": charge["currency"],
        "enhanced_eligibility_types": [], "evidence": { "enhanced_evidence": {} }, "evidence_details": {
            "due_by": now() + 7 * 86_400, "enhanced_eligibility": {}, "has_evidence": false, "past_due": false,
            "submission_count": 0 },
        "is_charge_refundable": false, "livemode": false, "metadata": {},
        "payment_intent": charge["payment_intent"], "reason": "fraudulent", "status": status
    });
    st.disputes.push(dispute.clone());
    let mut events = vec![new_event(inner, st, "charge.dispute.created", dispute.clone())];
    if !inquiry {
        events.push(new_event(inner, st, "charge.dispute.funds_withdrawn", dispute.clone()));
    }
    Ok((dispute, events))
}

/// Moves a dispute to `status`: `under_review` (or `warning_under_review`) emits
/// `charge.dispute.updated`; `won`, `lost` and (inquiries only) `warning_closed` close it
/// with `charge.dispute.closed` (a won dispute also `charge.dispute.funds_reinstated`).
pub(crate) fn set_dispute_status(
    inner: &Inner,
    st: &mut State,
    dispute_id: &str,
    status: &str,
) -> Result<(Value, Vec<String>), ApiError> {
    let d = st
        .disputes
        .iter_mut()
        .find(|d| d["id"] == dispute_id)
        .ok_or_else(|| ApiError::no_such(404, "id", "dispute", dispute_id))?;
    let current = d["status"].as_str().unwrap_or("").to_string();
    let inquiry = current.starts_with("warning_");
    let allowed: &[&str] = if inquiry {
        &["warning_under_review", "warning_closed", "won", "lost"]
    } else {
        &["under_review", "won", "lost"]
    };
    if is_closed(&current) || !allowed.contains(&status) {
        return Err(ApiError::invalid(
            "status",
            format!(
                "Dispute {dispute_id} is {current}; it cannot move to '{status}' (allowed: {}).",
                allowed.join(", ")
            ),
        ));
    }
    d["status"] = json!(status);
    d["is_charge_refundable"] = json!(is_closed(status));
    let dispute = d.clone();
    let mut events = Vec::new();
    if is_closed(status) {
        events.push(new_event(inner, st, "charge.dispute.closed", dispute.clone()));
        if status == "won" && !inquiry {
            events.push(new_event(inner, st, "charge.dispute.funds_reinstated", dispute.clone()));
        }
    } else {
        events.push(new_event(inner, st, "charge.dispute.updated", dispute.clone()));
    }
    Ok((dispute, events))
}

/// `GET /v1/charges/{id}`, `/v1/payment_intents/{id}`, `/v1/refunds[/{id}]`,
/// `/v1/disputes[/{id}]`; `None` for any other path.
pub(crate) fn get(
    st: &State,
    segs: &[&str],
    pairs: &[(String, String)],
    params: &Value,
) -> Option<Result<Value, ApiError>> {
    let one = |found: Option<&Value>, object: &str, id: &str| {
        only_params(pairs, &["expand"])?;
        found.cloned().ok_or_else(|| ApiError::no_such(404, "id", object, id))
    };
    let list = |items: &[Value], url: &str| {
        only_params(
            pairs,
            &["charge", "payment_intent", "created", "ending_before", "starting_after", "limit", "expand"],
        )?;
        let (charge, pi) = (params["charge"].as_str(), params["payment_intent"].as_str());
        let items: Vec<Value> = items
            .iter()
            .rev()
            .filter(|x| charge.is_none_or(|c| x["charge"] == c) && pi.is_none_or(|p| x["payment_intent"] == p))
            .cloned()
            .collect();
        paginate(items, params, url)
    };
    Some(match segs {
        ["charges", id] => one(st.charges.get(*id), "charge", id),
        ["payment_intents", id] => one(st.payment_intents.get(*id), "payment_intent", id),
        ["refunds"] => list(&st.refunds, "/v1/refunds"),
        ["refunds", id] => one(st.refunds.iter().find(|r| r["id"] == *id), "refund", id),
        ["disputes"] => list(&st.disputes, "/v1/disputes"),
        ["disputes", id] => one(st.disputes.iter().find(|d| d["id"] == *id), "dispute", id),
        _ => return None,
    })
}
