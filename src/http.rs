//! Request/response plumbing every function shares: method and content-type
//! checks, body limits, JSON in and out, errors ⇒ statuses, security headers,
//! same-site checks and the client IP.

pub use ::http::{Method, Request, StatusCode, header};
use bytes::Bytes;
use header::{HeaderMap, HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full, Limited};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::time::Duration;

/// The body type of every response.
pub type Body = Full<Bytes>;
/// The response type of every route.
pub type Response = http::Response<Body>;
/// A boxed error, as bodies produce.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Largest JSON body accepted by the shop's own endpoints.
pub const JSON_BODY_LIMIT: usize = 16 * 1024;

/// Content-Security-Policy of every function response (they are JSON, never a page).
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// An error as a value: the status and message the client sees, the private
/// reason that only reaches the log, and a reference that ties the two.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status answered.
    pub status: StatusCode,
    /// Public message, safe to show a shopper.
    pub message: Cow<'static, str>,
    /// Private reason, logged only.
    pub reason: String,
    /// A reference the shopper can quote (for server-side failures).
    pub reference: Option<String>,
    /// Extra response headers (`Allow`, `Retry-After`).
    pub headers: Vec<(HeaderName, String)>,
}

impl ApiError {
    /// A client error with a public message; nothing private to log.
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        let message = message.into();
        ApiError { status, reason: message.to_string(), message, reference: None, headers: vec![] }
    }

    /// 400 with a message that names the offending field.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 500: our fault. The reason is logged, the shopper gets a reference.
    pub fn internal(reason: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "Something went wrong on our side. Please try again.".into(),
            reason: reason.into(),
            reference: Some(new_reference()),
            headers: vec![],
        }
    }

    /// 502: Stripe failed or could not be reached.
    pub fn upstream(reason: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_GATEWAY,
            message: "Our payment provider is not responding. You have not been charged; \
                      please try again in a moment."
                .into(),
            reason: reason.into(),
            reference: Some(new_reference()),
            headers: vec![],
        }
    }

    /// 503 with `Retry-After` in whole seconds: a dependency (the database) refused to serve
    /// this request now. The reason is logged, the client gets a reference and a time to wait.
    pub fn unavailable(reason: impl Into<String>, retry_after: Duration) -> Self {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "We are busy right now. Please try again in a few seconds.".into(),
            reason: reason.into(),
            reference: Some(new_reference()),
            headers: vec![(header::RETRY_AFTER, secs.max(1).to_string())],
        }
    }

    /// 405 with the `Allow` header.
    pub fn method_not_allowed(allowed: &[Method]) -> Self {
        let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
        let mut e = Self::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        e.headers.push((header::ALLOW, allow));
        e
    }

    /// 429 with `Retry-After` in whole seconds.
    pub fn too_many_requests(retry_after: Duration) -> Self {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "Too many requests. Please wait a moment and try again.");
        e.headers.push((header::RETRY_AFTER, secs.max(1).to_string()));
        e
    }

    /// Replaces the private reason (keeps the public message).
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// Writes the log line of a failed request: the private reason, the status and the
    /// reference. Called once, at the edge ([`answer`]).
    pub fn log(&self) {
        let status = self.status.as_u16().to_string();
        let reference = self.reference.as_deref().unwrap_or("");
        if self.status.is_server_error() {
            crate::log::error(&self.reason, &[("status", &status), ("reference", reference)]);
        } else {
            crate::log::info(&self.reason, &[("status", &status)]);
        }
    }

    /// The error's public response (status, message, reference, headers); logs nothing.
    pub fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct ErrorBody<'a> {
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            reference: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: ErrorBody<'a>,
        }
        let body = Envelope { error: ErrorBody { message: &self.message, reference: self.reference.as_deref() } };
        let mut resp = json(self.status, &body);
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}

/// The edge of every request (the function bridge and the dev server): a handler's result as
/// the response, the failure logged here and only here.
pub fn answer(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|e| {
        e.log();
        e.into_response()
    })
}

/// A fresh reference a shopper can quote to support (`ref_` + 12 hex).
pub fn new_reference() -> String {
    format!("ref_{}", random_hex(6))
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("OS randomness unavailable");
    hex::encode(buf)
}

/// The SHA-256 of `bytes` as lowercase hex (idempotency keys derived from a caller's own).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// A JSON response with the security headers and `Cache-Control: no-store`.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    with_headers(status, Bytes::from(bytes))
}

/// A response whose body is JSON already serialised, with the headers of [`json`].
pub fn json_bytes(status: StatusCode, body: Bytes) -> Response {
    with_headers(status, body)
}

fn with_headers(status: StatusCode, body: Bytes) -> Response {
    let mut resp = http::Response::new(Full::new(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.reserve(8);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    apply_security_headers(headers);
    resp
}

/// Sets the headers every function response carries, once, here.
pub fn apply_security_headers(headers: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, API_CSP);
    set(headers, header::STRICT_TRANSPORT_SECURITY, "max-age=63072000; includeSubDomains; preload");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "strict-origin-when-cross-origin");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::CACHE_CONTROL, "no-store");
}

