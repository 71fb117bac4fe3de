//! `GET /api/health` over real HTTP: the owner's guard, every check passing and then failing
//! in turn (against the emulator's webhook endpoints and small local servers: a redirect to
//! `www`, a 401 in front of the shop, a Stripe that refuses the key), the health view's record
//! (the last verified event, refusals per class, the last reconciliation run, unfinished hook
//! runs) on SQLite, Postgres and PgBouncer, the bound on what a flood of forged deliveries
//! writes, and nothing secret in any answer.

use crate::common::{self, Backend, SECRET_KEY, Shop, ShopOptions, WEBHOOK_SECRET, shop};
use checkout::refusals::FLUSH_EVERY;
use checkout::stripe::{API_VERSION, EventType};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "health-owner-token-0123456789abcdefghijkl";
const CRON: &str = "health-cron-secret-0123456789abcdefghijklmnopqrstuv";
/// A cart with nothing to ship.
const DIGITAL: &str = r#"{"items":[{"id":"wallpapers","quantity":1}]}"#;

fn owner_env(extra: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("ADMIN_TOKEN", TOKEN.to_string()),
        ("CRON_SECRET", CRON.to_string()),
        ("RATE_LIMIT_ORDERS", "1000000/60".to_string()),
        ("STRIPE_MAX_RETRIES", "0".to_string()),
    ];
    env.extend(extra);
    env
}

async fn owner_shop(extra: Vec<(&'static str, String)>) -> Shop {
    shop(ShopOptions { env: owner_env(extra), ..Default::default() }).await
}

/// `GET /api/health` as the owner: status, headers, body text.
async fn health_raw(s: &Shop, auth: Option<&str>) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = s.http.get(s.url("/api/health")).header("x-real-ip", "198.51.100.9");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

/// The health answer (200 asserted), with nothing secret in it.
async fn health(s: &Shop, also_secret: &[&str]) -> Value {
    let (status, headers, body) = health_raw(s, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    for secret in [SECRET_KEY, WEBHOOK_SECRET, TOKEN, CRON].iter().chain(also_secret) {
        assert!(!body.contains(secret), "a secret in the health answer:\n{body}");
    }
    serde_json::from_str(&body).unwrap()
}

/// One check of an answer: status, message, fix.
fn check<'a>(h: &'a Value, name: &str) -> (&'a str, &'a str, &'a str) {
    let c = h["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name}: {h:#}"));
    (c["status"].as_str().unwrap(), c["message"].as_str().unwrap(), c["fix"].as_str().unwrap_or(""))
}

fn all_events() -> Vec<&'static str> {
    EventType::ALL.iter().map(|t| t.as_str()).collect()
}

/// A webhook endpoint on the emulator, made as `stripe-setup` makes it unless told otherwise.
async fn create_endpoint(s: &Shop, url: &str, events: &[&str], version: &str) -> String {
    let mut form: Vec<(String, String)> = vec![("url".into(), url.into()), ("api_version".into(), version.into())];
    for (i, e) in events.iter().enumerate() {
        form.push((format!("enabled_events[{i}]"), e.to_string()));
    }
    let r = s
        .http
        .post(format!("{}/v1/webhook_endpoints", s.emu.base_url()))
        .bearer_auth(SECRET_KEY)
        .form(&form)
        .send()
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    body["id"].as_str().unwrap_or_else(|| panic!("endpoint not created: {body}")).to_string()
}

