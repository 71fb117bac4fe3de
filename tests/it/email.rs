//! The shopper hears from the shop (issue 20): shipped, refunded and cancelled messages reach
//! the emulator's Resend-shaped outbox exactly once per fact — under duplicated and reordered
//! webhooks, replayed owner actions and a provider outage (the webhook is acknowledged, the
//! message waits in the store and the reconciliation run sends it) — with the order number in
//! the subject, every value escaped, and the shopper's email never on the shopper's pages.

use crate::common::{Shop, ShopOptions, shop_with_emulator};
use serde_json::{Value, json};
use stripe_emulator::{Emulator, WebhookFaults};

const TOKEN: &str = "email-tests-admin-token-0123456789abcdefgh";
const MUG: &str = r#"{"items":[{"id":"mug","quantity":2}]}"#;

/// A shop whose email goes to its emulator's outbox (`email_base`: where the provider is, the
/// emulator when `None`).
async fn mail_shop(email_base: Option<String>, extra: Vec<(&'static str, String)>) -> Shop {
    let emu = Emulator::start(crate::common::emulator_options()).await.unwrap();
    let mut env = vec![
        ("ADMIN_TOKEN", TOKEN.to_string()),
        ("RATE_LIMIT_ORDER_ACTIONS", "1000000/60".to_string()),
        ("EMAIL_API_KEY", stripe_emulator::EMAIL_API_KEY.to_string()),
        ("EMAIL_FROM", "Ferris & Co <orders@shop.example>".to_string()),
        ("EMAIL_API_BASE", email_base.unwrap_or_else(|| emu.base_url())),
        ("CRON_SECRET", "email-tests-cron-secret-0123456789".to_string()),
    ];
    env.extend(extra);
    shop_with_emulator(emu, ShopOptions { env, ..Default::default() }).await
}

async fn act(s: &Shop, key: &str, body: Value) -> (u16, Value) {
    let r = s.owner_post("/api/order-action", TOKEN, Some(key), body.to_string()).send().await.unwrap();
    let (status, _, json) = crate::common::split(r).await;
    (status, json)
}

/// The outbox's messages whose subject names `number`, waiting until `n` are there.
async fn messages(s: &Shop, number: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found: Vec<Value> =
            s.emu.outbox().into_iter().filter(|m| m["subject"].as_str().is_some_and(|t| t.contains(number))).collect();
        if found.len() >= n || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn shipping_tells_the_shopper_once_with_a_working_tracking_link() {
    let s = mail_shop(None, vec![]).await;
    let (_, number) = s.paid(MUG).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(messages(&s, &number, 0).await.is_empty(), "no 'confirmed' message unless the shop asks");
    let ship = json!({"order": number, "action": "ship", "carrier": "UPS <b>", "tracking_number": "1Z&999",
        "tracking_url": "https://track.example/1Z999?x=\"><script>"});
    assert_eq!(act(&s, "ship-1", ship.clone()).await.0, 200);
    assert_eq!(act(&s, "ship-1", ship).await.0, 200, "a replay");
    let got = messages(&s, &number, 1).await;
    assert_eq!(got.len(), 1, "one message for one shipment: {got:#?}");
    let m = &got[0];
    assert!(m["subject"].as_str().unwrap().contains("has shipped"), "{m}");
    assert_eq!(m["to"], json!(["shopper@example.com"]), "{m}");
    let html = m["html"].as_str().unwrap();
    assert!(!html.contains("<script>") && !html.contains("<b>"), "every value escaped: {html}");
    // The link as the owner's action recorded it (parsed, so quotes and brackets are encoded).
    assert!(html.contains("href=\"https://track.example/1Z999?x=%22%3E%3Cscript%3E\""), "{html}");
    assert!(m["text"].as_str().unwrap().contains("Tracking number: 1Z&999"), "{m}");
}

#[tokio::test]
async fn a_refund_is_told_once_under_duplicated_and_reordered_webhooks() {
    let s = mail_shop(None, vec![]).await;
    let (id, number) = s.paid(MUG).await;
    s.emu.set_webhook_faults(WebhookFaults { duplicate: true, reorder: true, ..Default::default() });
    s.emu.refund(&id, Some(500)).unwrap();
    s.wait_order(&id, |o| o.money.amount_refunded == 500).await;
    let got = messages(&s, &number, 1).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0]["text"].as_str().unwrap().contains("part of your order: 5.00 USD"), "{}", got[0]);
    let total = s.app.store.order(&id).await.unwrap().unwrap().money.amount;
    s.emu.refund(&id, None).unwrap();
    s.wait_order(&id, |o| o.money.amount_refunded == total).await;
    let got = messages(&s, &number, 2).await;
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got.iter().any(|m| m["text"].as_str().unwrap().contains("in full")), "{got:#?}");
    // Redelivered again: nothing more.
    for e in s.emu.events() {
        let _ = s.emu.resend(e["id"].as_str().unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(messages(&s, &number, 0).await.len(), 2, "each fact once");
    // The shopper's own page carries no email.
    let (_, _, status) = s.get(&format!("/api/checkout-status?session_id={id}")).await;
    assert!(!status.to_string().contains("shopper@example.com"), "{status}");
}

#[tokio::test]
async fn a_provider_outage_delays_a_message_and_never_fails_the_webhook() {
    // The provider is down: nothing listens where the shop sends.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let s = mail_shop(Some(format!("http://{hole}")), vec![]).await;
    let (id, number) = s.paid(MUG).await;
    s.emu.refund(&id, Some(300)).unwrap();
    s.wait_order(&id, |o| o.money.amount_refunded == 300).await;
    let d = s
        .deliveries_when("the refund's events answered", |d| {
            d.iter()
                .filter(|d| d.event_type.starts_with("refund.") || d.event_type == "charge.refunded")
                .all(|d| d.status.is_some())
                && d.iter().any(|d| d.event_type == "refund.created")
        })
        .await;
    assert!(d.iter().all(|d| d.status == Some(200)), "the webhook is acknowledged: {d:#?}");
    assert!(messages(&s, &number, 0).await.is_empty());
    // Another instance, with the provider back, runs the reconciliation: the message goes, once.
    let mut opts = ShopOptions { database_url: Some(s.database_url.clone()), ..Default::default() };
    opts.env = vec![
        ("EMAIL_API_KEY", stripe_emulator::EMAIL_API_KEY.to_string()),
        ("EMAIL_FROM", "Ferris & Co <orders@shop.example>".to_string()),
        ("EMAIL_API_BASE", s.emu.base_url()),
        ("CRON_SECRET", "email-tests-cron-secret-0123456789".to_string()),
    ];
    let back = crate::common::instance(&s.emu.base_url(), &opts).await;
    for _ in 0..2 {
        let r = s
            .http
            .get(back.url("/api/reconcile"))
            .bearer_auth("email-tests-cron-secret-0123456789")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let got = messages(&s, &number, 1).await;
    assert_eq!(got.len(), 1, "sent once after the outage: {got:#?}");
    assert!(got[0]["subject"].as_str().unwrap().contains("refund of 3.00 USD"), "{}", got[0]);
}

#[tokio::test]
async fn cancelling_tells_the_shopper_and_no_email_means_none() {
    let s = mail_shop(None, vec![]).await;
    let (_, number) = s.paid(MUG).await;
    assert_eq!(act(&s, "cancel-1", json!({"order": number, "action": "cancel"})).await.0, 200);
    let got = messages(&s, &number, 2).await;
    assert!(got.iter().any(|m| m["subject"].as_str().unwrap().contains("cancelled")), "{got:#?}");
    // A shop without EMAIL_* sends nothing and queues nothing.
    let quiet =
        crate::common::shop(ShopOptions { env: vec![("ADMIN_TOKEN", TOKEN.to_string())], ..Default::default() }).await;
    let (id, _) = quiet.paid(MUG).await;
    quiet.emu.refund(&id, Some(100)).unwrap();
    quiet.wait_order(&id, |o| o.money.amount_refunded == 100).await;
    assert!(quiet.emu.outbox().is_empty());
}
