//! The hosted checkout page at `/c/pay/{session_id}`: what the shopper sees, the email (and,
//! when the session ships, the shipping rate, name and address) it asks for, and the buttons
//! `#pay`, `#pay-delayed-success`, `#pay-delayed-failure` and `#cancel`.
//!
//! For an `embedded_page` session the same page is what embedded Checkout's frame shows (the
//! Stripe.js stand-in, `GET /_emulator/stripe.js`, mounts it): no `#cancel` (the shop's own
//! page is the way back), and once paid it does not redirect itself but tells the page that
//! embeds it to go to the session's `return_url`, as Stripe's frame tells Stripe.js.

use crate::checkout::CheckoutInput;
use crate::form::parse_pairs;
use crate::lifecycle::cancel_target;
use crate::money::fmt_money;
use crate::shipping::{TAX_RATE_PERCENT, default_address, default_country};
use crate::state::{Inner, State as St};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;

type S = State<Arc<Inner>>;

/// HTML-escapes text.
pub(crate) fn esc(s: &str) -> String {
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

/// `GET /c/pay/{id}`: the session's lines and totals, and the four buttons.
pub(crate) async fn page(s: S, Path(id): Path<String>) -> Response {
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
    let (extra_rows, fields) = shipping_parts(&st, o);
    let cancel = if o["ui_mode"] == "embedded_page" {
        ""
    } else {
        "<button id=\"cancel\" type=\"submit\" name=\"action\" value=\"cancel\">Cancel</button>"
    };
    let body = format!(
        "<h1>Checkout</h1><table><thead><tr><th>Item</th><th class=\"n\">Qty</th><th class=\"n\">Amount</th></tr></thead><tbody>{rows}\
<tr class=\"sep\"><td>Subtotal</td><td></td><td class=\"n\" id=\"subtotal\">{}</td></tr>{disc_row}{extra_rows}\
<tr class=\"total\"><td>Total</td><td></td><td class=\"n\" id=\"total\">{}</td></tr></tbody></table>\
<form method=\"post\" action=\"/c/pay/{}\">{fields}\
<button id=\"pay\" type=\"submit\" name=\"action\" value=\"pay\">Pay {}</button>\
<button id=\"pay-delayed-success\" type=\"submit\" name=\"action\" value=\"delayed_success\">Pay with delayed method — succeeds</button>\
<button id=\"pay-delayed-failure\" type=\"submit\" name=\"action\" value=\"delayed_failure\">Pay with delayed method — fails</button>\
{cancel}</form>\
<p class=\"muted\">Session {}</p>",
        esc(&fmt_money(o["amount_subtotal"].as_i64().unwrap_or(0), cur)),
        esc(&fmt_money(o["amount_total"].as_i64().unwrap_or(0), cur)),
        esc(&id),
        esc(&fmt_money(o["amount_total"].as_i64().unwrap_or(0), cur)),
        esc(&id),
    );
    Html(page_shell("Checkout — Stripe emulator", &body)).into_response()
}

/// The hosted page's shipping and tax rows (before the total) and its form fields: the email
/// always; when the session ships, the rates (the preselected one checked), name and address.
fn shipping_parts(st: &St, o: &Value) -> (String, String) {
    let cur = o["currency"].as_str().unwrap_or("usd");
    let mut rows = String::new();
    let email = o["customer_email"].as_str().unwrap_or("jenny.rosen@example.com");
    let mut fields =
        format!("<label>Email <input id=\"email\" name=\"email\" type=\"email\" value=\"{}\"></label>", esc(email));
    if let Some(cost) = o["shipping_cost"].as_object() {
        let chosen = cost.get("shipping_rate").and_then(Value::as_str).unwrap_or_default();
        let name = st.shipping_rates.get(chosen).and_then(|r| r["display_name"].as_str()).unwrap_or("Shipping");
        rows.push_str(&format!(
            "<tr><td>{}</td><td></td><td class=\"n\" id=\"shipping\">{}</td></tr>",
            esc(name),
            esc(&fmt_money(cost.get("amount_total").and_then(Value::as_i64).unwrap_or(0), cur))
        ));
        fields.push_str("<fieldset id=\"shipping-options\"><legend>Shipping</legend>");
        for option in o["shipping_options"].as_array().into_iter().flatten() {
            let id = option["shipping_rate"].as_str().unwrap_or_default();
            let label = st.shipping_rates.get(id).and_then(|r| r["display_name"].as_str()).unwrap_or(id);
            fields.push_str(&format!(
                "<label><input type=\"radio\" name=\"shipping_rate\" value=\"{}\"{}> {} — {}</label>",
                esc(id),
                if id == chosen { " checked" } else { "" },
                esc(label),
                esc(&fmt_money(option["shipping_amount"].as_i64().unwrap_or(0), cur))
            ));
        }
        fields.push_str("</fieldset>");
    }
    if o["shipping_address_collection"].is_object() {
        let country = default_country(o);
        let a = default_address(&country);
        let input = |id: &str, label: &str, value: &str| {
            format!("<label>{label} <input id=\"{id}\" name=\"{id}\" value=\"{}\"></label>", esc(value))
        };
        fields.push_str("<fieldset id=\"shipping-address\"><legend>Shipping address</legend>");
        fields.push_str(&input("name", "Name", "Jenny Rosen"));
        for (id, label) in [("line1", "Address"), ("city", "City"), ("postal_code", "Postal code"), ("state", "State")]
        {
            fields.push_str(&input(id, label, a[id].as_str().unwrap_or_default()));
        }
        fields.push_str("<label>Country <select id=\"country\" name=\"country\">");
        for c in o["shipping_address_collection"]["allowed_countries"].as_array().into_iter().flatten() {
            let c = c.as_str().unwrap_or_default();
            let selected = if c == country { " selected" } else { "" };
            fields.push_str(&format!("<option value=\"{}\"{selected}>{}</option>", esc(c), esc(c)));
        }
        fields.push_str("</select></label></fieldset>");
    }
    if o["automatic_tax"]["enabled"] == true {
        rows.push_str(&format!(
            "<tr><td>Tax</td><td></td><td class=\"n\" id=\"tax\">{TAX_RATE_PERCENT} %, added when you pay</td></tr>"
        ));
    }
    (rows, fields)
}

/// The embedded frame's answer to a completed payment: it posts
/// `{type: "stripe-emulator:checkout-complete", return_url}` to the page that embeds it (only to
/// `return_url`'s origin), whose Stripe.js stand-in then goes there; opened on its own, it goes
/// there itself. The link is for a browser without JavaScript.
fn embedded_complete(return_url: &str) -> String {
    // A JSON string is a JavaScript string; `<` escaped so it cannot close the script.
    let url_js = serde_json::to_string(return_url).unwrap_or_else(|_| "\"\"".into()).replace('<', "\\u003c");
    format!(
        "<h1 id=\"complete\">Payment complete</h1><p class=\"muted\">Returning to the shop…</p>\
<p><a id=\"return\" href=\"{}\" target=\"_top\">Return to the shop</a></p>\
<script>(function () {{ var url = {url_js};\
 if (window.parent !== window) {{ window.parent.postMessage({{ type: 'stripe-emulator:checkout-complete', return_url: url }}, new URL(url).origin); }}\
 else {{ window.location.replace(url); }} }})();</script>",
        esc(return_url)
    )
}

fn redirect(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "bad redirect URL").into_response(),
    }
}

