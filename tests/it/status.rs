//! `GET /api/checkout-status` is public: it must not spend the owner's Stripe
//! quota once the answer is known, nor serve other sites, nor look up ids
//! Stripe cannot have.

use crate::common::{SECRET_KEY, Shop, ShopOptions, shop};
use checkout::order::OrderState;

const CART: &str = r#"{"items":[{"id":"mug","quantity":2}]}"#;

/// Requests the emulator received for one session (retrieve, line items).
fn session_requests(s: &Shop, id: &str) -> usize {
    let prefix = format!("/v1/checkout/sessions/{id}");
    s.emu.requests().iter().filter(|r| r.path.starts_with(&prefix)).count()
}

/// Polls status `n` times as the success page does; every answer must be 200.
async fn poll(s: &Shop, id: &str, n: usize) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..n {
        let (status, _, json) = s.get(&format!("/api/checkout-status?session_id={id}")).await;
        assert_eq!(status, 200, "{json}");
        last = json;
    }
    last
}

each_backend! {
    #[tokio::test]
    async fn settled_orders_are_answered_from_the_store_without_calling_stripe(backend) {
        let s = shop(ShopOptions { backend: Some(backend), ..Default::default() }).await;

        // Fulfilled.
        let paid = s.checkout(CART).await;
        s.pay(&paid, "pay").await;
        s.wait_order(&paid, |o| o.state == OrderState::Fulfilled).await;
        s.deliveries_when("the event acknowledged", |d| d.iter().any(|d| d.status == Some(200))).await;
        let before = session_requests(&s, &paid);
        let json = poll(&s, &paid, 20).await;
        assert_eq!(session_requests(&s, &paid), before, "{backend:?}: 20 status calls reached Stripe");
        assert_eq!(json["fulfillment"], "fulfilled");
        assert_eq!(json["status"], "complete");
        assert_eq!(json["payment_status"], "paid");
        assert_eq!(json["amount_total"], 2800 + 500, "two mugs and standard shipping");
        assert_eq!(json["currency"], "usd");
        assert_eq!(json["items"][0]["quantity"], 2);
        assert_eq!(json["items"][0]["amount_subtotal"], 2800);
        let totals = &json["totals"];
        assert_eq!(
            (totals["amount_subtotal"].as_i64(), totals["amount_shipping"].as_i64(), totals["amount_total"].as_i64()),
            (Some(2800), Some(500), Some(3300))
        );
        assert_eq!(totals["shipping_rate"], "Standard shipping");
        assert!(json["order_number"].as_str().is_some_and(|n| n.starts_with("RR-")), "{json}");
        // The order recorded where it ships; the shopper's page is never told.
        let order = s.app.store.order(&paid).await.unwrap().unwrap();
        assert_eq!(order.shipping.as_ref().map(|d| d.name.as_str()), Some("Jenny Rosen"));
        let text = json.to_string();
        for personal in ["Jenny", "Oyster", "94080", "address", "email", "@"] {
            assert!(!text.contains(personal), "{personal} in checkout-status: {text}");
        }

        // Failed.
        let failed = s.checkout(CART).await;
        s.pay(&failed, "delayed_failure").await;
        s.wait_order(&failed, |o| o.state == OrderState::PaymentFailed).await;
        let before = session_requests(&s, &failed);
        let json = poll(&s, &failed, 5).await;
        assert_eq!(session_requests(&s, &failed), before, "{backend:?}: a failed order reached Stripe");
        assert_eq!(
            (json["fulfillment"].as_str(), json["payment_status"].as_str()),
            (Some("payment_failed"), Some("unpaid"))
        );

        // Expired.
        let expired = s.checkout(CART).await;
        let r = s
            .http
            .post(format!("{}/v1/checkout/sessions/{expired}/expire", s.emu.base_url()))
            .bearer_auth(SECRET_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        s.wait_order(&expired, |o| o.state == OrderState::Expired).await;
        let before = session_requests(&s, &expired);
        let json = poll(&s, &expired, 5).await;
        assert_eq!(session_requests(&s, &expired), before, "{backend:?}: an expired order reached Stripe");
        assert_eq!((json["fulfillment"].as_str(), json["status"].as_str()), (Some("expired"), Some("expired")));

        // Control: an order still open asks Stripe each time.
        let open = s.checkout(CART).await;
        let json = poll(&s, &open, 3).await;
        assert_eq!(json["fulfillment"], "pending");
        assert!(session_requests(&s, &open) >= 3, "an open session is looked up");
    }
}

#[tokio::test]
async fn cross_site_status_requests_are_refused_before_any_stripe_call() {
    let s = shop(ShopOptions::default()).await;
    let id = s.checkout(CART).await;
    let url = s.url(&format!("/api/checkout-status?session_id={id}"));
    let get = |headers: &'static [(&'static str, &'static str)], origin: Option<String>| {
        let mut req = s.http.get(&url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let before = session_requests(&s, &id);
    for (headers, origin) in [
        (&[("sec-fetch-site", "cross-site")][..], None),
        (&[("sec-fetch-site", "same-site")][..], None),
        (&[][..], Some("https://evil.example".to_string())),
        (&[][..], Some("null".to_string())),
        (&[("sec-fetch-site", "same-origin")][..], Some("https://evil.example".to_string())),
    ] {
        let r = get(headers, origin.clone()).await.unwrap();
        assert_eq!(r.status(), 403, "{headers:?} {origin:?}");
        let text = r.text().await.unwrap();
        assert!(text.contains("cross-site request refused"), "{text}");
    }
    assert_eq!(session_requests(&s, &id), before, "a refused request reached Stripe");
    // The shop's own page (same-origin), a URL opened directly, and no browser headers at all.
    for (headers, origin) in [
        (&[("sec-fetch-site", "same-origin")][..], None),
        (&[("sec-fetch-site", "same-origin")][..], Some(s.site.clone())),
        (&[("sec-fetch-site", "none")][..], None),
        (&[][..], None),
    ] {
        let r = get(headers, origin.clone()).await.unwrap();
        assert_eq!(r.status(), 200, "{headers:?} {origin:?}");
    }
}

#[tokio::test]
async fn ids_stripe_cannot_have_are_refused_before_any_call() {
    let s = shop(ShopOptions::default()).await;
    let too_long = format!("cs_test_{}", "a".repeat(59));
    assert_eq!(too_long.len(), 67);
    let longest = format!("cs_test_{}", "a".repeat(58));
    let (status, _, json) = s.get(&format!("/api/checkout-status?session_id={too_long}")).await;
    assert_eq!(status, 400, "{json}");
    assert!(s.emu.requests().is_empty(), "a 67-character id reached Stripe");
    // 66 characters is a possible id: Stripe is asked (and knows no such session).
    let (status, _, _) = s.get(&format!("/api/checkout-status?session_id={longest}")).await;
    assert_eq!(status, 404);
    assert_eq!(s.emu.requests().len(), 1);
}

#[tokio::test]
async fn with_stripe_tax_the_success_page_totals_add_up() {
    let s = shop(ShopOptions { env: vec![("STRIPE_AUTOMATIC_TAX", "true".into())], ..Default::default() }).await;
    let id = s.checkout(r#"{"items":[{"id":"hoodie","quantity":1}],"code":"SAVE10"}"#).await;
    s.pay(&id, "pay").await;
    s.wait_order(&id, |o| o.state == OrderState::Fulfilled).await;
    let (status, _, json) = s.get(&format!("/api/checkout-status?session_id={id}")).await;
    assert_eq!(status, 200, "{json}");
    let t = &json["totals"];
    let part = |k: &str| t[k].as_i64().unwrap();
    // $55.00 − 10 % = $49.50, $5.00 shipping, the emulator's 10 % tax on both: $4.95 + $0.50.
    assert_eq!(
        (part("amount_subtotal"), part("amount_discount"), part("amount_shipping"), part("amount_tax")),
        (5500, 550, 500, 545)
    );
    assert_eq!(t["tax_included"], false);
    assert_eq!(part("amount_subtotal") - part("amount_discount") + part("amount_shipping") + part("amount_tax"), 5995);
    assert_eq!((part("amount_total"), json["amount_total"].as_i64()), (5995, Some(5995)));
    assert_eq!(json["items"][0]["amount_subtotal"], 5500);
}
