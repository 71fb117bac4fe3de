//! Test control: the operations behind both the public [`crate::Emulator`] methods and the
//! `/_emulator/*` routes (logs, faults, paying a session, refunds, disputes, resending,
//! signing, the webhook URL). Each route parses its JSON and calls the same method; a POST
//! passes [`crate::guard::control_guard`] first (JSON only, no cross-site caller).

use crate::error::ApiError;
use crate::state::{Inner, State as St};
use crate::{ApiFault, Delivery, Faults, RecordedRequest, WebhookFaults};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

type S = State<Arc<Inner>>;

impl Inner {
    /// Snapshot of the `/v1` request log.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.st.lock().unwrap().requests.clone()
    }

    /// Snapshot of all webhook delivery attempts.
    pub(crate) fn deliveries(&self) -> Vec<Delivery> {
        self.st.lock().unwrap().deliveries.clone()
    }

    /// All events, oldest first.
    pub(crate) fn events(&self) -> Vec<Value> {
        self.st.lock().unwrap().events.clone()
    }

    /// Clears the request and delivery logs.
    pub(crate) fn clear_logs(&self) {
        let mut st = self.st.lock().unwrap();
        st.requests.clear();
        st.deliveries.clear();
    }

    /// Current faults.
    pub(crate) fn faults(&self) -> Faults {
        self.st.lock().unwrap().faults.clone()
    }

    /// Sets (or clears) the API fault.
    pub(crate) fn set_api_fault(&self, fault: Option<ApiFault>) {
        self.st.lock().unwrap().faults.api = fault;
    }

    /// Sets the webhook faults; turning `reorder` off flushes the held events.
    pub(crate) fn set_webhook_faults(self: &Arc<Self>, faults: WebhookFaults) {
        let flush = {
            let mut st = self.st.lock().unwrap();
            st.faults.webhooks = faults;
            !st.faults.webhooks.reorder
        };
        if flush {
            crate::webhook::flush(self);
        }
    }

    /// Clears all faults and flushes events held by `reorder`.
    pub(crate) fn reset_faults(self: &Arc<Self>) {
        self.st.lock().unwrap().faults = Faults::default();
        crate::webhook::flush(self);
    }

    /// Completes a session as the hosted page would; returns the redirect URL.
    pub(crate) fn pay(self: &Arc<Self>, session_id: &str, action: &str) -> Result<String, String> {
        crate::lifecycle::complete(self, session_id, action, &crate::checkout::CheckoutInput::default())
    }

    /// Runs one after-payment action under the state lock, then delivers the events it created.
    pub(crate) fn act(
        self: &Arc<Self>,
        f: impl FnOnce(&Inner, &mut St) -> Result<(Value, Vec<String>), ApiError>,
    ) -> Result<Value, ApiError> {
        let (object, events) = {
            let mut st = self.st.lock().unwrap();
            f(self, &mut st)?
        };
        crate::webhook::dispatch(self, events);
        Ok(object)
    }

    /// Sets (or clears) the webhook endpoint.
    pub(crate) fn set_webhook_url(&self, url: Option<String>) {
        *self.webhook_url.lock().unwrap() = url;
    }
}

/// The `/_emulator/*` routes.
pub(crate) fn routes() -> Router<Arc<Inner>> {
    Router::new()
        .route("/_emulator/requests", get(|s: S| async move { Json(json!(s.0.requests())) }))
        .route("/_emulator/deliveries", get(|s: S| async move { Json(json!(s.0.deliveries())) }))
        .route("/_emulator/events", get(|s: S| async move { Json(json!(s.0.events())) }))
        .route("/_emulator/outbox", get(crate::email::outbox_page))
        .route("/_emulator/outbox.json", get(crate::email::outbox_json))
        .route("/_emulator/stripe.js", get(stripe_js))
        .route("/_emulator/faults", get(|s: S| async move { Json(json!(s.0.faults())) }).post(set_faults))
        .route(
            "/_emulator/reset-faults",
            post(|s: S| async move {
                s.0.reset_faults();
                Json(json!({"reset": true}))
            }),
        )
        .route(
            "/_emulator/flush",
            post(|s: S| async move {
                crate::webhook::flush(&s.0);
                Json(json!({"flushed": true}))
            }),
        )
        .route(
            "/_emulator/clear-logs",
            post(|s: S| async move {
                s.0.clear_logs();
                Json(json!({"cleared": true}))
            }),
        )
        .route("/_emulator/sessions/{id}/pay", post(pay))
        .route("/_emulator/sessions/{id}/refund", post(refund))
        .route("/_emulator/sessions/{id}/expire", post(expire))
        .route("/_emulator/sessions/{id}/dispute", post(dispute))
        .route("/_emulator/disputes/{id}/close", post(dispute_status))
        .route("/_emulator/disputes/{id}/update", post(dispute_status))
        .route("/_emulator/refunds/{id}/fail", post(fail_refund))
        .route("/_emulator/refunds/{id}/{action}", post(settle_refund))
        .route("/_emulator/events/resend/{id}", post(resend))
        .route("/_emulator/sign", post(sign))
        .route("/_emulator/webhook-url", post(webhook_url))
        .route_layer(axum::middleware::from_fn(crate::guard::control_guard))
}

