//! Checkout Sessions: `POST /v1/checkout/sessions` in named steps (parameter names ⇒ mode and
//! URLs ⇒ lines ⇒ details ⇒ discounts ⇒ totals ⇒ the stored object), and the list, retrieve
//! and line-item answers.

use crate::checkout::Line;
use crate::error::ApiError;
use crate::form::as_list;
use crate::money::{CURRENCIES, fmt_money};
use crate::params::{
    bool_param, check_keys, expands, metadata_param, only_params, paginate, parse_int, str_at, url_param,
};
use crate::promotions::{Applied, apply_discounts};
use crate::state::{Inner, Session, State, list_obj, now, price_obj, product_obj, rand_id};
use serde_json::{Map, Value, json};

/// Top-level parameters of `POST /v1/checkout/sessions` the emulator implements.
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
    "shipping_address_collection",
    "shipping_options",
    "automatic_tax",
    "expires_at",
];

/// The earliest `expires_at` Stripe accepts, from creation: 30 minutes.
pub const MIN_EXPIRY_SECS: i64 = 30 * 60;
/// The latest `expires_at` Stripe accepts (and its default), from creation: 24 hours.
pub const MAX_EXPIRY_SECS: i64 = 24 * 3600;

const SESSION_EXPANDS: &[&str] = &["line_items", "line_items.data.price.product", "shipping_cost.shipping_rate"];

/// Where the session is paid and where the shopper goes afterwards.
struct Flow {
    ui_mode: &'static str,
    success_url: Option<String>,
    cancel_url: Option<String>,
    return_url: Option<String>,
}

/// The session's own scalar fields.
struct Details {
    allow_promo: Option<bool>,
    client_reference_id: Option<String>,
    email: Option<String>,
    metadata: Map<String, Value>,
}

/// `POST /v1/checkout/sessions`: returns the session JSON (expanded as asked).
pub(crate) fn create(
    inner: &Inner,
    st: &mut State,
    pairs: &[(String, String)],
    params: &Value,
) -> Result<Value, ApiError> {
    only_params(pairs, SESSION_PARAMS)?;
    let flow = flow(params)?;
    let (mut lines, currency) = build_lines(st, params)?;
    let subtotal: i64 = lines.iter().map(|l| l.subtotal).sum();
    if subtotal > 99_999_999 {
        return Err(ApiError::invalid(
            "line_items",
            format!("The Checkout Session's total amount must be no more than {}.", fmt_money(99_999_999, &currency)),
        ));
    }
    let details = details(params)?;
    let shipping = crate::shipping::parse(st, params, &currency)?;
    let expand = expands(params, SESSION_EXPANDS)?;
    let applied = apply_discounts(st, params, details.allow_promo, &currency, details.email.as_deref(), &mut lines)?;
    let id = rand_id("cs_test_a1", 56);
    let expires_at = expires_at(params)?;
    let mut obj = session_obj(&id, &inner.public_url, &flow, &details, &currency, &lines, &applied);
    if let Some(t) = expires_at {
        obj["expires_at"] = json!(t);
    }
    crate::shipping::apply(&mut obj, &shipping);
    let items = lines.into_iter().map(|l| item_obj(l, &currency)).collect();
    st.sessions.insert(id.clone(), Session { obj, line_items: items, promo: applied.promo, coupon: applied.coupon });
    st.session_order.push(id.clone());
    Ok(render(st, &id, &expand).expect("just inserted"))
}

/// Step: `expires_at`, 30 minutes to 24 hours after creation (Stripe's range and messages).
fn expires_at(params: &Value) -> Result<Option<i64>, ApiError> {
    let Some(raw) = str_at(params, "expires_at", "expires_at")? else { return Ok(None) };
    let t = parse_int(raw, "expires_at")?;
    let created = now();
    if t < created + MIN_EXPIRY_SECS {
        return Err(ApiError::invalid(
            "expires_at",
            "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
        ));
    }
    if t > created + MAX_EXPIRY_SECS {
        return Err(ApiError::invalid(
            "expires_at",
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
        ));
    }
    Ok(Some(t))
}

