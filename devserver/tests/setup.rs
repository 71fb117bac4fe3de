//! `cargo run -p dev -- stripe-setup https://SHOP`: the real `dev` binary against a started
//! Stripe emulator (`STRIPE_API_BASE`), as the owner runs it against Stripe.
//!
//! `cargo test -p dev --test setup`

use checkout::stripe::{API_VERSION, EventType};
use serde_json::Value;
use std::process::Output;
use stripe_emulator::Emulator;

/// A test key the emulator accepts (any `sk_test_...`).
const KEY: &str = "sk_test_fake_setup_key";
const SHOP: &str = "https://shop.example.com";
const HOOK: &str = "https://shop.example.com/api/webhook";

/// Runs `dev stripe-setup {args}` with `key` against the emulator.
async fn setup(emu: &Emulator, key: &str, args: &[&str]) -> (Output, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dev"))
        .arg("stripe-setup")
        .args(args)
        .env("STRIPE_API_BASE", emu.base_url())
        .env("STRIPE_SECRET_KEY", key)
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .await
        .expect("run the dev binary");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stdout.contains(key) && !stderr.contains(key), "the key is never printed:\n{stdout}\n{stderr}");
    (out, stdout, stderr)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Every endpoint, through the emulator's API.
async fn endpoints(emu: &Emulator) -> Vec<Value> {
    let r =
        http().get(format!("{}/v1/webhook_endpoints?limit=100", emu.base_url())).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let list: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    list["data"].as_array().unwrap().clone()
}

fn shop_events() -> Vec<&'static str> {
    EventType::ALL.iter().map(|t| t.as_str()).collect()
}

#[tokio::test]
async fn creates_the_endpoint_once_then_updates_it() {
    let emu = Emulator::start(Default::default()).await.unwrap();
    let (out, stdout, stderr) = setup(&emu, KEY, &[SHOP]).await;
    assert!(out.status.success(), "first run failed:\n{stdout}\n{stderr}");
    let all = endpoints(&emu).await;
    assert_eq!(all.len(), 1, "{all:#?}");
    let e = &all[0];
    assert_eq!(e["url"], HOOK);
    assert_eq!(e["enabled_events"], serde_json::json!(shop_events()));
    assert_eq!(e["api_version"], API_VERSION);
    assert_eq!(e["metadata"]["shop"], "shop.example.com");
    assert_eq!(e["status"], "enabled");
    let secret_lines: Vec<&str> = stdout.lines().filter(|l| l.contains("whsec_")).collect();
    assert_eq!(secret_lines.len(), 1, "the secret, printed once:\n{stdout}");
    assert!(secret_lines[0].trim().starts_with("whsec_"), "{stdout}");
    assert!(stdout.contains("vercel env add STRIPE_WEBHOOK_SECRET production"), "{stdout}");
    assert!(stdout.contains("paste the secret"), "{stdout}");
    let sent = emu.requests();
    let create = sent.iter().find(|r| r.method == "POST" && r.path == "/v1/webhook_endpoints").unwrap();
    assert_eq!(create.stripe_version.as_deref(), Some(API_VERSION));

    // Run again: the same endpoint, updated; no secret, and it says the old one stands.
    let (out, stdout, stderr) = setup(&emu, KEY, &[&format!("{SHOP}/")]).await;
    assert!(out.status.success(), "second run failed:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("whsec_") && !stderr.contains("whsec_"), "{stdout}\n{stderr}");
    assert!(stdout.contains("unchanged"), "{stdout}");
    let again = endpoints(&emu).await;
    assert_eq!(again.len(), 1, "no second endpoint: {again:#?}");
    assert_eq!(again[0]["id"], e["id"]);
    assert_eq!(again[0]["enabled_events"], serde_json::json!(shop_events()));
    assert_eq!(again[0]["api_version"], API_VERSION);
    let updated = emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/v1/webhook_endpoints/"))
        .count();
    assert_eq!(updated, 1, "the second run updated the endpoint");
}

#[tokio::test]
async fn an_endpoint_with_another_api_version_is_updated_and_the_fix_is_named() {
    let emu = Emulator::start(Default::default()).await.unwrap();
    let r = http()
        .post(format!("{}/v1/webhook_endpoints", emu.base_url()))
        .bearer_auth(KEY)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("url={HOOK}&enabled_events[0]=charge.refunded&api_version=2026-07-29.dahlia"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (out, stdout, stderr) = setup(&emu, KEY, &[SHOP]).await;
    assert!(!out.status.success(), "a version Stripe cannot change is not a finished set-up:\n{stdout}\n{stderr}");
    assert!(stderr.contains("2026-07-29.dahlia") && stderr.contains(API_VERSION), "{stderr}");
    assert!(stderr.contains("delete") && stderr.contains("again"), "{stderr}");
    assert!(!stdout.contains("whsec_") && !stderr.contains("whsec_"));
    let all = endpoints(&emu).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["enabled_events"], serde_json::json!(shop_events()));
}

#[tokio::test]
async fn refusals_create_nothing() {
    let emu = Emulator::start(Default::default()).await.unwrap();
    for (key, args, why) in [
        ("sk_live_fake_setup_key", vec![SHOP], "live"),
        ("rk_live_fake_setup_key", vec![SHOP], "live"),
        (KEY, vec!["http://shop.example.com"], "http://"),
        (KEY, vec!["https://localhost"], "public"),
        (KEY, vec!["https://shop.localhost"], "public"),
        (KEY, vec!["https://192.168.1.2"], "public"),
        (KEY, vec!["https://127.0.0.1:8443"], "public"),
        (KEY, vec!["https://printer.local"], "public"),
        (KEY, vec!["https://shop.example.com/shop"], "path"),
        (KEY, vec!["https://shop.example.com/?a=1"], "query"),
        (KEY, vec!["https://owner:pw@shop.example.com"], "credentials"),
        (KEY, vec![], "usage"),
        (KEY, vec!["--force", SHOP], "unknown option"),
        ("pk_test_fake_setup_key", vec![SHOP], "secret"),
    ] {
        let (out, stdout, stderr) = setup(&emu, key, &args).await;
        assert!(!out.status.success(), "{args:?} with {key:.8}: accepted\n{stdout}\n{stderr}");
        assert!(stderr.contains(why), "{args:?}: {why} not in {stderr:?}");
        assert!(stderr.trim().lines().count() <= 2, "{args:?}: a short reason: {stderr}");
    }
    assert!(emu.requests().is_empty(), "nothing was sent to Stripe: {:#?}", emu.requests());
    assert!(endpoints(&emu).await.is_empty());
}
