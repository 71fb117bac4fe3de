//! Emulator state and the Stripe business rules (sessions, discounts, events).

use crate::form::as_list;
use crate::{API_VERSION, Delivery, Faults, Options, RecordedRequest};
use serde_json::{Map, Value, json};
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
    pub response: Value,
    pub request_id: String,
}

/// Mutable state, behind one mutex (never held across an await).
#[derive(Default)]
pub(crate) struct State {
    pub sessions: HashMap<String, Session>,
    pub session_order: Vec<String>,
    pub products: HashMap<String, Value>,
    pub prices: HashMap<String, Value>,
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
}

/// A Stripe error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: u16,
    pub typ: &'static str,
    pub code: Option<&'static str>,
    pub param: Option<String>,
    pub message: String,
}

impl ApiError {
    pub fn new(
        status: u16,
        typ: &'static str,
        code: Option<&'static str>,
        param: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        ApiError { status, typ, code, param: param.map(String::from), message: message.into() }
    }
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", None, Some(param), message)
    }
    pub fn coded(code: &'static str, param: &str, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", Some(code), Some(param), message)
    }
    pub fn missing(param: &str) -> Self {
        Self::coded("parameter_missing", param, format!("Missing required param: {param}."))
    }
    pub fn unknown(param: &str) -> Self {
        Self::coded("parameter_unknown", param, format!("Received unknown parameter: {param}"))
    }
    pub fn empty(param: &str) -> Self {
        Self::coded(
            "parameter_invalid_empty",
            param,
            format!(
                "You passed an empty string for '{param}'. We assume empty values are an attempt to unset a parameter; however '{param}' cannot be unset. You should remove '{param}' from your request or supply a non-empty value."
            ),
        )
    }
    pub fn not_integer(param: &str) -> Self {
        Self::coded("parameter_invalid_integer", param, "Invalid integer")
    }
    pub fn no_such(status: u16, param: &str, what: &str, id: &str) -> Self {
        Self::new(
            status,
            "invalid_request_error",
            Some("resource_missing"),
            Some(param),
            format!("No such {what}: '{id}'"),
        )
    }
    pub fn body(&self, request_id: &str) -> Value {
        let mut e = Map::new();
        e.insert("type".into(), json!(self.typ));
        if let Some(c) = self.code {
            e.insert("code".into(), json!(c));
            e.insert("doc_url".into(), json!(format!("https://stripe.com/docs/error-codes/{}", c.replace('_', "-"))));
        }
        if let Some(p) = &self.param {
            e.insert("param".into(), json!(p));
        }
        e.insert("message".into(), json!(self.message));
        e.insert("request_log_url".into(), json!(format!("https://dashboard.stripe.com/test/logs/{request_id}")));
        json!({ "error": e })
    }
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

/// Currencies the emulator accepts, with their decimal digits.
pub(crate) const CURRENCIES: &[(&str, u32)] = &[
    ("usd", 2),
    ("eur", 2),
    ("gbp", 2),
    ("cad", 2),
    ("aud", 2),
    ("nzd", 2),
    ("chf", 2),
    ("sek", 2),
    ("nok", 2),
    ("dkk", 2),
    ("pln", 2),
    ("czk", 2),
    ("sgd", 2),
    ("hkd", 2),
    ("mxn", 2),
    ("brl", 2),
    ("inr", 2),
    ("jpy", 0),
    ("krw", 0),
];

