//! The emulator's state: [`Inner`] (options, URLs, the webhook client) and [`State`] (every
//! object, log and fault behind one mutex), object ids, the clock, list objects and events.

use crate::{API_VERSION, Delivery, Faults, Options, RecordedRequest};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{SystemTime, UNIX_EPOCH};

/// Shared emulator internals.
pub(crate) struct Inner {
    pub opts: Options,
    pub base_url: String,
    pub public_url: String,
    pub webhook_url: Mutex<Option<String>>,
    pub st: Mutex<State>,
    pub client: reqwest::Client,
    pub closed: AtomicBool,
}

/// A stored Checkout Session.
pub(crate) struct Session {
    pub obj: Value,
    pub line_items: Vec<Value>,
    pub promo: Option<String>,
    pub coupon: Option<String>,
}

/// A stored idempotent result.
pub(crate) struct Idem {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    pub status: u16,
    pub response: axum::body::Bytes,
    pub request_id: String,
}

/// A sent email's idempotency record (see [`crate::email`]).
pub(crate) struct EmailIdem {
    /// The JSON body first sent with the key.
    pub request: Value,
    /// The id answered.
    pub id: String,
    /// When it was sent (Unix milliseconds); kept 24 hours.
    pub at_ms: u64,
}

/// A webhook endpoint created with `POST /v1/webhook_endpoints` (see [`crate::endpoints`]).
pub(crate) struct Endpoint {
    /// The `webhook_endpoint` object as listed and retrieved (never with `secret`).
    pub obj: Value,
    /// Its signing secret (`whsec_...`), answered only on create.
    pub secret: String,
    /// Whether its URL is on this machine (`http`, a loopback host): the only endpoints the
    /// emulator delivers to.
    pub local: bool,
}

impl Endpoint {
    /// Whether an event of type `typ` is delivered to it: enabled, on this machine, and the
    /// type (or `*`) among its `enabled_events`.
    pub fn receives(&self, typ: &str) -> bool {
        self.local
            && self.obj["status"] == "enabled"
            && self.obj["enabled_events"].as_array().is_some_and(|a| a.iter().any(|e| e == "*" || e == typ))
    }
}

/// Mutable state, behind one mutex (never held across an await).
#[derive(Default)]
pub(crate) struct State {
    pub sessions: HashMap<String, Session>,
    pub session_order: Vec<String>,
    pub products: HashMap<String, Value>,
    pub prices: HashMap<String, Value>,
    /// Ids of products and prices in the order they were created (lists are newest first).
    pub catalog_order: Vec<String>,
    pub coupons: HashMap<String, Value>,
    pub promos: Vec<Value>,
    pub events: Vec<Value>,
    pub deliveries: Vec<Delivery>,
    pub requests: Vec<RecordedRequest>,
    pub idem: HashMap<(String, String), Idem>,
    /// Idempotency scopes whose request is still running.
    pub in_flight: HashSet<(String, String)>,
    pub faults: Faults,
    pub reorder_queue: Vec<String>,
    pub reorder_gen: u64,
    pub paid_emails: HashSet<String>,
    pub resend_copies: HashMap<String, u32>,
    /// PaymentIntents of completed sessions, by id.
    pub payment_intents: HashMap<String, Value>,
    /// Charges of paid sessions, by id.
    pub charges: HashMap<String, Value>,
    /// Refunds, oldest first.
    pub refunds: Vec<Value>,
    /// Disputes, oldest first.
    pub disputes: Vec<Value>,
    /// Shipping rates (`shr_...`), each created from a session's `shipping_rate_data`.
    pub shipping_rates: HashMap<String, Value>,
    /// Emails accepted by `POST /emails`, oldest first.
    pub outbox: Vec<Value>,
    /// Email idempotency records by (API key, `Idempotency-Key`).
    pub email_idem: HashMap<(String, String), EmailIdem>,
    /// Webhook endpoints created through the API, oldest first.
    pub webhook_endpoints: Vec<Endpoint>,
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// `prefix` + `n` random alphanumerics.
pub(crate) fn rand_id(prefix: &str, n: usize) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("getrandom");
    let mut s = String::with_capacity(prefix.len() + n);
    s.push_str(prefix);
    for b in buf {
        s.push(A[(b as usize) % A.len()] as char);
    }
    s
}

