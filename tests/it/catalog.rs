//! The catalog from Stripe (`CATALOG_SOURCE=stripe`), end to end against the emulator over
//! HTTP and a real store: products and prices made through Stripe's API (as in the Dashboard)
//! reach `/api/products` and the next checkout's amount; an archived product is refused with a
//! 409 before Stripe is asked; duplicated and reordered product/price events converge; the
//! first fill pages through the list; an unusable default price is not sold; `/api/products`
//! carries a strong `ETag`, answers 304 to it, and is cacheable by the CDN.

use crate::common::*;
use serde_json::Value;
use std::time::Duration;

/// A shop on the Stripe catalog with its own tag (tests share a Postgres database).
async fn stripe_shop(backend: Backend, webhooks: bool) -> (Shop, String) {
    let tag = format!("t{}", checkout::http::random_hex(6));
    let env = vec![("CATALOG_SOURCE", "stripe".to_string()), ("CATALOG_TAG", tag.clone())];
    let s = shop(ShopOptions { backend: Some(backend), env, no_webhooks: !webhooks, ..Default::default() }).await;
    (s, tag)
}

/// `POST {emulator}/v1/{path}` with the shop's key; the answer's JSON (asserting a 200).
async fn stripe_post(s: &Shop, path: &str, pairs: &[(&str, &str)]) -> Value {
    let r = s
        .http
        .post(format!("{}/v1/{path}", s.emu.base_url()))
        .bearer_auth(SECRET_KEY)
        .form(pairs)
        .send()
        .await
        .unwrap();
    let (status, _, json) = split(r).await;
    assert_eq!(status, 200, "POST /v1/{path}: {json}");
    json
}

/// Creates a product of the shop (`tag`) with a default price; returns its id.
async fn product(s: &Shop, tag: &str, name: &str, amount: i64, extra: &[(&str, &str)]) -> String {
    let id = format!("{name}-{}", checkout::http::random_hex(4)).to_lowercase().replace(' ', "-");
    let amount = amount.to_string();
    let mut pairs = vec![
        ("id", id.as_str()),
        ("name", name),
        ("metadata[shop]", tag),
        ("default_price_data[currency]", "usd"),
        ("default_price_data[unit_amount]", &amount),
    ];
    pairs.extend_from_slice(extra);
    stripe_post(s, "products", &pairs).await;
    id
}

