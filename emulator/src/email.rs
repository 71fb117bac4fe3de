//! A stand-in for a transactional-email provider, in Resend's API shape, so a shop can send
//! its own mail offline: `POST /emails` (bearer key, JSON `from`, `to`, `subject`, `html`,
//! `text`, `reply_to`, `cc`, `bcc`; optional `Idempotency-Key` header) answers `200 {"id":
//! "<uuid>"}` and keeps the message in the outbox instead of delivering it. The outbox is
//! shown at `GET /_emulator/outbox` (each message as the shopper would see it, its HTML in a
//! sandboxed `<iframe srcdoc>`) and listed at `GET /_emulator/outbox.json`.
//!
//! Errors have Resend's shape, `{"statusCode", "name", "message"}`: 401 `missing_api_key`
//! (no bearer key), 403 `invalid_api_key` (a key the emulator does not take, see
//! [`crate::Options::email_api_key`]), 400 `invalid_idempotency_key` (not 1–256 characters),
//! 409 `invalid_idempotent_request` (the key was used with another payload in the last 24 hours),
//! 422 `missing_required_field` (`from`, `to`, `subject`, or neither `html` nor `text`), 422
//! `validation_error` (a field of the wrong type, an address not `a@b.c` or `Name <a@b.c>`,
//! more than 50 recipients, a field the emulator does not take), 400 `validation_error` (a body
//! that is not a JSON object).

use crate::page::esc;
use crate::state::{EmailIdem, Inner, now_ms};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// How long an idempotency key is kept (Resend: 24 hours).
const IDEMPOTENCY_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

/// Fields of `POST /emails` the emulator takes; `headers` and `tags` are kept as sent.
const FIELDS: &[&str] = &["from", "to", "subject", "html", "text", "reply_to", "cc", "bcc", "headers", "tags"];

/// A Resend error: `{"statusCode", "name", "message"}` with that status.
struct EmailError {
    status: u16,
    name: &'static str,
    message: String,
}

impl EmailError {
    fn response(&self) -> Response {
        let code = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (code, Json(json!({"statusCode": self.status, "name": self.name, "message": self.message}))).into_response()
    }
}

fn resend_error(status: u16, name: &'static str, message: impl Into<String>) -> EmailError {
    EmailError { status, name, message: message.into() }
}

/// Whether the emulator takes this bearer key: the configured one, or any `re_...` key.
fn key_accepted(inner: &Inner, key: &str) -> bool {
    match &inner.opts.email_api_key {
        Some(k) => key == k,
        None => {
            key.strip_prefix("re_").is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_graphic()))
        }
    }
}

/// An address as Resend takes it: `a@b.c` or `Name <a@b.c>`.
fn valid_address(s: &str) -> bool {
    let s = s.trim();
    let addr = match s.strip_suffix('>').and_then(|x| x.rsplit_once('<')) {
        Some((_name, inner)) => inner,
        None => s,
    };
    addr.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !addr.contains(char::is_whitespace)
            && !addr.contains(['<', '>'])
            && domain.matches('@').count() == 0
    })
}

/// A field that is a string or an array of strings, as a list of addresses (`None` when
/// absent or null).
fn addresses(body: &Map<String, Value>, field: &str) -> Result<Option<Vec<String>>, EmailError> {
    let list = match body.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => {
            let mut out = Vec::with_capacity(a.len());
            for x in a {
                match x.as_str() {
                    Some(s) => out.push(s.to_string()),
                    None => {
                        return Err(resend_error(
                            422,
                            "validation_error",
                            format!("The `{field}` field must be a `string` or an array of strings."),
                        ));
                    }
                }
            }
            out
        }
        Some(_) => {
            return Err(resend_error(
                422,
                "validation_error",
                format!("The `{field}` field must be a `string` or an array of strings."),
            ));
        }
    };
    if list.len() > 50 {
        return Err(resend_error(
            422,
            "validation_error",
            format!("The `{field}` field can have at most 50 addresses."),
        ));
    }
    if let Some(bad) = list.iter().find(|a| !valid_address(a)) {
        return Err(resend_error(
            422,
            "validation_error",
            format!(
                "Invalid `{field}` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format. (Got {bad:?}.)"
            ),
        ));
    }
    Ok(Some(list))
}

