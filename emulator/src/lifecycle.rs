//! A Checkout Session after creation: paid on the hosted page (or through the control route /
//! [`crate::Emulator::pay`]), its delayed payment outcome, or expired.

use crate::checkout::CheckoutInput;
use crate::error::ApiError;
use crate::params::only_params;
use crate::state::{Inner, State, new_event, rand_id};
use serde_json::{Value, json};
use std::sync::Arc;

/// `POST /v1/checkout/sessions/{id}/expire`: the expired session and its event's id.
pub(crate) fn expire(
    inner: &Inner,
    st: &mut State,
    id: &str,
    pairs: &[(String, String)],
) -> Result<(Value, String), ApiError> {
    only_params(pairs, &["expand"])?;
    let s = st.sessions.get(id).ok_or_else(|| ApiError::no_such(404, "id", "checkout.session", id))?;
    if s.obj["status"] != "open" {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            Some("checkout_session_not_open"),
            None,
            format!(
                "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of \"{}\".",
                s.obj["status"].as_str().unwrap_or("")
            ),
        ));
    }
    Ok(expire_open(inner, st, id))
}

/// Expires an open session now: the session and its `checkout.session.expired` event's id.
fn expire_open(inner: &Inner, st: &mut State, id: &str) -> (Value, String) {
    let s = st.sessions.get_mut(id).expect("an open session");
    s.obj["status"] = json!("expired");
    let snap = s.obj.clone();
    let ev = new_event(inner, st, "checkout.session.expired", snap.clone());
    (snap, ev)
}

/// Expires every open session whose `expires_at` has passed, as Stripe does (each with its
/// `checkout.session.expired` event); returns the events' ids. Run lazily before each `/v1`
/// request and hosted-page payment, and by a background tick ([`crate::Emulator::start`]).
pub(crate) fn expire_due(inner: &Inner, st: &mut State) -> Vec<String> {
    let now = crate::state::now();
    let mut due: Vec<String> = st
        .sessions
        .iter()
        .filter(|(_, s)| s.obj["status"] == "open" && s.obj["expires_at"].as_i64().is_some_and(|t| t <= now))
        .map(|(id, _)| id.clone())
        .collect();
    due.sort();
    due.iter().map(|id| expire_open(inner, st, id).1).collect()
}

/// [`expire_due`] under the state lock, then delivers the events.
pub(crate) fn expire_due_now(inner: &Arc<Inner>) {
    let events = expire_due(inner, &mut inner.st.lock().unwrap());
    crate::webhook::dispatch(inner, events);
}

/// Where the hosted page's Cancel button leads: the session's `cancel_url`, else the page.
pub(crate) fn cancel_target(inner: &Inner, id: &str) -> String {
    let st = inner.st.lock().unwrap();
    st.sessions
        .get(id)
        .and_then(|s| s.obj["cancel_url"].as_str().map(|u| u.replace("{CHECKOUT_SESSION_ID}", id)))
        .unwrap_or_else(|| format!("{}/c/pay/{id}", inner.public_url))
}

