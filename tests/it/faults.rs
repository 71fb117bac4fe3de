//! Faults end to end: with the emulator injecting 429/500/slow answers and
//! duplicate or reordered webhook deliveries, no session is created twice for
//! one click, every authentic event is recorded exactly once, and the shopper
//! gets a clear message when Stripe stays down.

use crate::common::{Shop, ShopOptions, shop};
use checkout::order::OrderState;
use std::time::Duration;
use stripe_emulator::{ApiFault, WebhookFaults};

const CART: &str = r#"{"items":[{"id":"hoodie","quantity":1}]}"#;

/// Every session the emulator holds.
async fn sessions(s: &Shop) -> usize {
    let r = s
        .http
        .get(format!("{}/v1/checkout/sessions?limit=100", s.emu.base_url()))
        .bearer_auth(crate::common::SECRET_KEY)
        .send()
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    json["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn one_click_creates_one_session_through_500s_and_slowness() {
    let s = shop(ShopOptions::default()).await;
    s.emu.set_api_fault(ApiFault { status: Some(500), count: 2, ..Default::default() });
    let (status, _, json) = s.post_json("/api/create-checkout", CART, "198.18.0.1").await;
    assert_eq!(status, 200, "{json}");
    s.emu.set_api_fault(ApiFault { delay_ms: Some(1500), count: 1, ..Default::default() });
    let (status, _, json) = s.post_json("/api/create-checkout", CART, "198.18.0.1").await;
    assert_eq!(status, 200, "{json}");
    s.emu.reset_faults();
    assert_eq!(sessions(&s).await, 2, "two clicks, two sessions — never more");
}

#[tokio::test]
async fn stripe_staying_down_gives_the_shopper_a_clear_message_and_creates_nothing() {
    let s = shop(ShopOptions::default()).await;
    for status in [500u16, 429] {
        s.emu.set_api_fault(ApiFault { status: Some(status), count: 10, ..Default::default() });
        let (got, _, json) = s.post_json("/api/create-checkout", CART, "198.18.0.2").await;
        assert_eq!(got, 502, "{json}");
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.contains("not been charged") && message.contains("try again"), "{message}");
        assert!(json["error"]["reference"].as_str().unwrap().starts_with("ref_"));
    }
    s.emu.reset_faults();
    assert_eq!(sessions(&s).await, 0);
}

each_backend! {
    #[tokio::test]
    async fn failing_fulfilment_is_retried_by_delivery_and_recorded_once(backend) {
        let s = shop(ShopOptions { backend: Some(backend), ..Default::default() }).await;
        let id = s.checkout(CART).await;
        // The session retrieval inside fulfilment fails for a while: the webhook answers
        // 5xx, the emulator retries with backoff, and the order is recorded once.
        s.emu.set_api_fault(ApiFault { status: Some(500), count: 4, ..Default::default() });
        s.emu.pay(&id, "pay").unwrap();
        let o = s.wait_order(&id, |o| o.state == OrderState::Fulfilled).await;
        assert_eq!(o.fulfillments, 1);
        let d = s.deliveries_when("an acknowledged attempt", |d| d.iter().any(|d| d.status == Some(200))).await;
        let attempts: Vec<Option<u16>> = d.iter().map(|d| d.status).collect();
        assert!(attempts.first() == Some(&Some(502)), "{backend:?}: first attempt refused: {attempts:?}");
        assert_eq!(attempts.last(), Some(&Some(200)), "{attempts:?}");
    }
}

each_backend! {
    #[tokio::test]
    async fn duplicates_and_reordering_together_record_every_event_once(backend) {
        let s = shop(ShopOptions { backend: Some(backend), ..Default::default() }).await;
        s.emu.set_webhook_faults(WebhookFaults { duplicate: true, reorder: true, ..Default::default() });
        let paid = s.checkout(CART).await;
        let delayed = s.checkout(CART).await;
        let failed = s.checkout(CART).await;
        s.emu.pay(&paid, "pay").unwrap();
        s.emu.pay(&delayed, "delayed_success").unwrap();
        s.emu.pay(&failed, "delayed_failure").unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        s.emu.flush();
        s.wait_order(&paid, |o| o.state == OrderState::Fulfilled).await;
        s.wait_order(&delayed, |o| o.state == OrderState::Fulfilled).await;
        s.wait_order(&failed, |o| o.state == OrderState::PaymentFailed).await;
        // Wait until every copy of every event was acknowledged.
        let events = s.emu.events();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let acked = s.emu.deliveries().iter().filter(|d| d.status == Some(200)).count();
            if acked >= events.len() * 2 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{backend:?}: {acked} of {} copies acknowledged",
                events.len() * 2
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for e in &events {
            assert!(
                s.app.store.event_seen(e["id"].as_str().unwrap()).await.unwrap(),
                "{backend:?}: {} recorded",
                e["type"]
            );
        }
        for id in [&paid, &delayed, &failed] {
            let o = s.app.store.order(id).await.unwrap().unwrap();
            assert!(o.fulfillments <= 1);
        }
        let processed = s.emu.deliveries().iter().filter(|d| d.response_body.contains("processed")).count();
        assert_eq!(
            processed,
            events.len(),
            "{backend:?}: each event acted on once, the copies acknowledged as duplicates"
        );
    }
}