/// The stand-in for Stripe.js a browser test serves for `https://js.stripe.com/**` (the subset
/// a storefront uses for embedded Checkout; see the script's own comment).
pub(crate) const STRIPE_JS: &str = include_str!("stripe.js");

/// `GET /_emulator/stripe.js`: [`STRIPE_JS`], as JavaScript.
async fn stripe_js() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8")], STRIPE_JS).into_response()
}

/// A control error: `{"error": {"type": "invalid_request_error", "message"}}`.
fn failed(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"error": {"type": "invalid_request_error", "message": msg.into()}}))).into_response()
}

fn bad_json(msg: impl Into<String>) -> Response {
    failed(StatusCode::BAD_REQUEST, msg)
}

/// A JSON body; `{}` when it is empty or only whitespace.
#[allow(clippy::result_large_err)]
fn parse_json(body: &Bytes) -> Result<Value, Response> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| bad_json(format!("invalid JSON: {e}")))
}

/// `POST /_emulator/faults`: `{"api":{"status":500,"count":2}}`, `{"api":{"delay_ms":3000}}`,
/// `{"api":null}`, `{"webhooks":{"duplicate":true,"reorder":false,"drop":true}}` (top-level
/// `duplicate`/`reorder`/`drop` also accepted). Unspecified parts keep their value.
async fn set_faults(s: S, body: Bytes) -> Response {
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(a) = v.get("api") {
        let api = match serde_json::from_value::<Option<ApiFault>>(a.clone()) {
            Ok(Some(f)) if f.status.is_some_and(|x| !(400..=599).contains(&x)) => {
                return bad_json("api.status must be 400..=599");
            }
            Ok(f) => f,
            Err(e) => return bad_json(format!("api: {e}")),
        };
        s.0.set_api_fault(api);
    }
    let w = v.get("webhooks").unwrap_or(&v);
    let mut wf = s.0.faults().webhooks;
    if let Some(d) = w.get("duplicate").and_then(Value::as_bool) {
        wf.duplicate = d;
    }
    if let Some(d) = w.get("drop").and_then(Value::as_bool) {
        wf.drop = d;
    }
    if let Some(r) = w.get("reorder").and_then(Value::as_bool) {
        wf.reorder = r;
    }
    s.0.set_webhook_faults(wf);
    Json(json!(s.0.faults())).into_response()
}

/// `POST /_emulator/sessions/{id}/pay` with `{"action":"pay"|"delayed_success"|"delayed_failure"|"cancel"}`.
async fn pay(s: S, Path(id): Path<String>, body: Bytes) -> Response {
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let action = v.get("action").and_then(Value::as_str).unwrap_or("pay").to_string();
    if !s.0.st.lock().unwrap().sessions.contains_key(&id) {
        return failed(StatusCode::NOT_FOUND, format!("No such checkout.session: '{id}'"));
    }
    if action == "cancel" {
        let url = crate::lifecycle::cancel_target(&s.0, &id);
        return Json(json!({"redirect_url": url})).into_response();
    }
    match s.0.pay(&id, &action) {
        Ok(url) => {
            let session = s.0.st.lock().unwrap().sessions.get(&id).map(|x| x.obj.clone());
            Json(json!({"redirect_url": url, "session": session})).into_response()
        }
        Err(e) => failed(StatusCode::CONFLICT, e),
    }
}

/// The answer of an after-payment control action: the object, or the error with its status.
fn acted(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(object) => Json(object).into_response(),
        Err(e) => (
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            Json(json!({"error": {"type": e.typ, "code": e.code, "message": e.message}})),
        )
            .into_response(),
    }
}

