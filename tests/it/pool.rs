//! The Postgres pool under a database with few connection slots: idle connections are closed
//! after `DATABASE_IDLE_TIMEOUT_SECS` (with or without traffic), so a burst of one function
//! cannot starve the others for an instance's whole life; a refused connection answers 503 with
//! `Retry-After` (the webhook too, so Stripe retries), and the log names the SQLSTATE and the
//! server's message, never the URL or the password.
//!
//! Each test logs in as its own role with a low `CONNECTION LIMIT` (created idempotently, with
//! its own database, through `TEST_DATABASE_URL`'s superuser).

use crate::common::{Instance, ShopOptions, WEBHOOK_SECRET, emulator_options, instance, postgres_url, split, sql};
use std::time::{Duration, Instant};
use stripe_emulator::Emulator;

/// The owner's token for `/api/orders`.
const ADMIN_TOKEN: &str = "pool-test-admin-token-0123456789abcdef";

/// A password the role does not need (trust auth): it must never show up in a log or answer.
const PASSWORD: &str = "pw-must-not-leak-7d1e";

/// Creates role `role` with `CONNECTION LIMIT limit` and its own database (idempotent); its URL,
/// with [`PASSWORD`] in it.
async fn limited_role(role: &str, limit: u32) -> String {
    let admin = postgres_url().expect("needs TEST_DATABASE_URL");
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                 CREATE ROLE {role} LOGIN;
               END IF;
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
             END $$;
             ALTER ROLE {role} CONNECTION LIMIT {limit};"
        ))
        .await
        .unwrap();
    let exists = client.query_opt(&format!("SELECT 1 FROM pg_database WHERE datname = '{role}'"), &[]).await.unwrap();
    if exists.is_none()
        && let Err(e) = client.batch_execute(&format!("CREATE DATABASE {role} OWNER {role}")).await
    {
        // Another run created it first.
        let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
        assert!(code == "42P04" || code == "23505", "CREATE DATABASE: {e:?}");
    }
    // A fresh schema: tables a former run created (perhaps by an older version) go.
    let (db, conn) = tokio_postgres::connect(&admin_url(role), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    db.batch_execute(&format!("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public AUTHORIZATION {role};"))
        .await
        .unwrap();
    let mut url: reqwest::Url = admin.parse().unwrap();
    url.set_username(role).unwrap();
    url.set_password(Some(PASSWORD)).unwrap();
    url.set_path(&format!("/{role}"));
    url.to_string()
}

/// The superuser's URL for `role`'s database (to count connections and read the tables).
fn admin_url(role: &str) -> String {
    let mut url: reqwest::Url = postgres_url().unwrap().parse().unwrap();
    url.set_path(&format!("/{role}"));
    url.to_string()
}