/// Completes a session (`pay`, `delayed_success`, `delayed_failure`) with what the shopper
/// entered, emitting events and scheduling the async outcome. Returns the redirect URL.
pub(crate) fn complete(inner: &Arc<Inner>, id: &str, action: &str, input: &CheckoutInput) -> Result<String, String> {
    if !matches!(action, "pay" | "delayed_success" | "delayed_failure") {
        return Err(format!("unknown action '{action}'"));
    }
    expire_due_now(inner);
    let (ev, redirect) = {
        let mut st = inner.st.lock().unwrap();
        let st = &mut *st;
        let s = st.sessions.get_mut(id).ok_or_else(|| format!("No such checkout.session: '{id}'"))?;
        if s.obj["status"] != "open" {
            return Err(format!(
                "This Checkout Session is {} and can no longer be paid.",
                s.obj["status"].as_str().unwrap_or("")
            ));
        }
        crate::shipping::at_payment(s, input)?;
        let email = match (s.obj["customer_email"].as_str(), &input.email) {
            (Some(e), _) => e.to_string(),
            (None, Some(e)) if e.contains('@') => e.clone(),
            _ => "shopper@example.com".to_string(),
        };
        let address = match &s.obj["collected_information"]["shipping_details"]["address"] {
            Value::Object(a) => Value::Object(a.clone()),
            _ => {
                json!({ "city": null, "country": "US", "line1": null, "line2": null, "postal_code": "94107", "state": null })
            }
        };
        let name = s.obj["collected_information"]["shipping_details"]["name"]
            .as_str()
            .unwrap_or("Emulator Shopper")
            .to_string();
        s.obj["status"] = json!("complete");
        let total = s.obj["amount_total"].as_i64().unwrap_or(0);
        s.obj["payment_status"] = json!(if action != "pay" {
            "unpaid"
        } else if total == 0 {
            "no_payment_required"
        } else {
            "paid"
        });
        s.obj["payment_intent"] = json!(rand_id("pi_", 24));
        s.obj["customer_details"] = json!({
            "address": address,
            "business_name": null, "email": email, "individual_name": null, "name": name,
            "phone": null, "tax_exempt": "none", "tax_ids": []
        });
        let redirect = if s.obj["ui_mode"] == "embedded_page" {
            s.obj["return_url"].as_str()
        } else {
            s.obj["success_url"].as_str()
        }
        .unwrap_or("")
        .replace("{CHECKOUT_SESSION_ID}", id);
        let (promo, coupon) = (s.promo.clone(), s.coupon.clone());
        let snap = s.obj.clone();
        crate::promotions::redeem(st, promo.as_deref(), coupon.as_deref());
        if action == "pay" {
            st.paid_emails.insert(email.to_ascii_lowercase());
        }
        if total > 0 {
            crate::payments::record_payment(st, &snap, action == "pay");
        }
        (new_event(inner, st, "checkout.session.completed", snap), redirect)
    };
    crate::webhook::dispatch(inner, vec![ev]);
    if action != "pay" {
        tokio::spawn(async_outcome(inner.clone(), id.to_string(), action == "delayed_success"));
    }
    Ok(redirect)
}

/// After `Options::async_delay`, the delayed payment method succeeds or fails.
async fn async_outcome(inner: Arc<Inner>, id: String, success: bool) {
    tokio::time::sleep(inner.opts.async_delay).await;
    let ev = {
        let mut st = inner.st.lock().unwrap();
        let st = &mut *st;
        let Some(s) = st.sessions.get_mut(&id) else {
            return;
        };
        if success {
            s.obj["payment_status"] = json!("paid");
            if let Some(e) = s.obj["customer_details"]["email"].as_str() {
                st.paid_emails.insert(e.to_ascii_lowercase());
            }
        }
        let snap = st.sessions[&id].obj.clone();
        if success {
            crate::payments::record_payment(st, &snap, true);
        }
        let typ =
            if success { "checkout.session.async_payment_succeeded" } else { "checkout.session.async_payment_failed" };
        new_event(&inner, st, typ, snap)
    };
    crate::webhook::dispatch(&inner, vec![ev]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Session;

    /// An open session, its `expires_at` `ahead` seconds from now.
    fn open(st: &mut State, id: &str, ahead: i64) {
        let obj = json!({"id": id, "object": "checkout.session", "status": "open", "expires_at": crate::state::now() + ahead});
        st.sessions.insert(id.to_string(), Session { obj, line_items: vec![], promo: None, coupon: None });
    }

    #[test]
    fn an_open_session_expires_at_its_expires_at_once_with_its_event() {
        let inner = Inner::new(crate::Options::default(), "127.0.0.1:9".parse().unwrap()).unwrap();
        let mut st = State::default();
        open(&mut st, "cs_test_due", -1);
        open(&mut st, "cs_test_later", 1800);
        let events = expire_due(&inner, &mut st);
        assert_eq!(events.len(), 1, "only the one past its expires_at");
        assert_eq!(st.sessions["cs_test_due"].obj["status"], "expired");
        assert_eq!(st.sessions["cs_test_later"].obj["status"], "open");
        let event = st.events.iter().find(|e| e["id"] == events[0].as_str()).unwrap();
        assert_eq!(event["type"], "checkout.session.expired");
        assert_eq!(event["data"]["object"]["id"], "cs_test_due");
        assert!(expire_due(&inner, &mut st).is_empty(), "an expired session expires once");
        // Expiring it by hand afterwards is Stripe's 400.
        assert_eq!(expire(&inner, &mut st, "cs_test_due", &[]).unwrap_err().status, 400);
    }
}