/// An optional string field.
fn string_field(body: &Map<String, Value>, field: &str) -> Result<Option<String>, EmailError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(resend_error(422, "validation_error", format!("The `{field}` field must be a `string`."))),
    }
}

/// Reads and checks a send request; the message to keep (without id, time or key).
fn message(body: &Value) -> Result<Map<String, Value>, EmailError> {
    let Some(body) = body.as_object() else {
        return Err(resend_error(400, "validation_error", "The request body must be a JSON object."));
    };
    if let Some(k) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(resend_error(
            422,
            "validation_error",
            format!("The `{k}` field is not supported by the emulator (it takes {}).", FIELDS.join(", ")),
        ));
    }
    let missing = |f: &str| resend_error(422, "missing_required_field", format!("Missing `{f}` field."));
    let from = string_field(body, "from")?.filter(|s| !s.trim().is_empty()).ok_or_else(|| missing("from"))?;
    if !valid_address(&from) {
        return Err(resend_error(
            422,
            "validation_error",
            "Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.",
        ));
    }
    let to = addresses(body, "to")?.filter(|t| !t.is_empty()).ok_or_else(|| missing("to"))?;
    let subject = string_field(body, "subject")?.ok_or_else(|| missing("subject"))?;
    let html = string_field(body, "html")?;
    let text = string_field(body, "text")?;
    if html.is_none() && text.is_none() {
        return Err(missing("html` or `text"));
    }
    let mut m = Map::new();
    m.insert("from".into(), json!(from));
    m.insert("to".into(), json!(to));
    m.insert("cc".into(), json!(addresses(body, "cc")?));
    m.insert("bcc".into(), json!(addresses(body, "bcc")?));
    m.insert("reply_to".into(), json!(addresses(body, "reply_to")?));
    m.insert("subject".into(), json!(subject));
    m.insert("html".into(), json!(html));
    m.insert("text".into(), json!(text));
    m.insert("headers".into(), body.get("headers").cloned().unwrap_or(Value::Null));
    m.insert("tags".into(), body.get("tags").cloned().unwrap_or(Value::Null));
    Ok(m)
}

/// `POST /emails`: Resend's send-email call. See the module documentation.
pub(crate) async fn send(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let key = match auth.split_once(' ') {
        Some((scheme, k)) if scheme.eq_ignore_ascii_case("bearer") && !k.trim().is_empty() => k.trim(),
        _ => return resend_error(401, "missing_api_key", "Missing API key in the authorization header.").response(),
    };
    if !key_accepted(&inner, key) {
        return resend_error(403, "invalid_api_key", "API key is invalid.").response();
    }
    let idem_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if (1..=256).contains(&k.chars().count()) => Some(k.to_string()),
            _ => {
                return resend_error(400, "invalid_idempotency_key", "The key must be between 1-256 chars.").response();
            }
        },
    };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return resend_error(400, "validation_error", format!("The request body is not valid JSON: {e}"))
                .response();
        }
    };
    let mut msg = match message(&request) {
        Ok(m) => m,
        Err(e) => return e.response(),
    };
    let at_ms = now_ms();
    let mut st = inner.st.lock().unwrap();
    let scope = idem_key.as_ref().map(|k| (key.to_string(), k.clone()));
    let seen = scope
        .as_ref()
        .and_then(|sc| st.email_idem.get(sc))
        .filter(|seen| at_ms.saturating_sub(seen.at_ms) < IDEMPOTENCY_WINDOW_MS);
    if let Some(seen) = seen {
        if seen.request == request {
            return Json(json!({"id": seen.id})).into_response();
        }
        return resend_error(
            409,
            "invalid_idempotent_request",
            "Same idempotency key used with a different request payload.",
        )
        .response();
    }
    let id = uuid_v4();
    msg.insert("id".into(), json!(id));
    msg.insert("object".into(), json!("email"));
    msg.insert("created_at".into(), json!(iso8601(at_ms)));
    msg.insert("at_ms".into(), json!(at_ms));
    msg.insert("idempotency_key".into(), json!(idem_key));
    st.outbox.push(Value::Object(msg));
    if let Some(scope) = scope {
        st.email_idem.insert(scope, EmailIdem { request, id: id.clone(), at_ms });
    }
    Json(json!({"id": id})).into_response()
}

