//! HTTP layer: `/v1` API, hosted checkout page and `/_emulator` control endpoints.

use crate::form::{parse_pairs, to_tree};
use crate::logic::{self, ApiError, Inner, State, expands, fmt_money, list_obj, now_ms, rand_id};
use crate::{API_VERSION, ApiFault, RecordedRequest, WebhookFaults};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

type S = AxState<Arc<Inner>>;

/// Builds the emulator's router.
pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/v1/{*rest}", any(v1))
        .route("/c/pay/{id}", get(page).post(page_action))
        .route("/_emulator/requests", get(|s: S| async move { Json(json!(s.0.st.lock().unwrap().requests)) }))
        .route("/_emulator/deliveries", get(|s: S| async move { Json(json!(s.0.st.lock().unwrap().deliveries)) }))
        .route("/_emulator/events", get(|s: S| async move { Json(json!(s.0.st.lock().unwrap().events)) }))
        .route(
            "/_emulator/faults",
            get(|s: S| async move { Json(json!(s.0.st.lock().unwrap().faults)) }).post(set_faults),
        )
        .route("/_emulator/reset-faults", post(reset_faults))
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
                let mut st = s.0.st.lock().unwrap();
                st.requests.clear();
                st.deliveries.clear();
                Json(json!({"cleared": true}))
            }),
        )
        .route("/_emulator/sessions/{id}/pay", post(control_pay))
        .route("/_emulator/sessions/{id}/refund", post(control_refund))
        .route("/_emulator/sessions/{id}/dispute", post(control_dispute))
        .route("/_emulator/disputes/{id}/close", post(control_dispute_status))
        .route("/_emulator/disputes/{id}/update", post(control_dispute_status))
        .route("/_emulator/refunds/{id}/fail", post(control_fail_refund))
        .route("/_emulator/events/resend/{id}", post(control_resend))
        .route("/_emulator/sign", post(control_sign))
        .route("/_emulator/webhook-url", post(control_webhook_url))
        .layer(axum::middleware::from_fn_with_state(inner.clone(), crate::guard::host_guard))
        .with_state(inner)
}

async fn root(s: S) -> impl IntoResponse {
    let url = s.0.webhook_url.lock().unwrap().clone();
    Json(json!({
        "emulator": "stripe-emulator", "api_version": API_VERSION, "base_url": s.0.base_url,
        "webhook_url": url, "livemode": false
    }))
}

fn bad_json(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": {"type": "invalid_request_error", "message": msg.into()}})))
        .into_response()
}

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
    let mut flush = false;
    let faults = {
        let mut st = s.0.st.lock().unwrap();
        if let Some(a) = v.get("api") {
            if a.is_null() {
                st.faults.api = None;
            } else {
                match serde_json::from_value::<ApiFault>(a.clone()) {
                    Ok(f) if f.status.is_some_and(|x| !(400..=599).contains(&x)) => {
                        return bad_json("api.status must be 400..=599");
                    }
                    Ok(f) => st.faults.api = Some(f),
                    Err(e) => return bad_json(format!("api: {e}")),
                }
            }
        }
        let w = v.get("webhooks").unwrap_or(&v);
        let mut wf: WebhookFaults = st.faults.webhooks.clone();
        if let Some(d) = w.get("duplicate").and_then(Value::as_bool) {
            wf.duplicate = d;
        }
        if let Some(d) = w.get("drop").and_then(Value::as_bool) {
            wf.drop = d;
        }
        if let Some(r) = w.get("reorder").and_then(Value::as_bool) {
            if wf.reorder && !r {
                flush = true;
            }
            wf.reorder = r;
        }
        st.faults.webhooks = wf;
        st.faults.clone()
    };
    if flush {
        crate::webhook::flush(&s.0);
    }
    Json(json!(faults)).into_response()
}

async fn reset_faults(s: S) -> Response {
    s.0.st.lock().unwrap().faults = Default::default();
    crate::webhook::flush(&s.0);
    Json(json!({"reset": true})).into_response()
}

