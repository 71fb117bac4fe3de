//! Offline, stateful Stripe API emulator (API version [`API_VERSION`]) for tests and local
//! development of a Checkout shop.
//!
//! It serves, on `127.0.0.1` only:
//! - the `/v1` REST routes a checkout shop uses (Checkout Sessions, line items, promotion
//!   codes, coupons, products and prices (create, retrieve, update, list with `lookup_keys[]`
//!   and `active`, delete a product; `product.*` and `price.*` events), events, charges,
//!   PaymentIntents, refunds and `POST /v1/refunds`, disputes, webhook endpoints), with Stripe's
//!   auth, error shapes, `Request-Id` and idempotency semantics;
//! - a hosted checkout page at `/c/pay/{session_id}` (buttons `#pay`, `#pay-delayed-success`,
//!   `#pay-delayed-failure`, `#cancel`); for an `embedded_page` session it is the page shown in
//!   embedded Checkout's frame, and `GET /_emulator/stripe.js` is a stand-in for the part of
//!   Stripe.js that mounts it (for browser tests that route `https://js.stripe.com` there);
//! - signed webhook delivery with retries (to the configured URL with [`Options::webhook_secret`],
//!   and to each endpoint created with `POST /v1/webhook_endpoints` on this machine with its own
//!   secret, for its enabled events), and control endpoints under `/_emulator/` for tests
//!   (request log, delivery log, fault injection, resend, signing);
//! - a transactional-email stand-in in Resend's API shape (`POST /emails`), whose messages are
//!   kept in an outbox (`/_emulator/outbox`, `/_emulator/outbox.json`, [`Emulator::outbox`]).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let emu = stripe_emulator::Emulator::start(stripe_emulator::Options {
//!     port: 0,
//!     webhook_url: Some("http://127.0.0.1:3000/api/webhook".into()),
//!     webhook_secret: "whsec_emulator_local".into(),
//!     ..Default::default()
//! }).await?;
//! println!("{}", emu.base_url());
//! # Ok(()) }
//! ```

#![recursion_limit = "512"]
#![warn(missing_docs)]

mod api;
mod checkout;
mod control;
mod email;
mod endpoints;
mod error;
mod events;
mod form;
mod guard;
mod lifecycle;
mod money;
mod page;
mod params;
mod payments;
mod pipeline;
mod products;
mod promotions;
mod server;
mod sessions;
mod shipping;
pub mod spec;
mod state;
mod webhook;

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use checkout::CheckoutInput;
pub use form::{parse_pairs, split_key};
pub use guard::is_local_host;
pub use webhook::{sign_header, signature_v1};

/// The Stripe API version the emulator implements and reports (`api_version` of events).
pub const API_VERSION: &str = "2026-10-28.endive";

/// Default promotion-code/coupon fixture (`fixtures/promotion_codes.json`).
pub const DEFAULT_PROMOTION_CODES: &str = include_str!("../fixtures/promotion_codes.json");

/// Default product/price catalog fixture (`fixtures/catalog.json`).
pub const DEFAULT_CATALOG: &str = include_str!("../fixtures/catalog.json");

/// A key `POST /emails` takes by default (any `re_...` key does), for a shop's `.env`.
pub const EMAIL_API_KEY: &str = "re_emulator_local";