/// The products `/api/products` lists: `(id, unit_amount)`.
async fn listed(s: &Shop) -> Vec<(String, i64)> {
    let (status, _, json) = s.get("/api/products").await;
    assert_eq!(status, 200, "{json}");
    json["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap().to_string(), p["unit_amount"].as_i64().unwrap()))
        .collect()
}

/// Waits (up to 10 s) until `/api/products` satisfies `pred`.
async fn listed_when(s: &Shop, what: &str, pred: impl Fn(&[(String, i64)]) -> bool) -> Vec<(String, i64)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = listed(s).await;
        if pred(&now) {
            return now;
        }
        assert!(std::time::Instant::now() < deadline, "/api/products never showed {what}: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A new default price for `product` at `amount`: a new Price taking the lookup key, the
/// product's `default_price` moved, the old price archived (what the push command does).
async fn change_price(s: &Shop, product: &str, amount: i64) -> String {
    let old: Value = stripe_get(s, &format!("products/{product}")).await;
    let price = stripe_post(
        s,
        "prices",
        &[
            ("product", product),
            ("currency", "usd"),
            ("unit_amount", &amount.to_string()),
            ("lookup_key", &format!("shop:{product}")),
            ("transfer_lookup_key", "true"),
        ],
    )
    .await;
    let id = price["id"].as_str().unwrap().to_string();
    stripe_post(s, &format!("products/{product}"), &[("default_price", &id)]).await;
    stripe_post(s, &format!("prices/{}", old["default_price"].as_str().unwrap()), &[("active", "false")]).await;
    id
}

async fn stripe_get(s: &Shop, path: &str) -> Value {
    let r = s.http.get(format!("{}/v1/{path}", s.emu.base_url())).bearer_auth(SECRET_KEY).send().await.unwrap();
    split(r).await.2
}

each_backend! {
    #[tokio::test]
    async fn a_price_changed_in_stripe_reaches_products_and_the_next_checkout_and_an_archived_product_is_refused(backend) {
        let (s, tag) = stripe_shop(backend, true).await;
        let tee = product(&s, &tag, "Tee", 2500, &[("metadata[max_quantity]", "3")]).await;
        let mug = product(&s, &tag, "Mug", 1400, &[]).await;
        // An account's other products (no tag, another shop's tag) are not the shop's.
        product(&s, "someone-else", "Other", 999, &[]).await;
        stripe_post(&s, "products", &[("name", "Untagged")]).await;
        let mut first = listed(&s).await;
        first.sort();
        let mut want = vec![(tee.clone(), 2500), (mug.clone(), 1400)];
        want.sort();
        assert_eq!(first, want);

        // ETag, 304, the shared cache.
        let (_, headers, _) = s.get("/api/products").await;
        let etag = headers["etag"].to_str().unwrap().to_string();
        assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
        assert_eq!(
            headers["cache-control"],
            "public, max-age=0, s-maxage=60, stale-while-revalidate=300"
        );
        let not_modified = s.http.get(s.url("/api/products")).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(not_modified.status(), 304);
        assert_eq!(not_modified.headers()["etag"].to_str().unwrap(), etag);
        assert!(not_modified.bytes().await.unwrap().is_empty());

        // The owner changes the price in Stripe: the events bring it to the page...
        let price = change_price(&s, &tee, 3100).await;
        listed_when(&s, "the new price", |l| l.iter().any(|(id, a)| *id == tee && *a == 3100)).await;
        let stale = s.http.get(s.url("/api/products")).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(stale.status(), 200, "a changed body has a new ETag");
        assert_ne!(stale.headers()["etag"].to_str().unwrap(), etag);

        // ... and to the next checkout: the session is priced by the new Price id.
        let id = s.checkout(&format!(r#"{{"items":[{{"id":"{tee}","quantity":2}}]}}"#)).await;
        let session = s.emu.session(&id).unwrap();
        assert_eq!(session["amount_subtotal"], 6200, "{session:#}");
        let sent = s.requests_to("/v1/checkout/sessions").pop().unwrap();
        assert!(sent.params.iter().any(|(k, v)| k == "line_items[0][price]" && *v == price), "{:?}", sent.params);
        let (status, _, json) =
            s.post_json("/api/create-checkout", &format!(r#"{{"items":[{{"id":"{tee}","quantity":4}}]}}"#), "203.0.113.9").await;
        assert_eq!(status, 400, "max_quantity comes from the metadata: {json}");

        // Archived: refused before Stripe is asked, with a message the storefront shows.
        stripe_post(&s, &format!("products/{mug}"), &[("active", "false")]).await;
        listed_when(&s, "the mug gone", |l| !l.iter().any(|(id, _)| *id == mug)).await;
        let sessions = s.requests_to("/v1/checkout/sessions").len();
        let (status, _, json) = s
            .post_json("/api/create-checkout", &format!(r#"{{"items":[{{"id":"{mug}","quantity":1}}]}}"#), "203.0.113.9")
            .await;
        assert_eq!(status, 409, "{json}");
        assert_eq!(json["error"]["message"], "Mug is no longer available");
        assert_eq!(s.requests_to("/v1/checkout/sessions").len(), sessions, "no session was asked for");
    }
}

each_backend! {
    #[tokio::test]
    async fn duplicated_and_reordered_product_and_price_events_converge(backend) {
        let (s, tag) = stripe_shop(backend, false).await;
        let tee = product(&s, &tag, "Tee", 2500, &[]).await;
        let cap = product(&s, &tag, "Cap", 1800, &[]).await;
        assert_eq!(listed(&s).await.len(), 2, "the first use fills the copy");
        s.emu.clear_logs();
        // Changes the shop hears nothing of (no webhooks): a price change, a rename, an archive,
        // a new product.
        change_price(&s, &tee, 2700).await;
        change_price(&s, &tee, 2900).await;
        stripe_post(&s, &format!("products/{tee}"), &[("name", "Tee v2")]).await;
        stripe_post(&s, &format!("products/{cap}"), &[("active", "false")]).await;
        let hat = product(&s, &tag, "Hat", 900, &[]).await;
        let events = s.emu.events();
        assert!(events.len() >= 12, "{}", events.len());
        assert_eq!(listed(&s).await.len(), 2, "nothing changed without the events");
        // Delivered newest first, each twice, two at a time.
        for e in events.iter().rev() {
            let body = serde_json::to_vec(e).unwrap();
            let (a, b) = tokio::join!(s.deliver(&body), s.deliver(&body));
            assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
        }
        let offer = checkout::products::offer(&s.app).await.unwrap();
        let names: Vec<(&str, &str, i64)> =
            offer.on_sale.iter().map(|p| (p.id.as_str(), p.name.as_str(), p.unit_amount)).collect();
        let mut names = names;
        names.sort();
        let mut want = vec![(tee.as_str(), "Tee v2", 2900), (hat.as_str(), "Hat", 900)];
        want.sort();
        assert_eq!(names, want);
        assert_eq!(offer.withdrawn, vec![(cap.clone(), "Cap".to_string())]);
        // The same as a fresh copy from Stripe.
        let fresh = instance(&s.emu.base_url(), &ShopOptions {
            backend: Some(Backend::Sqlite),
            env: vec![("CATALOG_SOURCE", "stripe".into()), ("CATALOG_TAG", tag.clone())],
            ..Default::default()
        })
        .await;
        let copied = checkout::products::offer(&fresh.app).await.unwrap();
        assert_eq!(copied.on_sale, offer.on_sale);
        assert_eq!(copied.withdrawn, offer.withdrawn, "a fill keeps archived products, as withdrawn");
    }
}

each_backend! {
    #[tokio::test]
    async fn the_first_fill_pages_through_every_product(backend) {
        let (s, tag) = stripe_shop(backend, false).await;
        let per_page = checkout::products::FILL_PAGE_SIZE as usize;
        for i in 0..per_page + 5 {
            product(&s, &tag, &format!("P{i}"), 100 + i as i64, &[("metadata[order]", &i.to_string())]).await;
        }
        s.emu.clear_logs();
        let all = listed(&s).await;
        assert_eq!(all.len(), per_page + 5);
        assert_eq!(all[0].1, 100, "metadata order sorts the page");
        assert_eq!(all[per_page + 4].1, 100 + per_page as i64 + 4);
        let lists: Vec<_> = s.requests_to("/v1/products");
        assert_eq!(lists.len(), 2, "two pages");
        assert!(lists[1].params.iter().any(|(k, _)| k == "starting_after"), "{:?}", lists[1].params);
        // Filled once: the next reads come from the store.
        listed(&s).await;
        assert_eq!(s.requests_to("/v1/products").len(), 2);
    }
}

each_backend! {
    #[tokio::test]
    async fn a_product_without_a_usable_default_price_is_not_sold(backend) {
        let (s, tag) = stripe_shop(backend, true).await;
        let good = product(&s, &tag, "Good", 500, &[]).await;
        let monthly = product(&s, &tag, "Monthly", 500, &[("default_price_data[recurring][interval]", "month")]).await;
        let euro = format!("euro-{}", checkout::http::random_hex(4));
        stripe_post(
            &s,
            "products",
            &[
                ("id", &euro),
                ("name", "Euro"),
                ("metadata[shop]", &tag),
                ("default_price_data[currency]", "eur"),
                ("default_price_data[unit_amount]", "500"),
            ],
        )
        .await;
        let archived = product(&s, &tag, "Archived price", 500, &[]).await;
        let p = stripe_get(&s, &format!("products/{archived}")).await;
        stripe_post(&s, &format!("prices/{}", p["default_price"].as_str().unwrap()), &[("active", "false")]).await;
        let bare = format!("bare-{}", checkout::http::random_hex(4));
        stripe_post(&s, "products", &[("id", &bare), ("name", "No price"), ("metadata[shop]", &tag)]).await;
        let bad_meta = product(&s, &tag, "Bad meta", 500, &[("metadata[shippable]", "yes")]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(listed(&s).await, vec![(good, 500)]);
        for id in [monthly, euro, archived, bare, bad_meta] {
            let (status, _, json) = s
                .post_json("/api/create-checkout", &format!(r#"{{"items":[{{"id":"{id}","quantity":1}}]}}"#), "203.0.113.7")
                .await;
            assert_eq!(status, 409, "{id}: {json}");
            assert!(json["error"]["message"].as_str().unwrap().ends_with("is no longer available"), "{json}");
        }
        assert!(s.requests_to("/v1/checkout/sessions").is_empty());
    }
}

#[tokio::test]
async fn the_file_catalog_answers_with_an_etag_and_304() {
    let s = shop(ShopOptions::default()).await;
    let (status, headers, json) = s.get("/api/products").await;
    assert_eq!(status, 200);
    assert_eq!(json["products"].as_array().unwrap().len(), checkout::catalog::products().len());
    let etag = headers["etag"].to_str().unwrap();
    let again = s.http.get(s.url("/api/products")).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    let other = s.http.get(s.url("/api/products")).header("if-none-match", "\"nope\"").send().await.unwrap();
    assert_eq!(other.status(), 200);
    assert!(s.emu.requests().is_empty(), "the file catalog never asks Stripe");
}

each_backend! {
    #[tokio::test]
    async fn the_reconciliation_run_applies_missed_product_and_price_events(backend) {
        let (s, tag) = stripe_shop(backend, false).await;
        let tee = product(&s, &tag, "Tee", 2500, &[]).await;
        assert_eq!(listed(&s).await, vec![(tee.clone(), 2500)]);
        change_price(&s, &tee, 2600).await;
        let late = product(&s, &tag, "Late", 700, &[]).await;
        assert_eq!(listed(&s).await.len(), 1, "no webhooks: the copy has not heard");
        let report = checkout::reconcile::run_once(&s.app).await.expect("run");
        assert!(report.processed >= 4, "{report:?}");
        let mut now = listed(&s).await;
        now.sort();
        let mut want = vec![(tee, 2600), (late, 700)];
        want.sort();
        assert_eq!(now, want);
    }
}

each_backend! {
    #[tokio::test]
    async fn a_copy_older_than_an_hour_is_refilled(backend) {
        let (s, tag) = stripe_shop(backend, false).await;
        let tee = product(&s, &tag, "Tee", 2500, &[]).await;
        assert_eq!(listed(&s).await, vec![(tee.clone(), 2500)]);
        change_price(&s, &tee, 2800).await;
        assert!(!checkout::products::refresh_if_stale(&s.app).await.unwrap(), "a fresh copy is kept");
        assert_eq!(listed(&s).await, vec![(tee.clone(), 2500)]);
        let aged = sql(
            &s.database_url,
            "UPDATE catalog_fills SET filled_at = filled_at - 3600 WHERE tag = $1 RETURNING filled_at, filled_at",
            &tag,
        )
        .await;
        assert_eq!(aged.len(), 1);
        assert!(checkout::products::refresh_if_stale(&s.app).await.unwrap());
        assert_eq!(listed(&s).await, vec![(tee, 2800)]);
    }
}

each_backend! {
    #[tokio::test]
    async fn a_fill_never_forgets_a_product_whose_copy_is_newer_than_its_listing(backend) {
        let store = open_store(&database_url(backend));
        let tag = format!("t{}", checkout::http::random_hex(6));
        let product = |updated: i64, name: &str| -> checkout::stripe::types::Product {
            serde_json::from_value(serde_json::json!({
                "id": format!("prod_{tag}"), "active": true, "name": name,
                "metadata": {"shop": tag}, "created": 1, "updated": updated
            }))
            .unwrap()
        };
        // An event copied the product as Stripe has it now...
        store.save_catalog_product(&tag, &product(200, "New name")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // ... while a fill that started later lists an older version of it.
        let started = checkout::clock::now();
        store.save_catalog_product(&tag, &product(100, "Old name")).await.unwrap();
        store.catalog_filled(&tag, started).await.unwrap();
        let copy = store.catalog_copy(&tag).await.unwrap();
        let names: Vec<&str> = copy.products.iter().map(|(p, _)| p.name.as_str()).collect();
        assert_eq!(names, ["New name"], "kept, and not rolled back");
    }
}

each_backend! {
    #[tokio::test]
    async fn a_price_archived_before_the_copy_heard_of_it_is_a_409_and_the_copy_learns(backend) {
        // No webhooks: the copy hears of nothing until Stripe refuses the session.
        let (s, tag) = stripe_shop(backend, false).await;
        let tee = product(&s, &tag, "Tee", 2500, &[]).await;
        let cap = product(&s, &tag, "Cap", 1800, &[]).await;
        assert_eq!(listed(&s).await.len(), 2, "the first use fills the copy");
        let tee_price = stripe_get(&s, &format!("products/{tee}")).await["default_price"].as_str().unwrap().to_string();
        stripe_post(&s, &format!("prices/{tee_price}"), &[("active", "false")]).await;
        let cart = |id: &str| format!(r#"{{"items":[{{"id":"{id}","quantity":1}}]}}"#);
        let (status, _, json) = s.post_json("/api/create-checkout", &cart(&tee), "203.0.113.9").await;
        assert_eq!(status, 409, "{json}");
        assert_eq!(json["error"]["message"], "Tee is no longer available", "never Stripe's message");
        let ids: Vec<String> = listed(&s).await.into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [cap.as_str()], "the copy learnt it at checkout");
        // A new default price, the old one archived (the Dashboard's "change price"): the
        // refusal says so, and the next checkout sends the new Price.
        let cap_price = change_price(&s, &cap, 2000).await;
        let (status, _, json) = s.post_json("/api/create-checkout", &cart(&cap), "203.0.113.9").await;
        assert_eq!(status, 409, "{json}");
        assert_eq!(json["error"]["message"], "The price of Cap has changed. Please check your cart.");
        let (status, _, json) = s.post_json("/api/create-checkout", &cart(&cap), "203.0.113.9").await;
        assert_eq!(status, 200, "the next checkout is priced anew: {json}");
        let sent = s.requests_to("/v1/checkout/sessions").pop().unwrap();
        assert!(sent.params.iter().any(|(k, v)| k == "line_items[0][price]" && *v == cap_price), "{:?}", sent.params);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_fill_runs_once_per_instance_and_a_failed_one_is_not_retried_at_once() {
    let tag = format!("t{}", checkout::http::random_hex(6));
    let env = vec![
        ("CATALOG_SOURCE", "stripe".to_string()),
        ("CATALOG_TAG", tag.clone()),
        ("STRIPE_MAX_RETRIES", "0".to_string()),
    ];
    let s = shop(ShopOptions { backend: Some(Backend::Sqlite), env, no_webhooks: true, ..Default::default() }).await;
    product(&s, &tag, "Tee", 2500, &[]).await;
    let lists = |s: &Shop| s.requests_to("/v1/products").into_iter().filter(|r| r.method == "GET").count();
    // Stripe fails: ten requests at once make one list call; the next ones within the retry
    // window are told to come back (503, Retry-After) without asking Stripe.
    s.emu.clear_logs();
    let fault = stripe_emulator::ApiFault {
        status: Some(500),
        count: 1000,
        path: Some("/v1/products".into()),
        ..Default::default()
    };
    s.emu.set_api_fault(fault);
    let statuses = ten_at_once(&s).await;
    assert!(statuses.iter().all(|st| *st == 502 || *st == 503), "{statuses:?}");
    assert_eq!(lists(&s), 1, "one fill for ten requests: {statuses:?}");
    let (status, headers, _) = s.get("/api/products").await;
    assert_eq!(status, 503);
    assert!(headers.get("retry-after").is_some());
    assert_eq!(lists(&s), 1, "not asked again within the retry window");
    // Stripe answers again: after the window one fill serves everyone.
    s.emu.set_api_fault(stripe_emulator::ApiFault { count: 0, ..Default::default() });
    tokio::time::sleep(Duration::from_secs(checkout::products::FILL_RETRY_SECS as u64)).await;
    let statuses = ten_at_once(&s).await;
    assert!(statuses.iter().all(|st| *st == 200), "{statuses:?}");
    assert_eq!(lists(&s), 2, "one more list call in all");
}

/// Ten `GET /api/products` at once; their statuses.
async fn ten_at_once(s: &Shop) -> Vec<u16> {
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (http, url) = (s.http.clone(), s.url("/api/products"));
        calls.spawn(async move { http.get(url).send().await.unwrap().status().as_u16() });
    }
    calls.join_all().await
}
