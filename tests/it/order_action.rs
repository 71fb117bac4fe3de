//! `POST /api/order-action`, the owner's actions, over real HTTP against the real handlers and
//! the emulator: the guard (404 unset, 401, 429, 403, 415, 400s), refunds (partial, the rest,
//! refusals, a Dashboard refund converging alike), once per `Idempotency-Key` (replays, a
//! mismatch, 100 concurrent duplicates ⇒ one Stripe refund), the shipping state (ship, deliver,
//! cancel, illegal moves, digital orders delivered at payment) and the private note.

use crate::common::{Backend, Shop, ShopOptions, shop};
use serde_json::{Value, json};

const TOKEN: &str = "owner-actions-token-0123456789abcdefghijkl";
/// Nothing ships.
const DIGITAL: &str = r#"{"items":[{"id":"wallpapers","quantity":1}]}"#;
/// Ships.
const MUG: &str = r#"{"items":[{"id":"mug","quantity":2}]}"#;

async fn owner_shop(backend: Backend, extra: Vec<(&'static str, String)>) -> Shop {
    let mut env = vec![
        ("ADMIN_TOKEN", TOKEN.to_string()),
        ("RATE_LIMIT_ORDER_ACTIONS", "1000000/60".to_string()),
        ("RATE_LIMIT_ORDERS", "1000000/60".to_string()),
    ];
    env.extend(extra);
    shop(ShopOptions { backend: Some(backend), env, ..Default::default() }).await
}

/// POSTs an action as the admin page does; `key` `None` sends no `Idempotency-Key`.
async fn act(s: &Shop, key: Option<&str>, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let req = s.owner_post("/api/order-action", TOKEN, key, body.to_string()).header("x-real-ip", "198.51.100.9");
    crate::common::split(req.send().await.unwrap()).await
}

fn key() -> String {
    format!("k-{}", checkout::http::random_hex(8))
}

/// The `POST /v1/refunds` the emulator received.
fn stripe_refunds(s: &Shop) -> Vec<stripe_emulator::RecordedRequest> {
    s.requests_to("/v1/refunds").into_iter().filter(|r| r.method == "POST").collect()
}

/// The order as the owner's list shows it.
async fn listed(s: &Shop, session_id: &str) -> Value {
    let r = s
        .http
        .get(s.url("/api/orders?state=all&limit=100"))
        .bearer_auth(TOKEN)
        .header("x-real-ip", "198.51.100.9")
        .send()
        .await
        .unwrap();
    let (status, _, page) = crate::common::split(r).await;
    assert_eq!(status, 200, "{page}");
    page["data"].as_array().unwrap().iter().find(|o| o["session_id"] == session_id).cloned().expect("listed")
}

#[tokio::test]
async fn the_guard_refuses_before_acting() {
    let s = shop(ShopOptions::default()).await;
    let (status, headers, _) = act(&s, Some("k1"), &json!({"order": "RR-0000-00", "action": "deliver"})).await;
    assert_eq!(status, 404, "no ADMIN_TOKEN: the route does not exist");
    assert_eq!(headers["cache-control"], "no-store");

    let s = owner_shop(Backend::Sqlite, vec![]).await;
    let (_, number) = s.paid(MUG).await;
    let deliver = json!({"order": number, "action": "deliver"});
    let post = |auth: Option<&'static str>, origin: Option<String>, ctype: &'static str, key: Option<&'static str>| {
        let mut req = s
            .http
            .post(s.url("/api/order-action"))
            .header("content-type", ctype)
            .header("x-real-ip", "198.51.100.10")
            .body(deliver.to_string());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        req.send()
    };
    let bearer: &'static str = Box::leak(format!("Bearer {TOKEN}").into_boxed_str());
    let same = Some(s.site.clone());
    let json_type = "application/json";
    assert_eq!(post(None, same.clone(), json_type, Some("k")).await.unwrap().status(), 401);
    assert_eq!(post(Some("Bearer wrong"), same.clone(), json_type, Some("k")).await.unwrap().status(), 401);
    assert_eq!(post(Some(bearer), None, json_type, Some("k")).await.unwrap().status(), 403, "no Origin");
    let evil = Some("https://evil.example".to_string());
    assert_eq!(post(Some(bearer), evil, json_type, Some("k")).await.unwrap().status(), 403, "cross-site");
    assert_eq!(post(Some(bearer), same.clone(), "text/plain", Some("k")).await.unwrap().status(), 415);
    let r = post(Some(bearer), same.clone(), json_type, None).await.unwrap();
    assert_eq!(r.status(), 400, "no Idempotency-Key");
    assert!(r.text().await.unwrap().contains("Idempotency-Key"));
    let long: &'static str = Box::leak("k".repeat(256).into_boxed_str());
    assert_eq!(post(Some(bearer), same.clone(), json_type, Some(long)).await.unwrap().status(), 400);

    let bad = [
        json!({"order": number, "action": "deliver", "extra": 1}),
        json!({"order": number, "action": "refund", "amount": 0}),
        json!({"order": number, "action": "refund", "amount": -5}),
        json!({"order": number, "action": "refund", "amount": 1.5}),
        json!({"order": number, "action": "refund", "reason": "because"}),
        json!({"order": number, "action": "ship", "carrier": "UPS", "tracking_number": "1Z", "tracking_url": "http://ups.example/1Z"}),
        json!({"order": number, "action": "ship", "carrier": "UPS", "tracking_number": "1Z", "tracking_url": "javascript:alert(1)"}),
        json!({"order": number, "action": "ship", "carrier": "", "tracking_number": "1Z"}),
        json!({"order": number, "action": "note", "text": "x".repeat(501)}),
        json!({"order": number, "action": "note", "text": "bell\u{7}"}),
        json!({"order": number, "action": "explode"}),
        json!({"order": "<script>", "action": "deliver"}),
    ];
    for body in &bad {
        let (status, _, answer) = act(&s, Some(&key()), body).await;
        assert_eq!(status, 400, "{body} ⇒ {answer}");
    }
    let (status, _, _) = act(&s, Some(&key()), &json!({"order": "RR-ZZZZ-ZZ", "action": "deliver"})).await;
    assert_eq!(status, 404, "no such order");
    assert!(stripe_refunds(&s).is_empty(), "nothing reached Stripe");

    let s = owner_shop(Backend::Sqlite, vec![("RATE_LIMIT_ORDER_ACTIONS", "2/60".into())]).await;
    crate::common::within_one_window(60, 10).await;
    for _ in 0..2 {
        let r = s.http.post(s.url("/api/order-action")).bearer_auth("guess").header("x-real-ip", "198.51.100.11");
        assert_eq!(r.send().await.unwrap().status(), 401);
    }
    let (status, headers, _) = act(&s, Some("k"), &json!({"order": "RR-0000-00", "action": "deliver"})).await;
    let _ = headers;
    // `act` comes from another IP: its own bucket.
    assert_ne!(status, 429);
    let r = s.http.post(s.url("/api/order-action")).bearer_auth(TOKEN).header("x-real-ip", "198.51.100.11");
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 429, "past the limit even the right token waits");
    assert!(r.headers().contains_key("retry-after"));
}

