//! The real function binaries, spawned as Vercel's runtime runs them locally
//! (`VERCEL_DEV_PORT`), talking HTTP to the emulator; and a scan proving that
//! no secret from the environment ends up in `public/` or in a binary.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use stripe_emulator::{Emulator, Options};

/// Every function binary, derived from the one route table (`api/NAME.rs` is the `[[bin]]`
/// NAME, built beside this test binary): `(name, path)`.
fn functions() -> Vec<(&'static str, std::path::PathBuf)> {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf();
    checkout::Route::ALL
        .iter()
        .map(|r| {
            let name = r.path().trim_start_matches("/api/");
            let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
            assert!(path.exists(), "the function binary {} is built", path.display());
            (name, path)
        })
        .collect()
}

/// The function binary serving `route`.
fn binary(route: checkout::Route) -> std::path::PathBuf {
    let name = route.path().trim_start_matches("/api/");
    functions().into_iter().find(|(n, _)| *n == name).unwrap().1
}

struct Function {
    child: Child,
    port: u16,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn spawn(bin: &str, env: &[(&str, String)]) -> Function {
    spawn_logging(bin, env, Stdio::null()).await
}

async fn spawn_logging(bin: &str, env: &[(&str, String)], stderr: Stdio) -> Function {
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.env_clear().env("VERCEL_DEV_PORT", port.to_string()).stdout(Stdio::null()).stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let f = Function { child: cmd.spawn().expect("function binary starts"), port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "{bin} never listened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f
}

#[tokio::test]
async fn each_function_binary_serves_its_route() {
    let emu = Emulator::start(Options {
        webhook_secret: crate::common::WEBHOOK_SECRET.into(),
        ..crate::common::emulator_options()
    })
    .await
    .unwrap();
    let site = "http://localhost:3999".to_string();
    let env = vec![
        ("STRIPE_SECRET_KEY", crate::common::SECRET_KEY.to_string()),
        ("STRIPE_WEBHOOK_SECRET", crate::common::WEBHOOK_SECRET.to_string()),
        ("STRIPE_API_BASE", emu.base_url()),
        ("SITE_URL", site.clone()),
        ("DATABASE_URL", crate::common::sqlite_url()),
        ("DISCOUNT_RESPONSE_FLOOR_MS", "50".to_string()),
        ("CRON_SECRET", "binaries-test-cron-secret-42".to_string()),
        ("ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
    ];
    let http = reqwest::Client::new();
    let mut f = Vec::new();
    for (_, bin) in functions() {
        f.push(spawn(bin.to_str().unwrap(), &env).await);
    }
    let url = |i: usize, q: &str| format!("http://127.0.0.1:{}{q}", f[i].port);

    let r = http.get(url(0, "/api/products")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("tshirt"));

    let cart = r#"{"items":[{"id":"mug","quantity":2}],"code":"SAVE10"}"#;
    let r = http
        .post(url(1, "/api/create-checkout"))
        .header("origin", &site)
        .header("content-type", "application/json")
        .body(cart)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let json: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let session_id = json["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    assert_eq!(emu.session(&session_id).unwrap()["amount_total"], 2520 + 500, "SAVE10, and $5 standard shipping");

    let r = http
        .post(url(2, "/api/apply-discount"))
        .header("origin", &site)
        .header("content-type", "application/json")
        .body(cart)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"currency":"usd","subtotal":2800,"discount":280,"total":2520}"#);

    emu.set_webhook_url(Some(url(3, "/api/webhook")));
    emu.pay(&session_id, "pay").unwrap();
    emu.wait_for_deliveries(|d| d.iter().any(|d| d.status == Some(200)), Duration::from_secs(10))
        .await
        .expect("the webhook binary acknowledged the event");
    let r = http.post(url(3, "/api/webhook")).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 400, "unsigned ⇒ 400");

    let r = http.get(url(4, &format!("/api/checkout-status?session_id={session_id}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let json: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(json["fulfillment"], "fulfilled");

    let r = http.get(url(5, "/api/reconcile")).send().await.unwrap();
    assert_eq!(r.status(), 401, "no CRON_SECRET ⇒ 401");
    let r = http.get(url(5, "/api/reconcile")).bearer_auth("binaries-test-cron-secret-42").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let json: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!((json["seen"].as_u64(), json["duplicates"].as_u64()), (Some(1), Some(1)), "{json}");

    let r = http.get(url(6, "/api/orders")).send().await.unwrap();
    assert_eq!(r.status(), 401, "no token ⇒ 401");
    let r = http.get(url(6, "/api/orders")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let json: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(json["data"][0]["session_id"], session_id.as_str(), "{json}");
    assert!(json["data"][0]["order_number"].as_str().is_some_and(|n| n.starts_with("RR-")), "{json}");
}

/// The owner's token of the binaries test (32 characters or more).
const ADMIN_TOKEN: &str = "binaries-test-admin-token-0123456789";

#[tokio::test]
async fn a_misconfigured_function_answers_a_generic_500_without_the_value() {
    let f = spawn(
        binary(checkout::Route::Products).to_str().unwrap(),
        &[("STRIPE_SECRET_KEY", "sk_test_51leaky\n".to_string())],
    )
    .await;
    let r = reqwest::get(format!("http://127.0.0.1:{}/api/products", f.port)).await.unwrap();
    assert_eq!(r.status(), 500);
    let text = r.text().await.unwrap();
    assert!(!text.contains("leaky") && !text.contains("STRIPE_SECRET_KEY"), "{text}");
}

/// An authentic event whose session Stripe does not know (404 for our key) is acknowledged,
/// and the log says, at level error, the likely cause: key and endpoint in different accounts.
#[tokio::test]
async fn an_event_for_a_session_our_key_cannot_see_logs_the_likely_cause() {
    let emu = Emulator::start(Options {
        webhook_secret: crate::common::WEBHOOK_SECRET.into(),
        ..crate::common::emulator_options()
    })
    .await
    .unwrap();
    let log_path = std::env::temp_dir().join(format!("webhook-404-{}.log", checkout::http::random_hex(6)));
    let log = std::fs::File::create(&log_path).unwrap();
    let env = vec![
        ("STRIPE_SECRET_KEY", crate::common::SECRET_KEY.to_string()),
        ("STRIPE_WEBHOOK_SECRET", crate::common::WEBHOOK_SECRET.to_string()),
        ("STRIPE_API_BASE", emu.base_url()),
        ("SITE_URL", "http://localhost:3999".to_string()),
        ("DATABASE_URL", crate::common::sqlite_url()),
    ];
    let f = spawn_logging(binary(checkout::Route::Webhook).to_str().unwrap(), &env, Stdio::from(log)).await;
    let body = r#"{"id":"evt_other_account_1","object":"event","type":"checkout.session.completed","livemode":false,"data":{"object":{"id":"cs_test_fromanotheraccount","object":"checkout.session"}}}"#;
    let now = checkout::clock::now();
    let header = checkout::signature::sign(crate::common::WEBHOOK_SECRET.as_bytes(), now, body.as_bytes());
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/api/webhook", f.port))
        .header("stripe-signature", header)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "acknowledged: retrying cannot help");
    drop(f);
    let text = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    let line = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["event_id"] == "evt_other_account_1" && l["level"] == "error")
        .unwrap_or_else(|| panic!("no error-level log line for the event:\n{text}"));
    let msg = line["msg"].as_str().unwrap();
    assert!(msg.contains("different Stripe accounts or sandboxes"), "{msg}");
    assert!(
        !text.contains(crate::common::SECRET_KEY) && !text.contains(crate::common::WEBHOOK_SECRET),
        "no secret in the log"
    );
}

#[test]
fn no_secret_in_public_or_in_function_binaries() {
    let secrets =
        [crate::common::SECRET_KEY, crate::common::WEBHOOK_SECRET, "sk_test_emulator", "whsec_emulator_local"];
    let root = env!("CARGO_MANIFEST_DIR");
    let mut files: Vec<std::path::PathBuf> =
        std::fs::read_dir(format!("{root}/public")).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(files.len() >= 5, "public/ has the storefront");
    for (_, bin) in functions() {
        files.push(bin);
    }
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        for s in secrets {
            assert!(memchr::memmem::find(&bytes, s.as_bytes()).is_none(), "{} contains {s}", path.display());
        }
        if path.starts_with(format!("{root}/public")) {
            let text = String::from_utf8_lossy(&bytes);
            for prefix in ["sk_test_", "sk_live_", "rk_test_", "rk_live_", "whsec_"] {
                assert!(!text.contains(prefix), "{} mentions {prefix}", path.display());
            }
        }
    }
}