/// Formats a minor-unit amount for display, e.g. `$20.00`, `€5.00`, `¥500`.
pub(crate) fn fmt_money(amount: i64, currency: &str) -> String {
    let digits = CURRENCIES.iter().find(|c| c.0 == currency).map(|c| c.1).unwrap_or(2);
    let neg = if amount < 0 { "-" } else { "" };
    let a = amount.unsigned_abs();
    let num = if digits == 0 {
        a.to_string()
    } else {
        let p = 10u64.pow(digits);
        format!("{}.{:0w$}", a / p, a % p, w = digits as usize)
    };
    let sym = match currency {
        "usd" => "$",
        "eur" => "€",
        "gbp" => "£",
        "jpy" => "¥",
        _ => "",
    };
    if sym.is_empty() { format!("{neg}{num} {}", currency.to_uppercase()) } else { format!("{neg}{sym}{num}") }
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
            st.products.insert(p["id"].as_str().unwrap_or_default().to_string(), p);
        }
        for p in cat["prices"].as_array().cloned().unwrap_or_default() {
            let id = p["id"].as_str().unwrap_or_default().to_string();
            let obj = price_obj(
                &id,
                p["product"].as_str().unwrap_or_default(),
                p["currency"].as_str().unwrap_or("usd"),
                p["unit_amount"].as_i64().unwrap_or(0),
                true,
            );
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

fn price_obj(id: &str, product: &str, currency: &str, unit_amount: i64, active: bool) -> Value {
    json!({
        "id": id, "object": "price", "active": active, "billing_scheme": "per_unit",
        "created": 1735689600, "currency": currency, "custom_unit_amount": null, "livemode": false,
        "lookup_key": null, "metadata": {}, "nickname": null, "product": product, "recurring": null,
        "tax_behavior": "unspecified", "tiers_mode": null, "transform_quantity": null, "type": "one_time",
        "unit_amount": unit_amount, "unit_amount_decimal": unit_amount.to_string()
    })
}

fn check_keys(obj: &Map<String, Value>, allowed: &[&str], prefix: &str) -> Result<(), ApiError> {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::unknown(&format!("{prefix}[{k}]")));
        }
    }
    Ok(())
}

fn str_at<'a>(v: &'a Value, key: &str, param: &str) -> Result<Option<&'a str>, ApiError> {
    match v.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(ApiError::invalid(param, format!("Invalid string: {param} must be a string"))),
    }
}