/// Connections the role holds now (one statement on the superuser's connection).
async fn connections_of(role: &str) -> i64 {
    let (client, conn) = tokio_postgres::connect(&postgres_url().unwrap(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let n: i64 =
        client.query_one("SELECT COUNT(*) FROM pg_stat_activity WHERE usename = $1", &[&role]).await.unwrap().get(0);
    n
}

/// Waits (up to `within`) until the role holds no connection: its idle connections closed.
async fn until_released(role: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if connections_of(role).await == 0 {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{role} still holds connections after {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Pool settings for an instance: `size` connections, idle for at most a second.
fn pooled(url: &str, size: usize) -> ShopOptions {
    ShopOptions {
        database_url: Some(url.to_string()),
        no_webhooks: true,
        env: vec![
            ("DATABASE_POOL_SIZE", size.to_string()),
            ("DATABASE_IDLE_TIMEOUT_SECS", "1".to_string()),
            ("ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
            ("RATE_LIMIT_ORDERS", "1000000/60".to_string()),
        ],
        ..Default::default()
    }
}

/// Creates a paid session through `inst`'s create-checkout; its id and its signed
/// `checkout.session.completed` body.
async fn paid_session(http: &reqwest::Client, emu: &Emulator, inst: &Instance) -> (String, Vec<u8>) {
    let r = http
        .post(inst.url("/api/create-checkout"))
        .header("content-type", "application/json")
        .header("origin", &inst.site)
        .header("x-real-ip", "203.0.113.9")
        .body(r#"{"items":[{"id":"mug","quantity":1}]}"#)
        .send()
        .await
        .unwrap();
    let (status, _, json) = split(r).await;
    assert_eq!(status, 200, "create-checkout: {json}");
    let id = json["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let r = http.post(format!("{}/c/pay/{id}", emu.base_url())).form(&[("action", "pay")]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let event = emu
        .events()
        .into_iter()
        .find(|e| e["type"] == "checkout.session.completed" && e["data"]["object"]["id"] == id.as_str())
        .expect("completed event");
    (id, serde_json::to_vec(&event).unwrap())
}

/// Delivers a signed event body to an instance's webhook: status, `Retry-After`, body text.
async fn deliver(http: &reqwest::Client, inst_url: String, body: &[u8]) -> (u16, Option<String>, String) {
    let header = checkout::signature::sign(WEBHOOK_SECRET.as_bytes(), checkout::clock::now(), body);
    let r = http.post(inst_url).header("stripe-signature", header).body(body.to_vec()).send().await.unwrap();
    answer(r).await
}

/// GETs the checkout status of `id` from an instance: status, `Retry-After`, body text.
async fn status_of(http: &reqwest::Client, inst: &Instance, id: &str) -> (u16, Option<String>, String) {
    let r = http
        .get(inst.url(&format!("/api/checkout-status?session_id={id}")))
        .header("x-real-ip", "203.0.113.10")
        .send()
        .await
        .unwrap();
    answer(r).await
}

async fn answer(r: reqwest::Response) -> (u16, Option<String>, String) {
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (status, retry, r.text().await.unwrap())
}

/// A 503 as the issue wants it: `Retry-After`, a reference, nothing internal.
fn assert_unavailable(what: &str, (status, retry, text): &(u16, Option<String>, String)) {
    assert_eq!(*status, 503, "{what}: {text}");
    assert_eq!(retry.as_deref(), Some("5"), "{what}: Retry-After");
    assert!(text.contains("reference"), "{what}: {text}");
    for internal in ["postgres", "53300", "SQLSTATE", "too many", PASSWORD, "shop_"] {
        assert!(!text.contains(internal), "{what} shows {internal:?}: {text}");
    }
}

#[tokio::test]
#[cfg_attr(not(has_postgres), ignore = "needs Postgres: set TEST_DATABASE_URL (README, Tests)")]
async fn a_refused_connection_is_503_with_retry_after_and_names_the_sqlstate() {
    const ROLE: &str = "shop_refused";
    let url = limited_role(ROLE, 1).await;
    let emu = Emulator::start(emulator_options()).await.unwrap();
    let inst = instance(&emu.base_url(), &pooled(&url, 2)).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let (id, event) = paid_session(&http, &emu, &inst).await;
    until_released(ROLE, Duration::from_secs(5)).await;

    // Another client takes the role's only slot.
    let plain = url.replace(&format!(":{PASSWORD}"), "");
    let (holder, conn) = tokio_postgres::connect(&plain, tokio_postgres::NoTls).await.unwrap();
    let held = tokio::spawn(conn);

    // The store says why, and which kind of failure: SQLSTATE and the server's message.
    let store = crate::common::open_store(&url);
    let e = store.order(&id).await.expect_err("the role has no slot left");
    assert!(e.is_unavailable(), "{e}");
    let reason = e.to_string();
    assert!(reason.contains("53300") && reason.contains("too many connections"), "{reason}");
    assert!(!reason.contains(PASSWORD) && !reason.contains("postgres://") && !reason.contains("db error"), "{reason}");

    // The functions answer 503 + Retry-After: the webhook (a 5xx, so Stripe retries) and the
    // success page's status.
    assert_unavailable("webhook", &deliver(&http, inst.url("/api/webhook"), &event).await);
    assert_unavailable("checkout-status", &status_of(&http, &inst, &id).await);

    // The slot comes back: both answer, and the order is fulfilled once.
    drop(holder);
    let _ = held.await;
    let (status, _, text) = deliver(&http, inst.url("/api/webhook"), &event).await;
    assert_eq!(status, 200, "{text}");
    let (status, _, text) = status_of(&http, &inst, &id).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"fulfillment\":\"fulfilled\""), "{text}");
    let rows =
        sql(&admin_url(ROLE), "SELECT COUNT(*), NULL::BIGINT FROM fulfillments WHERE session_id = $1", &id).await;
    assert_eq!(rows[0].0, 1);
}

#[tokio::test]
#[cfg_attr(not(has_postgres), ignore = "needs Postgres: set TEST_DATABASE_URL (README, Tests)")]
async fn after_a_burst_idle_connections_close_and_every_function_answers_again() {
    const ROLE: &str = "shop_limited";
    const LIMIT: u32 = 6;
    const SESSIONS: usize = 12;
    let idle_timeout = Duration::from_secs(1);
    let url = limited_role(ROLE, LIMIT).await;
    let emu = Emulator::start(emulator_options()).await.unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    // 22 instances of three kinds, each with the pool of the issue (4 connections): 10
    // webhook, 10 checkout-status, 2 create-checkout (and, after the burst, the order list). Their pools could hold 88 connections;
    // the role has 6.
    let mut instances = Vec::new();
    for _ in 0..22 {
        instances.push(instance(&emu.base_url(), &pooled(&url, 4)).await);
    }
    let (webhooks, rest) = instances.split_at(10);
    let (statuses, checkouts) = rest.split_at(10);
    let mut sessions = Vec::new();
    for i in 0..SESSIONS {
        sessions.push(paid_session(&http, &emu, &checkouts[i % 2]).await);
    }
    until_released(ROLE, Duration::from_secs(5)).await;

    // The burst: every event to two webhook instances at once (a duplicate delivery), retried
    // after each 5xx as Stripe does, while the status instances poll the success page.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (n, (_, body)) in sessions.iter().enumerate() {
        for k in 0..2 {
            let (http, body) = (http.clone(), body.clone());
            let url = webhooks[(n + k * 5) % 10].url("/api/webhook");
            tasks.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let answer = deliver(&http, url.clone(), &body).await;
                    let done = answer.0 == 200;
                    seen.push(answer);
                    if done || seen.len() >= 200 {
                        return seen;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }));
        }
    }
    let mut polls = Vec::new();
    for (n, inst) in statuses.iter().enumerate() {
        let (http, id, url) = (http.clone(), sessions[n % SESSIONS].0.clone(), inst.url(""));
        polls.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..10 {
                let r = http
                    .get(format!("{url}/api/checkout-status?session_id={id}"))
                    .header("x-real-ip", "203.0.113.11")
                    .send()
                    .await
                    .unwrap();
                seen.push(answer(r).await);
            }
            seen
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        let seen = t.await.unwrap();
        assert_eq!(seen.last().unwrap().0, 200, "a delivery never got through: {:?}", seen.last());
        answers.extend(seen);
    }
    for p in polls {
        answers.extend(p.await.unwrap());
    }
    let burst = started.elapsed();
    let refused = answers.iter().filter(|a| a.0 == 503).count();
    for a in answers.iter().filter(|a| a.0 != 200) {
        assert_unavailable("during the burst", a);
    }
    let held = connections_of(ROLE).await;
    eprintln!("burst: {} answers in {burst:?}, {refused} of them 503; {held} connections held after", answers.len());

    // Idle: without a single request, every instance gives its connections back.
    let released = until_released(ROLE, idle_timeout + Duration::from_secs(3)).await;
    eprintln!("idle connections closed {released:?} after the burst ended (idle timeout {idle_timeout:?})");

    // Every function answers again: each instance, asked until it answers 200 (a 503 says to
    // come back; the slots the instances before it just used are idle for up to a second),
    // within the idle timeout plus a few seconds.
    let bound = idle_timeout + Duration::from_secs(3);
    let mut slowest = Duration::ZERO;
    for (n, inst) in instances.iter().enumerate() {
        let asked = Instant::now();
        loop {
            let (status, retry, text) = match n {
                0..10 => deliver(&http, inst.url("/api/webhook"), &sessions[n].1).await,
                10..20 => status_of(&http, inst, &sessions[n - 10].0).await,
                _ => {
                    let r = http.get(inst.url("/api/orders?limit=3")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
                    answer(r).await
                }
            };
            if status == 200 {
                break;
            }
            assert_unavailable("after the burst", &(status, retry, text));
            assert!(asked.elapsed() < bound, "instance {n} still refused after {bound:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slowest = slowest.max(asked.elapsed());
    }
    eprintln!("after idling, every instance answered 200; the slowest took {slowest:?} (bound {bound:?})");
    // No order lost or fulfilled twice.
    for (id, _) in &sessions {
        let rows = sql(
            &admin_url(ROLE),
            "SELECT (SELECT COUNT(*) FROM fulfillments WHERE session_id = $1),
                    (SELECT COUNT(*) FROM order_numbers WHERE session_id = $1)",
            id,
        )
        .await;
        assert_eq!(rows[0], (1, Some(1)), "{id}: one fulfilment, one order number");
        let (status, _, text) = status_of(&http, &statuses[0], id).await;
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("\"fulfillment\":\"fulfilled\""), "{id}: {text}");
    }
}