each_backend! {
    #[tokio::test]
    async fn refunds_partial_then_the_rest_and_refuses_more(backend) {
        let s = owner_shop(backend, vec![]).await;
        let (id, number) = s.paid(MUG).await;
        let total = s.app.store.order(&id).await.unwrap().unwrap().amount_total.unwrap();
        let k1 = key();
        let (status, headers, answer) =
            act(&s, Some(&k1), &json!({"order": number, "action": "refund", "amount": 100, "reason": "requested_by_customer"})).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(answer["order_number"], number.as_str());
        assert_eq!(answer["money_state"], "partially_refunded");
        assert_eq!(answer["amount_refunded"], 100);
        assert_eq!(answer["refund"]["amount"], 100);
        assert!(answer["refund"]["id"].as_str().unwrap().starts_with("re_"));
        assert_eq!(answer["actions"].as_array().unwrap().len(), 1);
        assert_eq!(answer["actions"][0]["action"], "refund");
        assert_eq!(answer["actions"][0]["details"]["amount"], 100);
        assert_eq!(answer["actions"][0]["idempotency_key"], k1.as_str());
        let sent = stripe_refunds(&s);
        assert_eq!(sent.len(), 1);
        let param = |name: &str| sent[0].params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        assert!(param("payment_intent").unwrap().starts_with("pi_"));
        assert_eq!(param("amount").as_deref(), Some("100"));
        assert_eq!(param("reason").as_deref(), Some("requested_by_customer"));
        assert_eq!(param("metadata[order_number]").as_deref(), Some(number.as_str()));
        assert_eq!(param("metadata[idempotency_key]").as_deref(), Some(k1.as_str()));
        let stripe_key = sent[0].idempotency_key.clone().unwrap();
        assert!(stripe_key.starts_with("order-action-") && stripe_key.len() == 13 + 64, "{stripe_key}");
        assert!(!answer.to_string().contains("pi_"), "no PaymentIntent in the answer");

        // More than is left, then the rest, then nothing left.
        let (status, _, answer) = act(&s, Some(&key()), &json!({"order": number, "action": "refund", "amount": total})).await;
        assert_eq!(status, 409, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains("refundable"), "{answer}");
        let (status, _, answer) = act(&s, Some(&key()), &json!({"order": number, "action": "refund"})).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!((answer["money_state"].as_str(), answer["amount_refunded"].as_i64()), (Some("refunded"), Some(total)));
        let (status, _, answer) = act(&s, Some(&key()), &json!({"order": number, "action": "refund", "amount": 1})).await;
        assert_eq!(status, 409, "{answer}");
        assert_eq!(stripe_refunds(&s).len(), 2, "refusals never reach Stripe");
        // The webhook's events for the same refunds change nothing more: two money entries.
        s.deliveries_when("the refund events", |d| d.iter().filter(|d| d.event_type == "charge.refunded" && d.status == Some(200)).count() >= 2).await;
        let order = s.app.store.order(&id).await.unwrap().unwrap();
        assert_eq!(order.money.amount_refunded, total);
        assert_eq!(s.app.store.history(&id).await.unwrap().len(), 2);
    }
}