fn parse_int(s: &str, param: &str) -> Result<i64, ApiError> {
    if s.is_empty() {
        return Err(ApiError::empty(param));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 15 {
        return Err(ApiError::coded(
            "parameter_invalid_integer",
            param,
            format!("Invalid non-negative integer: '{s}' for {param}"),
        ));
    }
    s.parse().map_err(|_| ApiError::not_integer(param))
}

fn valid_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(r) => {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && s.len() <= 5000 && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

fn url_param(params: &Value, key: &str) -> Result<Option<String>, ApiError> {
    match str_at(params, key, key)? {
        None => Ok(None),
        Some("") => Err(ApiError::empty(key)),
        Some(u) if !valid_url(u) => Err(ApiError::coded("url_invalid", key, "Not a valid URL")),
        Some(u) => Ok(Some(u.to_string())),
    }
}

/// A priced line during creation.
struct Line {
    name: String,
    price: Value,
    product: String,
    quantity: i64,
    subtotal: i64,
    discount: i64,
}

const SESSION_PARAMS: &[&str] = &[
    "mode",
    "line_items",
    "ui_mode",
    "success_url",
    "cancel_url",
    "return_url",
    "allow_promotion_codes",
    "discounts",
    "client_reference_id",
    "metadata",
    "customer_email",
    "expand",
];

const SESSION_EXPANDS: &[&str] = &["line_items", "line_items.data.price.product"];

/// Validates `expand[]` against the allowed paths; returns the list.
pub(crate) fn expands(params: &Value, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    let Some(v) = params.get("expand") else {
        return Ok(vec![]);
    };
    let list = match v {
        Value::String(s) => vec![("0".to_string(), v, s.as_str())],
        _ => as_list(v)
            .ok_or_else(|| ApiError::invalid("expand", "Invalid array"))?
            .into_iter()
            .map(|(i, x)| (i, x, x.as_str().unwrap_or("")))
            .collect(),
    };
    let mut out = vec![];
    for (i, _, s) in list {
        if !allowed.contains(&s) {
            return Err(ApiError::invalid(&format!("expand[{i}]"), format!("This property cannot be expanded ({s}).")));
        }
        out.push(s.to_string());
    }
    Ok(out)
}

/// `POST /v1/checkout/sessions`. Returns the session JSON (expanded as asked) and the new id.
pub(crate) fn create_session(
    inner: &Inner,
    st: &mut State,
    pairs: &[(String, String)],
    params: &Value,
) -> Result<Value, ApiError> {
    for (k, _) in pairs {
        let top = k.split('[').next().unwrap_or("");
        if !SESSION_PARAMS.contains(&top) {
            return Err(ApiError::unknown(top));
        }
    }
    // mode
    match str_at(params, "mode", "mode")? {
        None => return Err(ApiError::missing("mode")),
        Some("") => return Err(ApiError::empty("mode")),
        Some("payment") => {}
        Some("setup" | "subscription") => {
            return Err(ApiError::invalid("mode", "The Stripe emulator only supports mode=payment."));
        }
        Some(m) => {
            return Err(ApiError::invalid(
                "mode",
                format!("Invalid mode: must be one of payment, setup, or subscription (got '{m}')"),
            ));
        }
    }
    // ui_mode
    let ui_mode = match str_at(params, "ui_mode", "ui_mode")? {
        None | Some("hosted_page") => "hosted_page",
        Some("embedded_page") => "embedded_page",
        Some("") => return Err(ApiError::empty("ui_mode")),
        Some("elements" | "form") => {
            return Err(ApiError::invalid(
                "ui_mode",
                "The Stripe emulator supports only ui_mode hosted_page and embedded_page.",
            ));
        }
        Some(u) => {
            return Err(ApiError::invalid(
                "ui_mode",
                format!("Invalid ui_mode: must be one of hosted_page, embedded_page, elements, or form (got '{u}')"),
            ));
        }
    };
    let success_url = url_param(params, "success_url")?;
    let cancel_url = url_param(params, "cancel_url")?;
    let return_url = url_param(params, "return_url")?;
    if ui_mode == "hosted_page" {
        if params.get("return_url").is_some() {
            return Err(ApiError::invalid(
                "return_url",
                "You can only set `return_url` when `ui_mode` is `embedded_page` or `elements`.",
            ));
        }
        if success_url.is_none() {
            return Err(ApiError::missing("success_url"));
        }
    } else {
        for p in ["success_url", "cancel_url"] {
            if params.get(p).is_some() {
                return Err(ApiError::invalid(
                    p,
                    format!("You cannot set `{p}` when `ui_mode` is `embedded_page`; use `return_url`."),
                ));
            }
        }
        if return_url.is_none() {
            return Err(ApiError::missing("return_url"));
        }
    }
    // line items
    let li = params.get("line_items").ok_or_else(|| ApiError::missing("line_items"))?;
    let list = as_list(li).ok_or_else(|| ApiError::invalid("line_items", "Invalid array"))?;
    if list.is_empty() {
        return Err(ApiError::missing("line_items"));
    }
    if list.len() > 100 {
        return Err(ApiError::invalid("line_items", "You can pass at most 100 line items."));
    }
    let mut lines: Vec<Line> = vec![];
    let mut currency: Option<String> = None;
    for (i, item) in &list {
        let p = format!("line_items[{i}]");
        let obj = item.as_object().ok_or_else(|| ApiError::invalid(&p, "Invalid object"))?;
        check_keys(obj, &["price", "price_data", "quantity"], &p)?;
        let (price, name, product, cur) = match (obj.get("price"), obj.get("price_data")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::coded(
                    "parameters_exclusive",
                    &format!("{p}[price]"),
                    "You may only specify one of these parameters: price, price_data.",
                ));
            }
            (None, None) => return Err(ApiError::missing(&format!("{p}[price]"))),
            (Some(pv), None) => {
                let pp = format!("{p}[price]");
                let id = pv.as_str().ok_or_else(|| ApiError::invalid(&pp, "Invalid string"))?;
                if id.is_empty() {
                    return Err(ApiError::empty(&pp));
                }
                let price = st.prices.get(id).cloned().ok_or_else(|| ApiError::no_such(400, &pp, "price", id))?;
                let product = price["product"].as_str().unwrap_or_default().to_string();
                let name = st.products.get(&product).and_then(|x| x["name"].as_str()).unwrap_or("Item").to_string();
                let cur = price["currency"].as_str().unwrap_or("usd").to_string();
                (price, name, product, cur)
            }
            (None, Some(pd)) => {
                let pp = format!("{p}[price_data]");
                let pd_obj = pd.as_object().ok_or_else(|| ApiError::invalid(&pp, "Invalid object"))?;
                check_keys(pd_obj, &["currency", "unit_amount", "product_data", "product"], &pp)?;
                let cp = format!("{pp}[currency]");
                let cur = match str_at(pd, "currency", &cp)? {
                    None => return Err(ApiError::missing(&cp)),
                    Some("") => return Err(ApiError::empty(&cp)),
                    Some(c) => c,
                };
                if cur.len() != 3
                    || !cur.bytes().all(|b| b.is_ascii_lowercase())
                    || !CURRENCIES.iter().any(|x| x.0 == cur)
                {
                    let known: Vec<&str> = CURRENCIES.iter().map(|x| x.0).collect();
                    return Err(ApiError::invalid(
                        &cp,
                        format!(
                            "Invalid currency: {cur}. The Stripe emulator supports these currencies: {}",
                            known.join(", ")
                        ),
                    ));
                }
                let up = format!("{pp}[unit_amount]");
                let unit = match str_at(pd, "unit_amount", &up)? {
                    None => return Err(ApiError::missing(&up)),
                    Some(s) => parse_int(s, &up)?,
                };
                if unit > 99_999_999 {
                    return Err(ApiError::coded(
                        "parameter_invalid_integer",
                        &up,
                        format!("This value must be less than or equal to 99999999 (it currently is '{unit}')."),
                    ));
                }
                let (name, product) = match (pd.get("product_data"), pd.get("product")) {
                    (Some(_), Some(_)) => {
                        return Err(ApiError::coded(
                            "parameters_exclusive",
                            &format!("{pp}[product]"),
                            "You may only specify one of these parameters: product, product_data.",
                        ));
                    }
                    (None, None) => return Err(ApiError::missing(&format!("{pp}[product_data]"))),
                    (None, Some(prod)) => {
                        let ppp = format!("{pp}[product]");
                        let id = prod.as_str().ok_or_else(|| ApiError::invalid(&ppp, "Invalid string"))?;
                        let pr = st.products.get(id).ok_or_else(|| ApiError::no_such(400, &ppp, "product", id))?;
                        (pr["name"].as_str().unwrap_or("Item").to_string(), id.to_string())
                    }
                    (Some(pdata), None) => {
                        let pdp = format!("{pp}[product_data]");
                        let pobj = pdata.as_object().ok_or_else(|| ApiError::invalid(&pdp, "Invalid object"))?;
                        check_keys(pobj, &["name", "description"], &pdp)?;
                        let np = format!("{pdp}[name]");
                        let name = match str_at(pdata, "name", &np)? {
                            None => return Err(ApiError::missing(&np)),
                            Some(n) if n.trim().is_empty() => return Err(ApiError::empty(&np)),
                            Some(n) if n.chars().count() > 5000 => {
                                return Err(ApiError::invalid(&np, "Product name is too long (max 5000 characters)."));
                            }
                            Some(n) => n.to_string(),
                        };
                        let dp = format!("{pdp}[description]");
                        let desc = match str_at(pdata, "description", &dp)? {
                            Some("") => return Err(ApiError::empty(&dp)),
                            d => d.map(String::from),
                        };
                        let pid = rand_id("prod_", 14);
                        st.products.insert(
                            pid.clone(),
                            json!({
                                "id": pid, "object": "product", "name": name, "description": desc, "active": false,
                                "created": now(), "livemode": false, "metadata": {}
                            }),
                        );
                        (name, pid)
                    }
                };
                let price = price_obj(&rand_id("price_", 24), &product, cur, unit, false);
                (price, name, product, cur.to_string())
            }
        };
        let qp = format!("{p}[quantity]");
        let q = match obj.get("quantity") {
            None => return Err(ApiError::missing(&qp)),
            Some(v) => parse_int(v.as_str().ok_or_else(|| ApiError::not_integer(&qp))?, &qp)?,
        };
        if q < 1 {
            return Err(ApiError::invalid(&qp, "This value must be greater than or equal to 1."));
        }
        if q > 999_999 {
            return Err(ApiError::invalid(&qp, "This value must be less than or equal to 999999."));
        }
        match &currency {
            None => currency = Some(cur.clone()),
            Some(c) if *c != cur => {
                let cp = if obj.contains_key("price") {
                    format!("{p}[price]")
                } else {
                    format!("{p}[price_data][currency]")
                };
                return Err(ApiError::invalid(
                    &cp,
                    format!("All line items must use the same currency; line {i} is in {cur}, previous lines in {c}."),
                ));
            }
            _ => {}
        }
        let unit = price["unit_amount"].as_i64().unwrap_or(0);
        lines.push(Line { name, price, product, quantity: q, subtotal: unit * q, discount: 0 });
    }
    let currency = currency.unwrap_or_else(|| "usd".into());
    let subtotal: i64 = lines.iter().map(|l| l.subtotal).sum();
    if subtotal > 99_999_999 {
        return Err(ApiError::invalid(
            "line_items",
            format!("The Checkout Session's total amount must be no more than {}.", fmt_money(99_999_999, &currency)),
        ));
    }
    // other scalars
    let allow_promo = match str_at(params, "allow_promotion_codes", "allow_promotion_codes")? {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(v) => {
            return Err(ApiError::invalid("allow_promotion_codes", format!("Invalid boolean: {v}")));
        }
    };
    let cref = match str_at(params, "client_reference_id", "client_reference_id")? {
        Some(s) if s.chars().count() > 200 => {
            return Err(ApiError::invalid(
                "client_reference_id",
                "client_reference_id must be at most 200 characters.",
            ));
        }
        Some("") | None => None,
        Some(s) => Some(s.to_string()),
    };
    let email = match str_at(params, "customer_email", "customer_email")? {
        Some("") | None => None,
        Some(e) => {
            let ok = e.len() <= 512
                && e.split_once('@')
                    .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !b.starts_with('.') && !b.ends_with('.'))
                && !e.contains(char::is_whitespace);
            if !ok {
                return Err(ApiError::coded("email_invalid", "customer_email", format!("Invalid email address: {e}")));
            }
            Some(e.to_string())
        }
    };
    let mut metadata = Map::new();
    if let Some(m) = params.get("metadata") {
        match m {
            Value::String(s) if s.is_empty() => {}
            Value::Object(map) => {
                if map.len() > 50 {
                    return Err(ApiError::invalid("metadata", "You can specify up to 50 keys."));
                }
                for (k, v) in map {
                    let p = format!("metadata[{k}]");
                    let Some(s) = v.as_str() else {
                        return Err(ApiError::invalid(&p, "Metadata values must be strings."));
                    };
                    if k.chars().count() > 40 {
                        return Err(ApiError::invalid(&p, "Metadata keys can have up to 40 characters."));
                    }
                    if s.chars().count() > 500 {
                        return Err(ApiError::invalid(&p, "Metadata values can have up to 500 characters."));
                    }
                    metadata.insert(k.clone(), json!(s));
                }
            }
            _ => return Err(ApiError::invalid("metadata", "Invalid hash")),
        }
    }
    let expand = expands(params, SESSION_EXPANDS)?;
    // discounts
    let mut promo_id = None;
    let mut coupon_id = None;
    if let Some(d) = params.get("discounts") {
        if allow_promo.is_some() {
            return Err(ApiError::coded(
                "parameters_exclusive",
                "discounts",
                "You may only specify one of these parameters: allow_promotion_codes, discounts.",
            ));
        }
        let dl = match d {
            Value::String(s) if s.is_empty() => vec![],
            _ => as_list(d).ok_or_else(|| ApiError::invalid("discounts", "Invalid array"))?,
        };
        if dl.len() > 1 {
            return Err(ApiError::invalid("discounts", "You may only specify one discount."));
        }
        if let Some((i, dv)) = dl.first() {
            let p = format!("discounts[{i}]");
            let o = dv.as_object().ok_or_else(|| ApiError::invalid(&p, "Invalid object"))?;
            check_keys(o, &["promotion_code", "coupon"], &p)?;
            let (coupon, param) = match (str_at(dv, "promotion_code", &p)?, str_at(dv, "coupon", &p)?) {
                (Some(_), Some(_)) => {
                    return Err(ApiError::coded(
                        "parameters_exclusive",
                        &format!("{p}[coupon]"),
                        "You may only specify one of these parameters: coupon, promotion_code.",
                    ));
                }
                (None, None) => return Err(ApiError::missing(&format!("{p}[promotion_code]"))),
                (Some(pc), None) => {
                    let pp = format!("{p}[promotion_code]");
                    let promo = st
                        .promos
                        .iter()
                        .find(|x| x["id"] == pc)
                        .cloned()
                        .ok_or_else(|| ApiError::no_such(400, &pp, "promotion code", pc))?;
                    check_promo(st, &promo, &currency, subtotal, email.as_deref())
                        .map_err(|m| ApiError::invalid(&pp, m))?;
                    promo_id = Some(pc.to_string());
                    (promo["promotion"]["coupon"].as_str().unwrap_or_default().to_string(), pp)
                }
                (None, Some(c)) => {
                    let cp = format!("{p}[coupon]");
                    if !st.coupons.contains_key(c) {
                        return Err(ApiError::no_such(400, &cp, "coupon", c));
                    }
                    (c.to_string(), cp)
                }
            };
            let cobj =
                st.coupons.get(&coupon).cloned().ok_or_else(|| ApiError::no_such(400, &param, "coupon", &coupon))?;
            check_coupon(&cobj, &currency).map_err(|m| ApiError::invalid(&param, m))?;
            apply_coupon(&cobj, &mut lines).map_err(|m| ApiError::invalid(&param, m))?;
            coupon_id = Some(coupon);
        }
    }
    let discount: i64 = lines.iter().map(|l| l.discount).sum();
    let id = rand_id("cs_test_a1", 56);
    let created = now();
    let embedded = ui_mode == "embedded_page";
    let url = if embedded { Value::Null } else { json!(format!("{}/c/pay/{id}", inner.public_url)) };
    let client_secret = if embedded { json!(rand_id(&format!("{id}_secret_"), 24)) } else { Value::Null };
    let discounts = match (&promo_id, &coupon_id) {
        (Some(p), _) => json!([{ "coupon": null, "promotion_code": p }]),
        (None, Some(c)) => json!([{ "coupon": c, "promotion_code": null }]),
        _ => json!([]),
    };
    let obj = json!({
        "id": id, "object": "checkout.session",
        "adaptive_pricing": { "enabled": false },
        "after_expiration": null,
        "allow_promotion_codes": allow_promo,
        "amount_subtotal": subtotal,
        "amount_total": subtotal - discount,
        "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
        "billing_address_collection": null,
        "cancel_url": cancel_url,
        "client_reference_id": cref,
        "client_secret": client_secret,
        "collected_information": null,
        "consent": null, "consent_collection": null,
        "created": created,
        "currency": currency,
        "currency_conversion": null,
        "custom_fields": [],
        "custom_text": { "after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null },
        "customer": null, "customer_account": null,
        "customer_creation": "if_required",
        "customer_details": null,
        "customer_email": email,
        "discounts": discounts,
        "expires_at": created + 24 * 3600,
        "integration_identifier": null,
        "invoice": null,
        "invoice_creation": { "enabled": false, "invoice_data": { "account_tax_ids": null, "custom_fields": null, "description": null, "footer": null, "issuer": null, "metadata": {}, "rendering_options": null } },
        "livemode": false, "locale": null,
        "metadata": metadata,
        "mode": "payment",
        "origin_context": null,
        "payment_intent": null, "payment_link": null,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": null,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "permissions": null,
        "phone_number_collection": { "enabled": false },
        "recovered_from": null,
        "return_url": return_url,
        "saved_payment_method_options": null,
        "setup_intent": null,
        "shipping_address_collection": null, "shipping_cost": null, "shipping_options": [],
        "status": "open",
        "submit_type": null, "subscription": null,
        "success_url": success_url,
        "total_details": { "amount_discount": discount, "amount_shipping": 0, "amount_tax": 0 },
        "ui_mode": ui_mode,
        "url": url,
        "wallet_options": null
    });
    let items: Vec<Value> = lines
        .into_iter()
        .map(|l| {
            json!({
                "id": rand_id("li_", 24), "object": "item", "adjustable_quantity": null,
                "amount_discount": l.discount, "amount_subtotal": l.subtotal, "amount_tax": 0,
                "amount_total": l.subtotal - l.discount, "currency": currency, "description": l.name,
                "metadata": {}, "price": l.price, "quantity": l.quantity, "_product": l.product
            })
        })
        .collect();
    st.sessions.insert(id.clone(), Session { obj, line_items: items, promo: promo_id, coupon: coupon_id });
    st.session_order.push(id.clone());
    Ok(render_session(st, &id, &expand, &inner.public_url).expect("just inserted"))
}

