//! Products and Prices over HTTP: create (own ids, lookup keys moved with
//! `transfer_lookup_key`), update, list with filters and cursors, delete, sessions priced by
//! `price` ids (inactive ones refused as Stripe does), the `product.*`/`price.*` events — every
//! answer checked against the spec slice.

mod common;
use common::*;
use serde_json::Value;
use stripe_emulator::spec;

fn conforms(method: &str, path: &str, value: &Value) {
    let schema = spec::response_schema(method, path).unwrap_or_else(|| panic!("{method} {path} not in the spec"));
    let errors = spec::validate(schema, value);
    assert!(errors.is_empty(), "{method} {path}:\n{}\n{value:#}", errors.join("\n"));
}

async fn post(c: &reqwest::Client, url: &str, pairs: &[(&str, &str)]) -> Resp {
    post_form(c, url, &p(pairs), &[("Authorization", &format!("Bearer {KEY}"))]).await
}

#[tokio::test]
async fn products_and_prices_round_trip_in_stripes_shapes() {
    let emu = emu().await;
    let c = client();
    let b = emu.base_url();
    let product = post(
        &c,
        &format!("{b}/v1/products"),
        &[("id", "tee"), ("name", "Tee"), ("metadata[shop]", "demo"), ("metadata[shippable]", "true")],
    )
    .await;
    assert_eq!(product.status, 200, "{}", product.text);
    conforms("post", "/v1/products", &product.json);
    assert_eq!(product.json["id"], "tee");
    let again = post(&c, &format!("{b}/v1/products"), &[("id", "tee"), ("name", "Tee")]).await;
    assert_eq!((again.status, again.json["error"]["code"].as_str()), (400, Some("resource_already_exists")));

    let first = post(
        &c,
        &format!("{b}/v1/prices"),
        &[("product", "tee"), ("currency", "usd"), ("unit_amount", "2500"), ("lookup_key", "shop:tee")],
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    conforms("post", "/v1/prices", &first.json);
    let first_id = first.json["id"].as_str().unwrap().to_string();
    // The same lookup key again: refused unless transferred.
    let taken = post(
        &c,
        &format!("{b}/v1/prices"),
        &[("product", "tee"), ("currency", "usd"), ("unit_amount", "2700"), ("lookup_key", "shop:tee")],
    )
    .await;
    assert_eq!(taken.status, 400, "{}", taken.text);
    let second = post(
        &c,
        &format!("{b}/v1/prices"),
        &[
            ("product", "tee"),
            ("currency", "usd"),
            ("unit_amount", "2700"),
            ("lookup_key", "shop:tee"),
            ("transfer_lookup_key", "true"),
        ],
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.text);
    let second_id = second.json["id"].as_str().unwrap().to_string();
    let by_key = get(&c, &format!("{b}/v1/prices?lookup_keys[]=shop:tee")).await;
    conforms("get", "/v1/prices", &by_key.json);
    let ids: Vec<&str> = by_key.json["data"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [second_id.as_str()]);

    // The default price moves; the old price is archived; archived prices leave active lists.
    let updated = post(&c, &format!("{b}/v1/products/tee"), &[("default_price", &second_id)]).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    conforms("post", "/v1/products/{id}", &updated.json);
    let archived = post(&c, &format!("{b}/v1/prices/{first_id}"), &[("active", "false")]).await;
    conforms("post", "/v1/prices/{price}", &archived.json);
    assert_eq!(archived.json["active"], false);
    let active = get(&c, &format!("{b}/v1/prices?product=tee&active=true")).await;
    assert_eq!(active.json["data"].as_array().unwrap().len(), 1);
    let expanded = get(&c, &format!("{b}/v1/products/tee?expand[]=default_price")).await;
    conforms("get", "/v1/products/{id}", &expanded.json);
    assert_eq!(expanded.json["default_price"]["unit_amount"], 2700);

    // A session priced by the archived price is refused; by the default price it is made.
    let session = |price: &str| {
        p(&[
            ("mode", "payment"),
            ("success_url", "https://shop.test/s"),
            ("line_items[0][price]", price),
            ("line_items[0][quantity]", "2"),
        ])
    };
    let refused = create(&c, &emu, &session(&first_id)).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    let made = create(&c, &emu, &session(&second_id)).await;
    assert_eq!((made.status, made.json["amount_total"].as_i64()), (200, Some(5400)), "{}", made.text);
    let gone = post(&c, &format!("{b}/v1/products/tee"), &[("active", "false")]).await;
    assert_eq!(gone.json["active"], false);
    assert_eq!(create(&c, &emu, &session(&second_id)).await.status, 400);

    // Pagination: newest first, starting_after.
    for i in 0..5 {
        let r = post(&c, &format!("{b}/v1/products"), &[("name", &format!("P{i}"))]).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let page = get(&c, &format!("{b}/v1/products?limit=2&active=true")).await;
    conforms("get", "/v1/products", &page.json);
    assert_eq!((page.json["data"][0]["name"].as_str(), page.json["has_more"].as_bool()), (Some("P4"), Some(true)));
    let next = get(
        &c,
        &format!("{b}/v1/products?limit=2&active=true&starting_after={}", page.json["data"][1]["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(next.json["data"][0]["name"], "P2");

    // Delete: only without prices.
    let bare = post(&c, &format!("{b}/v1/products"), &[("name", "Bare")]).await;
    let bare_id = bare.json["id"].as_str().unwrap();
    assert_eq!(post_form(&c, &format!("{b}/v1/products/tee"), &[], &[]).await.status, 401, "the key is required");
    let del = c
        .delete(format!("{b}/v1/products/{bare_id}"))
        .header("Authorization", format!("Bearer {KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    let del: Value = serde_json::from_str(&del.text().await.unwrap()).unwrap();
    conforms("delete", "/v1/products/{id}", &del);
    let with_prices =
        c.delete(format!("{b}/v1/products/tee")).header("Authorization", format!("Bearer {KEY}")).send().await.unwrap();
    assert_eq!(with_prices.status(), 400);

    // Events, each a resource of the slice.
    let kinds: Vec<String> = emu.events().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect();
    for want in ["product.created", "product.updated", "product.deleted", "price.created", "price.updated"] {
        assert!(kinds.iter().any(|k| k == want), "{want} not in {kinds:?}");
    }
    for e in emu.events() {
        let object = &e["data"]["object"];
        let errors = spec::validate(spec::schema(object["object"].as_str().unwrap()).unwrap(), object);
        assert!(errors.is_empty(), "{errors:?}");
    }
}

#[tokio::test]
async fn the_spec_refuses_what_stripe_refuses() {
    let emu = emu().await;
    let c = client();
    let b = emu.base_url();
    for (url, pairs, param) in [
        (format!("{b}/v1/products"), vec![("name", "X"), ("colour", "red")], "colour"),
        (format!("{b}/v1/products"), vec![("description", "no name")], "name"),
        (format!("{b}/v1/prices"), vec![("product", "prod_emu_tshirt"), ("unit_amount", "1")], "currency"),
        (format!("{b}/v1/prices/price_emu_tshirt"), vec![("unit_amount", "1")], "unit_amount"),
    ] {
        let r = post(&c, &url, &pairs).await;
        assert_eq!(r.status, 400, "{url} {pairs:?}: {}", r.text);
        assert_eq!(r.json["error"]["param"], param, "{}", r.text);
    }
    let r = get(&c, &format!("{b}/v1/prices?lookup_keys[]=a&colour=red")).await;
    assert_eq!(r.status, 400, "{}", r.text);
}