/// `POST /_emulator/sessions/{id}/pay` with `{"action":"pay"|"delayed_success"|"delayed_failure"|"cancel"}`.
async fn control_pay(s: S, Path(id): Path<String>, body: Bytes) -> Response {
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let action = v.get("action").and_then(Value::as_str).unwrap_or("pay").to_string();
    if !s.0.st.lock().unwrap().sessions.contains_key(&id) {
        return (StatusCode::NOT_FOUND, Json(json!({"error": {"type": "invalid_request_error", "message": format!("No such checkout.session: '{id}'")}}))).into_response();
    }
    if action == "cancel" {
        let url = cancel_target(&s.0, &id);
        return Json(json!({"redirect_url": url})).into_response();
    }
    match logic::complete(&s.0, &id, &action) {
        Ok(url) => {
            let session = s.0.st.lock().unwrap().sessions.get(&id).map(|x| x.obj.clone());
            Json(json!({"redirect_url": url, "session": session})).into_response()
        }
        Err(e) => (StatusCode::CONFLICT, Json(json!({"error": {"type": "invalid_request_error", "message": e}})))
            .into_response(),
    }
}

/// A JSON body, or `{}` when there is none.
#[allow(clippy::result_large_err)]
fn parse_optional_json(body: &Bytes) -> Result<Value, Response> {
    if body.is_empty() { Ok(json!({})) } else { parse_json(body) }
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

/// `POST /_emulator/sessions/{id}/refund` `{"amount"?: N}` (default: what is left).
async fn control_refund(s: S, Path(id): Path<String>, body: Bytes) -> Response {
    let v = match parse_optional_json(&body) {
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
    acted(crate::payments::act(&s.0, |inner, st| crate::payments::refund(inner, st, &id, amount)))
}

/// `POST /_emulator/sessions/{id}/dispute` `{"inquiry"?: true}`.
async fn control_dispute(s: S, Path(id): Path<String>, body: Bytes) -> Response {
    let v = match parse_optional_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let inquiry = v.get("inquiry").and_then(Value::as_bool).unwrap_or(false);
    acted(crate::payments::act(&s.0, |inner, st| crate::payments::dispute(inner, st, &id, inquiry)))
}

/// `POST /_emulator/disputes/{id}/close` `{"status": "won" | "lost" | "warning_closed"}`, and
/// `POST /_emulator/disputes/{id}/update` `{"status": "under_review" | "warning_under_review"}`.
async fn control_dispute_status(s: S, Path(id): Path<String>, body: Bytes) -> Response {
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(status) = v.get("status").and_then(Value::as_str).map(String::from) else {
        return bad_json("status (string) is required");
    };
    acted(crate::payments::act(&s.0, |inner, st| crate::payments::set_dispute_status(inner, st, &id, &status)))
}

/// `POST /_emulator/refunds/{id}/fail`: the refund fails and its amount returns to the charge.
async fn control_fail_refund(s: S, Path(id): Path<String>) -> Response {
    acted(crate::payments::act(&s.0, |inner, st| crate::payments::fail_refund(inner, st, &id)))
}

async fn control_resend(s: S, Path(id): Path<String>) -> Response {
    if crate::webhook::resend(&s.0, &id) {
        Json(json!({"resent": id})).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"type": "invalid_request_error", "message": format!("No such event: '{id}'")}})),
        )
            .into_response()
    }
}

/// `POST /_emulator/sign` `{"payload": "...", "timestamp": 123, "secret"?: "whsec_..."}`.
async fn control_sign(s: S, body: Bytes) -> Response {
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(payload) = v.get("payload").and_then(Value::as_str) else {
        return bad_json("payload (string) is required");
    };
    let t = v.get("timestamp").and_then(Value::as_i64).unwrap_or_else(logic::now);
    let secret = v.get("secret").and_then(Value::as_str).unwrap_or(&s.0.opts.webhook_secret);
    let sig = crate::webhook::signature_v1(secret, t, payload.as_bytes());
    Json(json!({"header": format!("t={t},v1={sig}"), "timestamp": t, "v1": sig})).into_response()
}

/// `POST /_emulator/webhook-url` `{"url": "http://..." | null}`.
async fn control_webhook_url(s: S, body: Bytes) -> Response {
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let url = v.get("url").and_then(Value::as_str).map(String::from);
    *s.0.webhook_url.lock().unwrap() = url.clone();
    Json(json!({"webhook_url": url})).into_response()
}

fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 4 {
        return "****".into();
    }
    let last: String = chars[chars.len() - 4..].iter().collect();
    let prefix: String = if chars.len() > 12 { chars[..8].iter().collect() } else { String::new() };
    format!("{prefix}****{last}")
}

fn check_auth(h: Option<&str>) -> Result<String, ApiError> {
    let Some(h) = h.map(str::trim).filter(|h| !h.is_empty()) else {
        return Err(ApiError::new(
            401,
            "invalid_request_error",
            None,
            None,
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        ));
    };
    let key = match h.split_once(' ') {
        Some((scheme, k)) if scheme.eq_ignore_ascii_case("bearer") => k.trim(),
        _ => {
            return Err(ApiError::new(
                401,
                "invalid_request_error",
                None,
                None,
                "Invalid API Key provided. Use Bearer auth: 'Authorization: Bearer sk_test_...'.",
            ));
        }
    };
    let ok = ["sk_test_", "rk_test_"].iter().any(|p| {
        key.strip_prefix(p).is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_graphic()))
    });
    if ok {
        return Ok(key.to_string());
    }
    let mut msg = format!("Invalid API Key provided: {}", redact(key));
    if key.starts_with("sk_live_") || key.starts_with("rk_live_") {
        msg.push_str(". The Stripe emulator runs in test mode only: use a test key (sk_test_...).");
    }
    Err(ApiError::new(401, "invalid_request_error", None, None, msg))
}

pub(crate) fn only_params(pairs: &[(String, String)], allowed: &[&str]) -> Result<(), ApiError> {
    for (k, _) in pairs {
        let top = k.split('[').next().unwrap_or("");
        if !allowed.contains(&top) {
            return Err(ApiError::unknown(top));
        }
    }
    Ok(())
}

pub(crate) fn parse_limit(params: &Value) -> Result<usize, ApiError> {
    match params.get("limit").and_then(Value::as_str) {
        None => Ok(10),
        Some(s) => {
            let n: i64 = if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() && s.len() < 10 {
                s.parse().unwrap_or(0)
            } else {
                return Err(ApiError::not_integer("limit"));
            };
            if !(1..=100).contains(&n) {
                return Err(ApiError::invalid("limit", format!("Invalid limit: must be between 1 and 100 (got {n})")));
            }
            Ok(n as usize)
        }
    }
}

pub(crate) fn paginate(items: Vec<Value>, params: &Value, url: &str) -> Result<Value, ApiError> {
    let limit = parse_limit(params)?;
    let mut items = items;
    let cursor = |key: &str, id: &str, items: &[Value]| {
        items.iter().position(|x| x["id"] == id).ok_or_else(|| ApiError::no_such(400, key, "object", id))
    };
    let after = params.get("starting_after").and_then(Value::as_str);
    let before = params.get("ending_before").and_then(Value::as_str);
    if after.is_some() && before.is_some() {
        return Err(ApiError::invalid(
            "ending_before",
            "You may only specify one of these parameters: ending_before, starting_after.",
        ));
    }
    if let Some(after) = after {
        let pos = cursor("starting_after", after, &items)?;
        items.drain(..=pos);
    }
    if let Some(before) = before {
        // Items are newest first: the page is the `limit` items just newer than `before`.
        let pos = cursor("ending_before", before, &items)?;
        items.truncate(pos);
        let has_more = items.len() > limit;
        let items = items.split_off(items.len().saturating_sub(limit));
        return Ok(list_obj(items, has_more, url));
    }
    let has_more = items.len() > limit;
    items.truncate(limit);
    Ok(list_obj(items, has_more, url))
}

