//! Fuzzes `POST /api/webhook` end to end in-process: `routes::dispatch`
//! (or `webhook::receive`) with a real `App` (SQLite store, a Stripe API base
//! on a closed local port so every Stripe call fails at once).
//!
//! Input: byte 0 = flags, byte 1 = time offset, then `header \n body`.
//! - flags & 0x03: method (0, 1 → POST; 2 → GET; 3 → PUT);
//! - flags & 0x04: sign the body validly (`t` = now + offset, under the
//!   configured secret), spliced into the header text at the first `|`;
//! - flags & 0x08: no `Stripe-Signature` header at all;
//! - flags & 0x10: send a `Content-Length` (correct, or the header text when 0x20);
//! - flags & 0x40: call `webhook::receive` instead of `routes::dispatch`.
//!
//! Invariants: nothing panics or hangs; the status is one of 200/400/405/413/
//! 500/502; 200 only for a POST whose signature we made and that `verify`
//! accepts; a wrong method is 405.
#![no_main]

use bytes::Bytes;
use checkout::config::WebhookSecret;
use checkout::signature::{self, TOLERANCE_SECS};
use checkout::{App, Config, Route};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const WEBHOOK_SECRET: &str = "whsec_fuzz";
const DB_PATH: &str = "/tmp/fuzz-webhook.sqlite3";

struct Ctx {
    rt: tokio::runtime::Runtime,
    app: App,
    secrets: Vec<WebhookSecret>,
}

fn ctx() -> &'static Ctx {
    static CTX: OnceLock<Ctx> = OnceLock::new();
    CTX.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let env = |k: &str| {
            Some(match k {
                "STRIPE_SECRET_KEY" => "sk_test_fuzz".to_string(),
                "STRIPE_WEBHOOK_SECRET" => WEBHOOK_SECRET.to_string(),
                // A closed port: any Stripe call is refused at once (no retry).
                "STRIPE_API_BASE" => "http://127.0.0.1:9".to_string(),
                "STRIPE_MAX_RETRIES" => "0".to_string(),
                "DATABASE_URL" => format!("sqlite://{DB_PATH}"),
                _ => return None,
            })
        };
        let config = Config::from_lookup(env).expect("fuzz config is valid");
        let app = {
            let _guard = rt.enter();
            App::new(config).expect("store opens")
        };
        Ctx { rt, app, secrets: vec![WebhookSecret::parse(WEBHOOK_SECRET).unwrap()] }
    })
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fuzz_target!(|data: &[u8]| {
    let ctx = ctx();
    let [flags, off, rest @ ..] = data else { return };
    let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let (head, body) = (&rest[..split], rest.get(split + 1..).unwrap_or(&[]));

    let method = match flags & 0x03 {
        0 | 1 => http::Method::POST,
        2 => http::Method::GET,
        _ => http::Method::PUT,
    };
    let signed = flags & 0x04 != 0;
    let t0 = now();
    let header: Option<Vec<u8>> = if flags & 0x08 != 0 {
        None
    } else if signed {
        // Offsets -512..=508 s: both sides of the tolerance.
        let t = t0 + (i64::from(*off as i8) * 4);
        let valid = signature::sign(WEBHOOK_SECRET.as_bytes(), t, body);
        let at = head.iter().position(|&b| b == b'|');
        let (a, b) = match at {
            Some(i) => (&head[..i], &head[i + 1..]),
            None => (head, &[][..]),
        };
        Some([a, valid.as_bytes(), b].concat())
    } else {
        Some(head.to_vec())
    };

    let mut req = http::Request::builder().method(method.clone()).uri("/api/webhook");
    if let Some(h) = &header {
        match http::HeaderValue::from_bytes(h) {
            Ok(v) => req = req.header("stripe-signature", v),
            Err(_) => return, // not representable in HTTP: a server would never hand it to us
        }
    }
    if flags & 0x10 != 0 {
        let len = if flags & 0x20 != 0 {
            match http::HeaderValue::from_bytes(head) {
                Ok(v) => v,
                Err(_) => return,
            }
        } else {
            http::HeaderValue::from(body.len())
        };
        req = req.header(http::header::CONTENT_LENGTH, len);
    }
    req = req.header(http::header::CONTENT_TYPE, "application/json");
    let req = req.body(Full::new(Bytes::copy_from_slice(body))).expect("request builds");

    let status = ctx.rt.block_on(async {
        if flags & 0x40 != 0 {
            match checkout::routes::webhook::handle(&ctx.app, req).await {
                Ok(resp) => resp.status(),
                Err(e) => e.into_response().status(),
            }
        } else {
            checkout::routes::dispatch(Route::Webhook, &ctx.app, req).await.status()
        }
    });
    let t1 = now();

    let code = status.as_u16();
    assert!(matches!(code, 200 | 400 | 405 | 413 | 500 | 502), "unexpected status {code}");
    if method != http::Method::POST {
        assert_eq!(code, 405, "{method} answered {code}");
    }
    if code == 200 {
        assert!(signed, "200 for a signature we did not make");
        let h = header.as_deref().map(|h| std::str::from_utf8(h).expect("accepted non-UTF-8 header"));
        let ok = [t0, t1].iter().any(|&now| signature::verify(body, h, &ctx.secrets, now).is_ok());
        assert!(ok, "200 although verify refuses it");
        let parsed = signature::parse_header(h.unwrap()).unwrap();
        assert!((t0 - parsed.timestamp).abs() <= TOLERANCE_SECS + (t1 - t0), "200 outside the tolerance");
    }
});
