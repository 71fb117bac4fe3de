//! The hosted checkout page at `/c/pay/{session_id}`: what the shopper sees and the buttons
//! `#pay`, `#pay-delayed-success`, `#pay-delayed-failure` and `#cancel`.

use crate::form::parse_pairs;
use crate::lifecycle::cancel_target;
use crate::money::fmt_money;
use crate::state::Inner;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use std::sync::Arc;

type S = State<Arc<Inner>>;

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

fn redirect(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "bad redirect URL").into_response(),
    }
}

/// `POST /c/pay/{id}` (`action=pay|delayed_success|delayed_failure|cancel`): completes the
/// session and redirects like Stripe (success_url / return_url, or cancel_url).
pub(crate) async fn page_action(s: S, Path(id): Path<String>, body: Bytes) -> Response {
    let action = parse_pairs(&body).into_iter().find(|(k, _)| k == "action").map(|(_, v)| v).unwrap_or_default();
    if !s.0.st.lock().unwrap().sessions.contains_key(&id) {
        return (StatusCode::NOT_FOUND, Html(page_shell("Not found", "<h1>Checkout session not found</h1>")))
            .into_response();
    }
    if action == "cancel" {
        return redirect(&cancel_target(&s.0, &id));
    }
    match crate::lifecycle::complete(&s.0, &id, &action) {
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
