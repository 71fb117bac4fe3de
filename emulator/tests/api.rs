//! `/v1` API behaviour: auth, validation, idempotency, promotion codes, request log, faults.

mod common;
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};
use stripe_emulator::ApiFault;

fn set(pairs: &mut Vec<(String, String)>, k: &str, v: &str) {
    pairs.retain(|(x, _)| x != k);
    pairs.push((k.to_string(), v.to_string()));
}
fn del(pairs: &mut Vec<(String, String)>, prefix: &str) {
    pairs.retain(|(x, _)| !x.starts_with(prefix));
}

#[tokio::test]
async fn auth_missing_invalid_live_and_request_id() {
    let emu = emu().await;
    let c = client();
    let url = format!("{}/v1/promotion_codes", emu.base_url());
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["request-id"].to_str().unwrap().starts_with("req_"));
    let j: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(j["error"]["type"], "invalid_request_error");
    assert!(j["error"]["message"].as_str().unwrap().starts_with("You did not provide an API key"));
    for bad in [
        "Bearer pk_test_abcd1234",
        "Bearer sk_test_",
        "Basic abc",
        "Bearer sk_live_zzzzzzzzabcd",
        "Bearer rk_live_zzzzzzzzabcd",
    ] {
        let r = c.get(&url).header("Authorization", bad).send().await.unwrap();
        assert_eq!(r.status(), 401, "{bad}");
        let t = r.text().await.unwrap();
        assert!(t.contains("Invalid API Key provided"), "{bad}: {t}");
        assert!(!t.contains("zzzzzzzzabcd"), "key must be redacted: {t}");
    }
    for good in ["Bearer sk_test_x", "Bearer rk_test_abc"] {
        let r = c.get(&url).header("Authorization", good).send().await.unwrap();
        assert_eq!(r.status(), 200, "{good}");
    }
    let r = get(&c, &format!("{}/v1/nope", emu.base_url())).await;
    assert_eq!(r.status, 404);
    assert!(r.header("request-id").is_some());
}

