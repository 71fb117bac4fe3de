//! create-checkout and products over real HTTP against the Stripe emulator.

use crate::common::{ShopOptions, shop};
use stripe_emulator::ApiFault;

const CART: &str = r#"{"items":[{"id":"tshirt","quantity":2},{"id":"mug","quantity":1}]}"#;

#[tokio::test]
async fn sends_exactly_the_servers_parameters() {
    let s = shop(ShopOptions::default()).await;
    let (status, headers, json) = s.post_json("/api/create-checkout", CART, "203.0.113.10").await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(headers["cache-control"], "no-store");
    let url = json["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/c/pay/cs_test_", s.emu.base_url())), "{url}");
    assert_eq!(json.as_object().unwrap().len(), 1, "only the url is answered: {json}");

    let reqs = s.emu.requests();
    let create: Vec<_> = reqs.iter().filter(|r| r.path == "/v1/checkout/sessions").collect();
    assert_eq!(create.len(), 1);
    let r = create[0];
    let expected: Vec<(String, String)> = [
        ("mode", "payment"),
        ("ui_mode", "hosted_page"),
        ("line_items[0][price_data][currency]", "usd"),
        ("line_items[0][price_data][unit_amount]", "2500"),
        ("line_items[0][price_data][product_data][name]", "Ferris T-shirt"),
        (
            "line_items[0][price_data][product_data][description]",
            "Soft organic cotton tee with a small embroidered crab.",
        ),
        ("line_items[0][quantity]", "2"),
        ("line_items[1][price_data][currency]", "usd"),
        ("line_items[1][price_data][unit_amount]", "1400"),
        ("line_items[1][price_data][product_data][name]", "Borrow-checked Mug"),
        (
            "line_items[1][price_data][product_data][description]",
            "Stoneware mug, 350 ml. Holds exactly one owner's coffee.",
        ),
        ("line_items[1][quantity]", "1"),
        ("metadata[shop]", "checkout-rust"),
        ("success_url", &format!("{}/success.html?session_id={{CHECKOUT_SESSION_ID}}", s.site)),
        ("cancel_url", &format!("{}/cancel.html", s.site)),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain(shipping_params(500, false))
    .collect();
    assert_eq!(without_reservation(&r.params), expected);
    assert_eq!(r.stripe_version.as_deref(), Some(checkout::stripe::API_VERSION));
    assert!(r.idempotency_key.as_ref().is_some_and(|k| k.len() > 20 && k.len() <= 255));
    assert_eq!(r.key_last4.as_deref(), Some("4242"));

    let session = s.emu.session(url.rsplit('/').next().unwrap()).unwrap();
    assert_eq!(session["amount_subtotal"], 2 * 2500 + 1400);
    assert_eq!(session["total_details"]["amount_shipping"], 500, "standard shipping preselected");
    assert_eq!(session["amount_total"], 2 * 2500 + 1400 + 500);
}

/// The shipping parameters of a cart with physical goods (default countries), standard
/// shipping at `standard` (free from $75), with or without Stripe Tax's codes.
fn shipping_params(standard: i64, tax: bool) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = ["US", "CA"]
        .iter()
        .map(|c| ("shipping_address_collection[allowed_countries][]".to_string(), c.to_string()))
        .collect();
    for (i, (name, amount, min, max)) in
        [("Standard shipping", standard, 3, 7), ("Express shipping", 1500, 1, 2)].into_iter().enumerate()
    {
        let rd = format!("shipping_options[{i}][shipping_rate_data]");
        p.push((format!("{rd}[type]"), "fixed_amount".into()));
        p.push((format!("{rd}[display_name]"), name.into()));
        p.push((format!("{rd}[fixed_amount][amount]"), amount.to_string()));
        p.push((format!("{rd}[fixed_amount][currency]"), "usd".into()));
        p.push((format!("{rd}[delivery_estimate][minimum][unit]"), "business_day".into()));
        p.push((format!("{rd}[delivery_estimate][minimum][value]"), min.to_string()));
        p.push((format!("{rd}[delivery_estimate][maximum][unit]"), "business_day".into()));
        p.push((format!("{rd}[delivery_estimate][maximum][value]"), max.to_string()));
        if tax {
            p.push((format!("{rd}[tax_code]"), "txcd_92010001".into()));
            p.push((format!("{rd}[tax_behavior]"), "exclusive".into()));
        }
    }
    p
}

