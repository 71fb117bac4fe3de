//! Webhook signing and delivery (retries, duplicate and reorder faults): to the configured URL
//! with the emulator's secret, and to each endpoint created through the API (on this machine)
//! with its own secret, for the event types it enabled.

use crate::Delivery;
use crate::state::{Inner, now, now_ms};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Lowercase hex HMAC-SHA256 of `"{t}.{body}"`, keyed with the whole `whsec_...` string's
/// bytes — Stripe's `v1` signature scheme.
pub fn signature_v1(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The `Stripe-Signature` header value `t={t},v1={hex}` for `body`.
pub fn sign_header(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", signature_v1(secret, t, body))
}

/// Delivers freshly created events (or queues them under the `reorder` fault). Never blocks.
pub(crate) fn dispatch(inner: &Arc<Inner>, ids: Vec<String>) {
    if ids.is_empty() {
        return;
    }
    let (dup, reorder, generation) = {
        let mut st = inner.st.lock().unwrap();
        let w = st.faults.webhooks.clone();
        if w.reorder {
            st.reorder_queue.extend(ids.iter().cloned());
            st.reorder_gen += 1;
        }
        (w.duplicate, w.reorder, st.reorder_gen)
    };
    if reorder {
        let inner = inner.clone();
        tokio::spawn(async move {
            tokio::time::sleep(inner.opts.reorder_quiet).await;
            let quiet = inner.st.lock().unwrap().reorder_gen == generation;
            if quiet {
                flush(&inner);
            }
        });
        return;
    }
    for id in ids {
        for copy in 0..if dup { 2 } else { 1 } {
            let inner = inner.clone();
            let id = id.clone();
            tokio::spawn(async move { deliver(&inner, &id, copy).await });
        }
    }
}

/// Flushes the reorder queue: newest first, sequentially.
pub(crate) fn flush(inner: &Arc<Inner>) {
    let (mut q, dup) = {
        let mut st = inner.st.lock().unwrap();
        st.reorder_gen += 1;
        (std::mem::take(&mut st.reorder_queue), st.faults.webhooks.duplicate)
    };
    if q.is_empty() {
        return;
    }
    q.reverse();
    let inner = inner.clone();
    tokio::spawn(async move {
        for id in q {
            for copy in 0..if dup { 2 } else { 1 } {
                deliver(&inner, &id, copy).await;
            }
        }
    });
}

/// Redelivers one event as a new copy; false if unknown.
pub(crate) fn resend(inner: &Arc<Inner>, id: &str) -> bool {
    let copy = {
        let mut st = inner.st.lock().unwrap();
        if !st.events.iter().any(|e| e["id"] == id) {
            return false;
        }
        let dup = st.faults.webhooks.duplicate as u32;
        let c = st.resend_copies.entry(id.to_string()).or_insert(dup);
        *c += 1;
        *c
    };
    let inner = inner.clone();
    let id = id.to_string();
    tokio::spawn(async move { deliver(&inner, &id, copy).await });
    true
}

/// Where one delivery goes.
enum Target {
    /// The configured URL (`Options::webhook_url`, `set_webhook_url`), read at each attempt,
    /// signed with `Options::webhook_secret`; every event.
    Configured,
    /// An endpoint created with `POST /v1/webhook_endpoints` (its id): its URL and own secret,
    /// read at each attempt; it stops when the endpoint is disabled or leaves this machine.
    Endpoint(String),
}

/// One copy of one event to every target: the configured URL, and each endpoint created through
/// the API that enabled the event's type. Returns when every target's attempts are over.
async fn deliver(inner: &Arc<Inner>, id: &str, copy: u32) {
    let Some((typ, body, endpoints)) = ({
        let st = inner.st.lock().unwrap();
        st.events.iter().find(|e| e["id"] == id).map(|e| {
            let typ = e["type"].as_str().unwrap_or("").to_string();
            let endpoints = crate::endpoints::targets(&st, &typ);
            (typ, serde_json::to_vec_pretty(e).unwrap_or_default(), endpoints)
        })
    }) else {
        return;
    };
    let body = Arc::new(body);
    let mut others = Vec::with_capacity(endpoints.len());
    for ep in endpoints {
        let (inner, id, typ, body) = (inner.clone(), id.to_string(), typ.clone(), body.clone());
        others.push(tokio::spawn(async move { attempts(&inner, &id, &typ, &body, copy, Target::Endpoint(ep)).await }));
    }
    attempts(inner, id, &typ, &body, copy, Target::Configured).await;
    for task in others {
        let _ = task.await;
    }
}

/// All attempts for one copy of one event to one target.
async fn attempts(inner: &Arc<Inner>, id: &str, typ: &str, body: &[u8], copy: u32, target: Target) {
    for attempt in 1..=inner.opts.max_attempts.max(1) {
        if inner.closed.load(Ordering::SeqCst) {
            return;
        }
        let found = match &target {
            Target::Configured => {
                inner.webhook_url.lock().unwrap().clone().map(|url| (url, inner.opts.webhook_secret.clone()))
            }
            Target::Endpoint(ep) => {
                let st = inner.st.lock().unwrap();
                st.webhook_endpoints
                    .iter()
                    .find(|e| e.obj["id"] == ep.as_str() && e.receives(typ))
                    .and_then(|e| e.obj["url"].as_str().map(|u| (u.to_string(), e.secret.clone())))
            }
        };
        let Some((url, secret)) = found else {
            return;
        };
        if inner.st.lock().unwrap().faults.webhooks.drop {
            return; // the `drop` fault: as if the endpoint never heard of it
        }
        let t = now();
        let sig = sign_header(&secret, t, body);
        let at_ms = now_ms();
        let started = Instant::now();
        let res = inner
            .client
            .post(&url)
            .timeout(inner.opts.webhook_timeout)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("Stripe-Signature", &sig)
            .header("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
            .header("Accept", "*/*; q=0.5, application/xml")
            .header("Cache-Control", "no-cache")
            .body(body.to_vec())
            .send()
            .await;
        let (status, error, resp_body) = match res {
            Ok(r) => {
                let s = r.status().as_u16();
                let text = match tokio::time::timeout(inner.opts.webhook_timeout, r.bytes()).await {
                    Ok(Ok(b)) => String::from_utf8_lossy(&b[..b.len().min(1024)]).into_owned(),
                    _ => String::new(),
                };
                (Some(s), None, text)
            }
            Err(e) => (None, Some(if e.is_timeout() { "timeout" } else { "connection" }.to_string()), String::new()),
        };
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        inner.st.lock().unwrap().deliveries.push(Delivery {
            event_id: id.to_string(),
            event_type: typ.to_string(),
            attempt,
            copy,
            url,
            status,
            error,
            response_body: resp_body,
            signature: sig,
            at_ms,
            duration_ms: started.elapsed().as_millis() as u64,
        });
        if ok {
            return;
        }
        if attempt < inner.opts.max_attempts {
            let wait = inner.opts.retry_base.saturating_mul(1u32 << (attempt - 1).min(20));
            tokio::time::sleep(wait.min(Duration::from_secs(3600))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_vector() {
        assert_eq!(
            signature_v1("whsec_test_secret", 1492774577, br#"{"id":"evt_test_webhook","object":"event"}"#),
            "88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a"
        );
        assert_eq!(
            sign_header("whsec_test_secret", 1492774577, br#"{"id":"evt_test_webhook","object":"event"}"#),
            "t=1492774577,v1=88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a"
        );
    }
}
