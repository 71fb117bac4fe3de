//! A hung database (a Postgres address that accepts connections and never
//! answers) must not serialise an instance: concurrent requests each pay at
//! most one bounded wait, the shared rate-limit counter falls back to the
//! in-instance bucket within its short budget (then checkout's stock reservation answers 503
//! within one connect timeout), and nothing waits in a queue
//! behind another request's connection. Needs no Postgres.

use checkout::ratelimit::SHARED_COUNTER_BUDGET;
use checkout::store::CONNECT_TIMEOUT;
use std::time::{Duration, Instant};

/// A listener that accepts every connection and never writes a byte.
async fn blackhole() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock); // keep it open, say nothing
        }
    });
    addr
}

/// A session of this shop created at the emulator directly (the shop's own checkout needs the
/// store).
async fn session_at_stripe(shop: &crate::common::Shop) -> String {
    let form = [
        ("mode", "payment"),
        ("success_url", "http://localhost/success.html?session_id={CHECKOUT_SESSION_ID}"),
        ("line_items[0][price_data][currency]", "usd"),
        ("line_items[0][price_data][unit_amount]", "1400"),
        ("line_items[0][price_data][product_data][name]", "Borrow-checked Mug"),
        ("line_items[0][quantity]", "1"),
        ("metadata[shop]", "checkout-rust"),
    ];
    let r = shop
        .http
        .post(format!("{}/v1/checkout/sessions", shop.emu.base_url()))
        .bearer_auth(crate::common::SECRET_KEY)
        .form(&form)
        .send()
        .await
        .unwrap();
    let (status, _, session) = crate::common::split(r).await;
    assert_eq!(status, 200, "{session}");
    session["id"].as_str().unwrap().to_string()
}

/// Runs `n` copies of `f` at once; their statuses and the slowest answer's time.
async fn concurrently<F, Fut>(n: usize, f: F) -> (Vec<u16>, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = u16> + Send + 'static,
{
    let started = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let fut = f(i);
            tokio::spawn(async move { (fut.await, started.elapsed()) })
        })
        .collect();
    let mut statuses = Vec::new();
    let mut slowest = Duration::ZERO;
    for h in handles {
        let (status, took) = h.await.unwrap();
        statuses.push(status);
        slowest = slowest.max(took);
    }
    (statuses, slowest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_database_costs_each_request_one_timeout_not_a_queue() {
    let hole = blackhole().await;
    let shop = std::sync::Arc::new(
        crate::common::shop(crate::common::ShopOptions {
            database_url: Some(format!("postgres://postgres@{hole}/test?sslmode=disable")),
            no_webhooks: true,
            ..Default::default()
        })
        .await,
    );
    let cart = r#"{"items":[{"id":"mug","quantity":1}]}"#;

    // The shared rate-limit counter gives up within its budget (the in-instance bucket
    // decides), then the stock reservation needs the store: 503 within one connect timeout,
    // every one of them, and nothing is sent to Stripe.
    let s = shop.clone();
    let (statuses, slowest) = concurrently(5, move |i| {
        let s = s.clone();
        async move { s.post_json("/api/create-checkout", cart, &format!("203.0.113.{}", i + 1)).await.0 }
    })
    .await;
    assert_eq!(statuses, vec![503; 5], "no checkout without a reservation");
    let bound = SHARED_COUNTER_BUDGET + CONNECT_TIMEOUT + Duration::from_millis(1500);
    assert!(slowest < bound, "slowest checkout took {slowest:?} (bound {bound:?})");
    assert!(shop.requests_to("/v1/checkout/sessions").is_empty(), "nothing sent to Stripe");

    // Requests that need the store answer (5xx) within one connect timeout, all of them (a
    // session made at Stripe directly, as the shop would have).
    let session = session_at_stripe(&shop).await;
    let s = shop.clone();
    let (statuses, slowest) = concurrently(5, move |_| {
        let s = s.clone();
        let session = session.clone();
        async move { s.get(&format!("/api/checkout-status?session_id={session}")).await.0 }
    })
    .await;
    assert!(statuses.iter().all(|s| *s >= 500), "{statuses:?}");
    let bound = SHARED_COUNTER_BUDGET + CONNECT_TIMEOUT + Duration::from_millis(1500);
    assert!(slowest < bound, "slowest checkout-status took {slowest:?} (bound {bound:?})");

    // Signed webhook deliveries: 5xx (Stripe retries), all within one timeout.
    let s = shop.clone();
    let (statuses, slowest) = concurrently(5, move |i| {
        let s = s.clone();
        async move {
            let body = format!(
                r#"{{"id":"evt_hung_{i}","object":"event","type":"checkout.session.completed","livemode":false,"data":{{"object":{{"id":"cs_test_hung{i}"}}}}}}"#
            );
            let now = checkout::clock::now();
            let header = checkout::signature::sign(crate::common::WEBHOOK_SECRET.as_bytes(), now, body.as_bytes());
            let r = s.http.post(s.url("/api/webhook")).header("stripe-signature", header).body(body).send().await;
            r.unwrap().status().as_u16()
        }
    })
    .await;
    assert!(statuses.iter().all(|s| *s >= 500), "{statuses:?}");
    let bound = CONNECT_TIMEOUT + Duration::from_millis(1500);
    assert!(slowest < bound, "slowest webhook took {slowest:?} (bound {bound:?})");
}
