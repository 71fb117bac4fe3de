//! End-to-end tests against the real dev server binary (offline mode: in-process Stripe
//! emulator, temporary SQLite store).
//!
//! - `storefront_in_a_real_browser`: runs `tests/browser/e2e.mjs` (playwright-core driving a
//!   system Chromium) against the shop: buy with SAVE10 (Test mode ribbon shown), cancel,
//!   delayed success/failure, too many different codes (the 429 suggests removing the code),
//!   unknown code, the success page's sums, the phone's sticky cart bar, a digital order and an
//!   unknown order link, the owner's order list (admin.html, CSV) and order view (ship with
//!   tracking, a part refund, a double click and a retried refund refunding once, checked in
//!   the emulator's outbox, request log and the shopper's success page); fails on any CSP violation
//!   or JS error on the shop's pages. Screenshots go
//!   to `artifacts/browser/`. Needs `node`, `tests/oracle/node_modules` (`npm ci` there) and
//!   Chromium (`CHROMIUM`, default `/usr/bin/chromium`); without them `cargo test` lists it as
//!   ignored with that reason (devserver/build.rs), except under `CI`, where it runs and fails.
//! - `embedded_checkout_in_a_real_browser`: the same script with `UI_MODE=embedded_page` against
//!   a dev server with `CHECKOUT_UI_MODE=embedded_page`: the storefront, under the headers
//!   vercel.json gives it, loads Stripe.js from https://js.stripe.com and frames Checkout from
//!   https://checkout.stripe.com (both answered by the emulator through playwright's routing:
//!   its Stripe.js stand-in and its payment page), the shopper pays in the frame and lands on
//!   the success page; and, as a control, the same page under the strict CSP every other page
//!   gets cannot load Stripe.js and the test sees the violation. Screenshots go to
//!   `artifacts/browser/embedded/`.
//! - `security_headers_and_same_site_check`: plain HTTP, no browser needed: per path, the
//!   headers vercel.json gives it (one CSP: Stripe's on the storefront, the strict one elsewhere).
//!
//! `cargo test -p dev --test browser -- --nocapture`

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{DevServer, repo_root};

/// The owner's token the dev server is started with (the admin page scenario signs in with it).
const ADMIN_TOKEN: &str = "browser-test-admin-token-0123456789abcdef";

/// The dev server with `CHECKOUT_UI_MODE=ui_mode`; delayed payments stay "processing" for 6 s,
/// so the success page's processing state is observable however slowly the page loads.
async fn dev_server(ui_mode: &str) -> DevServer {
    let env = [("EMULATOR_ASYNC_DELAY_MS", "6000"), ("CHECKOUT_UI_MODE", ui_mode), ("ADMIN_TOKEN", ADMIN_TOKEN)];
    DevServer::start("browser", &env).await
}

/// What the browser test needs, or why it cannot run and how to fix that.
fn browser_prerequisites(root: &Path) -> Result<(), String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Err("`node` not found on PATH (install Node.js 18+)".into());
    }
    if !root.join("tests/oracle/node_modules/playwright-core/package.json").is_file() {
        return Err("tests/oracle/node_modules/playwright-core is missing \
                    (run `npm ci` in tests/oracle; no browser download is needed)"
            .into());
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).is_file() {
        return Err(format!(
            "no Chromium at {chromium} (Debian/Ubuntu: `sudo apt-get install chromium`, \
             or set CHROMIUM=/path/to/chrome)"
        ));
    }
    Ok(())
}

/// Runs `tests/browser/e2e.mjs` with `UI_MODE=ui_mode` against a dev server in that mode; fails
/// unless every scenario passed. Screenshots and the console log go to `artifacts`.
async fn run_e2e(ui_mode: &str, artifacts: &str) {
    let root = repo_root();
    if let Err(why) = browser_prerequisites(&root) {
        // devserver/build.rs decided this test runs (tools found, or CI): they must be there.
        panic!("browser test cannot run: {why} (see README, Tests)");
    }

    let server = dev_server(ui_mode).await;
    let artifacts = root.join(artifacts);
    std::fs::create_dir_all(&artifacts).expect("create the artifacts directory");
    let started = Instant::now();
    let out = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/e2e.mjs"))
        .current_dir(&root)
        .env("SHOP_URL", &server.url)
        .env("EMULATOR_URL", &server.emulator)
        .env("ARTIFACTS", &artifacts)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("UI_MODE", ui_mode)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), out)
        .await
        .expect("browser test took more than 5 minutes")
        .expect("cannot run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    if !stderr.trim().is_empty() {
        eprintln!("{stderr}");
    }
    println!("browser test ({ui_mode}) took {:.1}s", started.elapsed().as_secs_f64());
    let summary_ok = stdout.lines().any(|l| l.starts_with("browser: ") && l.ends_with(" passed, 0 failed"));
    if !out.status.success() || !summary_ok {
        panic!(
            "browser end-to-end test ({ui_mode}) failed ({}); screenshots and console.log in {}\n--- dev server log ---\n{}",
            out.status,
            artifacts.display(),
            server.log()
        );
    }
}

#[tokio::test]
#[cfg_attr(
    not(has_chromium),
    ignore = "needs Chromium and playwright-core: apt-get install chromium; cd tests/oracle && npm ci"
)]
async fn storefront_in_a_real_browser() {
    run_e2e("hosted_page", "artifacts/browser").await;
}

