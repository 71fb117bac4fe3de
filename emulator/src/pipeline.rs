//! The request pipeline of every `/v1` call, as axum middleware layers, outermost first:
//! [`record`] (request id, parameters, the request log, webhook dispatch, Stripe's headers) ⇒
//! [`auth`] (the bearer key) ⇒ [`idempotency`] (replay, conflicts, in-flight keys) ⇒
//! [`faults`] (injected delays and statuses) ⇒ [`crate::api::handle`].

use crate::error::ApiError;
use crate::form::parse_pairs;
use crate::state::{Idem, Inner, now_ms, rand_id};
use crate::{API_VERSION, RecordedRequest};
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{ConnectInfo, Extension, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What the [`record`] layer read from a `/v1` request, for the layers within.
#[derive(Clone)]
pub(crate) struct Call {
    /// The `Request-Id` answered.
    pub rid: String,
    /// Form parameters (body for POST, query for GET).
    pub pairs: Arc<Vec<(String, String)>>,
    /// `Idempotency-Key` of a POST.
    pub idempotency_key: Option<String>,
    /// The raw body (idempotent requests compare it).
    pub body: Bytes,
}

/// The authenticated API key (set by [`auth`]).
#[derive(Clone)]
struct ApiKey(String);

/// On a response: the injected fault that shaped it (`slow`, `status_500`, ...).
#[derive(Clone)]
struct FaultLabel(String);

/// On a response: the events the request created, delivered once it is answered.
#[derive(Clone, Default)]
pub(crate) struct Events(pub Vec<String>);

/// Outermost layer: gives the call its request id, reads its parameters, then logs the answer
/// ([`RecordedRequest`]), delivers the events it created and adds `Request-Id` and
/// `Stripe-Version`.
pub(crate) async fn record(
    State(inner): State<Arc<Inner>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let at_ms = now_ms();
    let rid = rand_id("req_", 14);
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let query = parts.uri.query().map(String::from);
    let is_post = parts.method == Method::POST;
    let pairs = if is_post { parse_pairs(&body) } else { parse_pairs(query.as_deref().unwrap_or("").as_bytes()) };
    let hdr = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).map(String::from);
    let auth_h = hdr("authorization");
    let idempotency_key = if is_post { hdr("idempotency-key") } else { None };
    let (method, path) = (parts.method.to_string(), parts.uri.path().to_string());
    let (stripe_version, user_agent) = (hdr("stripe-version"), hdr("user-agent"));
    let pairs = Arc::new(pairs);
    let call =
        Call { rid: rid.clone(), pairs: pairs.clone(), idempotency_key: idempotency_key.clone(), body: body.clone() };
    let mut req = Request::from_parts(parts, Body::from(body));
    req.extensions_mut().insert(call);
    let mut resp = next.run(req).await;
    let Events(events) = resp.extensions_mut().remove::<Events>().unwrap_or_default();
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
        method,
        path,
        query,
        params: Arc::unwrap_or_clone(pairs),
        idempotency_key,
        stripe_version,
        user_agent,
        authorization_present: auth_h.is_some(),
        key_last4,
        remote_addr: addr,
        status: resp.status().as_u16(),
        fault: resp.extensions().get::<FaultLabel>().map(|f| f.0.clone()),
        idempotent_replayed: resp.headers().contains_key("idempotent-replayed"),
        at_ms,
    });
    let h = resp.headers_mut();
    h.insert("request-id", HeaderValue::from_str(&rid).unwrap());
    h.insert("stripe-version", HeaderValue::from_static(API_VERSION));
    resp
}