/// The form of the one session created for `cart` by a shop with `env`.
async fn created_form(env: Vec<(&'static str, String)>, cart: &str) -> (Vec<(String, String)>, String) {
    let s = shop(ShopOptions { env, ..Default::default() }).await;
    let (status, _, json) = s.post_json("/api/create-checkout", cart, "203.0.113.10").await;
    assert_eq!(status, 200, "{json}");
    let create = s.requests_to("/v1/checkout/sessions");
    assert_eq!(create.len(), 1);
    (without_reservation(&create[0].params), s.site.clone())
}

/// A session's form without its stock reservation (`expires_at` 31 minutes ahead and
/// `metadata[reservation]`, checked here), which every checkout sends after the rest.
fn without_reservation(params: &[(String, String)]) -> Vec<(String, String)> {
    let (held, rest): (Vec<_>, Vec<_>) =
        params.iter().cloned().partition(|(k, _)| k == "expires_at" || k == "metadata[reservation]");
    let ahead = held[0].1.parse::<i64>().unwrap() - checkout::clock::now();
    assert!((30 * 60..=31 * 60).contains(&ahead), "expires_at 31 minutes ahead: {ahead}");
    assert_eq!(held[0].0, "expires_at");
    assert!(held[1].1.starts_with("rsv_"), "{held:?}");
    rest
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn a_digital_only_cart_sends_no_shipping_and_tax_only_when_configured() {
    let cart = r#"{"items":[{"id":"wallpapers","quantity":1}]}"#;
    let line = [
        ("mode", "payment"),
        ("ui_mode", "hosted_page"),
        ("line_items[0][price_data][currency]", "usd"),
        ("line_items[0][price_data][unit_amount]", "400"),
        ("line_items[0][price_data][product_data][name]", "Crab Wallpaper Pack"),
        (
            "line_items[0][price_data][product_data][description]",
            "Twelve desktop and phone wallpapers: a digital good, nothing to ship.",
        ),
    ];
    let urls = |site: &str| {
        vec![
            ("success_url".to_string(), format!("{site}/success.html?session_id={{CHECKOUT_SESSION_ID}}")),
            ("cancel_url".to_string(), format!("{site}/cancel.html")),
        ]
    };
    let (form, site) = created_form(vec![], cart).await;
    let mut expected = pairs(&line);
    expected.extend(pairs(&[("line_items[0][quantity]", "1"), ("metadata[shop]", "checkout-rust")]));
    expected.extend(urls(&site));
    assert_eq!(form, expected, "tax off, nothing ships: no shipping, no tax parameters");

    let (form, site) = created_form(vec![("STRIPE_AUTOMATIC_TAX", "true".into())], cart).await;
    let mut expected = pairs(&line);
    expected.extend(pairs(&[
        ("line_items[0][price_data][product_data][tax_code]", "txcd_10000000"),
        ("line_items[0][price_data][tax_behavior]", "exclusive"),
        ("line_items[0][quantity]", "1"),
        ("metadata[shop]", "checkout-rust"),
    ]));
    expected.extend(urls(&site));
    expected.push(("automatic_tax[enabled]".into(), "true".into()));
    assert_eq!(form, expected, "tax on: codes, behaviour and automatic_tax");
}

#[tokio::test]
async fn physical_goods_send_the_catalogs_shipping_rates_and_tax_when_configured() {
    // $110 of hoodies: standard shipping is free from $75; the countries come from the config.
    let cart = r#"{"items":[{"id":"hoodie","quantity":2}]}"#;
    let env = vec![("STRIPE_AUTOMATIC_TAX", "true".to_string()), ("SHIPPING_ALLOWED_COUNTRIES", "gb,US".to_string())];
    let (form, site) = created_form(env, cart).await;
    let mut expected = pairs(&[
        ("mode", "payment"),
        ("ui_mode", "hosted_page"),
        ("line_items[0][price_data][currency]", "usd"),
        ("line_items[0][price_data][unit_amount]", "5500"),
        ("line_items[0][price_data][product_data][name]", "Zero-cost Hoodie"),
        (
            "line_items[0][price_data][product_data][description]",
            "Heavyweight hoodie; the abstraction is free, the hoodie is not.",
        ),
        ("line_items[0][price_data][product_data][tax_code]", "txcd_99999999"),
        ("line_items[0][price_data][tax_behavior]", "exclusive"),
        ("line_items[0][quantity]", "2"),
        ("metadata[shop]", "checkout-rust"),
    ]);
    expected.push(("success_url".into(), format!("{site}/success.html?session_id={{CHECKOUT_SESSION_ID}}")));
    expected.push(("cancel_url".into(), format!("{site}/cancel.html")));
    let mut shipping = shipping_params(0, true);
    shipping[0].1 = "GB".into();
    shipping[1].1 = "US".into();
    expected.extend(shipping);
    expected.push(("automatic_tax[enabled]".into(), "true".into()));
    assert_eq!(form, expected);
}

#[tokio::test]
async fn embedded_mode_answers_only_the_client_secret() {
    let s = shop(ShopOptions { env: vec![("CHECKOUT_UI_MODE", "embedded_page".into())], ..Default::default() }).await;
    let (status, _, json) = s.post_json("/api/create-checkout", CART, "203.0.113.11").await;
    assert_eq!(status, 200, "{json}");
    assert!(json["client_secret"].as_str().unwrap().contains("_secret_"));
    assert!(json.get("url").is_none());
    let r = s.requests_to("/v1/checkout/sessions").remove(0);
    assert!(r.params.iter().any(|(k, v)| k == "ui_mode" && v == "embedded_page"));
    assert!(r.params.iter().any(|(k, _)| k == "return_url"));
    assert!(!r.params.iter().any(|(k, _)| k == "success_url" || k == "cancel_url"));
}

#[tokio::test]
async fn retries_a_500_with_the_same_idempotency_key() {
    let s = shop(ShopOptions::default()).await;
    s.emu.set_api_fault(ApiFault { status: Some(500), count: 1, ..Default::default() });
    let (status, _, json) = s.post_json("/api/create-checkout", CART, "203.0.113.12").await;
    assert_eq!(status, 200, "{json}");
    let create = s.requests_to("/v1/checkout/sessions");
    assert_eq!(create.len(), 2, "one failure, one retry");
    assert_eq!(create[0].status, 500);
    assert_eq!(create[1].status, 200);
    assert_eq!(create[0].idempotency_key, create[1].idempotency_key);
    assert_eq!(create[0].params, create[1].params);
}

#[tokio::test]
async fn does_not_retry_a_plain_429_and_answers_502_with_a_reference() {
    let s = shop(ShopOptions::default()).await;
    s.emu.set_api_fault(ApiFault { status: Some(429), count: 1, ..Default::default() });
    let (status, _, json) = s.post_json("/api/create-checkout", CART, "203.0.113.13").await;
    assert_eq!(status, 502, "{json}");
    let create = s.requests_to("/v1/checkout/sessions");
    assert_eq!(create.len(), 1, "stripe-node does not retry a plain 429");
    let reference = json["error"]["reference"].as_str().unwrap();
    assert!(reference.starts_with("ref_"));
    let text = json.to_string();
    assert!(!text.to_lowercase().contains("rate"), "Stripe's message leaked: {text}");
}

#[tokio::test]
async fn gives_up_after_two_retries_with_a_generic_502() {
    let s = shop(ShopOptions::default()).await;
    s.emu.set_api_fault(ApiFault { status: Some(500), count: 10, ..Default::default() });
    let (status, _, json) = s.post_json("/api/create-checkout", CART, "203.0.113.14").await;
    assert_eq!(status, 502);
    let create = s.requests_to("/v1/checkout/sessions");
    assert_eq!(create.len(), 3, "first attempt + 2 retries");
    assert!(create.iter().all(|r| r.idempotency_key == create[0].idempotency_key));
    let msg = json["error"]["message"].as_str().unwrap();
    assert!(msg.contains("not been charged"), "{msg}");
}

#[tokio::test]
async fn the_stripe_client_does_not_retry_a_400() {
    let s = shop(ShopOptions::default()).await;
    let mut form = checkout::stripe::Form::new();
    form.push("mode", "payment").push("bogus_param", "1");
    let r: Result<serde_json::Value, _> = s.app.stripe.post("/v1/checkout/sessions", &form, "key-400-test").await;
    match r {
        Err(checkout::stripe::StripeError::Api { status: 400, param, request_id, .. }) => {
            assert!(request_id.is_some_and(|id| id.starts_with("req_")));
            assert!(param.is_some());
        }
        other => panic!("expected a 400, got {other:?}"),
    }
    assert_eq!(s.emu.requests().len(), 1);
}

#[tokio::test]
async fn reuses_pooled_connections() {
    let s = shop(ShopOptions::default()).await;
    for i in 0..3 {
        let (status, _, _) = s.post_json("/api/create-checkout", CART, &format!("203.0.113.{}", 20 + i)).await;
        assert_eq!(status, 200);
    }
    let ports: Vec<u16> = s.emu.requests().iter().map(|r| r.remote_addr.port()).collect();
    assert_eq!(ports.len(), 3);
    assert!(ports.iter().all(|p| *p == ports[0]), "one pooled connection: {ports:?}");
}

#[tokio::test]
async fn request_validation_table() {
    let s = shop(ShopOptions::default()).await;
    let ok_item = r#"{"id":"tshirt","quantity":1}"#;
    let many = (0..21).map(|_| ok_item).collect::<Vec<_>>().join(",");
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("unknown field", r#"{"items":[{"id":"tshirt","quantity":1}],"price":1}"#.into(), 400, "price"),
        (
            "forged line amount",
            r#"{"items":[{"id":"tshirt","quantity":1,"unit_amount":1}]}"#.into(),
            400,
            "unit_amount",
        ),
        ("unknown product", r#"{"items":[{"id":"yacht","quantity":1}]}"#.into(), 400, "items[0].id"),
        ("quantity zero", r#"{"items":[{"id":"tshirt","quantity":0}]}"#.into(), 400, "items[0].quantity"),
        ("quantity negative", r#"{"items":[{"id":"tshirt","quantity":-3}]}"#.into(), 400, "items[0].quantity"),
        ("quantity above max", r#"{"items":[{"id":"hoodie","quantity":6}]}"#.into(), 400, "items[0].quantity"),
        ("fractional quantity", r#"{"items":[{"id":"tshirt","quantity":1.5}]}"#.into(), 400, "invalid request"),
        ("duplicate line", format!(r#"{{"items":[{ok_item},{ok_item}]}}"#), 400, "items[1].id"),
        ("empty cart", r#"{"items":[]}"#.into(), 400, "items"),
        ("missing items", r#"{}"#.into(), 400, "items"),
        ("too many lines", format!(r#"{{"items":[{many}]}}"#), 400, "at most"),
        ("not json", "items=1".into(), 400, "not valid JSON"),
        ("json array", "[]".into(), 400, "invalid request"),
    ];
    for (name, body, want, mention) in cases {
        let (status, _, json) = s.post_json("/api/create-checkout", &body, "203.0.113.30").await;
        assert_eq!(status, want, "{name}: {json}");
        let msg = json["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(mention), "{name}: message {msg:?} should mention {mention:?}");
    }
    assert!(s.emu.requests().is_empty(), "no invalid request reached Stripe");
}

#[tokio::test]
async fn transport_level_refusals() {
    let s = shop(ShopOptions::default()).await;
    let url = s.url("/api/create-checkout");
    // 405 with Allow
    let r = s.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    // 415
    let r = s
        .http
        .post(&url)
        .header("origin", &s.site)
        .header("content-type", "text/plain")
        .body(CART)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // 413 by Content-Length and by streaming without one
    let big = format!(r#"{{"items":[],"pad":"{}"}}"#, "x".repeat(17 * 1024));
    let r = s
        .http
        .post(&url)
        .header("origin", &s.site)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let status = crate::common::raw_chunked_post(s.addr, "/api/create-checkout", &s.site, big.as_bytes()).await;
    assert_eq!(status, 413, "limit enforced while streaming a chunked body");
    // 403 cross-site
    let r = s
        .http
        .post(&url)
        .header("origin", "https://evil.example")
        .header("content-type", "application/json")
        .body(CART)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = s.http.post(&url).header("content-type", "application/json").body(CART).send().await.unwrap();
    assert_eq!(r.status(), 403, "no Origin, no Sec-Fetch-Site");
    let r = s
        .http
        .post(&url)
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/json")
        .body(CART)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "Sec-Fetch-Site: same-origin is enough");
    let r = s
        .http
        .post(&url)
        .header("sec-fetch-site", "cross-site")
        .header("origin", "null")
        .header("content-type", "application/json")
        .body(CART)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(s.emu.requests().len(), 1, "only the same-origin request reached Stripe");
}

#[tokio::test]
async fn products_serve_public_fields_and_the_publishable_key_only() {
    let s = shop(ShopOptions::default()).await;
    let (status, headers, json) = s.get("/api/products").await;
    assert_eq!(status, 200);
    assert!(headers["cache-control"].to_str().unwrap().contains("max-age"));
    assert_eq!(json["publishable_key"], "pk_test_harness4242");
    assert_eq!(json["ui_mode"], "hosted_page");
    assert_eq!(json["test_mode"], true, "test keys: the storefront shows its Test mode ribbon");
    let products = json["products"].as_array().unwrap();
    assert_eq!(products.len(), checkout::catalog::products().len());
    for p in products {
        let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["currency", "description", "id", "max_quantity", "name", "shippable", "unit_amount"]);
    }
    assert!(products.iter().any(|p| p["shippable"] == false), "one digital product");
    assert_eq!(json["automatic_tax"], false, "tax is off unless STRIPE_AUTOMATIC_TAX=true");
    assert_eq!(json["shipping_rates"][0]["display_name"], "Standard shipping");
    let text = json.to_string();
    assert!(!text.contains(crate::common::SECRET_KEY) && !text.contains(crate::common::WEBHOOK_SECRET));
    let r = s.http.post(s.url("/api/products")).send().await.unwrap();
    assert_eq!(r.status(), 405);
}