each_backend! {
    #[tokio::test]
    async fn the_same_key_answers_the_first_answer_and_another_body_is_409(backend) {
        let s = owner_shop(backend, vec![]).await;
        let (id, number) = s.paid(MUG).await;
        let k = key();
        let body = json!({"order": number, "action": "refund", "amount": 150});
        let (status, _, first) = act(&s, Some(&k), &body).await;
        assert_eq!(status, 200, "{first}");
        // A retry, with the fields in another order and other spacing: the same request.
        let (status, headers, again) = act(&s, Some(&k), &json!({"amount": 150, "action": "refund", "order": number})).await;
        assert_eq!(status, 200);
        assert_eq!(headers["idempotent-replayed"], "true");
        assert_eq!(again, first, "the first answer, again");
        let (status, _, answer) = act(&s, Some(&k), &json!({"order": number, "action": "refund", "amount": 151})).await;
        assert_eq!(status, 409, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains("another request"));
        assert_eq!(stripe_refunds(&s).len(), 1, "one Stripe refund");
        let row = listed(&s, &id).await;
        assert_eq!(row["actions"].as_array().unwrap().len(), 1, "one history entry: {row}");
        assert_eq!(row["amount_refunded"], 150);

        // A refusal is kept too: the same key answers the same 409.
        let k = key();
        let over = json!({"order": number, "action": "refund", "amount": 99_999_999});
        let (status, _, refused) = act(&s, Some(&k), &over).await;
        assert_eq!(status, 409);
        let (status, _, again) = act(&s, Some(&k), &over).await;
        assert_eq!((status, again), (409, refused));
    }
}

each_backend! {
    #[tokio::test]
    async fn concurrent_identical_refunds_refund_once(backend) {
        let s = owner_shop(backend, vec![]).await;
        let (id, number) = s.paid(MUG).await;
        let k = key();
        let body = json!({"order": number, "action": "refund", "amount": 120, "reason": "duplicate"});
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let req = s
                .owner_post("/api/order-action", TOKEN, Some(&k), body.to_string())
                .header("x-real-ip", "198.51.100.9");
            calls.spawn(async move { crate::common::split(req.send().await.unwrap()).await });
        }
        let answers = calls.join_all().await;
        let ok: Vec<&Value> = answers.iter().filter(|(st, _, _)| *st == 200).map(|(_, _, a)| a).collect();
        let in_progress = answers.iter().filter(|(st, _, _)| *st == 409).count();
        assert_eq!(ok.len() + in_progress, 100, "{:?}", answers.iter().map(|a| a.0).collect::<Vec<_>>());
        assert!(!ok.is_empty());
        assert!(ok.iter().all(|a| *a == ok[0]), "every answer is the first one");
        assert_eq!(stripe_refunds(&s).len(), 1, "one Stripe refund");
        let row = listed(&s, &id).await;
        assert_eq!(row["actions"].as_array().unwrap().len(), 1, "one history entry");
        assert_eq!(row["amount_refunded"], 120);
        assert_eq!(s.app.store.history(&id).await.unwrap().len(), 1, "one money change");
    }
}