#[tokio::test]
async fn validation_rules() {
    let emu = emu().await;
    let c = client();
    type Case = (&'static str, Box<dyn Fn(&mut Vec<(String, String)>)>, u16, Option<&'static str>, &'static str);
    let long201 = "x".repeat(201);
    let cases: Vec<Case> = vec![
        ("no mode", Box::new(|p| del(p, "mode")), 400, Some("parameter_missing"), "mode"),
        ("subscription", Box::new(|p| set(p, "mode", "subscription")), 400, None, "mode"),
        ("bad mode", Box::new(|p| set(p, "mode", "bogus")), 400, None, "mode"),
        ("no line items", Box::new(|p| del(p, "line_items")), 400, Some("parameter_missing"), "line_items"),
        (
            "amount not int",
            Box::new(|p| set(p, "line_items[0][price_data][unit_amount]", "12.5")),
            400,
            Some("parameter_invalid_integer"),
            "line_items[0][price_data][unit_amount]",
        ),
        (
            "amount negative",
            Box::new(|p| set(p, "line_items[0][price_data][unit_amount]", "-5")),
            400,
            Some("parameter_invalid_integer"),
            "line_items[0][price_data][unit_amount]",
        ),
        (
            "amount too big",
            Box::new(|p| set(p, "line_items[0][price_data][unit_amount]", "100000000")),
            400,
            Some("parameter_invalid_integer"),
            "line_items[0][price_data][unit_amount]",
        ),
        (
            "amount missing",
            Box::new(|p| del(p, "line_items[0][price_data][unit_amount]")),
            400,
            Some("parameter_missing"),
            "line_items[0][price_data][unit_amount]",
        ),
        (
            "name empty",
            Box::new(|p| set(p, "line_items[0][price_data][product_data][name]", "")),
            400,
            Some("parameter_invalid_empty"),
            "line_items[0][price_data][product_data][name]",
        ),
        (
            "name missing",
            Box::new(|p| del(p, "line_items[0][price_data][product_data]")),
            400,
            Some("parameter_missing"),
            "line_items[0][price_data][product_data]",
        ),
        ("quantity 0", Box::new(|p| set(p, "line_items[0][quantity]", "0")), 400, None, "line_items[0][quantity]"),
        (
            "quantity missing",
            Box::new(|p| del(p, "line_items[0][quantity]")),
            400,
            Some("parameter_missing"),
            "line_items[0][quantity]",
        ),
        (
            "quantity not int",
            Box::new(|p| set(p, "line_items[0][quantity]", "two")),
            400,
            Some("parameter_invalid_integer"),
            "line_items[0][quantity]",
        ),
        (
            "currency upper",
            Box::new(|p| set(p, "line_items[0][price_data][currency]", "USD")),
            400,
            None,
            "line_items[0][price_data][currency]",
        ),
        (
            "currency unknown",
            Box::new(|p| set(p, "line_items[0][price_data][currency]", "xyz")),
            400,
            None,
            "line_items[0][price_data][currency]",
        ),
        (
            "unknown price",
            Box::new(|p| {
                del(p, "line_items[0][price_data]");
                set(p, "line_items[0][price]", "price_nope");
            }),
            400,
            Some("resource_missing"),
            "line_items[0][price]",
        ),
        (
            "mixed currency",
            Box::new(|p| {
                set(p, "line_items[1][price_data][currency]", "eur");
                set(p, "line_items[1][price_data][unit_amount]", "100");
                set(p, "line_items[1][price_data][product_data][name]", "Euro thing");
                set(p, "line_items[1][quantity]", "1");
            }),
            400,
            None,
            "line_items[1][price_data][currency]",
        ),
        (
            "too many lines",
            Box::new(|p| {
                for i in 1..=100 {
                    set(p, &format!("line_items[{i}][price]"), "price_emu_mug");
                    set(p, &format!("line_items[{i}][quantity]"), "1");
                }
            }),
            400,
            None,
            "line_items",
        ),
        ("legacy ui_mode hosted", Box::new(|p| set(p, "ui_mode", "hosted")), 400, None, "ui_mode"),
        ("legacy ui_mode embedded", Box::new(|p| set(p, "ui_mode", "embedded")), 400, None, "ui_mode"),
        ("hosted with return_url", Box::new(|p| set(p, "return_url", "https://shop.test/r")), 400, None, "return_url"),
        (
            "hosted without success_url",
            Box::new(|p| del(p, "success_url")),
            400,
            Some("parameter_missing"),
            "success_url",
        ),
        (
            "bad success_url",
            Box::new(|p| set(p, "success_url", "shop.test/ok")),
            400,
            Some("url_invalid"),
            "success_url",
        ),
        (
            "bad cancel_url",
            Box::new(|p| set(p, "cancel_url", "javascript:alert(1)")),
            400,
            Some("url_invalid"),
            "cancel_url",
        ),
        (
            "embedded without return_url",
            Box::new(|p| {
                del(p, "success_url");
                del(p, "cancel_url");
                set(p, "ui_mode", "embedded_page");
            }),
            400,
            Some("parameter_missing"),
            "return_url",
        ),
        (
            "embedded with success_url",
            Box::new(|p| {
                del(p, "cancel_url");
                set(p, "ui_mode", "embedded_page");
                set(p, "return_url", "https://shop.test/r");
            }),
            400,
            None,
            "success_url",
        ),
        (
            "payment_method_types",
            Box::new(|p| set(p, "payment_method_types[0]", "card")),
            400,
            Some("parameter_unknown"),
            "payment_method_types",
        ),
        ("unknown top", Box::new(|p| set(p, "foo", "bar")), 400, Some("parameter_unknown"), "foo"),
        (
            "unknown nested",
            Box::new(|p| set(p, "line_items[0][foo]", "1")),
            400,
            Some("parameter_unknown"),
            "line_items[0][foo]",
        ),
        (
            "unknown price_data key",
            Box::new(|p| set(p, "line_items[0][price_data][recurring][interval]", "month")),
            400,
            Some("parameter_unknown"),
            "line_items[0][price_data][recurring]",
        ),
        (
            "promo and allow",
            Box::new(|p| {
                set(p, "allow_promotion_codes", "true");
                set(p, "discounts[0][promotion_code]", "promo_emu_save10");
            }),
            400,
            Some("parameters_exclusive"),
            "discounts",
        ),
        (
            "two discounts",
            Box::new(|p| {
                set(p, "discounts[0][promotion_code]", "promo_emu_save10");
                set(p, "discounts[1][promotion_code]", "promo_emu_fiveoff");
            }),
            400,
            None,
            "discounts",
        ),
        (
            "unknown promo",
            Box::new(|p| set(p, "discounts[0][promotion_code]", "promo_nope")),
            400,
            Some("resource_missing"),
            "discounts[0][promotion_code]",
        ),
        (
            "bad allow_promotion_codes",
            Box::new(|p| set(p, "allow_promotion_codes", "yes")),
            400,
            None,
            "allow_promotion_codes",
        ),
        (
            "long client_reference_id",
            Box::new(move |p| set(p, "client_reference_id", &long201)),
            400,
            None,
            "client_reference_id",
        ),
        (
            "metadata 51 keys",
            Box::new(|p| {
                for i in 0..51 {
                    set(p, &format!("metadata[k{i}]"), "v");
                }
            }),
            400,
            None,
            "metadata",
        ),
        (
            "metadata long key",
            Box::new(|p| set(p, &format!("metadata[{}]", "k".repeat(41)), "v")),
            400,
            None,
            "metadata[kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk]",
        ),
        ("metadata long value", Box::new(|p| set(p, "metadata[k]", &"v".repeat(501))), 400, None, "metadata[k]"),
        (
            "bad email",
            Box::new(|p| set(p, "customer_email", "not-an-email")),
            400,
            Some("email_invalid"),
            "customer_email",
        ),
        ("bad expand", Box::new(|p| set(p, "expand[0]", "customer")), 400, None, "expand[0]"),
    ];
    for (name, f, status, code, param) in cases {
        let mut pairs = base_session();
        f(&mut pairs);
        let r = create(&c, &emu, &pairs).await;
        assert_eq!(r.status, status, "{name}: {}", r.text);
        assert_eq!(r.json["error"]["type"], "invalid_request_error", "{name}");
        assert_eq!(r.json["error"]["code"].as_str(), code, "{name}: {}", r.text);
        assert_eq!(r.json["error"]["param"], param, "{name}: {}", r.text);
        assert!(r.json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{name}");
        if code == Some("parameter_unknown") {
            assert_eq!(r.json["error"]["message"], format!("Received unknown parameter: {param}"));
        }
    }
    // each failing promotion code rule
    for (promo, why) in [
        ("promo_emu_expired", "expired"),
        ("promo_emu_exhausted", "max redemptions"),
        ("promo_emu_inactive", "inactive"),
        ("promo_emu_coupongone", "invalid coupon"),
        ("promo_emu_euros", "currency"),
        ("promo_emu_bigspend", "minimum amount"),
        ("promo_emu_productonly", "applies_to"),
        ("promo_emu_firstonly", "first time, no email"),
    ] {
        let mut pairs = base_session();
        set(&mut pairs, "discounts[0][promotion_code]", promo);
        let r = create(&c, &emu, &pairs).await;
        assert_eq!(r.status, 400, "{why}: {}", r.text);
        assert_eq!(r.json["error"]["param"], "discounts[0][promotion_code]", "{why}");
    }
    assert!(emu.session("cs_test_nope").is_none());
    let list = get(&c, &format!("{}/v1/checkout/sessions", emu.base_url())).await;
    assert_eq!(list.json["data"].as_array().unwrap().len(), 0, "no invalid request may create a session");
}

#[tokio::test]
async fn create_shapes_hosted_and_embedded() {
    let emu = emu().await;
    let c = client();
    let mut pairs = base_session();
    set(&mut pairs, "client_reference_id", "order_42");
    set(&mut pairs, "metadata[order_id]", "42");
    set(&mut pairs, "customer_email", "buyer@example.com");
    let r = create(&c, &emu, &pairs).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let s = &r.json;
    let id = s["id"].as_str().unwrap();
    assert!(
        id.starts_with("cs_test_") && id.len() == 8 + 58 && id[8..].chars().all(|c| c.is_ascii_alphanumeric()),
        "{id}"
    );
    assert_eq!(s["object"], "checkout.session");
    assert_eq!(s["url"], format!("{}/c/pay/{id}", emu.base_url()));
    assert!(s["client_secret"].is_null());
    assert_eq!(s["ui_mode"], "hosted_page");
    assert_eq!(s["mode"], "payment");
    assert_eq!(s["amount_subtotal"], 4000);
    assert_eq!(s["amount_total"], 4000);
    assert_eq!(s["total_details"]["amount_discount"], 0);
    assert_eq!(s["discounts"], serde_json::json!([]));
    assert_eq!(s["currency"], "usd");
    assert_eq!(s["payment_status"], "unpaid");
    assert_eq!(s["status"], "open");
    assert_eq!(s["metadata"]["order_id"], "42");
    assert_eq!(s["client_reference_id"], "order_42");
    assert_eq!(s["customer_email"], "buyer@example.com");
    assert_eq!(s["success_url"], "https://shop.test/success?session_id={CHECKOUT_SESSION_ID}");
    assert_eq!(s["cancel_url"], "https://shop.test/cart");
    assert!(s["return_url"].is_null());
    assert_eq!(s["livemode"], false);
    assert_eq!(s["expires_at"].as_i64().unwrap() - s["created"].as_i64().unwrap(), 86400);
    assert!(s["customer_details"].is_null());
    assert!(s["payment_intent"].is_null());
    assert!(s.get("line_items").is_none());

    let emb = p(&[
        ("mode", "payment"),
        ("ui_mode", "embedded_page"),
        ("return_url", "https://shop.test/return?session_id={CHECKOUT_SESSION_ID}"),
        ("line_items[0][price]", "price_emu_tshirt"),
        ("line_items[0][quantity]", "1"),
    ]);
    let r = create(&c, &emu, &emb).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json["id"].as_str().unwrap();
    assert!(r.json["url"].is_null());
    assert!(r.json["client_secret"].as_str().unwrap().starts_with(&format!("{id}_secret_")));
    assert_eq!(r.json["amount_total"], 2000);
    assert_eq!(r.json["ui_mode"], "embedded_page");
}

#[tokio::test]
async fn retrieve_expand_line_items_and_expire() {
    let emu = emu().await;
    let c = client();
    let mut pairs = base_session();
    set(&mut pairs, "line_items[0][price_data][product_data][description]", "Organic cotton");
    set(&mut pairs, "line_items[1][price]", "price_emu_mug");
    set(&mut pairs, "line_items[1][quantity]", "3");
    let r = create(&c, &emu, &pairs).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    let b = emu.base_url();
    let r = get(&c, &format!("{b}/v1/checkout/sessions/{id}")).await;
    assert_eq!(r.status, 200);
    assert!(r.json.get("line_items").is_none());
    let r = get(&c, &format!("{b}/v1/checkout/sessions/{id}?expand[]=line_items")).await;
    let li = &r.json["line_items"];
    assert_eq!(li["object"], "list");
    assert_eq!(li["has_more"], false);
    assert_eq!(li["url"], format!("/v1/checkout/sessions/{id}/line_items"));
    let d = li["data"].as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert!(d[0]["id"].as_str().unwrap().starts_with("li_"));
    assert_eq!(d[0]["object"], "item");
    assert_eq!(d[0]["description"], "Tee");
    assert_eq!(d[0]["quantity"], 2);
    assert_eq!(d[0]["amount_subtotal"], 4000);
    assert_eq!(d[0]["price"]["unit_amount"], 2000);
    assert_eq!(d[0]["price"]["currency"], "usd");
    assert!(d[0]["price"]["product"].as_str().unwrap().starts_with("prod_"));
    assert_eq!(d[1]["description"], "Mug");
    assert_eq!(d[1]["amount_total"], 3600);
    assert_eq!(r.json["amount_total"], 7600);
    // stripe-node style expand[0]=
    let r2 = get(&c, &format!("{b}/v1/checkout/sessions/{id}?expand[0]=line_items.data.price.product")).await;
    assert_eq!(r2.json["line_items"]["data"][0]["price"]["product"]["description"], "Organic cotton");
    let r = get(&c, &format!("{b}/v1/checkout/sessions/{id}/line_items")).await;
    assert_eq!(r.json["data"].as_array().unwrap().len(), 2);
    let r = get(&c, &format!("{b}/v1/checkout/sessions/cs_test_missing")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json["error"]["code"], "resource_missing");
    assert_eq!(r.json["error"]["param"], "id");
    let r = get(&c, &format!("{b}/v1/checkout/sessions/{id}?bogus=1")).await;
    assert_eq!(r.json["error"]["code"], "parameter_unknown");
    // expire
    let auth = format!("Bearer {KEY}");
    let r = post_form(&c, &format!("{b}/v1/checkout/sessions/{id}/expire"), &[], &[("Authorization", &auth)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "expired");
    let r = post_form(&c, &format!("{b}/v1/checkout/sessions/{id}/expire"), &[], &[("Authorization", &auth)]).await;
    assert_eq!(r.status, 400);
    let ev = emu.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["type"], "checkout.session.expired");
    assert_eq!(ev[0]["data"]["object"]["id"], id.as_str());
    let r = get(&c, &format!("{b}/v1/events/{}", ev[0]["id"].as_str().unwrap())).await;
    assert_eq!(r.json["type"], "checkout.session.expired");
    let page = get(&c, &format!("{b}/c/pay/{id}")).await.text;
    assert!(page.contains("expired") && !page.contains("id=\"pay\""));
}

#[tokio::test]
async fn idempotency_replay_and_mismatch() {
    let emu = emu().await;
    let c = client();
    let url = format!("{}/v1/checkout/sessions", emu.base_url());
    let auth = format!("Bearer {KEY}");
    let h = [("Authorization", auth.as_str()), ("Idempotency-Key", "key-1")];
    let a = post_form(&c, &url, &base_session(), &h).await;
    assert_eq!(a.status, 200);
    assert!(a.header("idempotent-replayed").is_none());
    let b = post_form(&c, &url, &base_session(), &h).await;
    assert_eq!(b.status, 200);
    assert_eq!(b.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(a.text, b.text, "replay must return the stored body");
    let mut other = base_session();
    set(&mut other, "line_items[0][quantity]", "3");
    let m = post_form(&c, &url, &other, &h).await;
    assert_eq!(m.status, 400);
    assert_eq!(m.json["error"]["type"], "idempotency_error");
    assert!(
        m.json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Keys for idempotent requests can only be used with the same parameters")
    );
    // same key under another API key is a different scope
    let other_key = [("Authorization", "Bearer sk_test_other"), ("Idempotency-Key", "key-1")];
    let o = post_form(&c, &url, &other, &other_key).await;
    assert_eq!(o.status, 200);
    assert!(o.header("idempotent-replayed").is_none());
    let long = "k".repeat(256);
    let l =
        post_form(&c, &url, &base_session(), &[("Authorization", auth.as_str()), ("Idempotency-Key", long.as_str())])
            .await;
    assert_eq!(l.status, 400);
    let list = get(&c, &url).await;
    assert_eq!(list.json["data"].as_array().unwrap().len(), 2);
    // injected faults are not stored
    emu.set_api_fault(ApiFault { status: Some(500), delay_ms: None, count: 1, path: None });
    let h2 = [("Authorization", auth.as_str()), ("Idempotency-Key", "key-2")];
    let f = post_form(&c, &url, &base_session(), &h2).await;
    assert_eq!(f.status, 500);
    let ok = post_form(&c, &url, &base_session(), &h2).await;
    assert_eq!(ok.status, 200);
    assert!(ok.header("idempotent-replayed").is_none());
}

#[tokio::test]
async fn idempotency_key_in_progress_answers_409() {
    let emu = emu().await;
    let c = client();
    let url = format!("{}/v1/checkout/sessions", emu.base_url());
    let auth = format!("Bearer {KEY}");
    let h = [("Authorization", auth.as_str()), ("Idempotency-Key", "key-slow")];
    // The first request stalls for 1.5 s; a retry with its key meanwhile is refused.
    emu.set_api_fault(ApiFault { status: None, delay_ms: Some(1500), count: 1, path: None });
    let first = {
        let (c, url, auth) = (c.clone(), url.clone(), auth.clone());
        tokio::spawn(async move {
            let h = [("Authorization", auth.as_str()), ("Idempotency-Key", "key-slow")];
            post_form(&c, &url, &base_session(), &h).await
        })
    };
    // (The request log is written when a request ends, so give the first one a head start.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!first.is_finished());
    let busy = post_form(&c, &url, &base_session(), &h).await;
    assert_eq!(busy.status, 409, "{}", busy.text);
    assert_eq!(busy.json["error"]["type"], "idempotency_error");
    assert_eq!(busy.header("stripe-should-retry").as_deref(), Some("true"));
    let first = first.await.unwrap();
    assert_eq!(first.status, 200, "{}", first.text);
    // Once it finished, the same key replays its answer: one session in all.
    let again = post_form(&c, &url, &base_session(), &h).await;
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(again.json["id"], first.json["id"]);
    assert_eq!(get(&c, &url).await.json["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn promotion_codes_list_filters_and_discounts() {
    let emu = emu().await;
    let c = client();
    let b = emu.base_url();
    let r = get(&c, &format!("{b}/v1/promotion_codes?code=save10&active=true&limit=1")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["object"], "list");
    assert_eq!(r.json["url"], "/v1/promotion_codes");
    let d = r.json["data"].as_array().unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["code"], "SAVE10");
    assert_eq!(d[0]["object"], "promotion_code");
    assert_eq!(d[0]["promotion"]["type"], "coupon");
    assert_eq!(d[0]["promotion"]["coupon"], "EMU10PCT");
    let r = get(&c, &format!("{b}/v1/promotion_codes?code=SaVe10&expand[]=data.promotion.coupon")).await;
    let cp = &r.json["data"][0]["promotion"]["coupon"];
    assert_eq!(cp["object"], "coupon");
    assert_eq!(cp["percent_off"], 10.0);
    assert_eq!(cp["valid"], true);
    let r = get(&c, &format!("{b}/v1/promotion_codes?code=inactive&active=true")).await;
    assert_eq!(r.json["data"].as_array().unwrap().len(), 0);
    let r = get(&c, &format!("{b}/v1/promotion_codes?active=false")).await;
    let codes: Vec<&str> = r.json["data"].as_array().unwrap().iter().map(|x| x["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["INACTIVE"]);
    let r = get(&c, &format!("{b}/v1/promotion_codes?limit=2")).await;
    assert_eq!(r.json["data"].as_array().unwrap().len(), 2);
    assert_eq!(r.json["has_more"], true);
    let r = get(&c, &format!("{b}/v1/promotion_codes?limit=abc")).await;
    assert_eq!(r.json["error"]["code"], "parameter_invalid_integer");
    let r = get(&c, &format!("{b}/v1/promotion_codes?active=maybe")).await;
    assert_eq!(r.json["error"]["param"], "active");
    let r = get(&c, &format!("{b}/v1/promotion_codes?foo=1")).await;
    assert_eq!(r.json["error"]["code"], "parameter_unknown");

    // discounts applied
    let with = |promo: &str, extra: &[(&str, &str)]| {
        let mut pairs = base_session();
        set(&mut pairs, "discounts[0][promotion_code]", promo);
        for (k, v) in extra {
            set(&mut pairs, k, v);
        }
        pairs
    };
    let r = create(&c, &emu, &with("promo_emu_save10", &[])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["amount_subtotal"], 4000);
    assert_eq!(r.json["amount_total"], 3600);
    assert_eq!(r.json["total_details"]["amount_discount"], 400);
    assert_eq!(r.json["discounts"], serde_json::json!([{"coupon": null, "promotion_code": "promo_emu_save10"}]));
    let save10_session = r.json["id"].as_str().unwrap().to_string();
    let r = create(&c, &emu, &with("promo_emu_fiveoff", &[])).await;
    assert_eq!(r.json["amount_total"], 3500);
    let r = create(&c, &emu, &with("promo_emu_bigspend", &[("line_items[0][quantity]", "6")])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["amount_total"], 10800);
    let r = create(&c, &emu, &with("promo_emu_euros", &[("line_items[0][price_data][currency]", "eur")])).await;
    assert_eq!(r.json["amount_total"], 3500);
    let r = create(
        &c,
        &emu,
        &with("promo_emu_productonly", &[("line_items[1][price]", "price_emu_mug"), ("line_items[1][quantity]", "1")]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["total_details"]["amount_discount"], 600);
    assert_eq!(r.json["amount_total"], 4000 + 1200 - 600);
    let id = r.json["id"].as_str().unwrap();
    let li = get(&c, &format!("{b}/v1/checkout/sessions/{id}/line_items")).await;
    assert_eq!(li.json["data"][0]["amount_discount"], 0);
    assert_eq!(li.json["data"][1]["amount_discount"], 600);
    let r = create(
        &c,
        &emu,
        &with("promo_emu_save10", &[])
            .into_iter()
            .filter(|(k, _)| !k.starts_with("discounts"))
            .chain([("discounts[0][coupon]".to_string(), "EMU5USD".to_string())])
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(r.json["amount_total"], 3500);
    assert_eq!(r.json["discounts"][0]["coupon"], "EMU5USD");
    // first-time: ok for a new email, refused after that email paid
    let r = create(&c, &emu, &with("promo_emu_firstonly", &[("customer_email", "new@example.com")])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    emu.pay(r.json["id"].as_str().unwrap(), "pay").unwrap();
    let r = create(&c, &emu, &with("promo_emu_firstonly", &[("customer_email", "new@example.com")])).await;
    assert_eq!(r.status, 400);
    // paying increments times_redeemed
    emu.pay(&save10_session, "pay").unwrap();
    let r = get(&c, &format!("{b}/v1/promotion_codes/promo_emu_save10")).await;
    assert_eq!(r.json["times_redeemed"], 1);
}

#[tokio::test]
async fn request_log_records_details_and_connection_reuse() {
    let emu = emu().await;
    let c = client();
    let url = format!("{}/v1/checkout/sessions", emu.base_url());
    let auth = format!("Bearer {KEY}");
    post_form(
        &c,
        &url,
        &base_session(),
        &[
            ("Authorization", &auth),
            ("Idempotency-Key", "idem-a"),
            ("Stripe-Version", "2026-10-28.endive"),
            ("User-Agent", "test-agent/1"),
        ],
    )
    .await;
    get(&c, &format!("{}/v1/promotion_codes?code=SAVE10", emu.base_url())).await;
    c.get(&url).send().await.unwrap();
    let log = emu.requests();
    assert_eq!(log.len(), 3);
    let r = &log[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/checkout/sessions");
    assert_eq!(r.params, base_session());
    assert_eq!(r.idempotency_key.as_deref(), Some("idem-a"));
    assert_eq!(r.stripe_version.as_deref(), Some("2026-10-28.endive"));
    assert_eq!(r.user_agent.as_deref(), Some("test-agent/1"));
    assert!(r.authorization_present);
    assert_eq!(r.key_last4.as_deref(), Some("1234"));
    assert_eq!(r.status, 200);
    assert!(r.fault.is_none());
    assert_eq!(log[1].query.as_deref(), Some("code=SAVE10"));
    assert_eq!(log[1].params, p(&[("code", "SAVE10")]));
    assert!(!log[2].authorization_present);
    assert_eq!(log[2].status, 401);
    assert_eq!(log[0].remote_addr.port(), log[1].remote_addr.port(), "pooled client reuses its connection");
    let other = client();
    get(&other, &format!("{}/v1/promotion_codes", emu.base_url())).await;
    assert_ne!(emu.requests()[3].remote_addr.port(), log[0].remote_addr.port());
    let j: Value = get(&c, &format!("{}/_emulator/requests", emu.base_url())).await.json;
    assert_eq!(j.as_array().unwrap().len(), 4);
    assert!(!j.to_string().contains(KEY), "the API key is never stored");
}

#[tokio::test]
async fn api_faults_500_429_slow() {
    let emu = emu().await;
    let c = client();
    let b = emu.base_url();
    let url = format!("{b}/v1/promotion_codes");
    let r = post_json(&c, &format!("{b}/_emulator/faults"), r#"{"api":{"status":500,"count":2}}"#).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for _ in 0..2 {
        let r = get(&c, &url).await;
        assert_eq!(r.status, 500);
        assert_eq!(r.json["error"]["type"], "api_error");
        assert_eq!(r.header("stripe-should-retry").as_deref(), Some("true"));
        assert!(r.header("request-id").is_some());
    }
    assert_eq!(get(&c, &url).await.status, 200);
    post_json(&c, &format!("{b}/_emulator/faults"), r#"{"api":{"status":429,"count":1}}"#).await;
    let r = get(&c, &url).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json["error"]["code"], "rate_limit");
    assert_eq!(r.json["error"]["type"], "invalid_request_error");
    assert_eq!(get(&c, &url).await.status, 200);
    post_json(&c, &format!("{b}/_emulator/faults"), r#"{"api":{"delay_ms":1500,"count":1}}"#).await;
    let t = Instant::now();
    let r = get(&c, &url).await;
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(1500));
    // Only the next request is slowed (a generous bound: this only has to tell
    // "not delayed" from 1.5 s on a loaded machine).
    let t = Instant::now();
    get(&c, &url).await;
    assert!(t.elapsed() < Duration::from_millis(1000));
    let faults: Vec<Option<String>> = emu.requests().iter().map(|r| r.fault.clone()).collect();
    assert_eq!(
        faults,
        [
            Some("status_500".into()),
            Some("status_500".into()),
            None,
            Some("status_429".into()),
            None,
            Some("slow".into()),
            None
        ]
    );
    post_json(&c, &format!("{b}/_emulator/faults"), r#"{"api":{"status":500,"count":5}}"#).await;
    post_json(&c, &format!("{b}/_emulator/reset-faults"), "").await;
    assert_eq!(get(&c, &url).await.status, 200);
    assert!(emu.faults().api.is_none());
}

#[tokio::test]
async fn an_api_fault_with_a_path_affects_and_counts_only_that_path() {
    let emu = emu().await;
    let c = client();
    let b = emu.base_url();
    let fault = r#"{"api":{"status":500,"count":2,"path":"/v1/events"}}"#;
    assert_eq!(post_json(&c, &format!("{b}/_emulator/faults"), fault).await.status, 200);
    for _ in 0..3 {
        assert_eq!(get(&c, &format!("{b}/v1/promotion_codes")).await.status, 200, "another path: untouched");
    }
    assert_eq!(emu.faults().api.map(|f| f.count), Some(2), "and not counted");
    assert_eq!(get(&c, &format!("{b}/v1/events")).await.status, 500);
    assert_eq!(get(&c, &format!("{b}/v1/events/evt_missing")).await.status, 500, "a prefix");
    assert_ne!(get(&c, &format!("{b}/v1/events")).await.status, 500, "two uses, then gone");
    assert!(emu.faults().api.is_none());
}

/// DNS rebinding: only requests addressed to localhost / a loopback IP are answered
/// (the configured `public_url`'s host too, but never for `/_emulator/*`).
#[tokio::test]
async fn answers_only_local_host_headers() {
    let emu = stripe_emulator::Emulator::start(stripe_emulator::Options {
        public_url: Some("https://pay.tunnel.example".into()),
        ..fast_opts()
    })
    .await
    .unwrap();
    let c = client();
    let port = emu.base_url().rsplit(':').next().unwrap().to_string();
    let cases = [
        ("evil.example", "/", 403),
        ("evil.example", "/_emulator/requests", 403),
        ("evil.example", "/v1/promotion_codes", 403),
        ("localhost.evil.example", "/", 403),
        ("pay.tunnel.example", "/_emulator/requests", 403),
        ("pay.tunnel.example", "/", 200),
        ("localhost", "/_emulator/requests", 200),
        ("127.0.0.1", "/_emulator/requests", 200),
        ("127.0.0.1", "/", 200),
    ];
    for (host, path, expect) in cases {
        let host = if host == "pay.tunnel.example" { host.to_string() } else { format!("{host}:{port}") };
        let r = c.get(format!("{}{path}", emu.base_url())).header("host", &host).send().await.unwrap();
        assert_eq!(r.status(), expect, "GET {path} with Host {host}");
    }
}

/// POSTs `body` to a control route with the given headers (no `Content-Type` unless given);
/// returns the status.
async fn control_post(c: &reqwest::Client, url: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    let mut rq = c.post(url).body(body.to_string());
    for (k, v) in headers {
        rq = rq.header(*k, *v);
    }
    rq.send().await.unwrap().status().as_u16()
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// A cross-site form POST (`text/plain`, form-urlencoded, or no body and no type at all) to
/// the control routes is refused with 415 and changes nothing; JSON still works.
#[tokio::test]
async fn control_posts_need_a_json_content_type() {
    let emu = emu().await;
    let c = client();
    let b = emu.base_url();
    emu.set_webhook_url(Some("http://127.0.0.1:9/hook".into()));
    let steal = r#"{"url":"http://127.0.0.1:8/steal"}"#;
    let fault = r#"{"api":{"status":500,"count":5},"webhooks":{"drop":true}}"#;
    for ct in [Some("text/plain"), Some("text/plain;charset=UTF-8"), Some("application/x-www-form-urlencoded"), None] {
        let h: Vec<(&str, &str)> = ct.map(|ct| ("content-type", ct)).into_iter().collect();
        assert_eq!(control_post(&c, &format!("{b}/_emulator/webhook-url"), &h, steal).await, 415, "{ct:?}");
        assert_eq!(control_post(&c, &format!("{b}/_emulator/faults"), &h, fault).await, 415, "{ct:?}");
        assert_eq!(control_post(&c, &format!("{b}/_emulator/reset-faults"), &h, "").await, 415, "{ct:?}");
    }
    assert_eq!(emu.webhook_url().as_deref(), Some("http://127.0.0.1:9/hook"));
    let faults = get(&c, &format!("{b}/_emulator/faults")).await;
    assert_eq!(faults.status, 200);
    assert_eq!(faults.json["api"], Value::Null, "{}", faults.text);
    assert_eq!(faults.json["webhooks"]["drop"], false, "{}", faults.text);
    // An empty body without a type is refused too (flush, clear-logs, resend took one).
    emu.set_api_fault(ApiFault { status: Some(500), count: 1, ..Default::default() });
    assert_eq!(control_post(&c, &format!("{b}/_emulator/reset-faults"), &[], "").await, 415);
    assert!(emu.faults().api.is_some(), "a refused reset-faults must not reset");
    // The same requests as JSON, from this machine, do their work.
    let r = post_json(&c, &format!("{b}/_emulator/faults"), fault).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(emu.faults().api.unwrap().count, 5);
    assert!(emu.faults().webhooks.drop);
    assert_eq!(control_post(&c, &format!("{b}/_emulator/reset-faults"), &[JSON], "{}").await, 200);
    assert!(emu.faults().api.is_none() && !emu.faults().webhooks.drop);
    let r = post_json(&c, &format!("{b}/_emulator/webhook-url"), steal).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(emu.webhook_url().as_deref(), Some("http://127.0.0.1:8/steal"));
    // Media-type parameters are fine.
    let h = [("content-type", "Application/JSON; charset=utf-8")];
    assert_eq!(control_post(&c, &format!("{b}/_emulator/webhook-url"), &h, r#"{"url":null}"#).await, 200);
    assert_eq!(emu.webhook_url(), None);
}

/// A control POST a browser marks as coming from another site (`Sec-Fetch-Site: cross-site`
/// or `same-site`) is refused with 403, JSON or not; `same-origin` and `none` pass.
#[tokio::test]
async fn control_posts_refuse_cross_site_fetches() {
    let emu = emu().await;
    let c = client();
    let b = emu.base_url();
    let fault = r#"{"api":{"status":500,"count":1}}"#;
    for site in ["cross-site", "same-site", "Cross-Site"] {
        for ct in ["application/json", "text/plain"] {
            let h = [("sec-fetch-site", site), ("content-type", ct)];
            assert_eq!(control_post(&c, &format!("{b}/_emulator/faults"), &h, fault).await, 403, "{site} {ct}");
            let url = r#"{"url":"http://127.0.0.1:8/x"}"#;
            assert_eq!(control_post(&c, &format!("{b}/_emulator/webhook-url"), &h, url).await, 403, "{site} {ct}");
        }
    }
    assert!(emu.faults().api.is_none());
    assert_eq!(emu.webhook_url(), None);
    for site in ["same-origin", "none"] {
        let h = [("sec-fetch-site", site), JSON];
        assert_eq!(control_post(&c, &format!("{b}/_emulator/faults"), &h, fault).await, 200, "{site}");
        assert!(emu.faults().api.is_some(), "{site}");
        emu.reset_faults();
    }
}

/// A control POST with an `Origin` that is not a page served over http from this machine is
/// refused with 403 (`null` included); loopback origins pass.
#[tokio::test]
async fn control_posts_refuse_foreign_origins() {
    let emu = emu().await;
    let c = client();
    let b = emu.base_url();
    let fault = r#"{"api":{"status":500,"count":1}}"#;
    for origin in [
        "https://evil.example",
        "http://evil.example:12111",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
        "https://localhost:3000",
        "null",
    ] {
        let h = [("origin", origin), JSON];
        assert_eq!(control_post(&c, &format!("{b}/_emulator/faults"), &h, fault).await, 403, "{origin}");
        assert_eq!(control_post(&c, &format!("{b}/_emulator/clear-logs"), &h, "{}").await, 403, "{origin}");
        let url = r#"{"url":"http://127.0.0.1:8/x"}"#;
        assert_eq!(control_post(&c, &format!("{b}/_emulator/webhook-url"), &h, url).await, 403, "{origin}");
    }
    assert!(emu.faults().api.is_none());
    assert_eq!(emu.webhook_url(), None);
    for origin in [b.as_str(), "http://localhost:3000", "http://[::1]:5173", "http://127.0.0.1"] {
        let h = [("origin", origin), ("sec-fetch-site", "same-origin"), JSON];
        assert_eq!(control_post(&c, &format!("{b}/_emulator/faults"), &h, fault).await, 200, "{origin}");
        assert!(emu.faults().api.is_some(), "{origin}");
        emu.reset_faults();
    }
    // Reads are not state-changing: a GET with a foreign Origin is still answered (a page
    // cannot read it without CORS, which the emulator never grants).
    let r = c.get(format!("{b}/_emulator/faults")).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// `POST /_emulator/webhook-url` takes only an http endpoint on this machine, or null (400
/// otherwise, the URL unchanged); the Rust API is not restricted.
#[tokio::test]
async fn webhook_url_route_takes_only_loopback_http() {
    let emu = emu().await;
    let c = client();
    let url = format!("{}/_emulator/webhook-url", emu.base_url());
    emu.set_webhook_url(Some("http://127.0.0.1:9/hook".into()));
    for bad in [
        r#""https://evil.example/""#,
        r#""http://evil.example/hook""#,
        r#""https://127.0.0.1/hook""#,
        r#""http://10.0.0.1/hook""#,
        r#""http://127.0.0.1@evil.example/""#,
        r#""http://localhost.evil.example/""#,
        r#""ftp://127.0.0.1/""#,
        r#""not a url""#,
        "42",
    ] {
        let r = post_json(&c, &url, &format!(r#"{{"url":{bad}}}"#)).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert_eq!(r.json["error"]["type"], "invalid_request_error", "{bad}");
        assert_eq!(emu.webhook_url().as_deref(), Some("http://127.0.0.1:9/hook"), "{bad}");
    }
    for good in ["http://localhost:3000/api/webhook", "http://127.0.0.2:9/", "http://[::1]:9/hook"] {
        let r = post_json(&c, &url, &format!(r#"{{"url":"{good}"}}"#)).await;
        assert_eq!(r.status, 200, "{good}: {}", r.text);
        assert_eq!(r.json["webhook_url"], good);
        assert_eq!(emu.webhook_url().as_deref(), Some(good));
    }
    let r = post_json(&c, &url, r#"{"url":null}"#).await;
    assert_eq!((r.status, emu.webhook_url()), (200, None), "{}", r.text);
    emu.set_webhook_url(Some("https://hooks.example/stripe".into()));
    assert_eq!(emu.webhook_url().as_deref(), Some("https://hooks.example/stripe"));
}

/// The import graph of `src/*.rs` (`lib.rs` and `main.rs` aside) has no cycle: each module
/// only imports modules below it. Read from the source text, comments and literals stripped.
mod layers {
    use std::collections::{BTreeMap, BTreeSet};

    /// `src` with comments removed and the contents of string and char literals blanked, so
    /// neither `// crate::x` nor `"crate::x"` counts as an import.
    fn strip(src: &str) -> String {
        let c: Vec<char> = src.chars().collect();
        let mut out = String::with_capacity(src.len());
        let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
        let mut i = 0;
        while i < c.len() {
            let prev_ident = i > 0 && ident(c[i - 1]);
            if c[i] == '/' && c.get(i + 1) == Some(&'/') {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(' ');
            } else if c[i] == 'r'
                && (!prev_ident || (i >= 1 && c[i - 1] == 'b' && !(i >= 2 && ident(c[i - 2]))))
                && matches!(c.get(i + 1), Some('"') | Some('#'))
            {
                // Raw string r"..." / r#"..."#.
                let mut j = i + 1;
                let mut hashes = 0;
                while c.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if c.get(j) != Some(&'"') {
                    out.push(c[i]);
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    if j >= c.len() {
                        break;
                    }
                    if c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                out.push_str("r\"\"");
                i = j;
            } else if c[i] == '"' {
                i += 1;
                while i < c.len() && c[i] != '"' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            } else if c[i] == '\'' && c.get(i + 1) == Some(&'\\') {
                // Escaped char literal: '\n', '\'', '\u{..}'.
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else if c[i] == '\'' && c.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                // Anything else, a lifetime's quote included.
                out.push(c[i]);
                i += 1;
            }
        }
        out
    }

    /// The first path segment of each `crate::...` path in stripped code, `use crate::{a,
    /// b::c}` lists included (each item's first segment).
    fn crate_paths(code: &str) -> BTreeSet<String> {
        let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
        let mut found = BTreeSet::new();
        let mut rest = code;
        while let Some(at) = rest.find("crate") {
            let before = &code[..code.len() - rest.len() + at];
            let after = &rest[at + "crate".len()..];
            rest = after;
            if before.ends_with(ident) || before.ends_with('$') {
                continue;
            }
            let Some(path) = after.trim_start().strip_prefix("::") else {
                continue;
            };
            let path = path.trim_start();
            if let Some(group) = path.strip_prefix('{') {
                // Items separated by commas at brace depth 0, up to the closing brace.
                let (mut depth, mut item, mut items) = (0, String::new(), vec![]);
                for ch in group.chars() {
                    match ch {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => items.push(std::mem::take(&mut item)),
                        _ => {}
                    }
                    item.push(ch);
                }
                items.push(item);
                for item in items {
                    let first: String =
                        item.trim_start_matches(',').trim().chars().take_while(|&ch| ident(ch)).collect();
                    if !first.is_empty() {
                        found.insert(first);
                    }
                }
            } else {
                let first: String = path.chars().take_while(|&ch| ident(ch)).collect();
                if !first.is_empty() {
                    found.insert(first);
                }
            }
        }
        found
    }

    /// module ⇒ the modules it imports, from `src/*.rs` (`lib.rs`, `main.rs` aside).
    fn graph() -> BTreeMap<String, BTreeSet<String>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
                files.insert(name, std::fs::read_to_string(&path).unwrap());
            }
        }
        let modules: BTreeSet<String> = files.keys().cloned().collect();
        files
            .iter()
            .map(|(name, src)| {
                let deps = crate_paths(&strip(src)).into_iter().filter(|d| modules.contains(d)).collect();
                (name.clone(), deps)
            })
            .collect()
    }

    /// A cycle of `g` as `a → b → … → a`, if there is one.
    fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
        fn visit(
            g: &BTreeMap<String, BTreeSet<String>>,
            m: &str,
            stack: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(at) = stack.iter().position(|s| s == m) {
                let mut cycle = stack[at..].to_vec();
                cycle.push(m.to_string());
                return Some(cycle);
            }
            if done.contains(m) {
                return None;
            }
            stack.push(m.to_string());
            for d in g.get(m).into_iter().flatten() {
                if let Some(c) = visit(g, d, stack, done) {
                    return Some(c);
                }
            }
            stack.pop();
            done.insert(m.to_string());
            None
        }
        let mut done = BTreeSet::new();
        g.keys().find_map(|m| visit(g, m, &mut vec![], &mut done))
    }

    #[test]
    fn scanner_counts_paths_not_comments_or_strings() {
        let src = "//! See [`crate::a`].\n/* crate::b /* nested crate::c */ */\nuse crate::{d, e::{F, g}, H};\n\
                   use crate::i::J;\nfn f() { let _ = \"crate::k\"; let _ = r#\"crate::l\"#; let _ = '\"'; \
                   crate::m::n(); let _ = '\\''; crate :: o(); }\nstruct P<'a>(&'a str); // crate::q\n";
        let found: Vec<String> = crate_paths(&strip(src)).into_iter().collect();
        assert_eq!(found, ["H", "d", "e", "i", "m", "o"]);
        let mut g = BTreeMap::new();
        for (a, b) in [("x", "y"), ("y", "z"), ("z", "x")] {
            g.insert(a.to_string(), BTreeSet::from([b.to_string()]));
        }
        assert_eq!(find_cycle(&g).unwrap(), ["x", "y", "z", "x"]);
        g.get_mut("z").unwrap().clear();
        assert_eq!(find_cycle(&g), None);
    }

    #[test]
    fn no_import_cycle_among_src_modules() {
        let g = graph();
        // The scan sees the imports (it is not vacuously acyclic).
        assert!(g["sessions"].contains("promotions") && g["page"].contains("lifecycle"), "{g:#?}");
        if let Some(cycle) = find_cycle(&g) {
            let edges: Vec<String> = g.iter().map(|(m, d)| format!("  {m} → {d:?}")).collect();
            panic!("import cycle among emulator/src: {}\n{}", cycle.join(" → "), edges.join("\n"));
        }
    }
}

/// Refunds (`POST /v1/refunds`, pending refunds) and the email stand-in (`POST /emails`, the
/// outbox).
mod refunds_and_email {
    use super::*;
    use serde_json::json;
    use stripe_emulator::{Emulator, spec};

    /// A paid session of 2 x $20.00: (session id, PaymentIntent id, Charge id).
    async fn paid(c: &reqwest::Client, emu: &Emulator) -> (String, String, String) {
        let r = create(c, emu, &base_session()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let id = r.json["id"].as_str().unwrap().to_string();
        emu.pay(&id, "pay").unwrap();
        let pi = emu.session(&id).unwrap()["payment_intent"].as_str().unwrap().to_string();
        let intent = get(c, &format!("{}/v1/payment_intents/{pi}", emu.base_url())).await;
        let charge = intent.json["latest_charge"].as_str().unwrap().to_string();
        (id, pi, charge)
    }

    async fn refund(c: &reqwest::Client, emu: &Emulator, pairs: &[(&str, &str)], key: Option<&str>) -> Resp {
        let auth = format!("Bearer {KEY}");
        let mut h = vec![("Authorization", auth.as_str())];
        if let Some(k) = key {
            h.push(("Idempotency-Key", k));
        }
        post_form(c, &format!("{}/v1/refunds", emu.base_url()), &p(pairs), &h).await
    }

    /// The events of `typ` whose object is `id`.
    fn events_of(emu: &Emulator, typ: &str, id: &str) -> Vec<Value> {
        emu.events().into_iter().filter(|e| e["type"] == typ && e["data"]["object"]["id"] == id).collect()
    }

    fn conforms(value: &Value) {
        let schema = spec::response_schema("post", "/v1/refunds").expect("POST /v1/refunds in the slice");
        let errors = spec::validate(schema, value);
        assert!(errors.is_empty(), "the refund does not match the spec:\n{}\n{value:#}", errors.join("\n"));
    }

    #[tokio::test]
    async fn refund_create_partial_then_full_with_metadata_and_events() {
        let emu = emu().await;
        let c = client();
        let (_, pi, charge) = paid(&c, &emu).await;
        let part = refund(
            &c,
            &emu,
            &[
                ("payment_intent", &pi),
                ("amount", "1500"),
                ("reason", "requested_by_customer"),
                ("metadata[order_id]", "ord_42"),
                ("metadata[by]", "owner"),
            ],
            Some("refund-ord_42-1"),
        )
        .await;
        assert_eq!(part.status, 200, "{}", part.text);
        conforms(&part.json);
        let r1 = part.json["id"].as_str().unwrap().to_string();
        assert!(r1.starts_with("re_"));
        assert_eq!(part.json["object"], "refund");
        assert_eq!(part.json["amount"], 1500);
        assert_eq!(part.json["status"], "succeeded");
        assert_eq!(part.json["charge"], charge.as_str());
        assert_eq!(part.json["payment_intent"], pi.as_str());
        assert_eq!(part.json["reason"], "requested_by_customer");
        assert_eq!(part.json["metadata"], json!({"order_id": "ord_42", "by": "owner"}));
        let ch = get(&c, &format!("{}/v1/charges/{charge}", emu.base_url())).await;
        assert_eq!((ch.json["amount_refunded"].as_i64(), ch.json["refunded"].as_bool()), (Some(1500), Some(false)));

        // The rest, by charge, without an amount; no reason given is null, as Stripe answers.
        let rest = refund(&c, &emu, &[("charge", &charge)], None).await;
        assert_eq!(rest.status, 200, "{}", rest.text);
        conforms(&rest.json);
        assert_eq!(rest.json["amount"], 2500);
        assert_eq!(rest.json["reason"], Value::Null);
        assert_eq!(rest.json["metadata"], json!({}));
        let ch = get(&c, &format!("{}/v1/charges/{charge}", emu.base_url())).await;
        assert_eq!((ch.json["amount_refunded"].as_i64(), ch.json["refunded"].as_bool()), (Some(4000), Some(true)));

        // Metadata is kept on the stored refund, and the list shows both, newest first.
        let kept = get(&c, &format!("{}/v1/refunds/{r1}", emu.base_url())).await;
        assert_eq!(kept.json["metadata"]["order_id"], "ord_42");
        let list = get(&c, &format!("{}/v1/refunds?payment_intent={pi}", emu.base_url())).await;
        let ids: Vec<&str> = list.json["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [rest.json["id"].as_str().unwrap(), r1.as_str()]);

        // Events as the control route emits them: refund.created with the refund, then
        // charge.refunded with the charge, each naming the request and its idempotency key.
        let created = events_of(&emu, "refund.created", &r1);
        assert_eq!(created.len(), 1);
        assert_eq!(created[0]["data"]["object"]["metadata"]["order_id"], "ord_42");
        assert_eq!(created[0]["request"]["id"], part.header("request-id").unwrap().as_str());
        assert_eq!(created[0]["request"]["idempotency_key"], "refund-ord_42-1");
        let refunded = events_of(&emu, "charge.refunded", &charge);
        assert_eq!(refunded.len(), 2);
        assert_eq!(refunded[0]["data"]["object"]["amount_refunded"], 1500);
        assert_eq!(refunded[1]["data"]["object"]["amount_refunded"], 4000);
        let types: Vec<String> = emu
            .events()
            .iter()
            .filter_map(|e| e["type"].as_str().map(String::from))
            .filter(|t| t.starts_with("refund") || t.starts_with("charge"))
            .collect();
        assert_eq!(types, ["refund.created", "charge.refunded", "refund.created", "charge.refunded"]);

        // Fully refunded: Stripe's charge_already_refunded.
        let again = refund(&c, &emu, &[("payment_intent", &pi), ("amount", "1")], None).await;
        assert_eq!(again.status, 400, "{}", again.text);
        assert_eq!(again.json["error"]["type"], "invalid_request_error");
        assert_eq!(again.json["error"]["code"], "charge_already_refunded");
        assert_eq!(again.json["error"]["message"], format!("Charge {charge} has already been refunded."));
    }

    #[tokio::test]
    async fn refund_refusals_change_nothing() {
        let emu = Emulator::start(stripe_emulator::Options { async_delay: Duration::from_secs(60), ..fast_opts() })
            .await
            .unwrap();
        let c = client();
        let (session, pi, charge) = paid(&c, &emu).await;

        let over = refund(&c, &emu, &[("payment_intent", &pi), ("amount", "4001")], None).await;
        assert_eq!(over.status, 400, "{}", over.text);
        assert_eq!(over.json["error"]["type"], "invalid_request_error");
        assert_eq!(over.json["error"]["code"], "amount_too_large");
        assert_eq!(over.json["error"]["param"], "amount");
        assert_eq!(
            over.json["error"]["message"],
            "Refund amount ($40.01) is greater than unrefunded amount on charge ($40.00)"
        );
        let zero = refund(&c, &emu, &[("payment_intent", &pi), ("amount", "0")], None).await;
        assert_eq!((zero.status, zero.json["error"]["param"].as_str()), (400, Some("amount")), "{}", zero.text);
        let neg = refund(&c, &emu, &[("payment_intent", &pi), ("amount", "-5")], None).await;
        assert_eq!(neg.json["error"]["code"], "parameter_invalid_integer", "{}", neg.text);

        // Neither, both, unknown ids, an unpaid PaymentIntent.
        let none = refund(&c, &emu, &[("amount", "100")], None).await;
        assert_eq!(none.json["error"]["code"], "parameter_missing", "{}", none.text);
        let both = refund(&c, &emu, &[("payment_intent", &pi), ("charge", &charge)], None).await;
        assert_eq!(both.json["error"]["code"], "parameters_exclusive", "{}", both.text);
        let nopi = refund(&c, &emu, &[("payment_intent", "pi_nope")], None).await;
        assert_eq!((nopi.status, nopi.json["error"]["code"].as_str()), (404, Some("resource_missing")));
        assert_eq!(nopi.json["error"]["message"], "No such payment_intent: 'pi_nope'");
        let noch = refund(&c, &emu, &[("charge", "ch_nope")], None).await;
        assert_eq!((noch.status, noch.json["error"]["param"].as_str()), (404, Some("charge")));
        let r = create(&c, &emu, &base_session()).await;
        let delayed = r.json["id"].as_str().unwrap();
        emu.pay(delayed, "delayed_success").unwrap();
        let processing = emu.session(delayed).unwrap()["payment_intent"].as_str().unwrap().to_string();
        let unpaid = refund(&c, &emu, &[("payment_intent", &processing)], None).await;
        assert_eq!(unpaid.status, 400, "{}", unpaid.text);
        assert_eq!(unpaid.json["error"]["param"], "payment_intent");
        assert_eq!(
            unpaid.json["error"]["message"],
            format!("This PaymentIntent ({processing}) does not have a successful charge to refund.")
        );

        // What the spec refuses, and what Stripe takes but the emulator does not implement.
        let reason = refund(&c, &emu, &[("payment_intent", &pi), ("reason", "changed_mind")], None).await;
        assert_eq!(reason.status, 400);
        assert_eq!(
            reason.json["error"]["message"],
            "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer"
        );
        let unknown = refund(&c, &emu, &[("payment_intent", &pi), ("refund_reason", "x")], None).await;
        assert_eq!(unknown.json["error"]["code"], "parameter_unknown");
        let currency = refund(&c, &emu, &[("payment_intent", &pi), ("currency", "usd")], None).await;
        assert_eq!(
            (currency.json["error"]["code"].as_str(), currency.json["error"]["param"].as_str()),
            (Some("parameter_unknown"), Some("currency"))
        );
        let long = "v".repeat(501);
        let meta = refund(&c, &emu, &[("payment_intent", &pi), ("metadata[k]", &long)], None).await;
        assert_eq!((meta.status, meta.json["error"]["param"].as_str()), (400, Some("metadata[k]")));

        // An open dispute: Stripe's charge_disputed, also for the control route.
        emu.dispute(&session, false).unwrap();
        let disputed = refund(&c, &emu, &[("payment_intent", &pi), ("amount", "100")], None).await;
        assert_eq!(disputed.status, 400, "{}", disputed.text);
        assert_eq!(disputed.json["error"]["code"], "charge_disputed");
        let msg = disputed.json["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(&format!("Charge {charge} has been disputed and cannot be refunded")), "{msg}");
        assert!(emu.refund(&session, Some(100)).unwrap_err().contains("has been disputed"));

        let refunds = get(&c, &format!("{}/v1/refunds", emu.base_url())).await;
        assert_eq!(refunds.json["data"], json!([]), "a refused refund must leave nothing");
        assert!(emu.events().iter().all(|e| !matches!(e["type"].as_str(), Some("refund.created" | "charge.refunded"))));
        let ch = get(&c, &format!("{}/v1/charges/{charge}", emu.base_url())).await;
        assert_eq!(ch.json["amount_refunded"], 0);
    }

    #[tokio::test]
    async fn refund_idempotent_replay_and_other_parameters() {
        let emu = emu().await;
        let c = client();
        let (_, pi, charge) = paid(&c, &emu).await;
        let form = [("payment_intent", pi.as_str()), ("amount", "1000"), ("metadata[order_id]", "ord_7")];
        let first = refund(&c, &emu, &form, Some("refund-ord_7")).await;
        assert_eq!(first.status, 200, "{}", first.text);
        assert!(first.header("idempotent-replayed").is_none());
        let replay = refund(&c, &emu, &form, Some("refund-ord_7")).await;
        assert_eq!(replay.status, 200, "{}", replay.text);
        assert_eq!(replay.header("idempotent-replayed").as_deref(), Some("true"));
        assert_eq!(replay.header("original-request"), first.header("request-id"));
        assert_eq!(replay.text, first.text, "a replay answers the first result");
        let id = first.json["id"].as_str().unwrap();

        // Other parameters under the same key: Stripe's idempotency_error, nothing refunded.
        let other = refund(&c, &emu, &[("payment_intent", &pi), ("amount", "2000")], Some("refund-ord_7")).await;
        assert_eq!(other.status, 400, "{}", other.text);
        assert_eq!(other.json["error"]["type"], "idempotency_error");
        assert!(other.json["error"]["message"].as_str().unwrap().contains("refund-ord_7"));

        // One refund, one set of events, 1000 refunded.
        let list = get(&c, &format!("{}/v1/refunds", emu.base_url())).await;
        assert_eq!(list.json["data"].as_array().unwrap().len(), 1, "{}", list.text);
        assert_eq!(events_of(&emu, "refund.created", id).len(), 1);
        assert_eq!(events_of(&emu, "charge.refunded", &charge).len(), 1);
        let ch = get(&c, &format!("{}/v1/charges/{charge}", emu.base_url())).await;
        assert_eq!(ch.json["amount_refunded"], 1000);

        // A new key is a new refund.
        let second = refund(&c, &emu, &form, Some("refund-ord_7-b")).await;
        assert_eq!(second.status, 200, "{}", second.text);
        assert_ne!(second.json["id"], first.json["id"]);
    }

    /// The refund form a back office sends is what Stripe's spec slice takes (the same check
    /// every `/v1` request passes), the slice holds Stripe's request parameters, and an answer
    /// validates against the slice's refund schema (see `refund_create_...`).
    #[test]
    fn refund_request_validates_against_the_spec_slice() {
        let form = p(&[
            ("payment_intent", "pi_123"),
            ("amount", "1500"),
            ("reason", "requested_by_customer"),
            ("metadata[order_id]", "ord_42"),
        ]);
        spec::check_form("POST", "/v1/refunds", &form).unwrap();
        spec::check_form("POST", "/v1/refunds", &p(&[("charge", "ch_123")])).unwrap();
        for (bad, param) in [
            (p(&[("payment_intent", "pi_1"), ("amount", "ten")]), "amount"),
            (p(&[("payment_intent", "pi_1"), ("reason", "other")]), "reason"),
            (p(&[("payment_intent", "pi_1"), ("metadata", "x")]), "metadata"),
            (p(&[("payment_intent", "pi_1"), ("refund_amount", "1")]), "refund_amount"),
        ] {
            let e = spec::check_form("POST", "/v1/refunds", &bad).unwrap_err();
            assert!(e.starts_with(&format!("{param}:")), "{e}");
        }
        let body = &spec::document()["paths"]["/v1/refunds"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
            ["schema"];
        let names: Vec<&str> = body["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        for want in ["amount", "charge", "payment_intent", "reason", "metadata", "expand"] {
            assert!(names.contains(&want), "{want} not in the slice: {names:?}");
        }
        assert_eq!(body["properties"]["reason"]["enum"], json!(["duplicate", "fraudulent", "requested_by_customer"]));
        assert_eq!(body["additionalProperties"], false);
    }

    #[tokio::test]
    async fn pending_refunds_succeed_or_are_canceled() {
        let emu = emu().await;
        let c = client();
        let (session, _, charge) = paid(&c, &emu).await;
        let b = emu.base_url();
        let amount_refunded = |c: &reqwest::Client| {
            let url = format!("{b}/v1/charges/{charge}");
            let c = c.clone();
            async move { get(&c, &url).await.json["amount_refunded"].as_i64().unwrap() }
        };

        // Control route: pending, counted on the charge; refund.created + charge.refunded.
        let url = format!("{b}/_emulator/sessions/{session}/refund");
        assert_eq!(control_post(&c, &url, &[], r#"{"amount":1000,"pending":true}"#).await, 415);
        let r = post_json(&c, &url, r#"{"amount":1000,"pending":true}"#).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["status"], "pending");
        let id = r.json["id"].as_str().unwrap().to_string();
        assert_eq!(events_of(&emu, "refund.created", &id).len(), 1);
        assert_eq!(amount_refunded(&c).await, 1000);
        let bad = post_json(&c, &url, r#"{"pending":"yes"}"#).await;
        assert_eq!(bad.status, 400, "{}", bad.text);

        // pending ⇒ succeeded: refund.updated; it never goes back.
        let ok = post_json(&c, &format!("{b}/_emulator/refunds/{id}/succeed"), "{}").await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        assert_eq!(ok.json["status"], "succeeded");
        let updated = events_of(&emu, "refund.updated", &id);
        assert_eq!(updated.len(), 1);
        assert_eq!(updated[0]["data"]["object"]["status"], "succeeded");
        let again = post_json(&c, &format!("{b}/_emulator/refunds/{id}/cancel"), "{}").await;
        assert_eq!(again.status, 400, "{}", again.text);
        assert!(emu.succeed_refund(&id).is_err());
        assert_eq!(amount_refunded(&c).await, 1000);
        let unknown = post_json(&c, &format!("{b}/_emulator/refunds/{id}/undo"), "{}").await;
        assert_eq!(unknown.status, 404);

        // Rust API: pending ⇒ canceled, the amount returns to the charge.
        let p2 = emu.refund_pending(&session, Some(500)).unwrap();
        assert_eq!(p2["status"], "pending");
        let id2 = p2["id"].as_str().unwrap().to_string();
        assert_eq!(amount_refunded(&c).await, 1500);
        let canceled = emu.cancel_refund(&id2).unwrap();
        assert_eq!(canceled["status"], "canceled");
        assert_eq!(amount_refunded(&c).await, 1000);
        let ev = events_of(&emu, "refund.updated", &id2);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0]["data"]["object"]["status"], "canceled");
        assert!(
            emu.cancel_refund(&id2).is_err() && emu.succeed_refund(&id2).is_err() && emu.fail_refund(&id2).is_err()
        );
        let stored = get(&c, &format!("{b}/v1/refunds/{id2}")).await;
        assert_eq!(stored.json["status"], "canceled");

        // A pending refund by the control route may still fail (refund.failed + refund.updated).
        let r3 = post_json(&c, &url, r#"{"amount":300,"pending":true}"#).await;
        let id3 = r3.json["id"].as_str().unwrap().to_string();
        let failed = post_json(&c, &format!("{b}/_emulator/refunds/{id3}/fail"), "{}").await;
        assert_eq!(failed.json["status"], "failed", "{}", failed.text);
        assert_eq!(amount_refunded(&c).await, 1000);
        let cancel_failed = post_json(&c, &format!("{b}/_emulator/refunds/{id3}/cancel"), "{}").await;
        assert_eq!(cancel_failed.status, 400);
    }

    const RE_KEY: &str = "re_test_1234";

    async fn send_email(
        c: &reqwest::Client,
        emu: &Emulator,
        auth: Option<&str>,
        key: Option<&str>,
        body: &Value,
    ) -> Resp {
        let mut rq = c
            .post(format!("{}/emails", emu.base_url()))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(a) = auth {
            rq = rq.header("Authorization", a);
        }
        if let Some(k) = key {
            rq = rq.header("Idempotency-Key", k);
        }
        let r = rq.send().await.unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let text = r.text().await.unwrap();
        Resp { status, headers, json: serde_json::from_str(&text).unwrap_or(Value::Null), text }
    }

    fn receipt() -> Value {
        json!({
            "from": "Shop <orders@shop.test>",
            "to": "ada@example.com",
            "subject": "Your order ord_42",
            "html": "<p>Thanks, <b>Ada</b>!</p>",
            "text": "Thanks, Ada!",
            "reply_to": "help@shop.test"
        })
    }

    #[tokio::test]
    async fn email_send_is_accepted_with_an_id_and_kept_in_the_outbox() {
        let emu = emu().await;
        let c = client();
        let auth = format!("Bearer {RE_KEY}");
        let r = send_email(&c, &emu, Some(&auth), None, &receipt()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let id = r.json["id"].as_str().unwrap();
        assert_eq!(r.json.as_object().unwrap().len(), 1, "Resend answers only the id: {}", r.text);
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        // `to` as an array, no text version.
        let mut second = receipt();
        second["to"] = json!(["ada@example.com", "Bob <bob@example.com>"]);
        second.as_object_mut().unwrap().remove("text");
        let r2 = send_email(&c, &emu, Some(&auth), None, &second).await;
        assert_eq!(r2.status, 200, "{}", r2.text);

        let out = get(&c, &format!("{}/_emulator/outbox.json", emu.base_url())).await;
        assert_eq!(out.status, 200);
        let list = out.json.as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list, &emu.outbox());
        let m = &list[0];
        assert_eq!(m["id"], id);
        assert_eq!(m["object"], "email");
        assert_eq!(m["from"], "Shop <orders@shop.test>");
        assert_eq!(m["to"], json!(["ada@example.com"]));
        assert_eq!(m["reply_to"], json!(["help@shop.test"]));
        assert_eq!(m["subject"], "Your order ord_42");
        assert_eq!(m["html"], "<p>Thanks, <b>Ada</b>!</p>");
        assert_eq!(m["text"], "Thanks, Ada!");
        assert_eq!(m["idempotency_key"], Value::Null);
        assert!(m["created_at"].as_str().unwrap().ends_with('Z') && m["at_ms"].as_u64().unwrap() > 0);
        assert_eq!(list[1]["to"], json!(["ada@example.com", "Bob <bob@example.com>"]));
        assert_eq!(list[1]["text"], Value::Null);
    }

    #[tokio::test]
    async fn email_refusals_in_resends_shape() {
        let emu = emu().await;
        let c = client();
        let auth = format!("Bearer {RE_KEY}");
        let shape = |r: &Resp, status: u16, name: &str| {
            assert_eq!(r.status, status, "{}", r.text);
            assert_eq!(r.json["statusCode"], status, "{}", r.text);
            assert_eq!(r.json["name"], name, "{}", r.text);
            assert!(r.json["message"].is_string(), "{}", r.text);
        };
        let none = send_email(&c, &emu, None, None, &receipt()).await;
        shape(&none, 401, "missing_api_key");
        assert_eq!(none.json["message"], "Missing API key in the authorization header.");
        shape(&send_email(&c, &emu, Some("Bearer "), None, &receipt()).await, 401, "missing_api_key");
        shape(&send_email(&c, &emu, Some(RE_KEY), None, &receipt()).await, 401, "missing_api_key");
        shape(&send_email(&c, &emu, Some("Bearer sk_test_x"), None, &receipt()).await, 403, "invalid_api_key");
        for field in ["from", "to", "subject"] {
            let mut b = receipt();
            b.as_object_mut().unwrap().remove(field);
            let r = send_email(&c, &emu, Some(&auth), None, &b).await;
            shape(&r, 422, "missing_required_field");
            assert_eq!(r.json["message"], format!("Missing `{field}` field."));
        }
        let mut b = receipt();
        b.as_object_mut().unwrap().retain(|k, _| k != "html" && k != "text");
        shape(&send_email(&c, &emu, Some(&auth), None, &b).await, 422, "missing_required_field");
        for (field, value) in
            [("to", json!("not-an-address")), ("to", json!([1])), ("subject", json!(5)), ("replyTo", json!("x@y.z"))]
        {
            let mut b = receipt();
            b[field] = value;
            shape(&send_email(&c, &emu, Some(&auth), None, &b).await, 422, "validation_error");
        }
        let long = "k".repeat(257);
        shape(&send_email(&c, &emu, Some(&auth), Some(&long), &receipt()).await, 400, "invalid_idempotency_key");
        let r =
            c.post(format!("{}/emails", emu.base_url())).header("Authorization", &auth).body("{").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400);
        assert!(emu.outbox().is_empty(), "a refused email is not kept");

        // A configured key is the only one taken.
        let strict = Emulator::start(stripe_emulator::Options { email_api_key: Some("re_only".into()), ..fast_opts() })
            .await
            .unwrap();
        shape(&send_email(&c, &strict, Some(&auth), None, &receipt()).await, 403, "invalid_api_key");
        assert_eq!(send_email(&c, &strict, Some("Bearer re_only"), None, &receipt()).await.status, 200);
        assert_eq!(stripe_emulator::EMAIL_API_KEY.get(..3), Some("re_"));
    }

    #[tokio::test]
    async fn email_idempotent_replay_keeps_one_message() {
        let emu = emu().await;
        let c = client();
        let auth = format!("Bearer {RE_KEY}");
        let key = "order-confirmation/ord_42";
        let a = send_email(&c, &emu, Some(&auth), Some(key), &receipt()).await;
        let b = send_email(&c, &emu, Some(&auth), Some(key), &receipt()).await;
        assert_eq!((a.status, b.status), (200, 200), "{} {}", a.text, b.text);
        assert_eq!(a.json["id"], b.json["id"]);
        assert_eq!(emu.outbox().len(), 1);
        assert_eq!(emu.outbox()[0]["idempotency_key"], key);
        let mut other = receipt();
        other["subject"] = json!("Your order ord_43");
        let m = send_email(&c, &emu, Some(&auth), Some(key), &other).await;
        assert_eq!(m.status, 409, "{}", m.text);
        assert_eq!(
            m.json,
            json!({"statusCode": 409, "name": "invalid_idempotent_request",
            "message": "Same idempotency key used with a different request payload."})
        );
        assert_eq!(emu.outbox().len(), 1);
        // Keys are scoped to the API key; another key is another message.
        let o = send_email(&c, &emu, Some("Bearer re_other"), Some(key), &other).await;
        assert_eq!(o.status, 200);
        let n = send_email(&c, &emu, Some(&auth), Some("order-confirmation/ord_43"), &other).await;
        assert_eq!(n.status, 200);
        assert_eq!(emu.outbox().len(), 3);
    }

    #[tokio::test]
    async fn outbox_page_shows_messages_escaped_newest_first() {
        let emu = emu().await;
        let c = client();
        let auth = format!("Bearer {RE_KEY}");
        let empty = c.get(format!("{}/_emulator/outbox", emu.base_url())).send().await.unwrap();
        assert_eq!(empty.status(), 200);
        assert!(empty.text().await.unwrap().contains("No emails yet"));
        let mut first = receipt();
        first["subject"] = json!("First");
        send_email(&c, &emu, Some(&auth), None, &first).await;
        let evil = json!({
            "from": "Shop <orders@shop.test>",
            "to": ["ada@example.com"],
            "subject": "Hi <script>alert(1)</script> & \"you\"",
            "html": "<p onclick=\"x()\">Hello</p><script>alert('html')</script><a href='/x'>a&amp;b</a>",
            "text": "Plain <script>alert(2)</script>"
        });
        let r = send_email(&c, &emu, Some(&auth), Some("k1"), &evil).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let page = c.get(format!("{}/_emulator/outbox", emu.base_url())).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'none'"));
        let html = page.text().await.unwrap();
        assert!(!html.to_ascii_lowercase().contains("<script"), "raw <script> in the page:\n{html}");
        assert!(html.contains("<h2>Hi &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;you&quot;</h2>"), "{html}");
        assert!(html.contains("<pre>Plain &lt;script&gt;alert(2)&lt;/script&gt;</pre>"), "{html}");
        // The HTML body sits, attribute-escaped, in a sandboxed iframe's srcdoc: a browser
        // unescapes it back to the exact HTML sent.
        let srcdoc = "srcdoc=\"&lt;p onclick=&quot;x()&quot;&gt;Hello&lt;/p&gt;&lt;script&gt;alert(&#39;html&#39;)&lt;/script&gt;&lt;a href=&#39;/x&#39;&gt;a&amp;amp;b&lt;/a&gt;\"";
        assert!(html.contains(srcdoc), "{html}");
        assert!(html.contains("<iframe sandbox=\"\""), "{html}");
        assert!(html.contains("Shop &lt;orders@shop.test&gt;"));
        assert!(html.contains(r.json["id"].as_str().unwrap()));
        assert!(html.find("Hi &lt;script").unwrap() < html.find("<h2>First</h2>").unwrap(), "newest first");
    }
}

/// Webhook endpoints (`/v1/webhook_endpoints`): Stripe's shapes, the secret only on create,
/// the spec slice's parameters, unknown event types refused, and deliveries to an endpoint
/// created through the API (its own secret, its enabled events only).
mod webhook_endpoints {
    use super::*;
    use serde_json::json;
    use stripe_emulator::{API_VERSION, Emulator, spec};

    const PATH: &str = "/v1/webhook_endpoints";
    const ONE: &str = "/v1/webhook_endpoints/{webhook_endpoint}";

    async fn post(c: &reqwest::Client, emu: &Emulator, path: &str, pairs: &[(&str, &str)]) -> Resp {
        let auth = format!("Bearer {KEY}");
        post_form(c, &format!("{}{path}", emu.base_url()), &p(pairs), &[("Authorization", auth.as_str())]).await
    }

    /// Validates `value` against the 200 answer of `method path` in the slice.
    fn conforms(method: &str, path: &str, value: &Value) {
        let schema = spec::response_schema(method, path).unwrap_or_else(|| panic!("{method} {path} not in the slice"));
        let errors = spec::validate(schema, value);
        assert!(errors.is_empty(), "{method} {path} answered what the spec refuses:\n{}\n{value:#}", errors.join("\n"));
    }

    #[tokio::test]
    async fn create_list_retrieve_update_in_stripes_shapes_secret_only_on_create() {
        let emu = emu().await;
        let c = client();
        let b = emu.base_url();
        let created = post(
            &c,
            &emu,
            PATH,
            &[
                ("url", "https://shop.example.com/api/webhook"),
                ("enabled_events[0]", "checkout.session.completed"),
                ("enabled_events[1]", "charge.refunded"),
                ("api_version", API_VERSION),
                ("description", "Ferris shop"),
                ("metadata[shop]", "shop.example.com"),
            ],
        )
        .await;
        assert_eq!(created.status, 200, "{}", created.text);
        conforms("post", PATH, &created.json);
        let e = &created.json;
        let id = e["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("we_"), "{id}");
        assert_eq!(e["object"], "webhook_endpoint");
        assert_eq!(e["url"], "https://shop.example.com/api/webhook");
        assert_eq!(e["enabled_events"], json!(["checkout.session.completed", "charge.refunded"]));
        assert_eq!(e["api_version"], API_VERSION);
        assert_eq!(e["description"], "Ferris shop");
        assert_eq!(e["metadata"], json!({"shop": "shop.example.com"}));
        assert_eq!(e["status"], "enabled");
        assert_eq!(e["livemode"], false);
        assert_eq!(e["application"], Value::Null);
        assert!(e["secret"].as_str().unwrap().starts_with("whsec_"), "{e}");

        // A second one, without api_version (null: the account's default) or description.
        let other = post(&c, &emu, PATH, &[("url", "https://other.example/hook"), ("enabled_events[]", "*")]).await;
        assert_eq!(other.status, 200, "{}", other.text);
        conforms("post", PATH, &other.json);
        assert_eq!(other.json["api_version"], Value::Null);
        assert_eq!(other.json["description"], Value::Null);
        assert_eq!(other.json["enabled_events"], json!(["*"]));
        assert_ne!(other.json["secret"], e["secret"]);
        let other_id = other.json["id"].as_str().unwrap().to_string();

        // Listed newest first, no secret; cursors and limit.
        let list = get(&c, &format!("{b}{PATH}?limit=100")).await;
        assert_eq!(list.status, 200, "{}", list.text);
        conforms("get", PATH, &list.json);
        assert_eq!(list.json["object"], "list");
        assert_eq!(list.json["url"], PATH);
        assert_eq!(list.json["has_more"], false);
        let data = list.json["data"].as_array().unwrap();
        assert_eq!(data.iter().map(|x| x["id"].as_str().unwrap()).collect::<Vec<_>>(), [&other_id, &id]);
        assert!(data.iter().all(|x| x.get("secret").is_none()), "{}", list.text);
        let first = get(&c, &format!("{b}{PATH}?limit=1")).await;
        assert_eq!(first.json["has_more"], true);
        assert_eq!(first.json["data"][0]["id"], other_id.as_str());
        let next = get(&c, &format!("{b}{PATH}?limit=1&starting_after={other_id}")).await;
        assert_eq!(next.json["data"][0]["id"], id.as_str());
        assert_eq!(next.json["has_more"], false);
        let back = get(&c, &format!("{b}{PATH}?ending_before={id}")).await;
        assert_eq!(back.json["data"][0]["id"], other_id.as_str());

        // Retrieved without the secret.
        let one = get(&c, &format!("{b}{PATH}/{id}")).await;
        assert_eq!(one.status, 200, "{}", one.text);
        conforms("get", ONE, &one.json);
        assert!(one.json.get("secret").is_none(), "{}", one.text);
        let mut without = e.clone();
        without.as_object_mut().unwrap().remove("secret");
        assert_eq!(one.json, without);
        let missing = get(&c, &format!("{b}{PATH}/we_nope")).await;
        assert_eq!(missing.status, 404);
        assert_eq!(missing.json["error"]["code"], "resource_missing");

        // Updated: events replaced, disabled, description, metadata merged; no secret.
        let path = format!("{PATH}/{id}");
        let up = post(
            &c,
            &emu,
            &path,
            &[
                ("enabled_events[0]", "refund.created"),
                ("disabled", "true"),
                ("description", ""),
                ("metadata[shop]", ""),
                ("metadata[owner]", "ferris"),
            ],
        )
        .await;
        assert_eq!(up.status, 200, "{}", up.text);
        conforms("post", ONE, &up.json);
        assert!(up.json.get("secret").is_none(), "{}", up.text);
        assert_eq!(up.json["enabled_events"], json!(["refund.created"]));
        assert_eq!(up.json["status"], "disabled");
        assert_eq!(up.json["description"], Value::Null);
        assert_eq!(up.json["metadata"], json!({"owner": "ferris"}));
        assert_eq!(up.json["api_version"], API_VERSION);
        let up =
            post(&c, &emu, &path, &[("url", "https://shop2.example.com/api/webhook"), ("disabled", "false")]).await;
        assert_eq!(up.status, 200, "{}", up.text);
        assert_eq!(up.json["url"], "https://shop2.example.com/api/webhook");
        assert_eq!(up.json["status"], "enabled");
        assert_eq!(get(&c, &format!("{b}{path}")).await.json, up.json);

        // api_version cannot be updated (not a parameter of the update operation).
        let r = post(&c, &emu, &path, &[("api_version", API_VERSION)]).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.json["error"]["code"], "parameter_unknown");
        assert_eq!(r.json["error"]["param"], "api_version");
        let r = post(&c, &emu, "/v1/webhook_endpoints/we_nope", &[("disabled", "true")]).await;
        assert_eq!(r.status, 404);
    }

    #[tokio::test]
    async fn unknown_event_types_and_missing_parameters_are_refused() {
        let emu = emu().await;
        let c = client();
        for (pairs, code, param) in [
            (
                vec![("url", "https://shop.example.com/api/webhook"), ("enabled_events[0]", "checkout.session.paid")],
                None,
                "enabled_events[0]",
            ),
            (
                vec![("url", "https://shop.example.com/api/webhook"), ("enabled_events[0]", "nonsense")],
                None,
                "enabled_events[0]",
            ),
            (vec![("enabled_events[0]", "charge.refunded")], Some("parameter_missing"), "url"),
            (vec![("url", "https://shop.example.com/api/webhook")], Some("parameter_missing"), "enabled_events"),
            (vec![("url", "not a url"), ("enabled_events[0]", "charge.refunded")], Some("url_invalid"), "url"),
            (
                vec![
                    ("url", "https://shop.example.com/h"),
                    ("enabled_events[0]", "charge.refunded"),
                    ("api_version", "1999-01-01"),
                ],
                None,
                "api_version",
            ),
            (
                vec![
                    ("url", "https://shop.example.com/h"),
                    ("enabled_events[0]", "charge.refunded"),
                    ("colour", "red"),
                ],
                Some("parameter_unknown"),
                "colour",
            ),
        ] {
            let r = post(&c, &emu, PATH, &pairs).await;
            assert_eq!(r.status, 400, "{pairs:?}: {}", r.text);
            assert_eq!(r.json["error"]["type"], "invalid_request_error", "{pairs:?}");
            assert_eq!(r.json["error"]["code"].as_str(), code, "{pairs:?}: {}", r.text);
            assert_eq!(r.json["error"]["param"], param, "{pairs:?}: {}", r.text);
        }
        let created =
            post(&c, &emu, PATH, &[("url", "https://shop.example.com/h"), ("enabled_events[0]", "charge.refunded")])
                .await;
        let path = format!("{PATH}/{}", created.json["id"].as_str().unwrap());
        let r = post(&c, &emu, &path, &[("enabled_events[0]", "charge.refunded"), ("enabled_events[1]", "order.paid")])
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.json["error"]["param"], "enabled_events[1]");
        let list = get(&c, &format!("{}{PATH}", emu.base_url())).await;
        assert_eq!(list.json["data"].as_array().unwrap().len(), 1, "refused requests created nothing: {}", list.text);
        assert_eq!(list.json["data"][0]["enabled_events"], json!(["charge.refunded"]));
    }

    /// The create and update forms against the spec slice (the check every `/v1` request passes),
    /// and the slice holds Stripe's operations: required `url` and `enabled_events`, the event
    /// enum, no `api_version` on update.
    #[test]
    fn forms_validate_against_the_spec_slice() {
        let good = p(&[
            ("url", "https://shop.example.com/api/webhook"),
            ("enabled_events[0]", "checkout.session.completed"),
            ("enabled_events[1]", "charge.dispute.funds_reinstated"),
            ("api_version", API_VERSION),
            ("description", "shop"),
            ("metadata[shop]", "shop.example.com"),
            ("connect", "false"),
        ]);
        spec::check_form("POST", PATH, &good).unwrap();
        spec::check_form("POST", "/v1/webhook_endpoints/we_1", &p(&[("enabled_events[0]", "*"), ("disabled", "true")]))
            .unwrap();
        spec::check_form("GET", PATH, &p(&[("limit", "100"), ("starting_after", "we_1")])).unwrap();
        for (method, path, bad, param) in [
            ("POST", PATH, p(&[("enabled_events[0]", "charge.refunded")]), "url"),
            ("POST", PATH, p(&[("url", "https://x.example/h")]), "enabled_events"),
            (
                "POST",
                PATH,
                p(&[("url", "https://x.example/h"), ("enabled_events[0]", "charge.exploded")]),
                "enabled_events[0]",
            ),
            (
                "POST",
                PATH,
                p(&[("url", "https://x.example/h"), ("enabled_events[0]", "*"), ("connect", "yes")]),
                "connect",
            ),
            ("POST", "/v1/webhook_endpoints/we_1", p(&[("api_version", API_VERSION)]), "api_version"),
            ("POST", "/v1/webhook_endpoints/we_1", p(&[("disabled", "maybe")]), "disabled"),
            ("GET", PATH, p(&[("limit", "ten")]), "limit"),
            ("GET", PATH, p(&[("type", "x")]), "type"),
        ] {
            let e = spec::check_form(method, path, &bad).unwrap_err();
            assert!(e.starts_with(&format!("{param}:")), "{method} {path} {bad:?}: {e}");
        }
        let create = &spec::document()["paths"][PATH]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
            ["schema"];
        assert_eq!(create["required"], json!(["enabled_events", "url"]));
        assert_eq!(create["additionalProperties"], false);
        let events = create["properties"]["enabled_events"]["items"]["enum"].as_array().unwrap();
        assert!(events.len() > 200 && events[0] == "*", "{}", events.len());
        let update = &spec::document()["paths"][ONE]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
            ["schema"]["properties"];
        let names: Vec<&str> = update.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(names, ["description", "disabled", "enabled_events", "expand", "metadata", "url"]);
        assert!(spec::schema("webhook_endpoint").is_some());
    }

    /// An endpoint created through the API on this machine gets the events it enabled, signed
    /// with its own secret, next to the configured URL (every event, the emulator's secret).
    #[tokio::test]
    async fn deliveries_to_a_created_endpoint_use_its_secret_and_its_events() {
        let all = Receiver::start(0, 0).await;
        let emu = Emulator::start(stripe_emulator::Options { webhook_url: Some(all.url.clone()), ..fast_opts() })
            .await
            .unwrap();
        let c = client();
        let mine = Receiver::start(0, 0).await;
        let created = post(
            &c,
            &emu,
            PATH,
            &[("url", &mine.url), ("enabled_events[0]", "checkout.session.completed"), ("api_version", API_VERSION)],
        )
        .await;
        assert_eq!(created.status, 200, "{}", created.text);
        let secret = created.json["secret"].as_str().unwrap().to_string();
        // Stored, listed, never called: not on this machine.
        let away =
            post(&c, &emu, PATH, &[("url", "https://shop.example.com/api/webhook"), ("enabled_events[]", "*")]).await;
        assert_eq!(away.status, 200, "{}", away.text);

        let s = create(&c, &emu, &base_session()).await;
        let id = s.json["id"].as_str().unwrap().to_string();
        emu.pay(&id, "pay").unwrap();
        let got = mine.wait(1, Duration::from_secs(5)).await;
        assert_eq!(got.len(), 1);
        let ev = got[0].json();
        assert_eq!(ev["type"], "checkout.session.completed");
        assert!(verify(&secret, &got[0].header("stripe-signature"), &got[0].body), "signed with the endpoint's secret");
        assert!(!verify(emu.webhook_secret(), &got[0].header("stripe-signature"), &got[0].body));
        let conf = all.wait(1, Duration::from_secs(5)).await;
        assert!(conf.iter().any(|r| r.json()["id"] == ev["id"]));
        assert!(conf.iter().all(|r| verify(emu.webhook_secret(), &r.header("stripe-signature"), &r.body)));
        // An event it did not enable is not sent to it; the configured URL still gets it.
        emu.refund(&id, None).unwrap();
        emu.wait_for_deliveries(
            |d| d.iter().any(|x| x.event_type == "charge.refunded" && x.ok()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(mine.got().len(), 1, "only checkout.session.completed was enabled");
        assert!(emu.deliveries().iter().all(|d| d.url == all.url || d.url == mine.url), "nothing sent off the machine");
        let pending = emu.events().into_iter().find(|e| e["id"] == ev["id"]).unwrap()["pending_webhooks"].clone();
        assert_eq!(pending, 2, "the configured URL and the endpoint");

        // Disabled: nothing more is sent to it.
        let path = format!("{PATH}/{}", created.json["id"].as_str().unwrap());
        assert_eq!(post(&c, &emu, &path, &[("disabled", "true")]).await.status, 200);
        let s2 = create(&c, &emu, &base_session()).await;
        emu.pay(s2.json["id"].as_str().unwrap(), "pay").unwrap();
        all.wait(conf.len() + 3, Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(mine.got().len(), 1);
    }
}
