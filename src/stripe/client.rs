//! The HTTP side: one pooled `reqwest` client per instance, timeouts, the
//! version pin, idempotency keys and stripe-node's retry rules.

use super::{API_VERSION, Form};
use crate::config::SecretKey;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Time to open a connection to Stripe.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time for one attempt, from send to the last body byte.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(8);
/// Total time one call may take across retries (fits vercel.json's maxDuration of 30 s).
const CALL_DEADLINE: Duration = Duration::from_secs(20);

/// How failed requests are retried (stripe-node's defaults).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt (stripe-node: 2).
    pub max_retries: u32,
    /// First backoff (stripe-node: 0.5 s); doubles per retry.
    pub initial_delay: Duration,
    /// Backoff ceiling (stripe-node: 5 s), also the cap on `Retry-After`.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// stripe-node's policy with `max_retries` retries.
    pub fn stripe_node(max_retries: u32) -> Self {
        RetryPolicy { max_retries, initial_delay: Duration::from_millis(500), max_delay: Duration::from_secs(5) }
    }

    /// Sleep before retry number `n` (1-based): min(initial·2^(n-1), max) with
    /// 50–100 % jitter, never below `initial`, at least `Retry-After` (capped).
    fn delay(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.initial_delay.saturating_mul(1 << (n - 1).min(16));
        let capped = exp.min(self.max_delay);
        let mut jitter = [0u8; 1];
        let _ = getrandom::fill(&mut jitter);
        let factor = 0.5 * (1.0 + f64::from(jitter[0]) / 255.0);
        let mut d = capped.mul_f64(factor).max(self.initial_delay);
        if let Some(ra) = retry_after {
            d = d.max(ra.min(self.max_delay));
        }
        d
    }
}

/// A failed Stripe call. `Display` is for logs only, never for a response.
#[derive(Debug, Clone)]
pub enum StripeError {
    /// Stripe answered with an error object.
    Api {
        /// HTTP status.
        status: u16,
        /// `error.type` (`invalid_request_error`, `api_error`, `card_error`, ...).
        kind: String,
        /// `error.code`, when given.
        code: Option<String>,
        /// `error.param`, when given.
        param: Option<String>,
        /// `error.message` (log only).
        message: String,
        /// The `Request-Id` header.
        request_id: Option<String>,
    },
    /// Stripe could not be reached or did not answer in time.
    Network(String),
    /// Stripe answered 2xx with a body we could not read.
    Decode {
        /// What failed to parse.
        reason: String,
        /// The `Request-Id` header.
        request_id: Option<String>,
    },
}

impl StripeError {
    /// True for a 404 `resource_missing` (an unknown id).
    pub fn is_not_found(&self) -> bool {
        matches!(self, StripeError::Api { status: 404, .. })
    }
}

impl fmt::Display for StripeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StripeError::Api { status, kind, code, param, message, request_id } => write!(
                f,
                "stripe {status} {kind} code={} param={} request_id={}: {message}",
                code.as_deref().unwrap_or("-"),
                param.as_deref().unwrap_or("-"),
                request_id.as_deref().unwrap_or("-"),
            ),
            StripeError::Network(e) => write!(f, "stripe unreachable: {e}"),
            StripeError::Decode { reason, request_id } => {
                write!(f, "stripe response unreadable (request_id={}): {reason}", request_id.as_deref().unwrap_or("-"))
            }
        }
    }
}

impl std::error::Error for StripeError {}

/// Our Stripe client. Build one per instance and reuse it: the connection
/// pool then survives between invocations. The HTTP client (TLS
/// configuration, pool) is built on the first call, so a request that never
/// calls Stripe (an ignored webhook event) does not pay for it.
#[derive(Debug, Clone)]
pub struct Client {
    http: Arc<OnceLock<reqwest::Client>>,
    base: String,
    key: SecretKey,
    retry: RetryPolicy,
}

enum Attempt {
    Done(reqwest::StatusCode, HeaderMap, bytes::Bytes),
    Failed(String),
}

impl Client {
    /// A client for `base` (e.g. `https://api.stripe.com`) authenticating with `key`.
    pub fn new(base: &str, key: SecretKey, retry: RetryPolicy) -> Self {
        Client { http: Arc::default(), base: base.trim_end_matches('/').to_string(), key, retry }
    }