each_backend! {
    #[tokio::test]
    async fn a_refund_here_and_one_in_the_dashboard_converge(backend) {
        let s = owner_shop(backend, vec![]).await;
        let (here, number) = s.paid(MUG).await;
        let (there, _) = s.paid(MUG).await;
        let (status, _, answer) = act(&s, Some(&key()), &json!({"order": number, "action": "refund", "amount": 175})).await;
        assert_eq!(status, 200, "{answer}");
        s.emu.refund(&there, Some(175)).unwrap();
        let there_order = s.wait_order(&there, |o| o.money.amount_refunded == 175).await;
        // Both refunds' events delivered (and acted on) before comparing.
        s.deliveries_when("both refunds' events", |d| {
            d.iter().filter(|d| d.event_type == "charge.refunded" && d.status == Some(200)).count() >= 2
        })
        .await;
        let here_order = s.app.store.order(&here).await.unwrap().unwrap();
        assert_eq!(here_order.money, checkout::order::Money { ..there_order.money.clone() });
        assert_eq!(here_order.money_state(), there_order.money_state());
        let steps = |h: Vec<checkout::order::HistoryEntry>| h.into_iter().map(|h| (h.from, h.to, h.amount)).collect::<Vec<_>>();
        assert_eq!(steps(s.app.store.history(&here).await.unwrap()), steps(s.app.store.history(&there).await.unwrap()));
        let (a, b) = (listed(&s, &here).await, listed(&s, &there).await);
        assert_eq!((a["money_state"].clone(), a["amount_refunded"].clone()), (b["money_state"].clone(), b["amount_refunded"].clone()));
    }
}

each_backend! {
    #[tokio::test]
    async fn disputed_and_unpaid_orders_are_refused(backend) {
        let s = owner_shop(backend, vec![]).await;
        let (id, number) = s.paid(MUG).await;
        s.emu.dispute(&id, false).unwrap();
        s.wait_order(&id, |o| o.money.dispute.is_some()).await;
        let (status, _, answer) = act(&s, Some(&key()), &json!({"order": number, "action": "refund", "amount": 100})).await;
        assert_eq!(status, 409, "{answer}");
        assert_eq!(answer["error"]["message"], "the charge has an open dispute; Stripe refuses refunds until it closes");
        let (status, _, _) = act(&s, Some(&key()), &json!({"order": number, "action": "cancel"})).await;
        assert_eq!(status, 409, "a disputed order cannot be cancelled (its refund is refused)");
        assert!(stripe_refunds(&s).is_empty());

        let abandoned = s.checkout(DIGITAL).await;
        s.expire(&abandoned).await;
        let (status, _, answer) = act(&s, Some(&key()), &json!({"order": abandoned, "action": "refund"})).await;
        assert_eq!(status, 409, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains("not paid"));
    }
}

each_backend! {
    #[tokio::test]
    async fn orders_ship_then_deliver_and_illegal_moves_say_why(backend) {
        let s = owner_shop(backend, vec![]).await;
        let (id, number) = s.paid(MUG).await;
        assert_eq!(listed(&s, &id).await["shipping_state"], "unshipped");
        let (status, _, answer) = act(&s, Some(&key()), &json!({"order": number, "action": "deliver"})).await;
        assert_eq!(status, 409);
        assert!(answer["error"]["message"].as_str().unwrap().contains("not shipped"), "{answer}");
        let ship = |n: &str| json!({"order": number, "action": "ship", "carrier": "UPS", "tracking_number": n, "tracking_url": format!("https://ups.example/track?n={n}")});
        let (status, _, answer) = act(&s, Some(&key()), &ship("1Z999")).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["shipping_state"], "shipped");
        assert_eq!(answer["money_state"], "paid", "shipping moves no money");
        assert_eq!((answer["carrier"].as_str(), answer["tracking_number"].as_str()), (Some("UPS"), Some("1Z999")));
        assert_eq!(answer["tracking_url"], "https://ups.example/track?n=1Z999");
        // The same number under a new key: an idempotent success, nothing appended.
        let (status, _, again) = act(&s, Some(&key()), &ship("1Z999")).await;
        assert_eq!(status, 200);
        assert_eq!(again["actions"].as_array().unwrap().len(), 1);
        let (status, _, answer) = act(&s, Some(&key()), &ship("1Z000")).await;
        assert_eq!(status, 409);
        assert!(answer["error"]["message"].as_str().unwrap().contains("another tracking number"), "{answer}");
        let (status, _, answer) = act(&s, Some(&key()), &json!({"order": number, "action": "cancel"})).await;
        assert_eq!(status, 409);
        assert!(answer["error"]["message"].as_str().unwrap().contains("already shipped"), "{answer}");
        let (status, _, answer) = act(&s, Some(&key()), &json!({"order": number, "action": "deliver"})).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["shipping_state"], "delivered");
        let row = listed(&s, &id).await;
        assert_eq!(row["shipping_state"], "delivered");
        assert_eq!(row["tracking_number"], "1Z999");
        let actions: Vec<&str> = row["actions"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["ship", "deliver"]);
        assert!(stripe_refunds(&s).is_empty());
    }
}