/// Refuses (401) a call without a test-mode bearer key.
pub(crate) async fn auth(Extension(call): Extension<Call>, mut req: Request, next: Next) -> Response {
    let h = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match check_auth(h) {
        Ok(key) => {
            req.extensions_mut().insert(ApiKey(key));
            next.run(req).await
        }
        Err(e) => e.response(&call.rid),
    }
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

/// `Idempotency-Key` on a POST, scoped to the API key: the same key with the same request
/// replays the stored answer (200s and 5xx are stored, other errors and injected statuses are
/// not); with another request it is a 400 `idempotency_error`; while the first is still
/// running (an injected delay holds it) a 409 with `Stripe-Should-Retry: true`.
pub(crate) async fn idempotency(
    State(inner): State<Arc<Inner>>,
    Extension(call): Extension<Call>,
    req: Request,
    next: Next,
) -> Response {
    let (Some(key), Some(ApiKey(api_key))) = (call.idempotency_key.clone(), req.extensions().get::<ApiKey>().cloned())
    else {
        return next.run(req).await;
    };
    if key.len() > 255 {
        let e = ApiError::invalid(
            "Idempotency-Key",
            format!("Invalid Idempotency-Key: length must be at most 255 characters (got {}).", key.len()),
        );
        return e.response(&call.rid);
    }
    let scope = (hex::encode(Sha256::digest(api_key.as_bytes())), key);
    let (method, path) = (req.method().to_string(), req.uri().path().to_string());
    let _held = {
        let mut st = inner.st.lock().unwrap();
        if let Some(e) = st.idem.get(&scope) {
            if e.method == method && e.path == path && e.body == call.body.as_ref() {
                let mut r =
                    (StatusCode::from_u16(e.status).unwrap_or(StatusCode::OK), e.response.clone()).into_response();
                let h = r.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                h.insert("idempotent-replayed", HeaderValue::from_static("true"));
                if let Ok(v) = HeaderValue::from_str(&e.request_id) {
                    h.insert("original-request", v);
                }
                return r;
            }
            return ApiError::new(
                400,
                "idempotency_error",
                None,
                None,
                format!(
                    "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{}' if you meant to execute a different request.",
                    scope.1
                ),
            )
            .response(&call.rid);
        }
        if !st.in_flight.insert(scope.clone()) {
            let mut r = ApiError::new(
                409,
                "idempotency_error",
                None,
                None,
                "There is currently another in-progress request using this Stripe-Idempotency-Key. Please try again later.",
            )
            .response(&call.rid);
            r.headers_mut().insert("stripe-should-retry", HeaderValue::from_static("true"));
            return r;
        }
        InFlight { inner: inner.clone(), scope: scope.clone() }
    };
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let injected = resp.extensions().get::<FaultLabel>().is_some_and(|f| f.0.starts_with("status_"));
    if injected || !(status == 200 || status >= 500) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    inner.st.lock().unwrap().idem.insert(
        scope,
        Idem { method, path, body: call.body.to_vec(), status, response: bytes.clone(), request_id: call.rid.clone() },
    );
    Response::from_parts(parts, Body::from(bytes))
}

/// Takes one use of the pending API fault, if any applies to a request for `path`.
fn take_fault(inner: &Inner, path: &str) -> Option<crate::ApiFault> {
    let mut st = inner.st.lock().unwrap();
    let f = st.faults.api.clone();
    if f.as_ref().and_then(|f| f.path.as_deref()).is_some_and(|p| !path.starts_with(p)) {
        return None;
    }
    if let Some(a) = st.faults.api.as_mut() {
        a.count = a.count.saturating_sub(1);
        if a.count == 0 {
            st.faults.api = None;
        }
    }
    f.filter(|f| f.count > 0)
}

/// Applies the pending [`crate::ApiFault`]: a delay, then the call goes on; or an injected
/// status (429 `rate_limit`, 5xx `api_error` with `Stripe-Should-Retry: true`).
pub(crate) async fn faults(
    State(inner): State<Arc<Inner>>,
    Extension(call): Extension<Call>,
    req: Request,
    next: Next,
) -> Response {
    let Some(f) = take_fault(&inner, req.uri().path()) else {
        return next.run(req).await;
    };
    if let Some(ms) = f.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let Some(code) = f.status else {
        let mut resp = next.run(req).await;
        resp.extensions_mut().insert(FaultLabel("slow".into()));
        return resp;
    };
    let mut retry = false;
    let e = if code == 429 {
        ApiError::new(
            429,
            "invalid_request_error",
            Some("rate_limit"),
            None,
            "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests. (Injected by the Stripe emulator.)",
        )
    } else if code >= 500 {
        retry = true;
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
    let mut resp = e.response(&call.rid);
    if retry {
        resp.headers_mut().insert("stripe-should-retry", HeaderValue::from_static("true"));
    }
    resp.extensions_mut().insert(FaultLabel(format!("status_{code}")));
    resp
}