fn route(
    inner: &Inner,
    st: &mut State,
    method: &Method,
    path: &str,
    pairs: &[(String, String)],
    events: &mut Vec<String>,
) -> Result<Value, ApiError> {
    let params = to_tree(pairs).map_err(|k| ApiError::invalid(&k, format!("Invalid parameter structure for '{k}'")))?;
    let segs: Vec<&str> = path.trim_start_matches("/v1/").trim_end_matches('/').split('/').collect();
    let m = method.as_str();
    if m == "GET"
        && let Some(found) = crate::payments::get(st, &segs, pairs, &params)
    {
        return found;
    }
    match (m, segs.as_slice()) {
        ("POST", ["checkout", "sessions"]) => logic::create_session(inner, st, pairs, &params),
        ("GET", ["checkout", "sessions"]) => {
            only_params(pairs, &["limit", "starting_after", "expand", "status", "payment_intent", "customer"])?;
            let mut items: Vec<Value> =
                st.session_order.iter().rev().filter_map(|id| st.sessions.get(id)).map(|s| s.obj.clone()).collect();
            if let Some(status) = params.get("status").and_then(Value::as_str) {
                items.retain(|x| x["status"] == status);
            }
            if let Some(pi) = params.get("payment_intent").and_then(Value::as_str) {
                items.retain(|x| x["payment_intent"] == pi);
            }
            paginate(items, &params, "/v1/checkout/sessions")
        }
        ("GET", ["checkout", "sessions", id]) => {
            only_params(pairs, &["expand"])?;
            let ex = expands(&params, &["line_items", "line_items.data.price.product"])?;
            logic::render_session(st, id, &ex, &inner.public_url)
                .ok_or_else(|| ApiError::no_such(404, "id", "checkout.session", id))
        }
        ("GET", ["checkout", "sessions", id, "line_items"]) => {
            only_params(pairs, &["expand", "limit", "starting_after", "ending_before"])?;
            let ex = expands(&params, &["data.price.product"])?;
            let list = logic::line_items(st, id, !ex.is_empty())
                .ok_or_else(|| ApiError::no_such(404, "id", "checkout.session", id))?;
            let url = list["url"].as_str().unwrap_or_default().to_string();
            paginate(list["data"].as_array().cloned().unwrap_or_default(), &params, &url)
        }
        ("POST", ["checkout", "sessions", id, "expire"]) => {
            only_params(pairs, &["expand"])?;
            let (obj, ev) = logic::expire(inner, st, id)?;
            events.push(ev);
            Ok(obj)
        }
        ("GET", ["promotion_codes"]) => {
            only_params(
                pairs,
                &[
                    "code",
                    "active",
                    "coupon",
                    "customer",
                    "limit",
                    "expand",
                    "starting_after",
                    "ending_before",
                    "created",
                ],
            )?;
            let ex = expands(&params, &["data.promotion.coupon", "data.promotion.coupon.applies_to"])?;
            // Like Stripe, a coupon's `applies_to` is includable: present only when expanded.
            let with_applies_to = ex.iter().any(|e| e == "data.promotion.coupon.applies_to");
            let active = match params.get("active").and_then(Value::as_str) {
                None => None,
                Some("true") => Some(true),
                Some("false") => Some(false),
                Some(x) => {
                    return Err(ApiError::invalid("active", format!("Invalid boolean: {x}")));
                }
            };
            let code = params.get("code").and_then(Value::as_str);
            let coupon = params.get("coupon").and_then(Value::as_str);
            let items: Vec<Value> = st
                .promos
                .iter()
                .filter(|p| code.is_none_or(|c| p["code"].as_str().is_some_and(|pc| pc.eq_ignore_ascii_case(c))))
                .filter(|p| active.is_none_or(|a| p["active"] == a))
                .filter(|p| coupon.is_none_or(|c| p["promotion"]["coupon"] == c))
                .map(|p| logic::render_promo(st, p, !ex.is_empty(), with_applies_to))
                .collect();
            paginate(items, &params, "/v1/promotion_codes")
        }
        ("GET", ["promotion_codes", id]) => {
            only_params(pairs, &["expand"])?;
            let ex = expands(&params, &["promotion.coupon"])?;
            let p = st
                .promos
                .iter()
                .find(|p| p["id"] == *id)
                .ok_or_else(|| ApiError::no_such(404, "id", "promotion_code", id))?;
            Ok(logic::render_promo(st, p, !ex.is_empty(), true))
        }
        ("GET", [kind @ ("coupons" | "prices" | "products"), id]) => {
            only_params(pairs, &["expand"])?;
            let (objects, object) = match *kind {
                "coupons" => (&st.coupons, "coupon"),
                "prices" => (&st.prices, "price"),
                _ => (&st.products, "product"),
            };
            objects.get(*id).cloned().ok_or_else(|| ApiError::no_such(404, "id", object, id))
        }
        ("GET", ["events"]) => {
            only_params(
                pairs,
                &["type", "types", "limit", "starting_after", "ending_before", "created", "delivery_success", "expand"],
            )?;
            crate::events::list(st, &params)
        }
        ("GET", ["events", id]) => {
            only_params(pairs, &["expand"])?;
            st.events.iter().find(|e| e["id"] == *id).cloned().ok_or_else(|| ApiError::no_such(404, "id", "event", id))
        }
        _ => Err(ApiError::new(
            404,
            "invalid_request_error",
            None,
            None,
            format!(
                "Unrecognized request URL ({m}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
            ),
        )),
    }
}