/// `POST /_emulator/sessions/{id}/refund` `{"amount"?: N, "pending"?: true}` (default: what is
/// left, succeeded at once).
async fn refund(s: S, Path(id): Path<String>, body: Bytes) -> Response {
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let amount = match v.get("amount") {
        None | Some(Value::Null) => None,
        Some(a) => match a.as_i64() {
            Some(a) => Some(a),
            None => return bad_json("amount must be an integer (minor units)"),
        },
    };
    let pending = match v.get("pending") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return bad_json("pending must be a boolean"),
    };
    acted(s.0.act(|inner, st| crate::payments::refund(inner, st, &id, amount, pending)))
}

/// `POST /_emulator/sessions/{id}/expire` (body empty or `{}`): the open session expires now,
/// as at its `expires_at`, with its `checkout.session.expired` event; answers the session (404
/// unknown, 400 not open, as Stripe's expire endpoint).
async fn expire(s: S, Path(id): Path<String>, body: Bytes) -> Response {
    match parse_json(&body) {
        Ok(v) if v.as_object().is_some_and(|o| o.is_empty()) => {}
        Ok(_) => return bad_json("the body must be empty or {}"),
        Err(r) => return r,
    }
    acted(s.0.act(|inner, st| crate::lifecycle::expire(inner, st, &id, &[]).map(|(obj, ev)| (obj, vec![ev]))))
}

/// `POST /_emulator/sessions/{id}/dispute` `{"inquiry"?: true}`.
async fn dispute(s: S, Path(id): Path<String>, body: Bytes) -> Response {
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let inquiry = v.get("inquiry").and_then(Value::as_bool).unwrap_or(false);
    acted(s.0.act(|inner, st| crate::payments::dispute(inner, st, &id, inquiry)))
}

/// `POST /_emulator/disputes/{id}/close` `{"status": "won" | "lost" | "warning_closed"}`, and
/// `POST /_emulator/disputes/{id}/update` `{"status": "under_review" | "warning_under_review"}`.
async fn dispute_status(s: S, Path(id): Path<String>, body: Bytes) -> Response {
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(status) = v.get("status").and_then(Value::as_str).map(String::from) else {
        return bad_json("status (string) is required");
    };
    acted(s.0.act(|inner, st| crate::payments::set_dispute_status(inner, st, &id, &status)))
}

/// `POST /_emulator/refunds/{id}/fail`: the refund fails and its amount returns to the charge.
async fn fail_refund(s: S, Path(id): Path<String>) -> Response {
    acted(s.0.act(|inner, st| crate::payments::fail_refund(inner, st, &id)))
}

/// `POST /_emulator/refunds/{id}/succeed` and `.../cancel`: a pending refund settles;
/// `refund.updated`.
async fn settle_refund(s: S, Path((id, action)): Path<(String, String)>) -> Response {
    let status = match action.as_str() {
        "succeed" => "succeeded",
        "cancel" => "canceled",
        _ => return failed(StatusCode::NOT_FOUND, format!("Unknown refund action '{action}' (succeed, cancel)")),
    };
    acted(s.0.act(|inner, st| crate::payments::settle_refund(inner, st, &id, status)))
}

/// `POST /_emulator/events/resend/{id}`.
async fn resend(s: S, Path(id): Path<String>) -> Response {
    if crate::webhook::resend(&s.0, &id) {
        Json(json!({"resent": id})).into_response()
    } else {
        failed(StatusCode::NOT_FOUND, format!("No such event: '{id}'"))
    }
}

/// `POST /_emulator/sign` `{"payload": "...", "timestamp": 123, "secret"?: "whsec_..."}`.
async fn sign(s: S, body: Bytes) -> Response {
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(payload) = v.get("payload").and_then(Value::as_str) else {
        return bad_json("payload (string) is required");
    };
    let t = v.get("timestamp").and_then(Value::as_i64).unwrap_or_else(crate::state::now);
    let secret = v.get("secret").and_then(Value::as_str).unwrap_or(&s.0.opts.webhook_secret);
    let sig = crate::webhook::signature_v1(secret, t, payload.as_bytes());
    Json(json!({"header": format!("t={t},v1={sig}"), "timestamp": t, "v1": sig})).into_response()
}

/// `POST /_emulator/webhook-url` `{"url": "http://..." | null}`: only an endpoint on this
/// machine (`http`, host `localhost` or a loopback IP), so a request that got past the control
/// guard still cannot send the signed events elsewhere. (The Rust API and `Options` take any URL.)
async fn webhook_url(s: S, body: Bytes) -> Response {
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let url = match v.get("url") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) if crate::guard::is_loopback_url(u) => Some(u.clone()),
        Some(_) => {
            return bad_json("url must be null or an http URL on this machine (localhost, 127.0.0.0/8, [::1])");
        }
    };
    s.0.set_webhook_url(url.clone());
    Json(json!({"webhook_url": url})).into_response()
}