/// Configuration of an [`Emulator`].
#[derive(Clone, Debug)]
pub struct Options {
    /// TCP port to bind on 127.0.0.1; `0` (the default) picks an ephemeral port.
    pub port: u16,
    /// Where events are POSTed; `None` disables delivery (events are still recorded).
    pub webhook_url: Option<String>,
    /// Webhook signing secret (`whsec_...`); default `whsec_emulator_local`.
    pub webhook_secret: String,
    /// Base URL used for hosted page links (`{public_url}/c/pay/{id}`); default: the base URL.
    pub public_url: Option<String>,
    /// First retry delay of webhook delivery; attempt n waits `retry_base * 2^(n-1)` after
    /// failing. Default 1 s (tests: ~50 ms).
    pub retry_base: Duration,
    /// Maximum delivery attempts per event (and per duplicate copy). Default 5.
    pub max_attempts: u32,
    /// Timeout of one webhook delivery attempt. Default 5 s.
    pub webhook_timeout: Duration,
    /// Delay between `checkout.session.completed` and the async payment outcome event for
    /// delayed payment methods. Default 2 s (tests: ~100 ms).
    pub async_delay: Duration,
    /// Quiet period after which events held by the `reorder` fault are flushed. Default 500 ms.
    pub reorder_quiet: Duration,
    /// Promotion codes + coupons fixture JSON; `None` uses [`DEFAULT_PROMOTION_CODES`].
    pub promotion_codes_json: Option<String>,
    /// Products + prices fixture JSON; `None` uses [`DEFAULT_CATALOG`]. A product entry is the
    /// Product's fields (`id`, `name`, `metadata`, `default_price`, ...); a price entry takes
    /// `id`, `product`, `currency`, `unit_amount` and optionally `lookup_key`, `tax_behavior`,
    /// `metadata`, `active`, `nickname`.
    pub catalog_json: Option<String>,
    /// The bearer key `POST /emails` takes; `None` (the default) takes any `re_...` key (for
    /// example [`EMAIL_API_KEY`]). Any other key is Resend's 403 `invalid_api_key`.
    pub email_api_key: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 0,
            webhook_url: None,
            webhook_secret: "whsec_emulator_local".into(),
            public_url: None,
            retry_base: Duration::from_secs(1),
            max_attempts: 5,
            webhook_timeout: Duration::from_secs(5),
            async_delay: Duration::from_secs(2),
            reorder_quiet: Duration::from_millis(500),
            promotion_codes_json: None,
            catalog_json: None,
            email_api_key: None,
        }
    }
}

/// One `/v1` request as seen by the emulator (the API key itself is never stored).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RecordedRequest {
    /// The `Request-Id` answered (`req_...`).
    pub request_id: String,
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path, e.g. `/v1/checkout/sessions`.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Form parameters (body for POST, query for GET) as ordered `[key, value]` pairs.
    pub params: Vec<(String, String)>,
    /// `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// `Stripe-Version` header.
    pub stripe_version: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// Whether an `Authorization` header was present.
    pub authorization_present: bool,
    /// Last 4 characters of the bearer key, if any.
    pub key_last4: Option<String>,
    /// Client socket address (the remote port shows connection reuse).
    pub remote_addr: SocketAddr,
    /// HTTP status answered.
    pub status: u16,
    /// Injected fault that shaped this answer: `"status_429"`, `"status_500"`, `"slow"`, ...
    pub fault: Option<String>,
    /// Whether the answer was an idempotent replay.
    pub idempotent_replayed: bool,
    /// Unix time in milliseconds when the request arrived.
    pub at_ms: u64,
}

/// One webhook delivery attempt.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    /// Event id (`evt_...`).
    pub event_id: String,
    /// Event type, e.g. `checkout.session.completed`.
    pub event_type: String,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// 0 for the normal delivery; 1 for the second copy sent under the `duplicate` fault
    /// (or a manual resend counts from its own copy number).
    pub copy: u32,
    /// Target URL.
    pub url: String,
    /// HTTP status the endpoint answered, if it answered.
    pub status: Option<u16>,
    /// `"timeout"` or `"connection"` when no status was received.
    pub error: Option<String>,
    /// First 1 KB of the response body.
    pub response_body: String,
    /// The `Stripe-Signature` header sent.
    pub signature: String,
    /// Unix time in milliseconds when the attempt started.
    pub at_ms: u64,
    /// How long the attempt took, in milliseconds.
    pub duration_ms: u64,
}

impl Delivery {
    /// True when the endpoint answered 2xx.
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// An API fault applied to the next `count` `/v1` requests.
///
/// With `status` set (429, 500, 503, ...) the request is answered with that status and a
/// Stripe error body (429: `invalid_request_error`/`rate_limit`; 5xx: `api_error` plus
/// `Stripe-Should-Retry: true`) without being processed. With only `delay_ms` set the request
/// is delayed, then processed normally. Both set: delay, then the status. With `path` set only
/// requests whose path starts with it are affected (and counted); the others pass untouched.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ApiFault {
    /// Status to answer instead of processing.
    #[serde(default)]
    pub status: Option<u16>,
    /// Delay before answering, in milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// How many upcoming `/v1` requests are affected.
    #[serde(default = "one")]
    pub count: u32,
    /// Only requests whose path starts with this (e.g. `/v1/events`, or one session's
    /// `/v1/checkout/sessions/cs_test_...`); every `/v1` request when absent.
    #[serde(default)]
    pub path: Option<String>,
}