/// Step: `mode`, `ui_mode` and the URLs each UI mode needs.
fn flow(params: &Value) -> Result<Flow, ApiError> {
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
    let flow = Flow {
        ui_mode,
        success_url: url_param(params, "success_url")?,
        cancel_url: url_param(params, "cancel_url")?,
        return_url: url_param(params, "return_url")?,
    };
    if ui_mode == "hosted_page" {
        if params.get("return_url").is_some() {
            return Err(ApiError::invalid(
                "return_url",
                "You can only set `return_url` when `ui_mode` is `embedded_page` or `elements`.",
            ));
        }
        if flow.success_url.is_none() {
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
        if flow.return_url.is_none() {
            return Err(ApiError::missing("return_url"));
        }
    }
    Ok(flow)
}

/// Step: every `line_items[i]`, priced, in one currency.
fn build_lines(st: &mut State, params: &Value) -> Result<(Vec<Line>, String), ApiError> {
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
                return Err(ApiError::exclusive(&format!("{p}[price]"), "price", "price_data"));
            }
            (None, None) => return Err(ApiError::missing(&format!("{p}[price]"))),
            (Some(pv), None) => known_price(st, pv, &format!("{p}[price]"))?,
            (None, Some(pd)) => price_data(st, pd, &format!("{p}[price_data]"))?,
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
    Ok((lines, currency.unwrap_or_else(|| "usd".into())))
}

/// `line_items[i][price]`: a price of the catalog. Returns (price, name, product, currency).
fn known_price(st: &State, pv: &Value, pp: &str) -> Result<(Value, String, String, String), ApiError> {
    let id = pv.as_str().ok_or_else(|| ApiError::invalid(pp, "Invalid string"))?;
    if id.is_empty() {
        return Err(ApiError::empty(pp));
    }
    let price = st.prices.get(id).cloned().ok_or_else(|| ApiError::no_such(400, pp, "price", id))?;
    let product = price["product"].as_str().unwrap_or_default().to_string();
    if price["active"] != true {
        return Err(ApiError::invalid(pp, "The price specified is inactive. This field only accepts active prices."));
    }
    if price["type"] != "one_time" {
        return Err(ApiError::invalid(
            pp,
            "The price specified is set to `type=recurring` but this field only accepts prices with `type=one_time`.",
        ));
    }
    if st.products.get(&product).is_some_and(|x| x["active"] != true) {
        return Err(ApiError::invalid(pp, "The price specified belongs to a product that is inactive."));
    }
    let name = st.products.get(&product).and_then(|x| x["name"].as_str()).unwrap_or("Item").to_string();
    let cur = price["currency"].as_str().unwrap_or("usd").to_string();
    Ok((price, name, product, cur))
}

