//! After-payment objects: the PaymentIntent and Charge behind each paid session, refunds and
//! disputes, their `/v1` routes (reads, and `POST /v1/refunds`), and the control actions that
//! make them happen and emit the events Stripe would send (`refund.created`, `charge.refunded`,
//! `refund.failed`, `refund.updated`, `charge.dispute.created|updated|closed`, `charge.dispute.funds_withdrawn|
//! funds_reinstated`).

use crate::error::ApiError;
use crate::money::fmt_money;
use crate::params::{expands, metadata_param, only_params, paginate, parse_int, str_at};
use crate::state::{Inner, State, new_event, now, rand_id};
use serde_json::{Map, Value, json};

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

/// What a refund is created with: the amount (default: what is left on the charge), the
/// reason, metadata, and whether it starts `pending` (else `succeeded`).
#[derive(Default)]
pub(crate) struct RefundArgs {
    pub amount: Option<i64>,
    pub reason: Option<String>,
    pub metadata: Map<String, Value>,
    pub pending: bool,
}

/// Refunds part or all of a paid session's charge, as the Dashboard would (reason
/// `requested_by_customer`). Returns the refund and the ids of the events created
/// (`refund.created`, `charge.refunded`).
pub(crate) fn refund(
    inner: &Inner,
    st: &mut State,
    session_id: &str,
    amount: Option<i64>,
    pending: bool,
) -> Result<(Value, Vec<String>), ApiError> {
    let charge_id = charge_of_session(st, session_id)?;
    let args = RefundArgs { amount, reason: Some("requested_by_customer".into()), pending, ..Default::default() };
    refund_charge(inner, st, &charge_id, args)
}

/// Refunds part or all of a charge. Refused like Stripe: a charge with an open dispute
/// (`charge_disputed`), a fully refunded one (`charge_already_refunded`), more than is left
/// (`amount_too_large`). The refunded amount counts on the charge at once, a pending refund's
/// too (as Stripe's `amount_refunded` does). Emits `refund.created` and `charge.refunded`.
pub(crate) fn refund_charge(
    inner: &Inner,
    st: &mut State,
    charge_id: &str,
    args: RefundArgs,
) -> Result<(Value, Vec<String>), ApiError> {
    let charge = st.charges.get(charge_id).ok_or_else(|| ApiError::no_such(404, "charge", "charge", charge_id))?;
    let currency = charge["currency"].as_str().unwrap_or("usd").to_string();
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
    let amount = args.amount.unwrap_or(left);
    if amount <= 0 {
        return Err(ApiError::coded(
            "parameter_invalid_integer",
            "amount",
            "This value must be greater than or equal to 1.",
        ));
    }
    if amount > left {
        return Err(ApiError::coded(
            "amount_too_large",
            "amount",
            format!(
                "Refund amount ({}) is greater than unrefunded amount on charge ({})",
                fmt_money(amount, &currency),
                fmt_money(left, &currency)
            ),
        ));
    }
    let refund = json!({
        "id": rand_id("re_", 24), "object": "refund", "amount": amount, "balance_transaction": null,
        "charge": charge_id, "created": now(), "currency": currency, "metadata": args.metadata,
        "payment_intent": charge["payment_intent"], "reason": args.reason,
        "receipt_number": null, "status": if args.pending { "pending" } else { "succeeded" }
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

/// `POST /v1/refunds`: `payment_intent` or `charge` (one of them), `amount`, `reason`,
/// `metadata`; the other parameters Stripe's spec allows are not implemented here.
pub(crate) fn create_refund(
    inner: &Inner,
    st: &mut State,
    pairs: &[(String, String)],
    params: &Value,
) -> Result<(Value, Vec<String>), ApiError> {
    only_params(pairs, &["amount", "charge", "payment_intent", "reason", "metadata", "expand"])?;
    expands(params, &[])?;
    let amount = match str_at(params, "amount", "amount")? {
        None => None,
        Some(a) => Some(parse_int(a, "amount")?),
    };
    let reason = match str_at(params, "reason", "reason")? {
        None | Some("") => None,
        Some(r) => Some(r.to_string()),
    };
    let metadata = metadata_param(params)?;
    let charge = str_at(params, "charge", "charge")?.filter(|c| !c.is_empty());
    let intent = str_at(params, "payment_intent", "payment_intent")?.filter(|p| !p.is_empty());
    let charge_id = match (charge, intent) {
        (Some(_), Some(_)) => return Err(ApiError::exclusive("charge", "charge", "payment_intent")),
        (None, None) => return Err(ApiError::missing("charge")),
        (Some(c), None) => {
            st.charges.get(c).ok_or_else(|| ApiError::no_such(404, "charge", "charge", c))?;
            c.to_string()
        }
        (None, Some(p)) => {
            let pi = st
                .payment_intents
                .get(p)
                .ok_or_else(|| ApiError::no_such(404, "payment_intent", "payment_intent", p))?;
            match pi["latest_charge"].as_str().filter(|_| pi["status"] == "succeeded") {
                Some(c) => c.to_string(),
                None => {
                    return Err(ApiError::coded(
                        "charge_not_refundable",
                        "payment_intent",
                        format!("This PaymentIntent ({p}) does not have a successful charge to refund."),
                    ));
                }
            }
        }
    };
    refund_charge(inner, st, &charge_id, RefundArgs { amount, reason, metadata, pending: false })
}

/// Moves a `pending` refund to `succeeded` or `canceled` (a canceled refund's amount returns to
/// the charge); a refund's status never goes back. Emits `refund.updated`.
pub(crate) fn settle_refund(
    inner: &Inner,
    st: &mut State,
    refund_id: &str,
    status: &str,
) -> Result<(Value, Vec<String>), ApiError> {
    let r = st
        .refunds
        .iter_mut()
        .find(|r| r["id"] == refund_id)
        .ok_or_else(|| ApiError::no_such(404, "id", "refund", refund_id))?;
    if r["status"] != "pending" {
        return Err(ApiError::invalid(
            "refund",
            format!("Refund {refund_id} is {}: only a pending refund can become {status}.", r["status"]),
        ));
    }
    r["status"] = json!(status);
    let (refund, amount) = (r.clone(), r["amount"].as_i64().unwrap_or(0));
    if status == "canceled"
        && let Some(c) = refund["charge"].as_str().and_then(|c| st.charges.get_mut(c))
    {
        let refunded = (c["amount_refunded"].as_i64().unwrap_or(0) - amount).max(0);
        c["amount_refunded"] = json!(refunded);
        c["refunded"] = json!(false);
    }
    let events = vec![new_event(inner, st, "refund.updated", refund.clone())];
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
    // An inquiry may be escalated by the issuer to a chargeback (`needs_response`): its funds
    // are withdrawn then, as for a dispute opened as one.
    let allowed: &[&str] = if inquiry {
        &["warning_under_review", "warning_closed", "needs_response", "won", "lost"]
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
        if inquiry && !status.starts_with("warning_") {
            events.push(new_event(inner, st, "charge.dispute.funds_withdrawn", dispute.clone()));
        }
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