/// `POST /c/pay/{id}` (`action=pay|delayed_success|delayed_failure|cancel`, and what the
/// shopper entered: `email`, `shipping_rate`, `name`, `line1`, `city`, `postal_code`, `state`,
/// `country`): completes the session and redirects like Stripe (success_url / return_url, or
/// cancel_url).
pub(crate) async fn page_action(s: S, Path(id): Path<String>, body: Bytes) -> Response {
    let pairs = parse_pairs(&body);
    let action = pairs.iter().find(|(k, _)| k == "action").map(|(_, v)| v.clone()).unwrap_or_default();
    let embedded = match s.0.st.lock().unwrap().sessions.get(&id) {
        Some(sess) => sess.obj["ui_mode"] == "embedded_page",
        None => {
            return (StatusCode::NOT_FOUND, Html(page_shell("Not found", "<h1>Checkout session not found</h1>")))
                .into_response();
        }
    };
    if action == "cancel" {
        return redirect(&cancel_target(&s.0, &id));
    }
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_string());
    let address = field("country").filter(|c| !c.is_empty()).map(|country| {
        let part = |name: &str| field(name).filter(|v| !v.is_empty());
        serde_json::json!({ "city": part("city"), "country": country, "line1": part("line1"), "line2": null,
            "postal_code": part("postal_code"), "state": part("state") })
    });
    let input = CheckoutInput {
        email: field("email").filter(|e| !e.is_empty()),
        shipping_rate: field("shipping_rate").filter(|r| !r.is_empty()),
        name: field("name"),
        address,
    };
    match crate::lifecycle::complete(&s.0, &id, &action, &input) {
        Ok(url) if embedded => Html(page_shell("Checkout complete", &embedded_complete(&url))).into_response(),
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
