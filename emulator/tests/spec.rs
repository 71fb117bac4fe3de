//! The emulator against Stripe's OpenAPI spec slice (`emulator/spec/spec-slice.json`): every
//! object it serves validates against its component schema (required properties, types,
//! nullable, anyOf for expandable fields, enums, lengths, no unknown property), and it refuses
//! the parameters the spec refuses, with Stripe's error shape.

mod common;
use common::*;
use serde_json::Value;
use std::time::Duration;
use stripe_emulator::spec;

/// Validates `value` against the 200 answer of `method path` (a spec template).
fn conforms(method: &str, path: &str, value: &Value) {
    let schema = spec::response_schema(method, path).unwrap_or_else(|| panic!("{method} {path} not in the spec"));
    let errors = spec::validate(schema, value);
    assert!(errors.is_empty(), "{method} {path} answered what the spec refuses:\n{}\n{value:#}", errors.join("\n"));
}

/// Validates `value` against `#/components/schemas/{name}`.
fn is_a(name: &str, value: &Value) {
    let errors = spec::validate(spec::schema(name).expect("schema in the slice"), value);
    assert!(errors.is_empty(), "{name} does not match the spec:\n{}\n{value:#}", errors.join("\n"));
}

#[test]
fn the_validator_catches_mismatches() {
    let product = spec::schema("product").unwrap();
    let mut p = serde_json::json!({
        "id": "prod_1", "object": "product", "active": true, "created": 1, "images": [], "livemode": false,
        "marketing_features": [], "metadata": {}, "name": "Tee", "updated": 1
    });
    assert!(spec::validate(product, &p).is_empty());
    p["object"] = "price".into();
    p["colour"] = "red".into();
    p["name"] = Value::Null;
    p.as_object_mut().unwrap().remove("images");
    p["default_price"] = 5.into();
    let errors = spec::validate(product, &p).join("\n");
    for want in ["$.object", "unknown property colour", "$.name: null", "missing required property images", "anyOf"] {
        assert!(errors.contains(want), "{want} not in:\n{errors}");
    }
}