/// Checks the promotion-code rules; `Err` carries the message.
fn check_promo(st: &State, promo: &Value, currency: &str, subtotal: i64, email: Option<&str>) -> Result<(), String> {
    let code = promo["code"].as_str().unwrap_or_default();
    if promo["active"] != json!(true) {
        return Err(format!("The promotion code '{code}' is inactive."));
    }
    if promo["expires_at"].as_i64().is_some_and(|t| t <= now()) {
        return Err(format!("The promotion code '{code}' has expired."));
    }
    if let Some(m) = promo["max_redemptions"].as_i64()
        && promo["times_redeemed"].as_i64().unwrap_or(0) >= m
    {
        return Err(format!("The promotion code '{code}' has reached its maximum number of redemptions."));
    }
    if !promo["customer"].is_null() {
        return Err(format!("The promotion code '{code}' is restricted to a specific customer."));
    }
    let r = &promo["restrictions"];
    if let Some(min) = r["minimum_amount"].as_i64() {
        let mc = r["minimum_amount_currency"].as_str().unwrap_or("usd");
        if mc != currency {
            return Err(format!("The promotion code '{code}' only applies to purchases in {}.", mc.to_uppercase()));
        }
        if subtotal < min {
            return Err(format!("The promotion code '{code}' requires a minimum purchase of {}.", fmt_money(min, mc)));
        }
    }
    if r["first_time_transaction"] == json!(true) {
        match email {
            Some(e) if st.paid_emails.contains(&e.to_ascii_lowercase()) => {
                return Err(format!("The promotion code '{code}' is only valid for first-time customers."));
            }
            Some(_) => {}
            None => {
                return Err(format!(
                    "The promotion code '{code}' is only valid for first-time customers; pass customer_email so it can be checked."
                ));
            }
        }
    }
    Ok(())
}