each_backend! {
    #[tokio::test]
    async fn cancelling_refunds_what_is_left_and_the_order_never_ships(backend) {
        let s = owner_shop(backend, vec![]).await;
        let (id, number) = s.paid(MUG).await;
        let total = s.app.store.order(&id).await.unwrap().unwrap().amount_total.unwrap();
        s.emu.refund(&id, Some(100)).unwrap();
        s.wait_order(&id, |o| o.money.amount_refunded == 100).await;
        let k = key();
        let (status, _, answer) = act(&s, Some(&k), &json!({"order": number, "action": "cancel"})).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["shipping_state"], "cancelled");
        assert_eq!(answer["money_state"], "refunded");
        assert_eq!(answer["amount_refunded"], total);
        assert_eq!(answer["refund"]["amount"], total - 100, "what was left");
        let sent = stripe_refunds(&s);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].params.iter().any(|(k, v)| k == "amount" && *v == (total - 100).to_string()));
        let ship = json!({"order": number, "action": "ship", "carrier": "UPS", "tracking_number": "1Z"});
        let (status, _, answer) = act(&s, Some(&key()), &ship).await;
        assert_eq!(status, 409);
        assert!(answer["error"]["message"].as_str().unwrap().contains("cancelled"), "{answer}");
        // Cancelling again (another key): nothing more to do, nothing refunded.
        let (status, _, answer) = act(&s, Some(&key()), &json!({"order": number, "action": "cancel"})).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(stripe_refunds(&s).len(), 1);
        assert_eq!(listed(&s, &id).await["actions"].as_array().unwrap().len(), 1);
    }
}

each_backend! {
    #[tokio::test]
    async fn digital_orders_are_delivered_at_payment(backend) {
        let s = owner_shop(backend, vec![]).await;
        let (id, number) = s.paid(DIGITAL).await;
        assert_eq!(listed(&s, &id).await["shipping_state"], "delivered");
        let ship = json!({"order": number, "action": "ship", "carrier": "UPS", "tracking_number": "1Z"});
        let (status, _, answer) = act(&s, Some(&key()), &ship).await;
        assert_eq!(status, 409);
        assert!(answer["error"]["message"].as_str().unwrap().contains("digital"), "{answer}");
        let (status, _, _) = act(&s, Some(&key()), &json!({"order": number, "action": "cancel"})).await;
        assert_eq!(status, 409);
        // A refund is still the owner's to make.
        let (status, _, answer) = act(&s, Some(&key()), &json!({"order": number, "action": "refund"})).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!((answer["money_state"].as_str(), answer["shipping_state"].as_str()), (Some("refunded"), Some("delivered")));
    }
}

each_backend! {
    #[tokio::test]
    async fn notes_are_short_plain_and_private_to_the_owner(backend) {
        let s = owner_shop(backend, vec![]).await;
        let (id, number) = s.paid(MUG).await;
        let (status, _, answer) = act(&s, Some(&key()), &json!({"order": number, "action": "note", "text": "  gift wrap, please  "})).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["note"], "gift wrap, please");
        assert_eq!(answer["shipping_state"], "unshipped", "a note moves nothing");
        assert_eq!(listed(&s, &id).await["note"], "gift wrap, please");
        let (status, _, _) = act(&s, Some(&key()), &json!({"order": number, "action": "note", "text": "é".repeat(500)})).await;
        assert_eq!(status, 200, "500 characters is fine");
        let (status, _, answer) = act(&s, Some(&key()), &json!({"order": number, "action": "note", "text": ""})).await;
        assert_eq!(status, 200);
        assert_eq!(answer["note"], Value::Null, "an empty note clears it");
        // The shopper's status page never shows it.
        let (_, _, status_page) = s.get(&format!("/api/checkout-status?session_id={id}")).await;
        assert!(!status_page.to_string().contains("gift wrap"));
    }
}