/// A random version-4 UUID, as Resend's email ids are.
fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("getrandom");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn iso8601(ms: u64) -> String {
    let (secs, milli) = (ms / 1000, ms % 1000);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

impl Inner {
    /// Every accepted message, oldest first.
    pub(crate) fn outbox(&self) -> Vec<Value> {
        self.st.lock().unwrap().outbox.clone()
    }
}

/// `GET /_emulator/outbox.json`: the accepted messages, oldest first.
pub(crate) async fn outbox_json(State(inner): State<Arc<Inner>>) -> Json<Value> {
    Json(Value::Array(inner.outbox()))
}

fn list(v: &Value) -> String {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()
}

/// `GET /_emulator/outbox`: the messages newest first, each as the shopper would see it. Every
/// value is HTML-escaped; the HTML body is escaped into the `srcdoc` attribute of an iframe
/// sandboxed without scripts, and the page's CSP forbids scripts too.
pub(crate) async fn outbox_page(State(inner): State<Arc<Inner>>) -> Response {
    let messages = inner.outbox();
    let mut body = String::new();
    if messages.is_empty() {
        body.push_str("<p class=\"empty\">No emails yet. The shop's <code>POST /emails</code> calls land here.</p>");
    }
    for m in messages.iter().rev() {
        let s = |k: &str| m[k].as_str().unwrap_or("");
        let mut head = format!("<dt>From</dt><dd>{}</dd><dt>To</dt><dd>{}</dd>", esc(s("from")), esc(&list(&m["to"])));
        for (label, k) in [("Cc", "cc"), ("Bcc", "bcc"), ("Reply-To", "reply_to")] {
            if m[k].is_array() {
                head.push_str(&format!("<dt>{label}</dt><dd>{}</dd>", esc(&list(&m[k]))));
            }
        }
        head.push_str(&format!("<dt>Sent</dt><dd>{} · <code>{}</code>", esc(s("created_at")), esc(s("id"))));
        if let Some(k) = m["idempotency_key"].as_str() {
            head.push_str(&format!(" · Idempotency-Key <code>{}</code>", esc(k)));
        }
        head.push_str("</dd>");
        let html = match m["html"].as_str() {
            Some(h) => format!(
                "<iframe sandbox=\"\" referrerpolicy=\"no-referrer\" title=\"HTML version\" srcdoc=\"{}\"></iframe>",
                esc(h)
            ),
            None => "<p class=\"none\">(no HTML version)</p>".into(),
        };
        let text = match m["text"].as_str() {
            Some(t) => format!("<pre>{}</pre>", esc(t)),
            None => "<p class=\"none\">(no text version: Resend would derive one from the HTML)</p>".into(),
        };
        body.push_str(&format!(
            "<article><h2>{}</h2><dl>{head}</dl>{html}<details open><summary>Text version</summary>{text}</details></article>",
            esc(s("subject"))
        ));
    }
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Outbox — Stripe emulator</title>\
<style>body{{font:15px system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}}\
article{{border:1px solid #ccc;border-radius:8px;padding:1rem;margin:1rem 0}}h2{{margin:0 0 .5rem}}\
dl{{display:grid;grid-template-columns:6rem 1fr;gap:.2rem .5rem;margin:0 0 1rem}}dt{{color:#666}}dd{{margin:0}}\
iframe{{width:100%;height:24rem;border:1px solid #ddd;background:#fff}}pre{{white-space:pre-wrap;background:#f6f6f6;padding:.5rem}}\
.none,.empty{{color:#666}}</style></head><body><h1>Outbox</h1>\
<p>Emails the shop sent through the emulator's <code>POST /emails</code> (Resend's API shape), newest first. \
Nothing is delivered. As JSON: <a href=\"/_emulator/outbox.json\">/_emulator/outbox.json</a>.</p>{body}</body></html>"
    );
    let mut resp = Html(page).into_response();
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_dates_and_ids() {
        for a in ["a@b.co", "Shop <orders@shop.test>", " x.y+z@sub.example.org "] {
            assert!(valid_address(a), "{a}");
        }
        for a in ["", "a", "a@b", "@b.co", "a@.co", "a@b.", "a b@c.de", "Shop <a@b>", "a@b@c.de"] {
            assert!(!valid_address(a), "{a}");
        }
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(1_767_225_599_999), "2025-12-31T23:59:59.999Z");
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