fn check_coupon(c: &Value, currency: &str) -> Result<(), String> {
    let id = c["id"].as_str().unwrap_or_default();
    if c["valid"] != json!(true) {
        return Err(format!("The coupon '{id}' is no longer valid."));
    }
    if c["redeem_by"].as_i64().is_some_and(|t| t <= now()) {
        return Err(format!("The coupon '{id}' has expired."));
    }
    if let Some(m) = c["max_redemptions"].as_i64()
        && c["times_redeemed"].as_i64().unwrap_or(0) >= m
    {
        return Err(format!("The coupon '{id}' has reached its maximum number of redemptions."));
    }
    if c["amount_off"].is_i64() && c["currency"].as_str() != Some(currency) {
        return Err(format!(
            "The coupon '{id}' is in {} and cannot be applied to a {} purchase.",
            c["currency"].as_str().unwrap_or("?").to_uppercase(),
            currency.to_uppercase()
        ));
    }
    Ok(())
}

/// Spreads the coupon's discount over the applicable lines.
fn apply_coupon(c: &Value, lines: &mut [Line]) -> Result<(), String> {
    let products: Option<Vec<String>> =
        c["applies_to"]["products"].as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect());
    let applies = |l: &Line| products.as_ref().is_none_or(|p| p.contains(&l.product));
    let base: i64 = lines.iter().filter(|l| applies(l)).map(|l| l.subtotal).sum();
    if !lines.iter().any(applies) {
        return Err(format!(
            "The coupon '{}' does not apply to any product in this Checkout Session.",
            c["id"].as_str().unwrap_or_default()
        ));
    }
    let total = if let Some(a) = c["amount_off"].as_i64() {
        a.min(base)
    } else {
        let pct = c["percent_off"].as_f64().unwrap_or(0.0);
        ((base as f64) * pct / 100.0).round() as i64
    };
    if base == 0 || total == 0 {
        return Ok(());
    }
    let mut left = total;
    let idx: Vec<usize> = (0..lines.len()).filter(|&i| applies(&lines[i])).collect();
    for (n, &i) in idx.iter().enumerate() {
        let share =
            if n + 1 == idx.len() { left } else { (total as i128 * lines[i].subtotal as i128 / base as i128) as i64 };
        let share = share.min(lines[i].subtotal).min(left);
        lines[i].discount = share;
        left -= share;
    }
    Ok(())
}