impl Inner {
    pub fn new(opts: Options, addr: SocketAddr) -> std::io::Result<Inner> {
        let base_url = format!("http://{addr}");
        let public_url = opts.public_url.clone().unwrap_or_else(|| base_url.clone()).trim_end_matches('/').to_string();
        let mut st = State::default();
        let bad = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let promos: Value =
            serde_json::from_str(opts.promotion_codes_json.as_deref().unwrap_or(crate::DEFAULT_PROMOTION_CODES))
                .map_err(|e| bad(format!("promotion codes fixture: {e}")))?;
        for c in promos["coupons"].as_array().cloned().unwrap_or_default() {
            st.coupons.insert(c["id"].as_str().unwrap_or_default().to_string(), c);
        }
        st.promos = promos["promotion_codes"].as_array().cloned().unwrap_or_default();
        let cat: Value = serde_json::from_str(opts.catalog_json.as_deref().unwrap_or(crate::DEFAULT_CATALOG))
            .map_err(|e| bad(format!("catalog fixture: {e}")))?;
        for p in cat["products"].as_array().cloned().unwrap_or_default() {
            let p = product_obj(&p);
            let id = p["id"].as_str().unwrap_or_default().to_string();
            st.catalog_order.push(id.clone());
            st.products.insert(id, p);
        }
        for p in cat["prices"].as_array().cloned().unwrap_or_default() {
            let id = p["id"].as_str().unwrap_or_default().to_string();
            let mut obj = price_obj(
                &id,
                p["product"].as_str().unwrap_or_default(),
                p["currency"].as_str().unwrap_or("usd"),
                p["unit_amount"].as_i64().unwrap_or(0),
                true,
            );
            // Whatever else the fixture sets (`lookup_key`, `tax_behavior`, `metadata`, `active`).
            for key in ["lookup_key", "tax_behavior", "metadata", "active", "nickname"] {
                if let Some(v) = p.get(key) {
                    obj[key] = v.clone();
                }
            }
            st.catalog_order.push(id.clone());
            st.prices.insert(id, obj);
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Stripe/1.0 (+https://stripe.com/docs/webhooks)")
            .build()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Inner {
            webhook_url: Mutex::new(opts.webhook_url.clone()),
            opts,
            base_url,
            public_url,
            st: Mutex::new(st),
            client,
            closed: AtomicBool::new(false),
        })
    }
}

/// A Price object (one-time, per unit).
pub(crate) fn price_obj(id: &str, product: &str, currency: &str, unit_amount: i64, active: bool) -> Value {
    json!({
        "id": id, "object": "price", "active": active, "billing_scheme": "per_unit",
        "created": 1735689600, "currency": currency, "custom_unit_amount": null, "livemode": false,
        "lookup_key": null, "metadata": {}, "nickname": null, "product": product, "recurring": null,
        "tax_behavior": "unspecified", "tiers_mode": null, "transform_quantity": null, "type": "one_time",
        "unit_amount": unit_amount, "unit_amount_decimal": unit_amount.to_string()
    })
}

/// A Product object with every field Stripe always returns; `fields` (a fixture entry, or
/// `price_data[product_data]`'s) supplies `id`, `name` and whatever else it sets.
pub(crate) fn product_obj(fields: &Value) -> Value {
    let created = fields["created"].as_i64().unwrap_or_else(now);
    let mut p = json!({
        "id": null, "object": "product", "active": true, "created": created, "default_price": null,
        "description": null, "images": [], "livemode": false, "marketing_features": [], "metadata": {},
        "name": null, "package_dimensions": null, "shippable": null, "statement_descriptor": null,
        "tax_code": null, "unit_label": null, "updated": created, "url": null
    });
    if let (Some(p), Some(f)) = (p.as_object_mut(), fields.as_object()) {
        for (k, v) in f {
            p.insert(k.clone(), v.clone());
        }
    }
    p
}

/// A list object.
pub(crate) fn list_obj(data: Vec<Value>, has_more: bool, url: &str) -> Value {
    json!({ "object": "list", "data": data, "has_more": has_more, "url": url })
}

/// Creates an event (kept in the log) and returns its id; delivery is the caller's job.
pub(crate) fn new_event(inner: &Inner, st: &mut State, typ: &str, object: Value) -> String {
    let id = rand_id("evt_", 24);
    let configured = usize::from(inner.webhook_url.lock().unwrap().is_some());
    let pending = configured + st.webhook_endpoints.iter().filter(|e| e.receives(typ)).count();
    st.events.push(json!({
        "id": id, "object": "event", "api_version": API_VERSION, "created": now(),
        "data": { "object": object }, "livemode": false, "pending_webhooks": pending,
        "request": { "id": null, "idempotency_key": null }, "type": typ
    }));
    id
}
