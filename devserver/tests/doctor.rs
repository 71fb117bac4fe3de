//! `cargo run -p dev -- doctor https://SHOP`: the real `dev` binary against the real dev server
//! (offline: its emulator, a temporary SQLite store) and against small local servers standing
//! for the deployment mistakes — a redirect to `www`, Vercel's Deployment Protection, a
//! configuration the functions refuse — checking its lines and its exit status.
//!
//! `cargo test -p dev --test doctor`

mod support;

use std::time::Duration;
use support::DevServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN_TOKEN: &str = "doctor-test-admin-token-0123456789abcdef";
const CRON_SECRET: &str = "doctor-test-cron-secret-0123456789abcdef";

/// The dev server with the owner's token and a cron secret (the doctor checks both).
async fn dev_server() -> DevServer {
    DevServer::start("doctor", &[("ADMIN_TOKEN", ADMIN_TOKEN), ("CRON_SECRET", CRON_SECRET)]).await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap()
}

/// Runs `dev doctor {shop}` with `env` (and nothing from a developer's `.env` that matters):
/// exit code and stdout (stderr appended).
async fn doctor(shop: &str, env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_dev"));
    cmd.arg("doctor").arg(shop).env("NO_PROXY", "127.0.0.1,localhost");
    for name in ["STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE", "SITE_URL"]
    {
        cmd.env(name, "");
    }
    cmd.env("ADMIN_TOKEN", ADMIN_TOKEN);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Every check line starts PASS, WARN or FAIL; each FAIL is followed by its fix.
fn lines_are_well_formed(out: &str) {
    let lines: Vec<&str> = out.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("FAIL ") {
            assert!(lines.get(i + 1).is_some_and(|n| n.starts_with("     fix: ")), "a FAIL without its fix:\n{out}");
        }
    }
    assert!(lines.iter().any(|l| l.starts_with("PASS ") || l.starts_with("FAIL ") || l.starts_with("WARN ")), "{out}");
}

/// A local server answering every request with `reply` (a whole HTTP/1.1 response head and body).
async fn fixed_server(reply: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://localhost:{port}")
}