/// A list object.
pub(crate) fn list_obj(data: Vec<Value>, has_more: bool, url: &str) -> Value {
    json!({ "object": "list", "data": data, "has_more": has_more, "url": url })
}

fn render_items(st: &State, s: &Session, expand_product: bool) -> Vec<Value> {
    s.line_items
        .iter()
        .map(|li| {
            let mut li = li.clone();
            let prod = li["_product"].as_str().unwrap_or_default().to_string();
            li.as_object_mut().unwrap().remove("_product");
            if expand_product && let Some(p) = st.products.get(&prod) {
                li["price"]["product"] = p.clone();
            }
            li
        })
        .collect()
}

/// Session JSON with optional `line_items` expansion.
pub(crate) fn render_session(st: &State, id: &str, expand: &[String], _public: &str) -> Option<Value> {
    let s = st.sessions.get(id)?;
    let mut obj = s.obj.clone();
    if expand.iter().any(|e| e.starts_with("line_items")) {
        let ep = expand.iter().any(|e| e == "line_items.data.price.product");
        obj["line_items"] = list_obj(render_items(st, s, ep), false, &format!("/v1/checkout/sessions/{id}/line_items"));
    }
    Some(obj)
}

/// Line items list of a session.
pub(crate) fn line_items(st: &State, id: &str, expand_product: bool) -> Option<Value> {
    let s = st.sessions.get(id)?;
    Some(list_obj(render_items(st, s, expand_product), false, &format!("/v1/checkout/sessions/{id}/line_items")))
}