async fn update_endpoint(s: &Shop, id: &str, form: &[(String, String)]) {
    let r = s
        .http
        .post(format!("{}/v1/webhook_endpoints/{id}", s.emu.base_url()))
        .bearer_auth(SECRET_KEY)
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn reconcile(s: &Shop) {
    let r = s.http.get(s.url("/api/reconcile")).bearer_auth(CRON).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// A local server answering every request with `status`, `headers` and `body` (a redirect, a
/// login wall, a Stripe that refuses the key); its `http://localhost:PORT` origin.
async fn fixed_server(status: &'static str, headers: Vec<String>, body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let head = headers.iter().map(|h| format!("{h}\r\n")).collect::<String>();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                let _ = sock.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 {status}\r\n{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://localhost:{port}")
}

#[tokio::test]
async fn the_owners_guard() {
    let s = shop(ShopOptions::default()).await;
    let (status, headers, _) = health_raw(&s, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 404, "no ADMIN_TOKEN: the route does not exist");
    assert_eq!(headers["cache-control"], "no-store");

    let s = owner_shop(vec![("RATE_LIMIT_ORDERS", "3/60".into())]).await;
    for auth in [None, Some("Bearer wrong"), Some(&*format!("Bearer {TOKEN}x"))] {
        let (status, headers, body) = health_raw(&s, auth).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(body, r#"{"error":{"message":"unauthorized"}}"#);
    }
    let (status, headers, _) = health_raw(&s, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 429, "attempts are limited before the token is checked");
    assert!(headers.contains_key("retry-after"));
}

#[tokio::test]
async fn every_check_passes_on_a_shop_set_up_from_the_code() {
    let s = owner_shop(vec![]).await;
    let hook = format!("{}/api/webhook", s.site);
    let id = create_endpoint(&s, &hook, &all_events(), API_VERSION).await;
    reconcile(&s).await;
    let h = health(&s, &[]).await;
    for c in h["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "pass", "{c}");
        assert!(c.get("fix").is_none(), "{c}");
    }
    assert_eq!(h["status"], "pass");
    let names: Vec<&str> = h["checks"].as_array().unwrap().iter().map(|c| c["check"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "keys",
            "webhook_endpoint",
            "reachability",
            "webhook_secret",
            "cron_secret",
            "admin_token",
            "database_url",
            "store",
            "schema",
            "reconcile",
            "hook_runs"
        ]
    );
    assert!(check(&h, "webhook_endpoint").1.contains(&id));
    assert!(check(&h, "reachability").1.contains("400"));
    assert_eq!(h["site_url"], s.site);
    assert_eq!(h["record"]["last_reconcile_run"]["finished"], true);
    assert_eq!(h["record"]["hook_runs_open"], 0);
    // The probe of the shop's own webhook is the one refusal: no header, never Stripe.
    assert_eq!(h["record"]["refusals_24h"]["no_header"], 1, "{h:#}");
}

#[tokio::test]
async fn the_webhook_endpoint_fails_for_each_set_up_mistake() {
    let s = owner_shop(vec![]).await;
    let hook = format!("{}/api/webhook", s.site);
    let h = health(&s, &[]).await;
    let (status, message, fix) = check(&h, "webhook_endpoint");
    assert_eq!((status, h["status"].as_str().unwrap()), ("fail", "fail"));
    assert!(message.contains("no webhook endpoint") && fix.contains("stripe-setup"), "{message} / {fix}");

    // A missing event subscription, named.
    let dropped = EventType::ALL.last().unwrap().as_str();
    let id = create_endpoint(&s, &hook, &all_events()[..EventType::ALL.len() - 1], API_VERSION).await;
    let h = health(&s, &[]).await;
    let (status, message, fix) = check(&h, "webhook_endpoint");
    assert_eq!(status, "fail");
    assert!(message.contains(dropped) && message.contains("1 event"), "{message}");
    assert!(fix.contains("stripe-setup"), "{fix}");
    // `*` receives everything.
    update_endpoint(&s, &id, &[("enabled_events[0]".into(), "*".into())]).await;
    assert_eq!(check(&health(&s, &[]).await, "webhook_endpoint").0, "pass");

    // Disabled.
    update_endpoint(&s, &id, &[("disabled".into(), "true".into())]).await;
    let h = health(&s, &[]).await;
    assert_eq!(check(&h, "webhook_endpoint").0, "fail");
    assert!(check(&h, "webhook_endpoint").1.contains("disabled"));
    update_endpoint(&s, &id, &[("disabled".into(), "false".into())]).await;

    // Two endpoints at the URL.
    let second = create_endpoint(&s, &hook, &all_events(), API_VERSION).await;
    let h = health(&s, &[]).await;
    let (status, message, fix) = check(&h, "webhook_endpoint");
    assert_eq!(status, "fail");
    assert!(message.contains("2 enabled endpoints") && message.contains(&id) && message.contains(&second), "{message}");
    assert!(fix.contains("delete all but one"), "{fix}");

    // Another API version (the only endpoint left at the URL).
    update_endpoint(&s, &id, &[("url".into(), "http://localhost:1/elsewhere".into())]).await;
    update_endpoint(&s, &second, &[("url".into(), "http://localhost:1/elsewhere".into())]).await;
    let old = create_endpoint(&s, &hook, &all_events(), "2026-07-29.dahlia").await;
    let h = health(&s, &[]).await;
    let (status, message, fix) = check(&h, "webhook_endpoint");
    assert_eq!(status, "fail");
    assert!(message.contains("2026-07-29.dahlia") && message.contains(API_VERSION), "{message}");
    assert!(fix.contains("delete endpoint") && fix.contains(&old), "{fix}");

    // Only the www name has one: the www/apex mismatch is named.
    let www = hook.replace("//localhost", "//www.localhost");
    update_endpoint(&s, &old, &[("url".into(), www.clone())]).await;
    let h = health(&s, &[]).await;
    let (status, message, _) = check(&h, "webhook_endpoint");
    assert_eq!(status, "fail");
    assert!(message.contains(&www) && message.contains("www and apex"), "{message}");
}

#[tokio::test]
async fn reachability_fails_behind_a_redirect_or_deployment_protection() {
    // SITE_URL's apex redirects to www, as a Vercel domain set to redirect does.
    let redirect =
        fixed_server("308 Permanent Redirect", vec!["Location: http://www.localhost:9/api/webhook".into()], "").await;
    let s = owner_shop(vec![("SITE_URL", redirect.clone())]).await;
    let h = health(&s, &[]).await;
    let (status, message, fix) = check(&h, "reachability");
    assert_eq!(status, "fail");
    assert!(message.contains("308") && message.contains("http://www.localhost:9/api/webhook"), "{message}");
    assert!(message.contains("www and apex") && message.contains("does not follow redirects"), "{message}");
    assert!(fix.contains("without a redirect"), "{fix}");
    assert_eq!(h["status"], "fail");

    // Deployment Protection's login wall.
    let wall = fixed_server(
        "401 Unauthorized",
        vec!["Content-Type: text/html".into()],
        "<html>Authentication Required</html>",
    )
    .await;
    let s = owner_shop(vec![("SITE_URL", wall)]).await;
    let h = health(&s, &[]).await;
    let (status, message, fix) = check(&h, "reachability");
    assert_eq!(status, "fail");
    assert!(message.contains("401") && message.contains("Deployment Protection"), "{message}");
    assert!(fix.contains("Protection Bypass for Automation") && fix.contains("disable it for Production"), "{fix}");

    // A 400 that is not the shop's verifier: another site.
    let other = fixed_server("400 Bad Request", vec![], "bad").await;
    let s = owner_shop(vec![("SITE_URL", other)]).await;
    assert!(check(&health(&s, &[]).await, "reachability").1.contains("not the shop's verifier"));

    // Nothing listening.
    let s = owner_shop(vec![("SITE_URL", "http://localhost:9".into())]).await;
    let h = health(&s, &[]).await;
    assert_eq!(check(&h, "reachability").0, "fail");
    assert!(check(&h, "reachability").1.contains("no answer"), "{h:#}");
}

#[tokio::test]
async fn the_probe_follows_the_endpoints_bypass_as_stripe_does_and_never_shows_it() {
    // Deployment Protection with Protection Bypass for Automation: the wall lets through only a
    // request carrying the bypass secret in its query, as Stripe's deliveries to an endpoint
    // whose URL has it do; behind it, the shop's verifier.
    const BYPASS: &str = "x-vercel-protection-bypass=bypass0123456789secret";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let request_line = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_string();
                let (status, body) = if request_line.contains(&format!("/api/webhook?{BYPASS} ")) {
                    (
                        "400 Bad Request",
                        format!(r#"{{"error":{{"message":"{}"}}}}"#, checkout::doctor::VERIFIER_REFUSAL),
                    )
                } else {
                    ("401 Unauthorized", "<html>Authentication Required</html>".to_string())
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    let s = owner_shop(vec![("SITE_URL", site.clone())]).await;
    let hook = format!("{site}/api/webhook");
    // Without the bypass in the endpoint's URL the wall refuses: the fix says where to put it.
    let plain = create_endpoint(&s, &hook, &all_events(), API_VERSION).await;
    let h = health(&s, &[]).await;
    let (status, message, _) = check(&h, "reachability");
    assert_eq!(status, "fail", "{message}");
    assert!(message.contains("401"), "{message}");
    // With it (the fix followed): the probe goes where Stripe delivers, and passes.
    update_endpoint(&s, &plain, &[("url".into(), format!("{hook}?{BYPASS}"))]).await;
    let h = health(&s, &["bypass0123456789secret"]).await;
    let (status, message, _) = check(&h, "reachability");
    assert_eq!(status, "pass", "{message}");
    assert_eq!(check(&h, "webhook_endpoint").0, "pass", "{h:#}");
}

#[tokio::test]
async fn keys_and_secrets_fail_with_their_fix() {
    // Stripe refuses the key.
    let stripe = fixed_server(
        "401 Unauthorized",
        vec!["Content-Type: application/json".into()],
        r#"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****4242"}}"#,
    )
    .await;
    let s = owner_shop(vec![("STRIPE_API_BASE", stripe.replace("localhost", "127.0.0.1"))]).await;
    let h = health(&s, &[]).await;
    let (status, message, fix) = check(&h, "keys");
    assert_eq!(status, "fail");
    assert!(message.contains("401") && fix.contains("API keys"), "{message} / {fix}");
    assert!(!h.to_string().contains("Invalid API Key"), "Stripe's text stays in the log");
    assert_eq!(check(&h, "webhook_endpoint").0, "warn", "not checked without a working key");

    // Stripe unreachable.
    let s = owner_shop(vec![("STRIPE_API_BASE", "http://127.0.0.1:9".into())]).await;
    let h = health(&s, &[]).await;
    assert_eq!(check(&h, "keys").0, "fail");
    assert!(check(&h, "keys").1.contains("did not answer"));

    // No webhook secret: every delivery is refused (and the probe gets a 500).
    let s = owner_shop(vec![("STRIPE_WEBHOOK_SECRET", String::new())]).await;
    let h = health(&s, &[]).await;
    let (status, message, fix) = check(&h, "webhook_secret");
    assert_eq!(status, "fail");
    assert!(message.contains("not set") && fix.contains("vercel env add STRIPE_WEBHOOK_SECRET"), "{message} / {fix}");
    assert!(check(&h, "reachability").1.contains("500"));

    // CRON_SECRET unset, then short.
    let s = owner_shop(vec![("CRON_SECRET", String::new())]).await;
    let h = health(&s, &[]).await;
    assert_eq!(check(&h, "cron_secret").0, "fail");
    assert!(check(&h, "cron_secret").2.contains("openssl rand -hex 32"));
    let s = owner_shop(vec![("CRON_SECRET", "sixteen-chars-ok-20".into())]).await;
    assert_eq!(check(&health(&s, &[]).await, "cron_secret").0, "warn");
}

#[tokio::test]
async fn the_store_checks_warn_on_a_stale_run_a_failed_hook_and_another_schema() {
    let s = owner_shop(vec![]).await;
    let h = health(&s, &[]).await;
    let (status, message, _) = check(&h, "reconcile");
    assert_eq!(status, "warn", "never ran, outside production: {message}");

    // A run 30 hours ago: stale, with the free plan's note.
    let store = common::open_store(&s.database_url);
    let run = checkout::store::ReconcileRun {
        at: checkout::clock::now() - 30 * 3600,
        processed: 2,
        finished: true,
        failed: false,
    };
    store.save_reconcile_run(&s.app.source, &run).await.unwrap();
    let h = health(&s, &[]).await;
    let (status, message, _) = check(&h, "reconcile");
    assert_eq!(status, "warn");
    assert!(message.contains("30 h ago") && message.contains("Hobby"), "{message}");
    assert_eq!(h["record"]["last_reconcile_run"]["processed"], 2);
    reconcile(&s).await;
    assert_eq!(check(&health(&s, &[]).await, "reconcile").0, "pass");

    // An owner's hook run that lapsed (its hook failed or its instance died).
    let session = format!("cs_test_health{}", checkout::http::random_hex(8));
    let path = s.database_url.strip_prefix("sqlite://").unwrap().to_string();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO fulfillment_runs (session_id, attempts, claimed_at) VALUES (?1, 3, ?2)",
        rusqlite::params![session, checkout::clock::now() - 600],
    )
    .unwrap();
    let h = health(&s, &[]).await;
    let (status, message, _) = check(&h, "hook_runs");
    assert_eq!(status, "warn");
    assert!(message.contains(&session) && message.contains("3 attempts"), "{message}");
    let runs = h["record"]["hook_runs"].as_array().unwrap();
    assert_eq!(runs[0]["id"], session.as_str());
    assert_eq!(runs[0]["state"], "failed");
    assert_eq!(runs[0]["kind"], "fulfillment");

    // Another deployment applied another schema after this one.
    conn.execute("INSERT INTO schema_version VALUES ('0123456789abcdef', ?1)", [checkout::clock::now() + 60]).unwrap();
    let h = health(&s, &[]).await;
    let (status, message, _) = check(&h, "schema");
    assert_eq!(status, "warn");
    assert!(message.contains("0123456789abcdef") && message.contains(&checkout::store::schema_version()), "{message}");
}

/// The Postgres URL with a password in it (the test server trusts local connections, so any
/// password works), to prove it never reaches an answer.
fn with_password(url: &str) -> String {
    url.replacen("postgres://postgres@", "postgres://postgres:pw-health-8c1f2e@", 1)
}

/// Rows of `webhook_refusals` for a source.
async fn refusal_rows(db: &str, source: &str) -> i64 {
    if let Some(path) = db.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row("SELECT COUNT(*) FROM webhook_refusals WHERE source = ?1", [source], |r| r.get(0)).unwrap()
    } else {
        let (client, conn) = tokio_postgres::connect(db, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let row = client
            .query_typed_one(
                "SELECT COUNT(*) FROM webhook_refusals WHERE source = $1",
                &[(&source, tokio_postgres::types::Type::TEXT)],
            )
            .await
            .unwrap();
        row.get(0)
    }
}

/// `(signature_mismatch, no_header)` counts of a source over the last day, as the store has them.
async fn stored_counts(db: &str, source: &str) -> (i64, i64) {
    let store = common::open_store(db);
    let hour = checkout::clock::now().div_euclid(3600) - 23;
    let rows = store.refusals(source, hour).await.unwrap();
    let n = |class: &str| rows.iter().find(|r| r.0 == class).map_or(0, |r| r.1);
    (n("signature_mismatch"), n("no_header"))
}

each_backend! {
    #[tokio::test]
    async fn the_record_and_the_bound_on_a_flood(backend) {
        let db = match backend {
            Backend::Postgres => with_password(&common::database_url(backend)),
            _ => common::database_url(backend),
        };
        let s = shop(ShopOptions { database_url: Some(db.clone()), env: owner_env(vec![]), ..Default::default() }).await;
        let started = checkout::clock::now();
        let (mismatch0, no_header0) = stored_counts(&db, &s.app.source).await;

        // A paid order: its events come through the webhook (the harness's delivery URL).
        let id = s.checkout(DIGITAL).await;
        s.pay(&id, "pay").await;
        s.wait_order(&id, |o| o.state == checkout::order::OrderState::Fulfilled).await;
        reconcile(&s).await;

        // A flood of forged deliveries: signed with a secret the shop does not have, then
        // without any header.
        // (A second later: times are whole seconds, and "none verified since" compares them.)
        tokio::time::sleep(Duration::from_millis(1100)).await;
        const FORGED: i64 = 300;
        const BARE: i64 = 30;
        let flood = Instant::now();
        let body = br#"{"id":"evt_forged","object":"event","type":"checkout.session.completed"}"#;
        for i in 0..FORGED + BARE {
            let mut req = s.http.post(s.url("/api/webhook")).header("content-type", "application/json").body(&body[..]);
            if i < FORGED {
                let header = checkout::signature::sign(b"whsec_not_the_shops", checkout::clock::now(), body);
                req = req.header("stripe-signature", header);
            }
            assert_eq!(req.send().await.unwrap().status(), 400);
        }
        let elapsed = flood.elapsed();
        let writes = s.app.refusals.writes();
        let allowed = 2 + elapsed.as_secs() / FLUSH_EVERY.as_secs();
        assert!(writes <= allowed, "{} refusals made {writes} writes in {elapsed:?} (at most {allowed})", FORGED + BARE);
        // One row per class and hour, however many requests.
        let rows = refusal_rows(&db, &s.app.source).await;
        eprintln!("{backend:?}: {} refusals in {elapsed:?}: {writes} writes, {rows} rows", FORGED + BARE);
        assert!(rows <= 4, "{rows} rows for two classes");

        // What is pending is written within FLUSH_EVERY, without another request.
        let deadline = Instant::now() + FLUSH_EVERY + Duration::from_secs(5);
        loop {
            let (m, n) = stored_counts(&db, &s.app.source).await;
            if (m - mismatch0, n - no_header0) == (FORGED, BARE) {
                break;
            }
            assert!(Instant::now() < deadline, "stored {m}/{n} of {FORGED}/{BARE} after {FLUSH_EVERY:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(s.app.refusals.writes() <= allowed + 1);
        assert!(refusal_rows(&db, &s.app.source).await <= 4);

        let h = health(&s, &["pw-health-8c1f2e"]).await;
        let record = &h["record"];
        assert_eq!(record["last_event"]["type"], "checkout.session.completed", "{record:#}");
        assert!(record["last_event"]["at"].as_i64().unwrap() >= started);
        assert_eq!(record["refusals_24h"]["signature_mismatch"], mismatch0 + FORGED);
        // The health check's own probe adds one header-less POST (pending in this instance).
        assert_eq!(record["refusals_24h"]["no_header"], no_header0 + BARE + 1);
        assert_eq!(record["last_refusal"]["class"], "no_header");
        assert!(record["last_refusal"]["at"].as_i64().unwrap() >= started);
        let run = &record["last_reconcile_run"];
        assert!(run["at"].as_i64().unwrap() >= started && run["finished"] == true && run["failed"] == false, "{run}");
        // Forged deliveries since the last verified event: the secret is suspect.
        let (status, message, _) = check(&h, "webhook_secret");
        assert_eq!(status, "warn");
        assert!(message.contains(&format!("{}", mismatch0 + FORGED)), "{message}");
        assert_eq!(check(&h, "store").0, "pass");
        assert!(!check(&h, "store").1.contains('@'), "no user or password in the store's description");
    }
}

/// The production-only outcomes, decided from the configuration (a production configuration
/// sends its key only to api.stripe.com, so these are not run against the emulator).
#[test]
fn production_outcomes() {
    use checkout::doctor::{Status, database_url_check, keys_check, reconcile_check};
    let config = |extra: &[(&str, &str)]| {
        let mut env: std::collections::HashMap<&str, String> = [
            ("VERCEL", "1"),
            ("VERCEL_ENV", "production"),
            ("STRIPE_SECRET_KEY", "sk_live_fake_health_key"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_fake_health_secret"),
            ("SITE_URL", "https://shop.example.com"),
            ("DATABASE_URL", "postgres://app:pw@ep-cool-name-123456.eu-central-1.aws.neon.tech/shop"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
        for (k, v) in extra {
            env.insert(k, v.to_string());
        }
        checkout::Config::from_lookup(|k| env.get(k).cloned()).unwrap()
    };
    // Never ran in production: fail, with the free plan's note; outside production: warn.
    let never = reconcile_check(true, "https://shop.example.com", None, 0, 0);
    assert_eq!(never.status, Status::Fail);
    assert!(never.message.contains("Hobby"));
    assert!(never.fix.as_deref().unwrap().contains("https://shop.example.com/api/reconcile"));
    assert_eq!(reconcile_check(false, "http://localhost:3000", None, 0, 0).status, Status::Warn);

    // A direct Postgres endpoint in production warns; the pooled marks pass.
    let direct = database_url_check(&config(&[]));
    assert_eq!(direct.status, Status::Warn);
    assert!(!direct.message.contains("pw") && direct.fix.as_deref().unwrap().contains("-pooler"));
    for pooled in [
        "postgres://app:pw@ep-cool-name-123456-pooler.eu-central-1.aws.neon.tech/shop",
        "postgres://app:pw@db.example.com:6432/shop",
        "postgres://app:pw@db.example.com/shop?pgbouncer=true",
    ] {
        assert_eq!(database_url_check(&config(&[("DATABASE_URL", pooled)])).status, Status::Pass, "{pooled}");
    }

    // Test keys in production, allowed on purpose: a warning that says what it means.
    let test_keys =
        config(&[("STRIPE_SECRET_KEY", "sk_test_fake_health_key"), ("ALLOW_TEST_KEYS_IN_PRODUCTION", "true")]);
    let keys = keys_check(&test_keys, "no publishable key");
    assert_eq!(keys.status, Status::Warn);
    assert!(keys.message.contains("test cards") && keys.fix.as_deref().unwrap().contains("refuses test keys"));
    assert_eq!(keys_check(&config(&[]), "no publishable key").status, Status::Pass);
}
