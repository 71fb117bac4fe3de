//! `cargo run -p dev -- catalog-push`: the real `dev` binary against a started Stripe emulator
//! (`STRIPE_API_BASE`), as the owner runs it against a test account.
//!
//! `cargo test -p dev --test push`

use serde_json::Value;
use std::process::Output;
use stripe_emulator::Emulator;

const KEY: &str = "sk_test_fake_push_key";

async fn push(emu: &Emulator, key: &str, args: &[&str]) -> (Output, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dev"))
        .arg("catalog-push")
        .args(args)
        .env("STRIPE_API_BASE", emu.base_url())
        .env("STRIPE_SECRET_KEY", key)
        .env("CATALOG_TAG", "push-test")
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .await
        .expect("run the dev binary");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains(key), "the key is never printed:\n{text}");
    (out, text)
}

async fn api(emu: &Emulator, method: &str, path: &str, form: &[(&str, &str)]) -> Value {
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}/v1/{path}", emu.base_url());
    let req = if method == "GET" { c.get(url) } else { c.post(url).form(form) };
    let r = req.bearer_auth(KEY).send().await.unwrap();
    assert!(r.status().is_success(), "{method} {path}: {}", r.status());
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}

/// Every catalog product in Stripe as the file says: (id, default price's amount, its lookup
/// key, the tag).
async fn in_stripe(emu: &Emulator) -> Vec<(String, i64, String, String)> {
    let mut out = vec![];
    for p in checkout::catalog::products() {
        let product = api(emu, "GET", &format!("products/{}?expand[]=default_price", p.id), &[]).await;
        out.push((
            p.id.clone(),
            product["default_price"]["unit_amount"].as_i64().unwrap(),
            product["default_price"]["lookup_key"].as_str().unwrap().to_string(),
            product["metadata"]["shop"].as_str().unwrap().to_string(),
        ));
    }
    out
}

#[tokio::test]
async fn pushes_the_catalog_once_and_replaces_a_price_whose_amount_differs() {
    let emu = Emulator::start(Default::default()).await.unwrap();
    let (out, text) = push(&emu, KEY, &[]).await;
    assert!(out.status.success(), "{text}");
    let want: Vec<(String, i64, String, String)> = checkout::catalog::products()
        .iter()
        .map(|p| (p.id.clone(), p.unit_amount, format!("shop:{}", p.id), "push-test".to_string()))
        .collect();
    assert_eq!(in_stripe(&emu).await, want);
    let tee = api(&emu, "GET", "products/tshirt", &[]).await;
    assert_eq!(tee["metadata"]["shippable"], "true");
    assert_eq!(tee["metadata"]["max_quantity"], "10");

    // Run twice: nothing changes.
    emu.clear_logs();
    let (out, text) = push(&emu, KEY, &[]).await;
    assert!(out.status.success(), "{text}");
    let posts: Vec<_> = emu.requests().into_iter().filter(|r| r.method == "POST").collect();
    assert!(posts.is_empty(), "a second run changes nothing: {posts:?}\n{text}");
    assert!(text.contains("0 product(s) changed"), "{text}");

    // The price in Stripe no longer says what the file says (the file's amount changed, as seen
    // from the other side): a new Price takes the lookup key, becomes the default, the old one
    // is archived.
    let odd = api(
        &emu,
        "POST",
        "prices",
        &[
            ("product", "tshirt"),
            ("currency", "usd"),
            ("unit_amount", "9999"),
            ("lookup_key", "shop:tshirt"),
            ("transfer_lookup_key", "true"),
        ],
    )
    .await;
    let odd_id = odd["id"].as_str().unwrap();
    api(&emu, "POST", "products/tshirt", &[("default_price", odd_id)]).await;
    let (out, text) = push(&emu, KEY, &[]).await;
    assert!(out.status.success(), "{text}");
    assert!(text.contains("tshirt: product updated, price replaced"), "{text}");
    assert_eq!(in_stripe(&emu).await, want);
    let odd_now = api(&emu, "GET", &format!("prices/{odd_id}"), &[]).await;
    assert_eq!((odd_now["active"].as_bool(), odd_now["lookup_key"].as_str()), (Some(false), None));
    let keyed = api(&emu, "GET", "prices?lookup_keys[]=shop:tshirt", &[]).await;
    assert_eq!(keyed["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn refuses_a_live_key_without_live() {
    let emu = Emulator::start(Default::default()).await.unwrap();
    let (out, text) = push(&emu, "sk_live_fake_push_key", &[]).await;
    assert!(!out.status.success());
    assert!(text.contains("without --live"), "{text}");
    assert!(emu.requests().is_empty());
}