/// Refuses any method outside `allowed` with 405 and `Allow`.
pub fn require_method(method: &Method, allowed: &[Method]) -> Result<(), ApiError> {
    if allowed.contains(method) { Ok(()) } else { Err(ApiError::method_not_allowed(allowed)) }
}

/// Refuses bodies that are not `application/json` (parameters allowed) with 415.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json"))
    }
}

/// State-changing endpoints accept only same-site requests: `Origin` equal to
/// `SITE_URL`, or `Sec-Fetch-Site: same-origin`. Anything else ⇒ 403.
pub fn require_same_site(headers: &HeaderMap, site_url: &str) -> Result<(), ApiError> {
    let origin_ok =
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).is_some_and(|o| o.trim_end_matches('/') == site_url);
    let fetch_site_ok = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).is_some_and(|v| v == "same-origin");
    if origin_ok || fetch_site_ok {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "cross-site request refused")
            .with_reason("same-site check failed (Origin / Sec-Fetch-Site)"))
    }
}

/// Read endpoints the shop's own pages poll (`GET`): refuse what the browser
/// marks as another site's — `Sec-Fetch-Site` other than `same-origin` (or
/// `none`, a URL the shopper opened), or an `Origin` other than `SITE_URL` —
/// with 403. A request with neither header (not a browser, or an old one) is
/// allowed: it can only read, under the rate limit.
pub fn refuse_cross_site(headers: &HeaderMap, site_url: &str) -> Result<(), ApiError> {
    let fetch_site_ok = match headers.get("sec-fetch-site") {
        None => true,
        Some(v) => matches!(v.to_str(), Ok("same-origin" | "none")),
    };
    let origin_ok = match headers.get(header::ORIGIN) {
        None => true,
        Some(v) => v.to_str().is_ok_and(|o| o.trim_end_matches('/') == site_url),
    };
    if fetch_site_ok && origin_ok {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "cross-site request refused")
            .with_reason("cross-site read refused (Origin / Sec-Fetch-Site)"))
    }
}

/// The client's IP, from `x-real-ip`: Vercel's edge sets it from the TCP peer
/// and overwrites any value a client sends, so it cannot be spoofed there (the
/// dev server does the same). An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as a dual-stack
/// socket reports an IPv4 peer) is that IPv4 client. `None` when absent.
pub fn client_ip(headers: &HeaderMap) -> Option<std::net::IpAddr> {
    let ip: std::net::IpAddr = headers.get("x-real-ip")?.to_str().ok()?.trim().parse().ok()?;
    Some(ip.to_canonical())
}

/// Reads a whole body, refusing more than `limit` bytes with 413 before
/// reading them (by `Content-Length`) or as soon as they exceed it.
pub async fn read_body<B>(headers: &HeaderMap, body: B, limit: usize) -> Result<Bytes, ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let too_large = || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        let len = len.to_str().ok().and_then(|v| v.parse::<u64>().ok());
        match len {
            Some(n) if n > limit as u64 => return Err(too_large()),
            Some(_) => {}
            None => return Err(ApiError::bad_request("invalid Content-Length")),
        }
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => {
            Err(ApiError::bad_request("could not read the request body").with_reason(format!("body read failed: {e}")))
        }
    }
}

/// Parses a JSON body; the message says what is wrong without echoing internals.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let msg = match e.classify() {
            serde_json::error::Category::Data => {
                // serde's data errors name the field ("unknown field `price`", "missing field
                // `items`"); drop the position suffix.
                let text = e.to_string();
                let text = text.split(" at line ").next().unwrap_or("").to_string();
                format!("invalid request: {text}")
            }
            _ => "invalid request: body is not valid JSON".to_string(),
        };
        ApiError::bad_request(msg)
    })
}

/// The query parameter `name` (first occurrence), decoded.
pub fn query_param(uri: &http::Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// Accepts only `Authorization: Bearer <secret>`, compared in constant time (of SHA-256
/// digests, so not even the length leaks); anything else is 401 with one generic body.
/// `secret` is the configured value, or why it is unusable (a logged configuration error,
/// generic 500); `name` is the variable, for the log.
pub fn authorize_bearer(
    secret: &Result<crate::config::BearerToken, &'static str>,
    headers: &HeaderMap,
    name: &str,
) -> Result<(), ApiError> {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let secret = secret.as_ref().map_err(|reason| ApiError::internal(*reason))?;
    let unauthorized = || ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized");
    let given = headers.get(header::AUTHORIZATION).ok_or_else(unauthorized)?.as_bytes();
    let token = given.strip_prefix(b"Bearer ").ok_or_else(|| unauthorized().with_reason("not a Bearer token"))?;
    let same: bool = Sha256::digest(token).ct_eq(&Sha256::digest(secret.expose())).into();
    if same { Ok(()) } else { Err(unauthorized().with_reason(format!("wrong {name}"))) }
}