/// Holds an idempotency scope in `in_flight` while its request runs; released
/// when dropped (also when the client goes away mid-request).
struct InFlight {
    inner: Arc<Inner>,
    scope: (String, String),
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut st) = self.inner.st.lock() {
            st.in_flight.remove(&self.scope);
        }
    }
}

async fn v1(
    s: S,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inner = s.0;
    let at_ms = now_ms();
    let rid = rand_id("req_", 14);
    let path = uri.path().to_string();
    let query = uri.query().map(String::from);
    let is_post = method == Method::POST;
    let pairs = if is_post { parse_pairs(&body) } else { parse_pairs(query.as_deref().unwrap_or("").as_bytes()) };
    let hdr = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(String::from);
    let auth_h = hdr("authorization");
    let idem_key = if is_post { hdr("idempotency-key") } else { None };
    let mut fault_label: Option<String> = None;
    let mut replayed = false;
    let mut extra: Vec<(&'static str, String)> = vec![];
    let mut events: Vec<String> = vec![];
    // An idempotency key is scoped to the API key. It is held from the start,
    // so while a request is stalled (an injected delay) a retry with the same
    // key gets Stripe's 409, as it would while Stripe is still executing.
    let auth = check_auth(auth_h.as_deref());
    let scope = idem_key
        .as_ref()
        .zip(auth.as_ref().ok())
        .map(|(k, key)| (hex::encode(Sha256::digest(key.as_bytes())), k.clone()));
    let (status, out): (u16, Value) = 'resp: {
        let _held = match &scope {
            Some(sc) if !inner.st.lock().unwrap().in_flight.insert(sc.clone()) => {
                extra.push(("stripe-should-retry", "true".into()));
                let e = ApiError::new(
                    409,
                    "idempotency_error",
                    None,
                    None,
                    "There is currently another in-progress request using this Stripe-Idempotency-Key. Please try again later.",
                );
                break 'resp (409, e.body(&rid));
            }
            Some(sc) => Some(InFlight { inner: inner.clone(), scope: sc.clone() }),
            None => None,
        };
        // Faults are taken only by requests that get this far, so a 409 does not use one up.
        let fault = {
            let mut st = inner.st.lock().unwrap();
            let f = st.faults.api.clone();
            if let Some(a) = st.faults.api.as_mut() {
                a.count = a.count.saturating_sub(1);
                if a.count == 0 {
                    st.faults.api = None;
                }
            }
            f.filter(|f| f.count > 0)
        };
        if let Some(f) = fault {
            if let Some(ms) = f.delay_ms {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                fault_label = Some("slow".into());
            }
            if let Some(code) = f.status {
                fault_label = Some(format!("status_{code}"));
                let e = if code == 429 {
                    ApiError::new(
                        429,
                        "invalid_request_error",
                        Some("rate_limit"),
                        None,
                        "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests. (Injected by the Stripe emulator.)",
                    )
                } else if code >= 500 {
                    extra.push(("stripe-should-retry", "true".into()));
                    ApiError::new(
                        code,
                        "api_error",
                        None,
                        None,
                        "An unknown error occurred while processing your request. (Injected by the Stripe emulator.)",
                    )
                } else {
                    ApiError::new(code, "invalid_request_error", None, None, "Injected fault.")
                };
                break 'resp (code, e.body(&rid));
            }
        }
        if let Err(e) = &auth {
            break 'resp (e.status, e.body(&rid));
        }
        if let Some((_, k)) = &scope
            && k.len() > 255
        {
            let e = ApiError::invalid(
                "Idempotency-Key",
                format!("Invalid Idempotency-Key: length must be at most 255 characters (got {}).", k.len()),
            );
            break 'resp (400, e.body(&rid));
        }
        let mut st = inner.st.lock().unwrap();
        if let Some(sc) = &scope
            && let Some(e) = st.idem.get(sc)
        {
            if e.method == method.as_str() && e.path == path && e.body == body.as_ref() {
                replayed = true;
                extra.push(("idempotent-replayed", "true".into()));
                extra.push(("original-request", e.request_id.clone()));
                break 'resp (e.status, e.response.clone());
            }
            let e = ApiError::new(
                400,
                "idempotency_error",
                None,
                None,
                format!(
                    "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{}' if you meant to execute a different request.",
                    sc.1
                ),
            );
            break 'resp (400, e.body(&rid));
        }
        let (status, out) = match route(&inner, &mut st, &method, &path, &pairs, &mut events) {
            Ok(v) => (200, v),
            Err(e) => (e.status, e.body(&rid)),
        };
        for ev in &events {
            if let Some(e) = st.events.iter_mut().find(|e| e["id"] == ev.as_str()) {
                e["request"] = json!({"id": rid, "idempotency_key": idem_key});
            }
        }
        if let Some(sc) = scope
            && (status == 200 || status >= 500)
        {
            st.idem.insert(
                sc,
                logic::Idem {
                    method: method.to_string(),
                    path: path.clone(),
                    body: body.to_vec(),
                    status,
                    response: out.clone(),
                    request_id: rid.clone(),
                },
            );
        }
        (status, out)
    };
    crate::webhook::dispatch(&inner, events);
    let key_last4 =
        auth_h.as_deref().and_then(|h| h.split_once(' ')).map(|(_, k)| k.trim()).filter(|k| k.chars().count() > 4).map(
            |k| {
                let c: Vec<char> = k.chars().collect();
                c[c.len() - 4..].iter().collect::<String>()
            },
        );
    inner.st.lock().unwrap().requests.push(RecordedRequest {
        request_id: rid.clone(),
        method: method.to_string(),
        path,
        query,
        params: pairs,
        idempotency_key: idem_key,
        stripe_version: hdr("stripe-version"),
        user_agent: hdr("user-agent"),
        authorization_present: auth_h.is_some(),
        key_last4,
        remote_addr: addr,
        status,
        fault: fault_label,
        idempotent_replayed: replayed,
        at_ms,
    });
    let mut resp =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(out)).into_response();
    let h = resp.headers_mut();
    h.insert("request-id", HeaderValue::from_str(&rid).unwrap());
    h.insert("stripe-version", HeaderValue::from_static(API_VERSION));
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    resp
}