    /// The instance's pooled HTTP client (rustls), built on first use; the shop's other HTTP
    /// calls (its email provider) share it.
    pub fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(ATTEMPT_TIMEOUT)
                .pool_idle_timeout(Duration::from_secs(60))
                .tcp_nodelay(true)
                .user_agent(concat!("checkout-rust/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("TLS backend unavailable")
        })
    }

    /// `GET {path}?{query}`, decoded into `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, query: &Form) -> Result<T, StripeError> {
        let q = query.encode();
        let url = if q.is_empty() { format!("{}{path}", self.base) } else { format!("{}{path}?{q}", self.base) };
        self.send(reqwest::Method::GET, &url, None, None).await
    }

    /// `POST {path}` with a form body and an `Idempotency-Key`, reused on every
    /// retry so Stripe performs the operation at most once.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<T, StripeError> {
        let url = format!("{}{path}", self.base);
        self.send(reqwest::Method::POST, &url, Some(form.encode()), Some(idempotency_key)).await
    }

    /// A fresh idempotency key (one per logical operation, not per attempt).
    pub fn new_idempotency_key() -> String {
        format!("checkout-{}", crate::http::random_hex(16))
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<String>,
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError> {
        let started = Instant::now();
        let mut retries = 0;
        loop {
            let attempt = self.attempt(&method, url, body.as_ref(), idempotency_key).await;
            let (retry, retry_after) = match &attempt {
                Attempt::Failed(_) => (true, None),
                Attempt::Done(status, headers, _) => {
                    let should = headers.get("stripe-should-retry").and_then(|v| v.to_str().ok());
                    let retry = match should {
                        Some("true") => true,
                        Some("false") => false,
                        _ => status.as_u16() == 409 || status.is_server_error(),
                    };
                    let retry_after = headers
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(Duration::from_secs);
                    (retry && !status.is_success(), retry_after)
                }
            };
            if retry && retries < self.retry.max_retries {
                retries += 1;
                let delay = self.retry.delay(retries, retry_after);
                if started.elapsed() + delay + ATTEMPT_TIMEOUT / 2 < CALL_DEADLINE {
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
            return match attempt {
                Attempt::Failed(e) => Err(StripeError::Network(e)),
                Attempt::Done(status, headers, bytes) => decode(status, &headers, &bytes),
            };
        }
    }

    async fn attempt(
        &self,
        method: &reqwest::Method,
        url: &str,
        body: Option<&String>,
        idempotency_key: Option<&str>,
    ) -> Attempt {
        let mut req = self
            .http()
            .request(method.clone(), url)
            .header(AUTHORIZATION, format!("Bearer {}", self.key.expose()))
            .header("Stripe-Version", API_VERSION);
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        if let Some(b) = body {
            req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(b.clone());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Failed(describe(&e)),
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        match resp.bytes().await {
            Ok(bytes) => Attempt::Done(status, headers, bytes),
            Err(e) => Attempt::Failed(describe(&e)),
        }
    }
}

/// A transport error without the URL (which carries nothing secret, but keep logs tidy).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    format!("{kind}: {detail}")
}

fn decode<T: DeserializeOwned>(
    status: reqwest::StatusCode,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<T, StripeError> {
    let request_id = headers.get("request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    if status.is_success() {
        return serde_json::from_slice(bytes).map_err(|e| StripeError::Decode { reason: e.to_string(), request_id });
    }
    #[derive(serde::Deserialize, Default)]
    struct Envelope {
        error: Option<ErrorObject>,
    }
    #[derive(serde::Deserialize, Default)]
    struct ErrorObject {
        #[serde(rename = "type")]
        kind: Option<String>,
        code: Option<String>,
        param: Option<String>,
        message: Option<String>,
    }
    let err = serde_json::from_slice::<Envelope>(bytes).unwrap_or_default().error.unwrap_or_default();
    Err(StripeError::Api {
        status: status.as_u16(),
        kind: err.kind.unwrap_or_else(|| "unknown".into()),
        code: err.code,
        param: err.param,
        message: err.message.unwrap_or_default(),
        request_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_stripe_node() {
        let p = RetryPolicy::stripe_node(2);
        for _ in 0..50 {
            let d1 = p.delay(1, None);
            assert!(d1 >= Duration::from_millis(500) && d1 <= Duration::from_millis(500));
            let d2 = p.delay(2, None);
            assert!(d2 >= Duration::from_millis(500) && d2 <= Duration::from_secs(1), "{d2:?}");
            let d5 = p.delay(5, None);
            assert!(d5 >= Duration::from_millis(2500) && d5 <= Duration::from_secs(5), "{d5:?}");
            let d9 = p.delay(9, None);
            assert!(d9 <= Duration::from_secs(5));
        }
        assert_eq!(p.delay(1, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(p.delay(1, Some(Duration::from_secs(60))), Duration::from_secs(5));
    }
}