#[tokio::test]
async fn every_answer_matches_the_spec() {
    let emu = emu().await;
    let c = client();
    let b = emu.base_url();
    let objects = [
        ("coupon", "/v1/coupons/EMU10PCT", "/v1/coupons/{coupon}"),
        ("coupon", "/v1/coupons/EMU5USD", "/v1/coupons/{coupon}"),
        ("price", "/v1/prices/price_emu_tshirt", "/v1/prices/{price}"),
        ("product", "/v1/products/prod_emu_tshirt", "/v1/products/{id}"),
        ("promotion code", "/v1/promotion_codes/promo_emu_save10", "/v1/promotion_codes/{promotion_code}"),
        (
            "promotion code, coupon expanded",
            "/v1/promotion_codes/promo_emu_fiveoff?expand[]=promotion.coupon",
            "/v1/promotion_codes/{promotion_code}",
        ),
        ("promotion codes", "/v1/promotion_codes?limit=100", "/v1/promotion_codes"),
        (
            "promotion codes as the shop asks",
            "/v1/promotion_codes?code=save10&active=true&limit=10&expand[]=data.promotion.coupon&expand[]=data.promotion.coupon.applies_to",
            "/v1/promotion_codes",
        ),
    ];
    for (what, url, template) in objects {
        let r = get(&c, &format!("{b}{url}")).await;
        assert_eq!(r.status, 200, "{what}: {}", r.text);
        conforms("get", template, &r.json);
    }
    let r = get(&c, &format!("{b}/v1/promotion_codes?limit=100&expand[]=data.promotion.coupon")).await;
    for code in r.json["data"].as_array().unwrap() {
        is_a("promotion_code", code);
        is_a("coupon", &code["promotion"]["coupon"]);
    }

    // Sessions: hosted and embedded, with a catalog price and an inline product, a discount.
    let hosted = create(&c, &emu, &base_session()).await;
    assert_eq!(hosted.status, 200, "{}", hosted.text);
    conforms("post", "/v1/checkout/sessions", &hosted.json);
    assert!(hosted.json.get("return_url").is_none(), "hosted sessions have no return_url");
    let mut pairs = base_session();
    pairs.extend(p(&[
        ("line_items[1][price]", "price_emu_mug"),
        ("line_items[1][quantity]", "1"),
        ("discounts[0][promotion_code]", "promo_emu_save10"),
        ("metadata[shop]", "demo"),
        ("client_reference_id", "order_1"),
        ("expand[]", "line_items"),
    ]));
    let discounted = create(&c, &emu, &pairs).await;
    assert_eq!(discounted.status, 200, "{}", discounted.text);
    conforms("post", "/v1/checkout/sessions", &discounted.json);
    let embedded = create(
        &c,
        &emu,
        &p(&[
            ("mode", "payment"),
            ("ui_mode", "embedded_page"),
            ("return_url", "https://shop.test/r?session_id={CHECKOUT_SESSION_ID}"),
            ("line_items[0][price]", "price_emu_tshirt"),
            ("line_items[0][quantity]", "1"),
        ]),
    )
    .await;
    assert_eq!(embedded.status, 200, "{}", embedded.text);
    conforms("post", "/v1/checkout/sessions", &embedded.json);
    let session = |id: &Value| format!("{b}/v1/checkout/sessions/{}", id.as_str().unwrap());
    for s in [&hosted.json, &discounted.json, &embedded.json] {
        for q in ["", "?expand[]=line_items", "?expand[]=line_items.data.price.product"] {
            let r = get(&c, &format!("{}{q}", session(&s["id"]))).await;
            conforms("get", "/v1/checkout/sessions/{session}", &r.json);
        }
        for q in ["", "?expand[]=data.price.product", "?limit=1"] {
            let r = get(&c, &format!("{}/line_items{q}", session(&s["id"]))).await;
            conforms("get", "/v1/checkout/sessions/{session}/line_items", &r.json);
        }
    }
    let r = get(&c, &format!("{}?expand[]=line_items.data.price.product", session(&discounted.json["id"]))).await;
    for item in r.json["line_items"]["data"].as_array().unwrap() {
        is_a("item", item);
        is_a("product", &item["price"]["product"]);
    }

    // After payment: paid, refunded in part, disputed; a delayed payment; an expired session.
    emu.pay(discounted.json["id"].as_str().unwrap(), "pay").unwrap();
    emu.pay(embedded.json["id"].as_str().unwrap(), "delayed_success").unwrap();
    let refund = emu.refund(discounted.json["id"].as_str().unwrap(), Some(100)).unwrap();
    let dispute = emu.dispute(discounted.json["id"].as_str().unwrap(), false).unwrap();
    let auth = format!("Bearer {KEY}");
    let expired =
        post_form(&c, &format!("{}/expire", session(&hosted.json["id"])), &[], &[("Authorization", &auth)]).await;
    assert_eq!(expired.status, 200, "{}", expired.text);
    is_a("checkout.session", &expired.json);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for s in [&hosted.json, &discounted.json, &embedded.json] {
        let r = get(&c, &format!("{}?expand[]=line_items", session(&s["id"]))).await;
        conforms("get", "/v1/checkout/sessions/{session}", &r.json);
    }
    let paid = get(&c, &session(&discounted.json["id"])).await.json;
    let pi = get(&c, &format!("{b}/v1/payment_intents/{}", paid["payment_intent"].as_str().unwrap())).await.json;
    conforms("get", "/v1/payment_intents/{intent}", &pi);
    let charge = get(&c, &format!("{b}/v1/charges/{}", pi["latest_charge"].as_str().unwrap())).await.json;
    conforms("get", "/v1/charges/{charge}", &charge);
    conforms(
        "get",
        "/v1/refunds/{refund}",
        &get(&c, &format!("{b}/v1/refunds/{}", refund["id"].as_str().unwrap())).await.json,
    );
    conforms("get", "/v1/refunds", &get(&c, &format!("{b}/v1/refunds")).await.json);
    conforms(
        "get",
        "/v1/disputes/{dispute}",
        &get(&c, &format!("{b}/v1/disputes/{}", dispute["id"].as_str().unwrap())).await.json,
    );
    conforms("get", "/v1/disputes", &get(&c, &format!("{b}/v1/disputes")).await.json);
    emu.set_dispute_status(dispute["id"].as_str().unwrap(), "won").unwrap();

    // Events: each one and the list; every data.object is a resource of the slice.
    let events = get(&c, &format!("{b}/v1/events?limit=100")).await.json;
    conforms("get", "/v1/events", &events);
    assert!(events["data"].as_array().unwrap().len() >= 8, "{events:#}");
    for e in events["data"].as_array().unwrap() {
        conforms(
            "get",
            "/v1/events/{id}",
            &get(&c, &format!("{b}/v1/events/{}", e["id"].as_str().unwrap())).await.json,
        );
        let object = &e["data"]["object"];
        is_a(object["object"].as_str().unwrap(), object);
    }
    for e in emu.events() {
        is_a("event", &e);
    }
}