// ---------------------------------------------------------------- hosted page

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const CSS: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f6f9fc;color:#1a1f36;margin:0}\
.banner{background:#ffde92;color:#5c3c00;text-align:center;padding:.6rem;font-weight:600}\
main{max-width:560px;margin:2rem auto;background:#fff;border-radius:10px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:1.5rem 2rem}\
h1{font-size:1.3rem;margin-top:0}table{width:100%;border-collapse:collapse}td,th{padding:.45rem 0;text-align:left}\
td.n,th.n{text-align:right}tr.sep td{border-top:1px solid #e3e8ee}tr.total td{font-weight:700;font-size:1.1rem}\
.muted{color:#697386;font-size:.9rem}form{display:flex;flex-direction:column;gap:.6rem;margin-top:1.5rem}\
button{font-size:1rem;padding:.7rem;border-radius:6px;border:1px solid #cfd7df;background:#fff;cursor:pointer}\
button#pay{background:#635bff;color:#fff;border-color:#635bff;font-weight:600}button#cancel{color:#697386}";

fn page_shell(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body><div class=\"banner\" id=\"emulator-banner\">Stripe emulator — test mode, no real payment</div><main>{body}</main></body></html>",
        esc(title)
    )
}

async fn page(s: S, Path(id): Path<String>) -> Response {
    let st = s.0.st.lock().unwrap();
    let Some(sess) = st.sessions.get(&id) else {
        return (
            StatusCode::NOT_FOUND,
            Html(page_shell(
                "Not found",
                "<h1>Checkout session not found</h1><p class=\"muted\">This link is invalid.</p>",
            )),
        )
            .into_response();
    };
    let o = &sess.obj;
    let cur = o["currency"].as_str().unwrap_or("usd");
    let status = o["status"].as_str().unwrap_or("");
    if status != "open" {
        let body = format!(
            "<h1 id=\"session-status\">This checkout session is {}</h1><p class=\"muted\">Payment status: {}. No further action is possible.</p>",
            esc(status),
            esc(o["payment_status"].as_str().unwrap_or(""))
        );
        return Html(page_shell("Checkout", &body)).into_response();
    }
    let mut rows = String::new();
    for li in &sess.line_items {
        rows.push_str(&format!(
            "<tr class=\"item\"><td class=\"name\">{}</td><td class=\"n qty\">{}</td><td class=\"n amount\">{}</td></tr>",
            esc(li["description"].as_str().unwrap_or("")),
            li["quantity"],
            esc(&fmt_money(li["amount_subtotal"].as_i64().unwrap_or(0), cur))
        ));
    }
    let disc = o["total_details"]["amount_discount"].as_i64().unwrap_or(0);
    let code = sess
        .promo
        .as_ref()
        .and_then(|p| st.promos.iter().find(|x| x["id"] == p.as_str()))
        .and_then(|p| p["code"].as_str())
        .map(|c| format!(" ({})", esc(c)))
        .unwrap_or_default();
    let disc_row = if disc > 0 {
        format!(
            "<tr><td>Discount{code}</td><td></td><td class=\"n\" id=\"discount\">-{}</td></tr>",
            esc(&fmt_money(disc, cur))
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Checkout</h1><table><thead><tr><th>Item</th><th class=\"n\">Qty</th><th class=\"n\">Amount</th></tr></thead><tbody>{rows}\
<tr class=\"sep\"><td>Subtotal</td><td></td><td class=\"n\" id=\"subtotal\">{}</td></tr>{disc_row}\
<tr class=\"total\"><td>Total</td><td></td><td class=\"n\" id=\"total\">{}</td></tr></tbody></table>\
<form method=\"post\" action=\"/c/pay/{}\">\
<button id=\"pay\" type=\"submit\" name=\"action\" value=\"pay\">Pay {}</button>\
<button id=\"pay-delayed-success\" type=\"submit\" name=\"action\" value=\"delayed_success\">Pay with delayed method — succeeds</button>\
<button id=\"pay-delayed-failure\" type=\"submit\" name=\"action\" value=\"delayed_failure\">Pay with delayed method — fails</button>\
<button id=\"cancel\" type=\"submit\" name=\"action\" value=\"cancel\">Cancel</button></form>\
<p class=\"muted\">Session {}</p>",
        esc(&fmt_money(o["amount_subtotal"].as_i64().unwrap_or(0), cur)),
        esc(&fmt_money(o["amount_total"].as_i64().unwrap_or(0), cur)),
        esc(&id),
        esc(&fmt_money(o["amount_total"].as_i64().unwrap_or(0), cur)),
        esc(&id),
    );
    Html(page_shell("Checkout — Stripe emulator", &body)).into_response()
}

fn cancel_target(inner: &Inner, id: &str) -> String {
    let st = inner.st.lock().unwrap();
    st.sessions
        .get(id)
        .and_then(|s| s.obj["cancel_url"].as_str().map(|u| u.replace("{CHECKOUT_SESSION_ID}", id)))
        .unwrap_or_else(|| format!("{}/c/pay/{id}", inner.public_url))
}

fn redirect(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "bad redirect URL").into_response(),
    }
}

async fn page_action(s: S, Path(id): Path<String>, body: Bytes) -> Response {
    let action = parse_pairs(&body).into_iter().find(|(k, _)| k == "action").map(|(_, v)| v).unwrap_or_default();
    if !s.0.st.lock().unwrap().sessions.contains_key(&id) {
        return (StatusCode::NOT_FOUND, Html(page_shell("Not found", "<h1>Checkout session not found</h1>")))
            .into_response();
    }
    if action == "cancel" {
        return redirect(&cancel_target(&s.0, &id));
    }
    match logic::complete(&s.0, &id, &action) {
        Ok(url) => redirect(&url),
        Err(e) => (
            StatusCode::CONFLICT,
            Html(page_shell(
                "Checkout",
                &format!("<h1>Cannot complete this checkout</h1><p id=\"error\">{}</p>", esc(&e)),
            )),
        )
            .into_response(),
    }
}