fn one() -> u32 {
    1
}

/// Webhook faults.
///
/// - `duplicate`: every event is delivered twice, as two independent deliveries (`copy` 0
///   and 1), each with its own retries.
/// - `drop`: no delivery is attempted while set (`GET /v1/events` still lists the events).
/// - `reorder`: events are not delivered when created but queued; the queue is flushed when
///   no new event was queued for `Options::reorder_quiet` (500 ms by default), on
///   `POST /_emulator/flush` / [`Emulator::flush`], or when reorder is turned off/reset.
///   A flush delivers the queued events newest first, one after the other (each event's
///   delivery, retries included, finishes before the next starts).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WebhookFaults {
    /// Deliver each event twice.
    #[serde(default)]
    pub duplicate: bool,
    /// Hold events and deliver them in reverse creation order.
    #[serde(default)]
    pub reorder: bool,
    /// Drop every delivery attempt while set (events are still created and listed): a
    /// broken endpoint, an expired secret, a disabled endpoint.
    #[serde(default)]
    pub drop: bool,
}

/// All active faults (see `POST /_emulator/faults`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Faults {
    /// Pending API fault, if any.
    pub api: Option<ApiFault>,
    /// Webhook faults.
    pub webhooks: WebhookFaults,
}

/// A running emulator. It serves while alive; dropping it (or [`Emulator::shutdown`]) stops
/// the HTTP server and pending webhook retries.
///
/// Methods that trigger webhooks (`pay`, `resend`, `flush`, fault setters) spawn Tokio tasks
/// and must be called from within the Tokio runtime.
pub struct Emulator {
    inner: Arc<state::Inner>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    /// Binds `127.0.0.1:{port}` and starts serving in the background.
    pub async fn start(opts: Options) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(state::Inner::new(opts, addr)?);
        let app = server::router(inner.clone());
        // Sessions expire at their `expires_at` even when nobody asks about them.
        let ticking = Arc::downgrade(&inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                let Some(inner) = ticking.upgrade() else { return };
                crate::lifecycle::expire_due_now(&inner);
            }
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Emulator { inner, addr, stop: Some(tx), task: Some(task) })
    }

    /// `http://127.0.0.1:PORT` — use it as the Stripe API base.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The webhook signing secret.
    pub fn webhook_secret(&self) -> &str {
        &self.inner.opts.webhook_secret
    }

    /// Changes (or clears) the webhook endpoint; applies to deliveries attempted afterwards.
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.inner.set_webhook_url(url);
    }

    /// Current webhook endpoint.
    pub fn webhook_url(&self) -> Option<String> {
        self.inner.webhook_url.lock().unwrap().clone()
    }

    /// Snapshot of the `/v1` request log.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.requests()
    }

    /// Snapshot of all webhook delivery attempts.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.deliveries()
    }

    /// All events created so far (oldest first), as Stripe event JSON.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.inner.events()
    }

    /// Current Checkout Session JSON (without line items), if it exists.
    pub fn session(&self, id: &str) -> Option<serde_json::Value> {
        self.inner.st.lock().unwrap().sessions.get(id).map(|s| s.obj.clone())
    }

    /// Clears the request and delivery logs (state and events are kept).
    pub fn clear_logs(&self) {
        self.inner.clear_logs();
    }

    /// Polls the delivery log until `pred` holds or `timeout` elapses; returns the last
    /// snapshot as `Ok` when the predicate held, `Err` on timeout.
    pub async fn wait_for_deliveries(
        &self,
        pred: impl Fn(&[Delivery]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<Delivery>, Vec<Delivery>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let d = self.deliveries();
            if pred(&d) {
                return Ok(d);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(d);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Current faults.
    pub fn faults(&self) -> Faults {
        self.inner.faults()
    }

    /// Sets the API fault for the next `fault.count` `/v1` requests (replaces any pending one).
    pub fn set_api_fault(&self, fault: ApiFault) {
        self.inner.set_api_fault(Some(fault));
    }

    /// Sets the webhook faults; turning `reorder` off flushes the held events.
    pub fn set_webhook_faults(&self, faults: WebhookFaults) {
        self.inner.set_webhook_faults(faults);
    }

    /// Clears all faults and flushes events held by `reorder`.
    pub fn reset_faults(&self) {
        self.inner.reset_faults();
    }

    /// Flushes events held by the `reorder` fault now (newest first).
    pub fn flush(&self) {
        webhook::flush(&self.inner);
    }

    /// Completes a session as the hosted page would. `action` is `pay`, `delayed_success` or
    /// `delayed_failure`; returns the redirect URL (success_url / return_url).
    pub fn pay(&self, session_id: &str, action: &str) -> Result<String, String> {
        self.inner.pay(session_id, action)
    }

    /// Refunds `amount` (default: what is left) of a paid session's charge, as the Dashboard
    /// would; returns the refund object. Emits `refund.created` and `charge.refunded`.
    pub fn refund(&self, session_id: &str, amount: Option<i64>) -> Result<serde_json::Value, String> {
        self.inner.act(|inner, st| payments::refund(inner, st, session_id, amount, false)).map_err(|e| e.message)
    }

    /// Like [`Emulator::refund`], but the refund starts `pending` (as for many payment
    /// methods); settle it with [`Emulator::succeed_refund`], [`Emulator::cancel_refund`] or
    /// [`Emulator::fail_refund`]. Its amount counts on the charge while pending.
    pub fn refund_pending(&self, session_id: &str, amount: Option<i64>) -> Result<serde_json::Value, String> {
        self.inner.act(|inner, st| payments::refund(inner, st, session_id, amount, true)).map_err(|e| e.message)
    }

    /// A pending refund succeeds; emits `refund.updated`.
    pub fn succeed_refund(&self, refund_id: &str) -> Result<serde_json::Value, String> {
        self.inner.act(|inner, st| payments::settle_refund(inner, st, refund_id, "succeeded")).map_err(|e| e.message)
    }

    /// A pending refund is canceled (its amount returns to the charge); emits `refund.updated`.
    pub fn cancel_refund(&self, refund_id: &str) -> Result<serde_json::Value, String> {
        self.inner.act(|inner, st| payments::settle_refund(inner, st, refund_id, "canceled")).map_err(|e| e.message)
    }

    /// Opens a dispute (or an inquiry) on a paid session's charge; returns the dispute object.
    pub fn dispute(&self, session_id: &str, inquiry: bool) -> Result<serde_json::Value, String> {
        self.inner.act(|inner, st| payments::dispute(inner, st, session_id, inquiry)).map_err(|e| e.message)
    }

    /// Moves a dispute to `status` (`under_review`, or closed: `won`, `lost`, `warning_closed`).
    pub fn set_dispute_status(&self, dispute_id: &str, status: &str) -> Result<serde_json::Value, String> {
        self.inner.act(|inner, st| payments::set_dispute_status(inner, st, dispute_id, status)).map_err(|e| e.message)
    }

    /// Fails a refund (its amount returns to the charge); emits `refund.failed` and `refund.updated`.
    pub fn fail_refund(&self, refund_id: &str) -> Result<serde_json::Value, String> {
        self.inner.act(|inner, st| payments::fail_refund(inner, st, refund_id)).map_err(|e| e.message)
    }

    /// Every email accepted by `POST /emails`, oldest first: `id`, `object` (`email`),
    /// `created_at` (ISO 8601), `at_ms`, `from`, `to` (array), `cc`, `bcc`, `reply_to` (arrays
    /// or null), `subject`, `html`, `text` (null when not sent), `headers`, `tags`,
    /// `idempotency_key`.
    pub fn outbox(&self) -> Vec<serde_json::Value> {
        self.inner.outbox()
    }

    /// Redelivers an existing event (a new delivery with its own attempts).
    pub fn resend(&self, event_id: &str) -> bool {
        webhook::resend(&self.inner, event_id)
    }

    /// Stops the server and waits for it to finish; pending retries are abandoned.
    pub async fn shutdown(mut self) {
        self.stop_now();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    fn stop_now(&mut self) {
        self.inner.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop_now();
    }
}