/// `line_items[i][price_data]`: an inline price (and, with `product_data`, an inline product).
fn price_data(st: &mut State, pd: &Value, pp: &str) -> Result<(Value, String, String, String), ApiError> {
    let pd_obj = pd.as_object().ok_or_else(|| ApiError::invalid(pp, "Invalid object"))?;
    check_keys(pd_obj, &["currency", "unit_amount", "product_data", "product", "tax_behavior"], pp)?;
    let cp = format!("{pp}[currency]");
    let cur = match str_at(pd, "currency", &cp)? {
        None => return Err(ApiError::missing(&cp)),
        Some("") => return Err(ApiError::empty(&cp)),
        Some(c) => c,
    };
    if cur.len() != 3 || !cur.bytes().all(|b| b.is_ascii_lowercase()) || !CURRENCIES.iter().any(|x| x.0 == cur) {
        let known: Vec<&str> = CURRENCIES.iter().map(|x| x.0).collect();
        return Err(ApiError::invalid(
            &cp,
            format!("Invalid currency: {cur}. The Stripe emulator supports these currencies: {}", known.join(", ")),
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
            return Err(ApiError::exclusive(&format!("{pp}[product]"), "product", "product_data"));
        }
        (None, None) => return Err(ApiError::missing(&format!("{pp}[product_data]"))),
        (None, Some(prod)) => {
            let ppp = format!("{pp}[product]");
            let id = prod.as_str().ok_or_else(|| ApiError::invalid(&ppp, "Invalid string"))?;
            let pr = st.products.get(id).ok_or_else(|| ApiError::no_such(400, &ppp, "product", id))?;
            (pr["name"].as_str().unwrap_or("Item").to_string(), id.to_string())
        }
        (Some(pdata), None) => product_data(st, pdata, &format!("{pp}[product_data]"))?,
    };
    let mut price = price_obj(&rand_id("price_", 24), &product, cur, unit, false);
    if let Some(behavior) = str_at(pd, "tax_behavior", &format!("{pp}[tax_behavior]"))?.filter(|b| !b.is_empty()) {
        price["tax_behavior"] = json!(behavior);
    }
    Ok((price, name, product, cur.to_string()))
}

/// `price_data[product_data]`: creates an inactive product; returns (name, product id).
fn product_data(st: &mut State, pdata: &Value, pdp: &str) -> Result<(String, String), ApiError> {
    let pobj = pdata.as_object().ok_or_else(|| ApiError::invalid(pdp, "Invalid object"))?;
    check_keys(pobj, &["name", "description", "tax_code"], pdp)?;
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
    let product = product_obj(&json!({ "id": pid, "name": name, "description": desc, "active": false }));
    st.products.insert(pid.clone(), product);
    Ok((name, pid))
}

/// Step: `allow_promotion_codes`, `client_reference_id`, `customer_email`, `metadata`.
fn details(params: &Value) -> Result<Details, ApiError> {
    let allow_promo = bool_param(params, "allow_promotion_codes")?;
    let client_reference_id = match str_at(params, "client_reference_id", "client_reference_id")? {
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
    let metadata = metadata_param(params)?;
    Ok(Details { allow_promo, client_reference_id, email, metadata })
}

/// Step: the stored session object, totals included.
fn session_obj(
    id: &str,
    public_url: &str,
    flow: &Flow,
    details: &Details,
    currency: &str,
    lines: &[Line],
    applied: &Applied,
) -> Value {
    let subtotal: i64 = lines.iter().map(|l| l.subtotal).sum();
    let discount: i64 = lines.iter().map(|l| l.discount).sum();
    let created = now();
    let embedded = flow.ui_mode == "embedded_page";
    let url = if embedded { Value::Null } else { json!(format!("{public_url}/c/pay/{id}")) };
    let client_secret = if embedded { json!(rand_id(&format!("{id}_secret_"), 24)) } else { Value::Null };
    let discounts = match (&applied.promo, &applied.coupon) {
        (Some(p), _) => json!([{ "coupon": null, "promotion_code": p }]),
        (None, Some(c)) => json!([{ "coupon": c, "promotion_code": null }]),
        _ => json!([]),
    };
    let mut obj = json!({
        "id": id, "object": "checkout.session",
        "adaptive_pricing": { "enabled": false },
        "after_expiration": null,
        "allow_promotion_codes": details.allow_promo,
        "amount_subtotal": subtotal,
        "amount_total": subtotal - discount,
        "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
        "billing_address_collection": null,
        "cancel_url": flow.cancel_url,
        "client_reference_id": details.client_reference_id,
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
        "customer_email": details.email,
        "discounts": discounts,
        "expires_at": created + MAX_EXPIRY_SECS,
        "integration_identifier": null,
        "invoice": null,
        "invoice_creation": { "enabled": false, "invoice_data": { "account_tax_ids": null, "custom_fields": null, "description": null, "footer": null, "issuer": null, "metadata": {}, "rendering_options": null } },
        "livemode": false, "locale": null,
        "metadata": details.metadata,
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
        "saved_payment_method_options": null,
        "setup_intent": null,
        "shipping_address_collection": null, "shipping_cost": null, "shipping_options": [],
        "status": "open",
        "submit_type": null, "subscription": null,
        "success_url": flow.success_url,
        "total_details": { "amount_discount": discount, "amount_shipping": 0, "amount_tax": 0 },
        "ui_mode": flow.ui_mode,
        "url": url,
        "wallet_options": null
    });
    // Stripe's `return_url` is a string, never null: present only on sessions that have one.
    if let Some(r) = &flow.return_url {
        obj["return_url"] = json!(r);
    }
    obj
}

/// Step: one stored line item (`_product` is kept for expansion, never shown).
fn item_obj(l: Line, currency: &str) -> Value {
    json!({
        "id": rand_id("li_", 24), "object": "item", "adjustable_quantity": null,
        "amount_discount": l.discount, "amount_subtotal": l.subtotal, "amount_tax": 0,
        "amount_total": l.subtotal - l.discount, "currency": currency, "description": l.name,
        "metadata": {}, "price": l.price, "quantity": l.quantity, "_product": l.product
    })
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

/// Session JSON with optional `line_items` and `shipping_cost.shipping_rate` expansion.
pub(crate) fn render(st: &State, id: &str, expand: &[String]) -> Option<Value> {
    let s = st.sessions.get(id)?;
    let mut obj = s.obj.clone();
    if expand.iter().any(|e| e.starts_with("line_items")) {
        let ep = expand.iter().any(|e| e == "line_items.data.price.product");
        obj["line_items"] = list_obj(render_items(st, s, ep), false, &format!("/v1/checkout/sessions/{id}/line_items"));
    }
    if expand.iter().any(|e| e == "shipping_cost.shipping_rate") {
        crate::shipping::expand_rate(st, &mut obj);
    }
    Some(obj)
}

/// `GET /v1/checkout/sessions`: newest first, `status` and `payment_intent` filters.
pub(crate) fn list(st: &State, pairs: &[(String, String)], params: &Value) -> Result<Value, ApiError> {
    only_params(pairs, &["limit", "starting_after", "expand", "status", "payment_intent", "customer"])?;
    let mut items: Vec<Value> =
        st.session_order.iter().rev().filter_map(|id| st.sessions.get(id)).map(|s| s.obj.clone()).collect();
    if let Some(status) = params.get("status").and_then(Value::as_str) {
        items.retain(|x| x["status"] == status);
    }
    if let Some(pi) = params.get("payment_intent").and_then(Value::as_str) {
        items.retain(|x| x["payment_intent"] == pi);
    }
    paginate(items, params, "/v1/checkout/sessions")
}

/// `GET /v1/checkout/sessions/{id}` (`expand[]=line_items[.data.price.product]`).
pub(crate) fn retrieve(st: &State, id: &str, pairs: &[(String, String)], params: &Value) -> Result<Value, ApiError> {
    only_params(pairs, &["expand"])?;
    let ex = expands(params, SESSION_EXPANDS)?;
    render(st, id, &ex).ok_or_else(|| ApiError::no_such(404, "id", "checkout.session", id))
}

/// `GET /v1/checkout/sessions/{id}/line_items` (`expand[]=data.price.product`, cursors).
pub(crate) fn line_items(st: &State, id: &str, pairs: &[(String, String)], params: &Value) -> Result<Value, ApiError> {
    only_params(pairs, &["expand", "limit", "starting_after", "ending_before"])?;
    let ex = expands(params, &["data.price.product"])?;
    let s = st.sessions.get(id).ok_or_else(|| ApiError::no_such(404, "id", "checkout.session", id))?;
    paginate(render_items(st, s, !ex.is_empty()), params, &format!("/v1/checkout/sessions/{id}/line_items"))
}
