//! Hosted page, payment flows and webhook delivery (signatures, retries, faults).

mod common;
use common::*;
use serde_json::Value;
use std::time::Duration;
use stripe_emulator::{Emulator, Options, WebhookFaults};

const SECRET: &str = "whsec_emulator_local";
const WAIT: Duration = Duration::from_secs(5);

async fn emu_with(rcv: &Receiver, f: impl FnOnce(&mut Options)) -> Emulator {
    let mut o = fast_opts();
    o.webhook_url = Some(rcv.url.clone());
    f(&mut o);
    Emulator::start(o).await.unwrap()
}

async fn new_session(c: &reqwest::Client, emu: &Emulator) -> String {
    let mut pairs = base_session();
    pairs.push(("discounts[0][promotion_code]".into(), "promo_emu_save10".into()));
    let r = create(c, emu, &pairs).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["id"].as_str().unwrap().to_string()
}

fn types(got: &[Received]) -> Vec<String> {
    got.iter().map(|r| r.json()["type"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn hosted_page_pay_and_signed_webhook() {
    let rcv = Receiver::start(0, 0).await;
    let emu = emu_with(&rcv, |_| {}).await;
    let c = client();
    let id = new_session(&c, &emu).await;
    let b = emu.base_url();
    let page = c.get(format!("{b}/c/pay/{id}")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for s in [
        "Stripe emulator — test mode, no real payment",
        "Tee",
        "$40.00",
        "-$4.00",
        "$36.00",
        "SAVE10",
        "id=\"pay\"",
        "id=\"pay-delayed-success\"",
        "id=\"pay-delayed-failure\"",
        "id=\"cancel\"",
    ] {
        assert!(html.contains(s), "page lacks {s}");
    }
    let r = c
        .post(format!("{b}/c/pay/{id}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("action=pay")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("https://shop.test/success?session_id={id}").as_str());
    let s = get(&c, &format!("{b}/v1/checkout/sessions/{id}")).await.json;
    assert_eq!(s["status"], "complete");
    assert_eq!(s["payment_status"], "paid");
    assert!(s["payment_intent"].as_str().unwrap().starts_with("pi_"));
    assert_eq!(s["customer_details"]["email"], "shopper@example.com");
    // page of a completed session offers no action; paying again is refused
    let html = get(&c, &format!("{b}/c/pay/{id}")).await.text;
    assert!(html.contains("complete") && !html.contains("id=\"pay\""));
    let r = c.post(format!("{b}/c/pay/{id}")).body("action=pay").send().await.unwrap();
    assert_eq!(r.status(), 409);

    let got = rcv.wait(1, WAIT).await;
    assert_eq!(got.len(), 1);
    let w = &got[0];
    assert_eq!(w.header("content-type"), "application/json; charset=utf-8");
    assert_eq!(w.header("user-agent"), "Stripe/1.0 (+https://stripe.com/docs/webhooks)");
    let sig = w.header("stripe-signature");
    assert!(verify(SECRET, &sig, &w.body), "signature {sig} must verify independently");
    assert!(!verify("whsec_other", &sig, &w.body));
    let t: i64 = sig.split(',').next().unwrap().strip_prefix("t=").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - t).abs() <= 5);
    let ev = w.json();
    assert!(ev["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(ev["object"], "event");
    assert_eq!(ev["type"], "checkout.session.completed");
    assert_eq!(ev["api_version"], "2026-10-28.endive");
    assert_eq!(ev["livemode"], false);
    assert_eq!(ev["pending_webhooks"], 1);
    assert_eq!(ev["request"], serde_json::json!({"id": null, "idempotency_key": null}));
    assert_eq!(ev["data"]["object"]["id"], id.as_str());
    assert_eq!(ev["data"]["object"]["payment_status"], "paid");
    assert_eq!(ev["data"]["object"]["amount_total"], 3600);
    let d = emu.wait_for_deliveries(|d| !d.is_empty(), WAIT).await.unwrap();
    assert_eq!(d[0].status, Some(200));
    assert_eq!(d[0].attempt, 1);
    assert_eq!(d[0].response_body, "{\"received\":true}");
    let events: Value = get(&c, &format!("{b}/_emulator/events")).await.json;
    assert_eq!(events[0]["id"], ev["id"]);
    let list = get(&c, &format!("{b}/v1/events?type=checkout.session.completed")).await;
    assert_eq!(list.json["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn retries_after_500_with_fresh_signatures() {
    let rcv = Receiver::start(1, 0).await;
    let emu = emu_with(&rcv, |_| {}).await;
    let c = client();
    let id = new_session(&c, &emu).await;
    emu.pay(&id, "pay").unwrap();
    let got = rcv.wait(2, WAIT).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body, "same event redelivered");
    for g in &got {
        assert!(verify(SECRET, &g.header("stripe-signature"), &g.body));
    }
    let d = emu.wait_for_deliveries(|d| d.len() >= 2, WAIT).await.unwrap();
    assert_eq!((d[0].attempt, d[0].status, d[0].response_body.as_str()), (1, Some(500), "boom"));
    assert_eq!((d[1].attempt, d[1].status), (2, Some(200)));
    assert!(d[1].at_ms >= d[0].at_ms + 50, "backoff of retry_base");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(emu.deliveries().len(), 2, "no retry after success");
}

#[tokio::test]
async fn connection_errors_and_timeouts_are_retried_and_recorded() {
    // closed port: connection errors up to max_attempts
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/hook", dead.local_addr().unwrap());
    drop(dead);
    let mut o = fast_opts();
    o.webhook_url = Some(dead_url);
    o.max_attempts = 3;
    o.retry_base = Duration::from_millis(20);
    let emu = Emulator::start(o).await.unwrap();
    let c = client();
    let id = new_session(&c, &emu).await;
    emu.pay(&id, "pay").unwrap();
    let d = emu.wait_for_deliveries(|d| d.len() >= 3, WAIT).await.unwrap();
    assert!(d.iter().all(|x| x.error.as_deref() == Some("connection") && x.status.is_none()));
    assert_eq!(d.iter().map(|x| x.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(emu.deliveries().len(), 3);

    // slow receiver: first attempt times out, second succeeds
    let rcv = Receiver::start(0, 800).await;
    emu.set_webhook_url(Some(rcv.url.clone()));
    emu.clear_logs();
    let id = new_session(&c, &emu).await;
    emu.pay(&id, "pay").unwrap();
    let d = emu.wait_for_deliveries(|d| d.iter().any(|x| x.ok()), WAIT).await.unwrap();
    assert_eq!(d[0].error.as_deref(), Some("timeout"));
    assert!(d.last().unwrap().ok());
}

#[tokio::test]
async fn cancel_and_delayed_payment_sequences() {
    let rcv = Receiver::start(0, 0).await;
    let emu = emu_with(&rcv, |_| {}).await;
    let c = client();
    let b = emu.base_url();
    // cancel
    let id = new_session(&c, &emu).await;
    let r = c.post(format!("{b}/c/pay/{id}")).body("action=cancel").send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "https://shop.test/cart");
    assert_eq!(emu.session(&id).unwrap()["status"], "open");
    let mut no_cancel = base_session();
    no_cancel.retain(|(k, _)| k != "cancel_url");
    let id2 = create(&c, &emu, &no_cancel).await.json["id"].as_str().unwrap().to_string();
    let r = c.post(format!("{b}/c/pay/{id2}")).body("action=cancel").send().await.unwrap();
    assert_eq!(r.headers()["location"], format!("{b}/c/pay/{id2}").as_str());

    // delayed success via the page
    let r = c.post(format!("{b}/c/pay/{id}")).body("action=delayed_success").send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(emu.session(&id).unwrap()["payment_status"], "unpaid");
    assert_eq!(emu.session(&id).unwrap()["status"], "complete");
    let got = rcv.wait(2, WAIT).await;
    assert_eq!(types(&got), ["checkout.session.completed", "checkout.session.async_payment_succeeded"]);
    assert_eq!(got[0].json()["data"]["object"]["payment_status"], "unpaid");
    assert_eq!(got[1].json()["data"]["object"]["payment_status"], "paid");
    assert_eq!(emu.session(&id).unwrap()["payment_status"], "paid");

    // delayed failure via the JSON control endpoint
    let r = post_json(&c, &format!("{b}/_emulator/sessions/{id2}/pay"), r#"{"action":"delayed_failure"}"#).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["redirect_url"], format!("https://shop.test/success?session_id={id2}"));
    let got = rcv.wait(4, WAIT).await;
    assert_eq!(types(&got[2..]), ["checkout.session.completed", "checkout.session.async_payment_failed"]);
    assert_eq!(got[3].json()["data"]["object"]["payment_status"], "unpaid");
    assert_eq!(emu.session(&id2).unwrap()["payment_status"], "unpaid");
    let r = post_json(&c, &format!("{b}/_emulator/sessions/{id2}/pay"), r#"{"action":"pay"}"#).await;
    assert_eq!(r.status, 409);
    let r = post_json(&c, &format!("{b}/_emulator/sessions/cs_test_nope/pay"), r#"{"action":"pay"}"#).await;
    assert_eq!(r.status, 404);

    // embedded sessions redirect to return_url
    let emb = p(&[
        ("mode", "payment"),
        ("ui_mode", "embedded_page"),
        ("return_url", "https://shop.test/r?s={CHECKOUT_SESSION_ID}"),
        ("line_items[0][price]", "price_emu_mug"),
        ("line_items[0][quantity]", "1"),
    ]);
    let id3 = create(&c, &emu, &emb).await.json["id"].as_str().unwrap().to_string();
    assert_eq!(emu.pay(&id3, "pay").unwrap(), format!("https://shop.test/r?s={id3}"));
}

/// Embedded Checkout: the page is the frame's content (no Cancel); paying answers a page that
/// tells the embedding page (the Stripe.js stand-in) where to go, not a redirect of the frame.
#[tokio::test]
async fn embedded_frame_page_and_stripe_js_stand_in() {
    let rcv = Receiver::start(0, 0).await;
    let emu = emu_with(&rcv, |_| {}).await;
    let c = client();
    let b = emu.base_url();
    let js = c.get(format!("{b}/_emulator/stripe.js")).send().await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    let js = js.text().await.unwrap();
    for s in [
        "window.Stripe = Stripe",
        "initEmbeddedCheckout",
        "'https://checkout.stripe.com'",
        "stripe-emulator:checkout-complete",
    ] {
        assert!(js.contains(s), "stand-in lacks {s}");
    }

    let emb = p(&[
        ("mode", "payment"),
        ("ui_mode", "embedded_page"),
        ("return_url", "https://shop.test/r?s={CHECKOUT_SESSION_ID}&x=<b>"),
        ("line_items[0][price]", "price_emu_mug"),
        ("line_items[0][quantity]", "1"),
    ]);
    let r = create(&c, &emu, &emb).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    assert!(r.json["client_secret"].as_str().unwrap().starts_with(&format!("{id}_secret_")));
    let html = get(&c, &format!("{b}/c/pay/{id}")).await.text;
    assert!(html.contains("id=\"pay\"") && !html.contains("id=\"cancel\""), "{html}");

    let r = c.post(format!("{b}/c/pay/{id}")).body("action=pay").send().await.unwrap();
    assert_eq!(r.status(), 200, "no redirect of the frame itself");
    let html = r.text().await.unwrap();
    let url_js = format!("\"https://shop.test/r?s={id}&x=\\u003cb>\"");
    assert!(html.contains(&format!("var url = {url_js};")), "{html}");
    assert!(html.contains(
        "window.parent.postMessage({ type: 'stripe-emulator:checkout-complete', return_url: url }, new URL(url).origin)"
    ));
    assert!(!html.contains("<b>"), "the return URL is escaped in the page: {html}");
    assert_eq!(emu.session(&id).unwrap()["status"], "complete");
    assert_eq!(emu.session(&id).unwrap()["payment_status"], "paid");
    assert_eq!(types(&rcv.wait(1, WAIT).await), ["checkout.session.completed"]);
}

#[tokio::test]
async fn duplicate_fault_delivers_twice() {
    let rcv = Receiver::start(0, 0).await;
    let emu = emu_with(&rcv, |_| {}).await;
    let c = client();
    let r = post_json(&c, &format!("{}/_emulator/faults", emu.base_url()), r#"{"webhooks":{"duplicate":true}}"#).await;
    assert_eq!(r.json["webhooks"]["duplicate"], true);
    let id = new_session(&c, &emu).await;
    emu.pay(&id, "pay").unwrap();
    let got = rcv.wait(2, WAIT).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].json()["id"], got[1].json()["id"]);
    let d = emu.wait_for_deliveries(|d| d.len() >= 2, WAIT).await.unwrap();
    let mut copies: Vec<u32> = d.iter().map(|x| x.copy).collect();
    copies.sort();
    assert_eq!(copies, [0, 1]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(rcv.got().len(), 2);
}

#[tokio::test]
async fn reorder_fault_flushes_newest_first() {
    let rcv = Receiver::start(0, 0).await;
    // 1 s of quiet so a slow CI machine cannot flush between two creations
    let emu = emu_with(&rcv, |o| o.reorder_quiet = Duration::from_secs(1)).await;
    let c = client();
    let b = emu.base_url();
    emu.set_webhook_faults(WebhookFaults { reorder: true, ..Default::default() });
    let mut ids = vec![];
    for _ in 0..3 {
        let id = new_session(&c, &emu).await;
        emu.pay(&id, "pay").unwrap();
        ids.push(id);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rcv.got().is_empty(), "held while reorder is on");
    post_json(&c, &format!("{b}/_emulator/flush"), "").await;
    let got = rcv.wait(3, WAIT).await;
    let order: Vec<String> =
        got.iter().map(|g| g.json()["data"]["object"]["id"].as_str().unwrap().to_string()).collect();
    ids.reverse();
    assert_eq!(order, ids);
    // quiet-period flush (reorder_quiet), no explicit flush
    let a = new_session(&c, &emu).await;
    let z = new_session(&c, &emu).await;
    emu.pay(&a, "pay").unwrap();
    emu.pay(&z, "pay").unwrap();
    let got = rcv.wait(5, WAIT).await;
    assert_eq!(got[3].json()["data"]["object"]["id"], z.as_str());
    assert_eq!(got[4].json()["data"]["object"]["id"], a.as_str());
}

#[tokio::test]
async fn resend_sign_and_late_webhook_url() {
    let mut o = fast_opts();
    o.webhook_secret = "whsec_test_secret".into();
    let emu = Emulator::start(o).await.unwrap();
    let c = client();
    let b = emu.base_url();
    let r = post_json(
        &c,
        &format!("{b}/_emulator/sign"),
        r#"{"payload":"{\"id\":\"evt_test_webhook\",\"object\":\"event\"}","timestamp":1492774577}"#,
    )
    .await;
    assert_eq!(r.json["header"], "t=1492774577,v1=88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a");
    // no webhook URL yet: events are recorded, nothing delivered
    let id = new_session(&c, &emu).await;
    emu.pay(&id, "pay").unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(emu.deliveries().is_empty());
    assert_eq!(emu.events()[0]["pending_webhooks"], 0);
    let rcv = Receiver::start(0, 0).await;
    let r = post_json(&c, &format!("{b}/_emulator/webhook-url"), &format!("{{\"url\":\"{}\"}}", rcv.url)).await;
    assert_eq!(r.status, 200);
    let evt = emu.events()[0]["id"].as_str().unwrap().to_string();
    let r = post_json(&c, &format!("{b}/_emulator/events/resend/{evt}"), "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = rcv.wait(1, WAIT).await;
    assert_eq!(got[0].json()["id"], evt.as_str());
    assert!(verify("whsec_test_secret", &got[0].header("stripe-signature"), &got[0].body));
    assert_eq!(post_json(&c, &format!("{b}/_emulator/events/resend/evt_nope"), "").await.status, 404);
    let d: Value = get(&c, &format!("{b}/_emulator/deliveries")).await.json;
    assert_eq!(d[0]["event_id"], evt.as_str());
    emu.shutdown().await;
    assert!(c.get(format!("{b}/")).send().await.is_err(), "stopped after shutdown");
}