#[tokio::test]
#[cfg_attr(
    not(has_chromium),
    ignore = "needs Chromium and playwright-core: apt-get install chromium; cd tests/oracle && npm ci"
)]
async fn embedded_checkout_in_a_real_browser() {
    run_e2e("embedded_page", "artifacts/browser/embedded").await;
}

#[tokio::test]
async fn security_headers_and_same_site_check() {
    let server = dev_server("hosted_page").await;
    let client = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // Per path, what vercel.json gives it on Vercel: the storefront (/ and /index.html) one CSP
    // letting Stripe.js and embedded Checkout's frames in; every other page and file (a missing
    // one too) one strict 'self' CSP; all of them the other security headers.
    for (path, status) in [
        ("/", 200),
        ("/index.html", 200),
        ("/app.js", 200),
        ("/success.html", 200),
        ("/cancel.html", 200),
        ("/style.css", 200),
        ("/admin.html", 200),
        ("/admin.js", 200),
        ("/no-such-page", 404),
    ] {
        let resp = client.get(format!("{}{path}", server.url)).send().await.unwrap();
        assert_eq!(resp.status(), status, "GET {path}");
        let h = resp.headers();
        let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert_eq!(h.get_all("content-security-policy").iter().count(), 1, "GET {path}: one CSP");
        let csp = get("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "GET {path}: CSP {csp:?}");
        assert!(!csp.contains("unsafe-inline"), "GET {path}: CSP {csp:?}");
        if path == "/" || path == "/index.html" {
            for directive in [
                "script-src 'self' https://js.stripe.com https://*.js.stripe.com https://checkout.stripe.com;",
                "frame-src https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com https://checkout.stripe.com;",
                "connect-src 'self' https://api.stripe.com https://checkout.stripe.com;",
            ] {
                assert!(csp.contains(directive), "GET {path}: CSP {csp:?} lacks {directive}");
            }
        } else {
            assert!(csp.contains("script-src 'self';") && csp.contains("frame-src 'none'"), "GET {path}: CSP {csp:?}");
            assert!(!csp.contains("stripe.com"), "GET {path}: CSP {csp:?}");
        }
        assert_eq!(get("x-frame-options"), "DENY", "GET {path}");
        assert_eq!(get("x-content-type-options"), "nosniff", "GET {path}");
        assert!(get("strict-transport-security").contains("max-age="), "GET {path}: HSTS");
        assert!(!get("referrer-policy").is_empty(), "GET {path}: Referrer-Policy");
        // Apple Pay / Google Pay in embedded Checkout need `payment` for Stripe's frame.
        let pp = get("permissions-policy");
        assert!(pp.contains(r#"payment=(self "https://js.stripe.com")"#), "GET {path}: Permissions-Policy {pp:?}");
    }

    let resp = client.get(format!("{}/api/products", server.url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let cache = resp.headers().get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(!cache.is_empty(), "GET /api/products: no Cache-Control");
    assert_eq!(resp.headers().get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));
    let products: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert!(products["products"].as_array().is_some_and(|p| !p.is_empty()), "{products}");

    // DNS rebinding: only requests addressed to localhost / 127.0.0.1 are answered; a page
    // asked for on 127.0.0.1 moves to SITE_URL's origin (where the cart lives).
    let port = server.url.rsplit(':').next().unwrap().to_string();
    for (host, page, api) in [
        ("evil.example".to_string(), 403, 403),
        (format!("evil.example:{port}"), 403, 403),
        (format!("localhost.evil.example:{port}"), 403, 403),
        (format!("localhost:{port}"), 200, 200),
        (format!("127.0.0.1:{port}"), 307, 200),
    ] {
        for (path, expect) in [("/success.html?session_id=cs_test_x", page), ("/api/products", api)] {
            let resp = client.get(format!("{}{path}", server.url)).header("host", &host).send().await.unwrap();
            assert_eq!(resp.status(), expect, "GET {path} with Host {host}");
            if expect == 307 {
                let location = resp.headers()["location"].to_str().unwrap();
                assert_eq!(location, format!("{}{path}", server.url), "redirected to SITE_URL");
            }
        }
    }

    // Only same-site requests may create checkouts.
    let body = r#"{"items":[{"id":"tshirt","quantity":1}]}"#;
    let post = |origin: Option<String>| {
        let mut req = client
            .post(format!("{}/api/create-checkout", server.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    for foreign in [
        Some("https://evil.example".to_string()),
        Some("null".to_string()),
        Some(format!("http://localhost:{port}.evil.example")),
        Some(format!("http://127.0.0.1:{port}")), // same server, but not SITE_URL's origin
        None,
    ] {
        let resp = post(foreign.clone()).await.unwrap();
        assert_eq!(resp.status(), 403, "POST /api/create-checkout with Origin {foreign:?}");
    }
    // Control: the shop's own origin is accepted (so the 403s above are about the origin).
    let resp = post(Some(server.url.clone())).await.unwrap();
    let status = resp.status();
    let json: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap_or_default();
    assert_eq!(status, 200, "POST /api/create-checkout from the shop's origin: {json}");
    assert!(json["url"].as_str().is_some_and(|u| u.contains("/c/pay/cs_")), "{json}");
}
