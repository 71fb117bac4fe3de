//! Shared helpers of the emulator integration tests.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stripe_emulator::{Emulator, Options};

pub const KEY: &str = "sk_test_emulator1234";

/// Options with fast timings for tests.
pub fn fast_opts() -> Options {
    Options {
        port: 0,
        retry_base: Duration::from_millis(50),
        async_delay: Duration::from_millis(100),
        reorder_quiet: Duration::from_millis(200),
        webhook_timeout: Duration::from_millis(500),
        ..Default::default()
    }
}

pub async fn emu() -> Emulator {
    Emulator::start(fast_opts()).await.unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub fn encode(pairs: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

pub fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A valid hosted session: 2 x "Tee" at $20.00.
pub fn base_session() -> Vec<(String, String)> {
    p(&[
        ("mode", "payment"),
        ("success_url", "https://shop.test/success?session_id={CHECKOUT_SESSION_ID}"),
        ("cancel_url", "https://shop.test/cart"),
        ("line_items[0][price_data][currency]", "usd"),
        ("line_items[0][price_data][unit_amount]", "2000"),
        ("line_items[0][price_data][product_data][name]", "Tee"),
        ("line_items[0][quantity]", "2"),
    ])
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, n: &str) -> Option<String> {
        self.headers.get(n).and_then(|v| v.to_str().ok()).map(String::from)
    }
}

async fn finish(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, headers, json, text }
}

pub async fn post_form(c: &reqwest::Client, url: &str, pairs: &[(String, String)], headers: &[(&str, &str)]) -> Resp {
    let mut rb = c.post(url).header("Content-Type", "application/x-www-form-urlencoded").body(encode(pairs));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    finish(rb.send().await.unwrap()).await
}

pub async fn create(c: &reqwest::Client, emu: &Emulator, pairs: &[(String, String)]) -> Resp {
    post_form(
        c,
        &format!("{}/v1/checkout/sessions", emu.base_url()),
        pairs,
        &[("Authorization", &format!("Bearer {KEY}"))],
    )
    .await
}

pub async fn get(c: &reqwest::Client, url: &str) -> Resp {
    finish(c.get(url).header("Authorization", format!("Bearer {KEY}")).send().await.unwrap()).await
}

pub async fn post_json(c: &reqwest::Client, url: &str, body: &str) -> Resp {
    finish(c.post(url).header("Content-Type", "application/json").body(body.to_string()).send().await.unwrap()).await
}

/// One webhook request seen by the test receiver.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    pub fn header(&self, n: &str) -> String {
        self.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    }
}

#[derive(Clone, Default)]
struct RecvState {
    got: Arc<Mutex<Vec<Received>>>,
    fail_first: Arc<Mutex<usize>>,
    sleep_first_ms: Arc<Mutex<u64>>,
}

/// A tiny webhook receiver: answers 500 to the first `fail_first` requests and sleeps
/// `sleep_first_ms` on the first request, else 200.
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start(fail_first: usize, sleep_first_ms: u64) -> Receiver {
        let st = RecvState {
            fail_first: Arc::new(Mutex::new(fail_first)),
            sleep_first_ms: Arc::new(Mutex::new(sleep_first_ms)),
            ..Default::default()
        };
        let got = st.got.clone();
        let app = axum::Router::new()
            .route(
                "/hook",
                post(|State(st): State<RecvState>, headers: HeaderMap, body: Bytes| async move {
                    let sleep = std::mem::take(&mut *st.sleep_first_ms.lock().unwrap());
                    if sleep > 0 {
                        tokio::time::sleep(Duration::from_millis(sleep)).await;
                    }
                    st.got.lock().unwrap().push(Received { headers, body });
                    let mut f = st.fail_first.lock().unwrap();
                    if *f > 0 {
                        *f -= 1;
                        (StatusCode::INTERNAL_SERVER_ERROR, "boom")
                    } else {
                        (StatusCode::OK, "{\"received\":true}")
                    }
                }),
            )
            .with_state(st);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Receiver { url, got }
    }

    pub fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    pub async fn wait(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            let g = self.got();
            if g.len() >= n || tokio::time::Instant::now() >= end {
                return g;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Independent check of a `Stripe-Signature` header (HMAC computed here, not by the emulator).
pub fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    let mut t = None;
    let mut sigs = vec![];
    for item in header.split(',') {
        match item.split_once('=') {
            Some(("t", v)) => t = Some(v.to_string()),
            Some(("v1", v)) => sigs.push(v.to_string()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expect = hex::encode(mac.finalize().into_bytes());
    sigs.contains(&expect)
}