/// Promotion code JSON with live counters; coupon expanded if asked, and its
/// includable `applies_to` only when `with_applies_to` (as Stripe does).
pub(crate) fn render_promo(st: &State, p: &Value, expand_coupon: bool, with_applies_to: bool) -> Value {
    let mut p = p.clone();
    if expand_coupon && let Some(c) = p["promotion"]["coupon"].as_str().and_then(|c| st.coupons.get(c)) {
        let mut c = c.clone();
        if !with_applies_to && let Some(obj) = c.as_object_mut() {
            obj.remove("applies_to");
        }
        p["promotion"]["coupon"] = c;
    }
    p
}

/// Creates an event (kept in the log) and returns its id; delivery is the caller's job.
pub(crate) fn new_event(inner: &Inner, st: &mut State, typ: &str, object: Value) -> String {
    let id = rand_id("evt_", 24);
    let pending = if inner.webhook_url.lock().unwrap().is_some() { 1 } else { 0 };
    st.events.push(json!({
        "id": id, "object": "event", "api_version": API_VERSION, "created": now(),
        "data": { "object": object }, "livemode": false, "pending_webhooks": pending,
        "request": { "id": null, "idempotency_key": null }, "type": typ
    }));
    id
}

/// Expires an open session (`POST /v1/checkout/sessions/{id}/expire`); returns the event id.
pub(crate) fn expire(inner: &Inner, st: &mut State, id: &str) -> Result<(Value, String), ApiError> {
    let s = st.sessions.get_mut(id).ok_or_else(|| ApiError::no_such(404, "id", "checkout.session", id))?;
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
    s.obj["status"] = json!("expired");
    let snap = s.obj.clone();
    let ev = new_event(inner, st, "checkout.session.expired", snap.clone());
    Ok((snap, ev))
}