fn response(status: &str, headers: &str, body: &str) -> String {
    format!("HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

#[tokio::test]
async fn the_dev_server_passes_and_a_missing_event_subscription_fails() {
    let dev = dev_server().await;
    let r = http().get(format!("{}/api/reconcile", dev.url)).bearer_auth(CRON_SECRET).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let (code, out) = doctor(&dev.url, &[]).await;
    println!("{out}");
    assert_eq!(code, 0, "{out}\n{}", dev.log());
    lines_are_well_formed(&out);
    assert!(!out.lines().any(|l| l.starts_with("FAIL ")), "{out}");
    assert!(out.contains("Nothing FAILs."), "{out}");
    assert!(out.contains("note: ") && out.contains("local shop"), "a loopback http shop is noted:\n{out}");
    for check in ["keys", "webhook_endpoint", "reachability", "store", "outside_reachability"] {
        assert!(out.lines().any(|l| l.starts_with(&format!("PASS {check}: "))), "{check}:\n{out}");
    }
    assert!(!out.contains(ADMIN_TOKEN) && !out.contains(CRON_SECRET) && !out.contains("whsec_"), "{out}");

    // The dev server's endpoint (made as stripe-setup makes it) loses one event.
    let list = http().get(format!("{}/v1/webhook_endpoints", dev.emulator)).bearer_auth("sk_test_emulator").send();
    let list: serde_json::Value = serde_json::from_slice(&list.await.unwrap().bytes().await.unwrap()).unwrap();
    let id = list["data"][0]["id"].as_str().unwrap();
    let events: Vec<&str> = checkout::stripe::EventType::ALL.iter().skip(1).map(|t| t.as_str()).collect();
    let form: Vec<(String, String)> =
        events.iter().enumerate().map(|(i, e)| (format!("enabled_events[{i}]"), e.to_string())).collect();
    let r = http()
        .post(format!("{}/v1/webhook_endpoints/{id}", dev.emulator))
        .bearer_auth("sk_test_emulator")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (code, out) = doctor(&dev.url, &[]).await;
    assert_eq!(code, 1, "{out}");
    lines_are_well_formed(&out);
    let dropped = checkout::stripe::EventType::ALL[0].as_str();
    let line = out.lines().find(|l| l.starts_with("FAIL webhook_endpoint: ")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains(dropped), "{line}");

    // A wrong token.
    let (code, out) = doctor(&dev.url, &[("ADMIN_TOKEN", "not-the-token-0123456789abcdefghijkl")]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL health: the shop refused ADMIN_TOKEN (401)"), "{out}");
}

#[tokio::test]
async fn a_redirect_to_www_and_deployment_protection_fail() {
    let apex = fixed_server(response("308 Permanent Redirect", "Location: http://www.localhost:9/\r\n", "")).await;
    let (code, out) = doctor(&apex, &[]).await;
    println!("{out}");
    assert_eq!(code, 1, "{out}");
    lines_are_well_formed(&out);
    let line = out.lines().find(|l| l.starts_with("FAIL outside_reachability: ")).unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("308") && line.contains("http://www.localhost:9/") && line.contains("www and apex"),
        "{line}"
    );
    assert!(out.contains("FAIL health: ") && out.contains("308"), "{out}");

    let wall = fixed_server(response(
        "401 Unauthorized",
        "Content-Type: text/html\r\n",
        "<html>Authentication Required</html>",
    ))
    .await;
    let (code, out) = doctor(&wall, &[]).await;
    println!("{out}");
    assert_eq!(code, 1, "{out}");
    lines_are_well_formed(&out);
    assert!(out.lines().any(|l| l.starts_with("FAIL health: ") && l.contains("Deployment Protection")), "{out}");
    let line = out.lines().find(|l| l.starts_with("FAIL outside_reachability: ")).unwrap();
    assert!(line.contains("401") && line.contains("Deployment Protection"), "{line}");
    assert!(out.contains("Protection Bypass for Automation"), "{out}");
}

#[tokio::test]
async fn behind_deployment_protection_the_bypass_secret_lets_the_doctor_through() {
    // Deployment Protection with Protection Bypass for Automation: only requests carrying the
    // secret (header or query, as Vercel accepts both) reach the shop behind it.
    const SECRET: &str = "bypassdoctor0123456789abcdef";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let site = origin.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let site = site.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                let line = head.lines().next().unwrap_or("").to_string();
                let through = head.contains(&format!("x-vercel-protection-bypass: {SECRET}"))
                    || line.contains(&format!("x-vercel-protection-bypass={SECRET}"));
                let reply = if !through {
                    response("401 Unauthorized", "Content-Type: text/html\r\n", "<html>Authentication Required</html>")
                } else if line.starts_with("get /api/health") {
                    let body = format!(r#"{{"site_url":"{site}","status":"pass","checks":[],"record":null}}"#);
                    response("200 OK", "Content-Type: application/json\r\n", &body)
                } else {
                    let body = format!(r#"{{"error":{{"message":"{}"}}}}"#, checkout::doctor::VERIFIER_REFUSAL);
                    response("400 Bad Request", "Content-Type: application/json\r\n", &body)
                };
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    let (code, out) = doctor(&origin, &[]).await;
    assert_eq!(code, 1, "without the secret the wall refuses:\n{out}");
    assert!(out.contains("VERCEL_AUTOMATION_BYPASS_SECRET"), "the fix names it:\n{out}");
    let (code, out) = doctor(&origin, &[("VERCEL_AUTOMATION_BYPASS_SECRET", SECRET)]).await;
    println!("{out}");
    assert_eq!(code, 0, "{out}");
    lines_are_well_formed(&out);
    assert!(out.contains("PASS outside_reachability: "), "{out}");
    assert!(!out.contains(SECRET), "the secret is never printed:\n{out}");
}

#[tokio::test]
async fn a_refused_configuration_is_named_by_its_variable() {
    // What every function answers when its configuration is refused.
    let generic =
        r#"{"error":{"message":"Something went wrong on our side. Please try again.","reference":"ref_0123456789ab"}}"#;
    let shop = fixed_server(response("500 Internal Server Error", "Content-Type: application/json\r\n", generic)).await;
    let base = [("STRIPE_SECRET_KEY", "sk_test_fake_doctor_key")];

    // A signing secret pasted with a trailing newline.
    let secret = "whsec_fake_doctor_secret";
    let newline = format!("{secret}\n");
    let env = [base[0], ("STRIPE_WEBHOOK_SECRET", newline.as_str())];
    let (code, out) = doctor(&shop, &env).await;
    println!("{out}");
    assert_eq!(code, 1, "{out}");
    lines_are_well_formed(&out);
    assert!(out.contains("FAIL health: ") && out.contains("500"), "{out}");
    let line = out.lines().find(|l| l.starts_with("FAIL config: ")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("STRIPE_WEBHOOK_SECRET") && line.contains("whitespace"), "{line}");
    assert!(!out.contains(secret), "the value is never printed:\n{out}");

    // Test and live keys mixed.
    let env = [base[0], ("STRIPE_PUBLISHABLE_KEY", "pk_live_fake_doctor_key")];
    let (code, out) = doctor(&shop, &env).await;
    assert_eq!(code, 1, "{out}");
    let line = out.lines().find(|l| l.starts_with("FAIL config: ")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("STRIPE_PUBLISHABLE_KEY") && line.contains("mixed"), "{line}");
    assert!(!out.contains("pk_live_fake_doctor_key") && !out.contains("sk_test_fake_doctor_key"), "{out}");
}

#[tokio::test]
async fn refusals_before_any_request() {
    let (code, out) = doctor("https://shop.example.com", &[("ADMIN_TOKEN", "")]).await;
    assert_eq!(code, 1);
    assert!(out.contains("ADMIN_TOKEN is not set"), "{out}");
    for bad in ["http://shop.example.com", "https://localhost", "https://192.168.1.2", "https://shop.example.com/x"] {
        let (code, out) = doctor(bad, &[]).await;
        assert_eq!(code, 1, "{bad}: {out}");
        assert!(out.starts_with("doctor: refusing"), "{bad}: {out}");
    }
}
