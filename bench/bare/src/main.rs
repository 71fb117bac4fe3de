//! The floor `bench/run.sh` compares the webhook with: the smallest `vercel_runtime` function
//! that still verifies a Stripe webhook properly (HMAC-SHA256 over `"{t}.{body}"`, every `v1`
//! compared in constant time, 300 s tolerance) and answers `200 {"received":true}`. No JSON
//! parsing, no state, no logging, no security headers: what is left is the runtime, hyper and
//! the MAC. Built from `bench/` only; no function links it.

use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use vercel_runtime::{Error, Request, Response, ResponseBody, run, service_fn};

/// Whether `header` carries a `v1` of `body` under `secret`, signed within 300 s of now.
fn verify(secret: &[u8], header: &str, body: &[u8], now: i64) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for item in header.split(',') {
        match item.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => {
                let mut sig = [0u8; 32];
                if hex::decode_to_slice(v, &mut sig).is_ok() {
                    sigs.push(sig);
                }
            }
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now - t).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    sigs.iter().fold(0u8, |ok, sig| ok | sig.ct_eq(&expected).unwrap_u8()) == 1
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let secret: &'static [u8] = std::env::var("STRIPE_WEBHOOK_SECRET")?.leak().as_bytes();
    run(service_fn(move |req: Request| async move {
        let header = req.headers().get("stripe-signature").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body = req.into_body().collect().await?.to_bytes();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
        let (status, text) = if verify(secret, &header, &body, now) {
            (200, r#"{"received":true}"#)
        } else {
            (400, r#"{"error":"invalid"}"#)
        };
        Ok::<_, Error>(
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(ResponseBody::from(text))?,
        )
    }))
    .await
}