/// Completes a session (`pay`, `delayed_success`, `delayed_failure`), emitting events and
/// scheduling the async outcome. Returns the redirect URL.
pub(crate) fn complete(inner: &std::sync::Arc<Inner>, id: &str, action: &str) -> Result<String, String> {
    if !matches!(action, "pay" | "delayed_success" | "delayed_failure") {
        return Err(format!("unknown action '{action}'"));
    }
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
        let email = s.obj["customer_email"].as_str().unwrap_or("shopper@example.com").to_string();
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
            "address": { "city": null, "country": "US", "line1": null, "line2": null, "postal_code": "94107", "state": null },
            "business_name": null, "email": email, "individual_name": null, "name": "Emulator Shopper",
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
        if let Some(p) = promo
            && let Some(x) = st.promos.iter_mut().find(|x| x["id"] == p.as_str())
        {
            x["times_redeemed"] = json!(x["times_redeemed"].as_i64().unwrap_or(0) + 1);
        }
        if let Some(c) = coupon.and_then(|c| st.coupons.get_mut(&c)) {
            c["times_redeemed"] = json!(c["times_redeemed"].as_i64().unwrap_or(0) + 1);
        }
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
        let inner = inner.clone();
        let id = id.to_string();
        let success = action == "delayed_success";
        tokio::spawn(async move {
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
                let typ = if success {
                    "checkout.session.async_payment_succeeded"
                } else {
                    "checkout.session.async_payment_failed"
                };
                new_event(&inner, st, typ, snap)
            };
            crate::webhook::dispatch(&inner, vec![ev]);
        });
    }
    Ok(redirect)
}