/// A request the spec refuses: (what, method, path, params, param named, code).
type Refused = (&'static str, &'static str, &'static str, Vec<(String, String)>, &'static str, Option<&'static str>);

#[tokio::test]
async fn parameters_stripe_refuses_are_refused() {
    let emu = emu().await;
    let c = client();
    let b = emu.base_url();
    let with = |extra: &[(&str, &str)]| {
        let mut pairs = base_session();
        pairs.extend(p(extra));
        pairs
    };
    let long = "x".repeat(5001);
    let cases: Vec<Refused> = vec![
        (
            "unknown name",
            "POST",
            "/v1/checkout/sessions",
            with(&[("shipping", "1")]),
            "shipping",
            Some("parameter_unknown"),
        ),
        (
            "unknown nested name",
            "POST",
            "/v1/checkout/sessions",
            with(&[("line_items[0][price_data][product_data][colour]", "red")]),
            "line_items[0][price_data][product_data][colour]",
            Some("parameter_unknown"),
        ),
        ("wrong enum", "POST", "/v1/checkout/sessions", with(&[("locale", "xx")]), "locale", None),
        ("ui_mode", "POST", "/v1/checkout/sessions", with(&[("ui_mode", "popup")]), "ui_mode", None),
        (
            "over-long string",
            "POST",
            "/v1/checkout/sessions",
            with(&[("line_items[0][price_data][product_data][name]", &long)]),
            "line_items[0][price_data][product_data][name]",
            None,
        ),
        (
            "over-long unit_label",
            "POST",
            "/v1/checkout/sessions",
            with(&[("line_items[0][price_data][product_data][unit_label]", "thirteen char")]),
            "line_items[0][price_data][product_data][unit_label]",
            None,
        ),
        (
            "not an integer",
            "POST",
            "/v1/checkout/sessions",
            with(&[("expires_at", "soon")]),
            "expires_at",
            Some("parameter_invalid_integer"),
        ),
        (
            "not a boolean",
            "POST",
            "/v1/checkout/sessions",
            with(&[("allow_promotion_codes", "1")]),
            "allow_promotion_codes",
            None,
        ),
        ("expand as a string", "POST", "/v1/checkout/sessions", with(&[("expand", "line_items")]), "expand", None),
        (
            "a hash for a string",
            "POST",
            "/v1/checkout/sessions",
            with(&[("client_reference_id[a]", "b")]),
            "client_reference_id",
            None,
        ),
        (
            "nested required",
            "POST",
            "/v1/checkout/sessions",
            with(&[("line_items[0][adjustable_quantity][maximum]", "3")]),
            "line_items[0][adjustable_quantity][enabled]",
            Some("parameter_missing"),
        ),
        (
            "list: unknown name",
            "GET",
            "/v1/promotion_codes",
            p(&[("colour", "red")]),
            "colour",
            Some("parameter_unknown"),
        ),
        ("list: boolean", "GET", "/v1/promotion_codes", p(&[("active", "yes")]), "active", None),
        ("list: limit", "GET", "/v1/events", p(&[("limit", "ten")]), "limit", Some("parameter_invalid_integer")),
        (
            "list: created",
            "GET",
            "/v1/events",
            p(&[("created[after]", "1")]),
            "created[after]",
            Some("parameter_unknown"),
        ),
        ("list: long cursor", "GET", "/v1/events", p(&[("starting_after", &long)]), "starting_after", None),
        ("retrieve: unknown", "GET", "/v1/events/evt_1", p(&[("limit", "1")]), "limit", Some("parameter_unknown")),
        ("retrieve: long expand", "GET", "/v1/checkout/sessions/cs_1", p(&[("expand[0]", &long)]), "expand[0]", None),
        ("refunds: unknown", "GET", "/v1/refunds", p(&[("status", "failed")]), "status", Some("parameter_unknown")),
    ];
    let auth = format!("Bearer {KEY}");
    for (what, method, path, pairs, param, code) in cases {
        let r = if method == "POST" {
            post_form(&c, &format!("{b}{path}"), &pairs, &[("Authorization", &auth)]).await
        } else {
            get(&c, &format!("{b}{path}?{}", encode(&pairs))).await
        };
        assert_eq!(r.status, 400, "{what}: {}", r.text);
        let e = &r.json["error"];
        assert_eq!(e["type"], "invalid_request_error", "{what}");
        assert_eq!(e["param"], param, "{what}: {}", r.text);
        assert_eq!(e["code"].as_str(), code, "{what}: {}", r.text);
        assert!(e["message"].as_str().is_some_and(|m| m.len() > 10), "{what}: {}", r.text);
    }
    // Stripe's wording for the common cases.
    let r =
        post_form(&c, &format!("{b}/v1/checkout/sessions"), &with(&[("locale", "xx")]), &[("Authorization", &auth)])
            .await;
    assert!(
        r.json["error"]["message"].as_str().unwrap().starts_with("Invalid locale: must be one of auto, bg,"),
        "{}",
        r.text
    );
    let r = get(&c, &format!("{b}/v1/events?starting_after={long}")).await;
    assert!(r.json["error"]["message"].as_str().unwrap().ends_with("must be at most 5000 characters"), "{}", r.text);
    // What the shop sends passes.
    let ok = with(&[("metadata[shop]", "demo"), ("client_reference_id", "c1"), ("expand[]", "line_items")]);
    let r = post_form(&c, &format!("{b}/v1/checkout/sessions"), &ok, &[("Authorization", &auth)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = get(
        &c,
        &format!("{b}/v1/events?types[]=checkout.session.completed&limit=100&delivery_success=false&created[gte]=1"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}
