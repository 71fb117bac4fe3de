//! Limited stock over real HTTP: `POST /api/stock`, `create-checkout`'s reservations across
//! several instances sharing one store (SQLite, Postgres, PgBouncer), the emulator's
//! `expires_at` and `checkout.session.expired`, the release paths (expiry, a failed Stripe
//! call, a failed async payment, the reconciliation run's sweep), and a payment that outran
//! its release (`STOCK_OVERSOLD`).
//!
//! Each test has a database of its own (a fresh SQLite file, or a fresh Postgres database on
//! the test server): stock is keyed by the catalog's product ids, which every test shares.

use crate::common::{Backend, Instance, Shop, ShopOptions, instance, shop_with_emulator};
use checkout::order::OrderState;
use checkout::store::{StockLevel, Store};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use stripe_emulator::{ApiFault, Emulator, Options, WebhookFaults};

const TOKEN: &str = "stock-owner-token-0123456789abcdefghijkl";
const CRON_SECRET: &str = "stock-cron-secret-0123456789abcdef";
const MUG: &str = r#"{"items":[{"id":"mug","quantity":1}]}"#;

/// The Postgres database the stock tests share (made once; its tables are emptied by each test,
/// which holds [`PG_LOCK`]): one database, so PgBouncer keeps one pool for them all.
const PG_DATABASE: &str = "checkout_stock_tests";

/// Serialises the Postgres stock tests of this process (they share [`PG_DATABASE`]).
static PG_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A test's store: its URL, and for Postgres the hold on the shared database.
struct Db {
    url: String,
    _held: Option<tokio::sync::MutexGuard<'static, ()>>,
}

/// A database of the test's own for `backend`: a fresh SQLite file, or [`PG_DATABASE`] emptied.
async fn fresh_database(backend: Backend) -> Db {
    if backend == Backend::Sqlite {
        return Db { url: crate::common::sqlite_url(), _held: None };
    }
    let held = PG_LOCK.lock().await;
    let admin = crate::common::postgres_url().expect("TEST_DATABASE_URL");
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let exists = client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&PG_DATABASE]).await.unwrap();
    if exists.is_none()
        && let Err(e) = client.batch_execute(&format!("CREATE DATABASE {PG_DATABASE}")).await
    {
        // Another run created it first.
        let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
        assert!(code == "42P04" || code == "23505", "CREATE DATABASE: {e:?}");
    }
    let mut direct: reqwest::Url = admin.parse().unwrap();
    direct.set_path(&format!("/{PG_DATABASE}"));
    let (db, conn) = tokio_postgres::connect(direct.as_str(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    db.batch_execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;").await.unwrap();
    let mut url: reqwest::Url = crate::common::database_url(backend).parse().unwrap();
    url.set_path(&format!("/{PG_DATABASE}"));
    Db { url: url.to_string(), _held: Some(held) }
}

/// A shop (instance 0, which receives the webhooks) on its own database, with the owner's
/// token and the cron secret, plus `env`; the database's hold lives as long as the shop.
async fn stock_shop(backend: Backend, env: &[(&'static str, &str)]) -> (Shop, Db) {
    stock_shop_with(backend, env, crate::common::emulator_options()).await
}

/// As [`stock_shop`], with the emulator's options.
async fn stock_shop_with(backend: Backend, env: &[(&'static str, &str)], emulator: Options) -> (Shop, Db) {
    let db = fresh_database(backend).await;
    let emu = Emulator::start(emulator).await.unwrap();
    (shop_with_emulator(emu, options(db.url.clone(), env)).await, db)
}

fn options(database_url: String, env: &[(&'static str, &str)]) -> ShopOptions {
    let mut all = vec![
        ("ADMIN_TOKEN", TOKEN.to_string()),
        ("CRON_SECRET", CRON_SECRET.to_string()),
        ("RATE_LIMIT_ORDER_ACTIONS", "1000000/60".to_string()),
    ];
    all.extend(env.iter().map(|(k, v)| (*k, v.to_string())));
    ShopOptions { database_url: Some(database_url), env: all, ..Default::default() }
}

/// `POST /api/stock` as the admin page sends it.
async fn post_stock(s: &Shop, key: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let req = s.owner_post("/api/stock", TOKEN, Some(key), body.to_string());
    crate::common::split(req.send().await.unwrap()).await
}

async fn set_stock(s: &Shop, product: &str, n: Option<i64>) -> Value {
    let key = format!("k-{}", checkout::http::random_hex(8));
    let (status, _, answer) = post_stock(s, &key, &json!({ "product": product, "stock": n })).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn level(store: &Store, product: &str) -> StockLevel {
    let levels = store.stock_levels().await.unwrap();
    levels.into_iter().find(|l| l.product == product).unwrap_or_else(|| panic!("no stock row for {product}"))
}

/// Polls `check` (up to 10 s) until it holds.
async fn eventually<F: AsyncFn() -> bool>(what: &str, check: F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// POSTs a cart to one instance; status and answer.
async fn buy(http: &reqwest::Client, at: &Instance, cart: &str, ip: &str) -> (u16, Value) {
    let r = http
        .post(at.url("/api/create-checkout"))
        .header("content-type", "application/json")
        .header("origin", &at.site)
        .header("x-real-ip", ip)
        .body(cart.to_string())
        .send()
        .await
        .unwrap();
    let (status, _, json) = crate::common::split(r).await;
    (status, json)
}

fn session_of(answer: &Value) -> String {
    answer["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string()
}

/// A session's reservation id (its `metadata[reservation]`).
fn reservation_of(s: &Shop, session_id: &str) -> String {
    let session = s.emu.session(session_id).unwrap();
    session["metadata"]["reservation"].as_str().expect("the session names its reservation").to_string()
}

async fn reconcile(s: &Shop) -> Value {
    let r = s.http.get(s.url("/api/reconcile")).bearer_auth(CRON_SECRET).send().await.unwrap();
    let (status, _, json) = crate::common::split(r).await;
    assert_eq!(status, 200, "{json}");
    json
}

each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_rush_of_100_buyers_on_8_instances_takes_exactly_10_units(backend) {
        let (s, _db) = stock_shop(backend, &[]).await;
        let answer = set_stock(&s, "mug", Some(10)).await;
        assert_eq!(answer, json!({"product": "mug", "stock": 10, "reserved": 0, "available": 10, "sold": 0, "oversold": 0}));
        let mut instances = vec![Arc::new(Instance { app: s.app.clone(), addr: s.addr, site: s.site.clone(), database_url: s.database_url.clone() })];
        for _ in 1..8 {
            instances.push(Arc::new(instance(&s.emu.base_url(), &options(s.database_url.clone(), &[])).await));
        }
        // The invariant, watched from another connection for the whole rush.
        let watching = Arc::new(AtomicBool::new(true));
        let watcher = {
            let (store, watching) = (crate::common::open_store(&s.database_url), watching.clone());
            tokio::spawn(async move {
                let mut reads = 0;
                while watching.load(Ordering::Relaxed) {
                    let l = level(&store, "mug").await;
                    assert!(l.reserved <= 10 && l.reserved >= 0, "{l:?}");
                    assert_eq!(l.on_hand, Some(10), "{l:?}");
                    reads += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                reads
            })
        };
        let buyers: Vec<_> = (0..100)
            .map(|i| {
                let (http, at) = (s.http.clone(), instances[i % 8].clone());
                tokio::spawn(async move { buy(&http, &at, MUG, &format!("203.0.113.{}", i + 1)).await })
            })
            .collect();
        let mut sold = Vec::new();
        let mut refused = 0;
        for b in buyers {
            match b.await.unwrap() {
                (200, answer) => sold.push(session_of(&answer)),
                (409, answer) => {
                    assert_eq!(answer["error"]["message"], "Borrow-checked Mug is sold out", "{answer}");
                    refused += 1;
                }
                other => panic!("unexpected answer {other:?}"),
            }
        }
        watching.store(false, Ordering::Relaxed);
        assert!(watcher.await.unwrap() > 0, "the invariant was read during the rush");
        assert_eq!((sold.len(), refused), (10, 90));
        assert_eq!(s.requests_to("/v1/checkout/sessions").iter().filter(|r| r.method == "POST").count(), 10,
            "exactly 10 sessions created: a refused buyer costs Stripe nothing");
        let l = level(&s.app.store, "mug").await;
        assert_eq!((l.on_hand, l.reserved, l.sold), (Some(10), 10, 0));
        for id in &sold {
            let session = s.emu.session(id).unwrap();
            let ahead = session["expires_at"].as_i64().unwrap() - session["created"].as_i64().unwrap();
            assert!((30 * 60..=32 * 60).contains(&ahead), "expires_at 30 minutes ahead: {ahead}");
        }
        for id in &sold {
            s.pay(id, "pay").await;
        }
        for id in &sold {
            s.wait_order(id, |o| o.state == OrderState::Fulfilled).await;
        }
        let l = level(&s.app.store, "mug").await;
        assert_eq!((l.on_hand, l.reserved, l.sold, l.oversold), (Some(0), 0, 10, 0), "10 orders, 10 units sold");
        let (status, answer) = buy(&s.http, &instances[3], MUG, "198.51.100.1").await;
        assert_eq!((status, answer["error"]["message"].as_str()), (409, Some("Borrow-checked Mug is sold out")));
        // The storefront's view.
        let (_, _, products) = s.get("/api/products").await;
        let mug = products["products"].as_array().unwrap().iter().find(|p| p["id"] == "mug").unwrap().clone();
        assert_eq!(mug["available"], 0, "{mug}");
        let tshirt = products["products"].as_array().unwrap().iter().find(|p| p["id"] == "tshirt").unwrap().clone();
        assert!(tshirt.get("available").is_none(), "unlimited says nothing: {tshirt}");
    }
}

each_backend! {
    #[tokio::test]
    async fn expired_sessions_give_their_units_back_once(backend) {
        let (s, _db) = stock_shop(backend, &[]).await;
        set_stock(&s, "mug", Some(3)).await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(s.checkout(MUG).await);
        }
        let (status, answer) = s.post_json("/api/create-checkout", MUG, "203.0.113.7").await.into_status_and_body();
        assert_eq!(status, 409, "{answer}");
        // Two expire (as at their expires_at), one of them announced twice more.
        for id in &ids[..2] {
            let (status, session) = s.control(&format!("/_emulator/sessions/{id}/expire"), json!({})).await;
            assert_eq!((status, session["status"].as_str()), (200, Some("expired")), "{session}");
            s.wait_order(id, |o| o.state == OrderState::Expired).await;
        }
        let (status, again) = s.control(&format!("/_emulator/sessions/{}/expire", ids[0]), json!({})).await;
        assert_eq!(status, 400, "an expired session cannot expire again: {again}");
        let expired: Vec<String> = s
            .emu
            .events()
            .iter()
            .filter(|e| e["type"] == "checkout.session.expired" && e["data"]["object"]["id"] == ids[0].as_str())
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(expired.len(), 1);
        for _ in 0..2 {
            assert!(s.emu.resend(&expired[0]));
        }
        let event = s.emu.events().into_iter().find(|e| e["id"] == expired[0].as_str()).unwrap();
        let (status, _) = s.deliver(event.to_string().as_bytes()).await;
        assert_eq!(status, 200);
        s.deliveries_when("the resent events", |d| d.iter().filter(|d| d.event_id == expired[0]).count() >= 3).await;
        let l = level(&s.app.store, "mug").await;
        assert_eq!((l.on_hand, l.reserved), (Some(3), 1), "two released once each; the third still held: {l:?}");
        // Their units can be bought again.
        let again: Vec<String> = vec![s.checkout(MUG).await, s.checkout(MUG).await];
        let (status, _) = s.post_json("/api/create-checkout", MUG, "203.0.113.8").await.into_status_and_body();
        assert_eq!(status, 409);
        for id in again.iter().chain(&ids[2..]) {
            s.pay(id, "pay").await;
            s.wait_order(id, |o| o.state == OrderState::Fulfilled).await;
        }
        let l = level(&s.app.store, "mug").await;
        assert_eq!((l.on_hand, l.reserved, l.sold), (Some(0), 0, 3));
    }
}

each_backend! {
    #[tokio::test]
    async fn a_failed_stripe_call_or_async_payment_releases_at_once(backend) {
        let (s, _db) = stock_shop(backend, &[("STRIPE_MAX_RETRIES", "0")]).await;
        set_stock(&s, "mug", Some(1)).await;
        s.emu.set_api_fault(ApiFault { status: Some(500), count: 1, ..Default::default() });
        let (status, _) = s.post_json("/api/create-checkout", MUG, "203.0.113.9").await.into_status_and_body();
        assert_eq!(status, 502);
        let l = level(&s.app.store, "mug").await;
        assert_eq!(l.reserved, 0, "released at once: {l:?}");
        // The unit is still there: a delayed payment that fails gives it back too.
        let id = s.checkout(MUG).await;
        assert_eq!(level(&s.app.store, "mug").await.reserved, 1);
        s.pay(&id, "delayed_failure").await;
        s.wait_order(&id, |o| o.state == OrderState::PaymentFailed).await;
        let l = level(&s.app.store, "mug").await;
        assert_eq!((l.on_hand, l.reserved, l.sold), (Some(1), 0, 0), "{l:?}");
        s.checkout(MUG).await;
    }
}

each_backend! {
    #[tokio::test]
    async fn the_sweep_releases_only_what_stripe_says_expired(backend) {
        // A delayed payment's outcome comes long after the test.
        let emulator = Options { async_delay: Duration::from_secs(600), ..crate::common::emulator_options() };
        let (s, _db) = stock_shop_with(backend, &[], emulator).await;
        set_stock(&s, "mug", Some(5)).await;
        // The shop hears nothing: the sweep must ask Stripe.
        s.emu.set_webhook_faults(WebhookFaults { drop: true, ..Default::default() });
        let open = s.checkout(MUG).await;
        let expired = s.checkout(MUG).await;
        let paid = s.checkout(MUG).await;
        let pending = s.checkout(MUG).await;
        s.control(&format!("/_emulator/sessions/{expired}/expire"), json!({})).await;
        s.pay(&paid, "pay").await;
        // Paid by a delayed method whose outcome has not come yet, as far as Stripe says now.
        s.emu.set_webhook_faults(WebhookFaults { drop: true, ..Default::default() });
        s.pay(&pending, "delayed_success").await;
        // Every reservation looks lapsed to the sweep (as if their expires_at passed long ago).
        let db = crate::common::open_store(&s.database_url);
        for id in [&open, &expired, &paid, &pending] {
            let r = db.reservation(&reservation_of(&s, id)).await.unwrap().unwrap();
            assert_eq!(r.state, "held");
        }
        crate::common::sql(
            &s.database_url,
            "UPDATE stock_reservations SET expires_at = 0 WHERE session_id <> $1
             RETURNING CAST(0 AS BIGINT), CAST(NULL AS BIGINT)",
            "none",
        )
        .await;
        let before = level(&s.app.store, "mug").await;
        assert_eq!(before.reserved, 4);
        // The sweep on its own (the run's walk would find the missed events first).
        let swept = checkout::reconcile::sweep_stock(&s.app, 20).await.unwrap();
        assert_eq!((swept.looked_at, swept.released), (4, 1), "{swept:?}");
        let state = async |id: &str| db.reservation(&reservation_of(&s, id)).await.unwrap().unwrap().state;
        assert_eq!(state(&open).await, "held", "an open session is never released");
        assert_eq!(state(&expired).await, "released", "Stripe says expired: released");
        assert_eq!(state(&paid).await, "sold", "Stripe says paid: sold, never released");
        assert_eq!(state(&pending).await, "awaiting", "a payment in flight is never released");
        let l = level(&s.app.store, "mug").await;
        assert!(l.on_hand.unwrap() - l.reserved >= 0);
        // The run sweeps too, and says so; nothing is left to release but the open one.
        let report = reconcile(&s).await;
        assert_eq!(
            report["stock"],
            json!({"looked_at": 2, "released": 0}),
            "the open one is asked about again, and the one awaiting a delayed payment (days past its expiry)"
        );
        assert_eq!(state(&open).await, "held");
        assert_eq!(level(&s.app.store, "mug").await.reserved, 2, "the open and the awaiting one hold their units");
        // Settled reservations are forgotten after 30 days; held ones never.
        crate::common::sql(
            &s.database_url,
            "UPDATE stock_reservations SET updated_at = 0 WHERE session_id <> $1
             RETURNING CAST(0 AS BIGINT), CAST(NULL AS BIGINT)",
            "none",
        )
        .await;
        reconcile(&s).await;
        assert!(db.reservation(&reservation_of(&s, &paid)).await.unwrap().is_none(), "a sold one forgotten");
        assert!(db.reservation(&reservation_of(&s, &expired)).await.unwrap().is_none(), "a released one forgotten");
        assert_eq!(state(&open).await, "held");
        assert_eq!(state(&pending).await, "awaiting");
    }
}

each_backend! {
    #[tokio::test]
    async fn the_sweep_releases_a_session_stripe_does_not_have_and_is_never_blocked(backend) {
        let (s, _db) = stock_shop(backend, &[("STRIPE_MAX_RETRIES", "0")]).await;
        set_stock(&s, "mug", Some(5)).await;
        s.emu.set_webhook_faults(WebhookFaults { drop: true, ..Default::default() });
        let (a, b) = (s.checkout(MUG).await, s.checkout(MUG).await);
        let lapse = "UPDATE stock_reservations SET expires_at = 0 WHERE session_id <> $1
             RETURNING CAST(0 AS BIGINT), CAST(NULL AS BIGINT)";
        crate::common::sql(&s.database_url, lapse, "none").await;
        // Stripe fails on the next two look-ups: a sweep of one looks at one reservation, the
        // next sweep at the other (never the same one again first).
        let sessions = Some("/v1/checkout/sessions/".to_string());
        s.emu.clear_logs();
        s.emu.set_api_fault(ApiFault { status: Some(500), count: 2, path: sessions, ..Default::default() });
        for _ in 0..2 {
            let swept = checkout::reconcile::sweep_stock(&s.app, 1).await.unwrap();
            assert_eq!((swept.looked_at, swept.released), (1, 0), "{swept:?}");
        }
        let asked: Vec<String> = s.emu.requests().into_iter().map(|r| r.path).filter(|p| p.contains("/cs_")).collect();
        let mut asked_sorted = asked.clone();
        asked_sorted.sort();
        let mut want = vec![format!("/v1/checkout/sessions/{a}"), format!("/v1/checkout/sessions/{b}")];
        want.sort();
        assert_eq!(asked_sorted, want, "each reservation looked at once: {asked:?}");
        // A session Stripe does not have with this key (made with another account's or mode's
        // key): it can never be paid here, so its units come back.
        let gone = "UPDATE stock_reservations SET session_id = 'cs_test_gone' WHERE session_id = $1
             RETURNING CAST(0 AS BIGINT), CAST(NULL AS BIGINT)";
        crate::common::sql(&s.database_url, gone, &a).await;
        let swept = checkout::reconcile::sweep_stock(&s.app, 5).await.unwrap();
        assert_eq!((swept.looked_at, swept.released), (2, 1), "{swept:?}");
        let db = crate::common::open_store(&s.database_url);
        assert_eq!(db.reservation(&reservation_of(&s, &b)).await.unwrap().unwrap().state, "held", "b is still open");
        assert_eq!(level(&s.app.store, "mug").await.reserved, 1);
    }
}

each_backend! {
    #[tokio::test]
    async fn a_payment_after_its_release_is_fulfilled_by_default_and_stock_stays_at_zero(backend) {
        let (s, _db) = stock_shop(backend, &[]).await;
        oversold_race(&s, false).await;
    }
}

each_backend! {
    #[tokio::test]
    async fn a_payment_after_its_release_is_refunded_when_the_owner_says_so(backend) {
        let (s, _db) = stock_shop(backend, &[("STOCK_OVERSOLD", "refund")]).await;
        oversold_race(&s, true).await;
    }
}

each_backend! {
    #[tokio::test]
    async fn a_refund_for_want_of_stock_that_failed_is_finished_by_the_reconciliation_run(backend) {
        let (s, _db) = stock_shop(backend, &[("STOCK_OVERSOLD", "refund"), ("STRIPE_MAX_RETRIES", "0")]).await;
        set_stock(&s, "mug", Some(1)).await;
        let a = s.checkout(MUG).await;
        assert!(s.app.store.release(&reservation_of(&s, &a)).await.unwrap());
        let b = s.checkout(MUG).await;
        s.pay(&b, "pay").await;
        s.wait_order(&b, |o| o.state == OrderState::Fulfilled).await;
        // Stripe refuses every refund for now: the run stays unfinished.
        let refunds = Some("/v1/refunds".to_string());
        s.emu.set_api_fault(ApiFault { status: Some(500), count: 1000, path: refunds, ..Default::default() });
        s.pay(&a, "pay").await;
        s.wait_order(&a, |o| o.state == OrderState::Fulfilled).await;
        let run = format!("stock-oversold:{a}");
        let runs = async || {
            crate::common::sql(&s.database_url, "SELECT attempts, done_at FROM hook_runs WHERE event_id = $1", &run).await
        };
        eventually("a refund was tried", async || !s.requests_to("/v1/refunds").is_empty()).await;
        assert!(runs().await[0].1.is_none(), "unfinished while Stripe refuses");
        s.emu.reset_faults();
        // Its lease lapsed (as if two minutes passed): the run takes it over, refunds once.
        crate::common::sql(
            &s.database_url,
            "UPDATE hook_runs SET claimed_at = 0 WHERE event_id = $1 RETURNING attempts, done_at",
            &run,
        )
        .await;
        reconcile(&s).await;
        let done = runs().await;
        assert!(done[0].1.is_some(), "finished by the run: {done:?}");
        let made = || {
            let requests = s.emu.requests().into_iter();
            requests.filter(|r| r.method == "POST" && r.path == "/v1/refunds" && r.status == 200 && !r.idempotent_replayed).count()
        };
        assert_eq!(made(), 1, "one refund made");
        s.wait_order(&a, |o| o.money.amount_refunded == o.money.amount && o.money.amount > 0).await;
        reconcile(&s).await;
        assert_eq!(made(), 1, "a later run refunds nothing more");
    }
}

each_backend! {
    #[tokio::test]
    async fn a_payment_after_its_release_with_its_units_still_free_is_a_plain_sale(backend) {
        let (s, _db) = stock_shop(backend, &[("STOCK_OVERSOLD", "refund")]).await;
        set_stock(&s, "mug", Some(2)).await;
        let a = s.checkout(MUG).await;
        assert!(s.app.store.release(&reservation_of(&s, &a)).await.unwrap());
        s.pay(&a, "pay").await;
        s.wait_order(&a, |o| o.state == OrderState::Fulfilled).await;
        let l = level(&s.app.store, "mug").await;
        assert_eq!((l.on_hand, l.reserved, l.sold, l.oversold), (Some(1), 0, 1, 0), "{l:?}");
        let r = s.app.store.reservation(&reservation_of(&s, &a)).await.unwrap().unwrap();
        assert_eq!(r.state, "sold");
        assert!(s.requests_to("/v1/refunds").is_empty(), "nothing refunded: the unit was there");
        let runs = crate::common::sql(
            &s.database_url,
            "SELECT attempts, done_at FROM hook_runs WHERE event_id = $1",
            &format!("stock-oversold:{a}"),
        )
        .await;
        assert!(runs.is_empty(), "on_oversold does not run");
    }
}

/// One unit: A's reservation is released while A is still being paid (the sweep raced the
/// payment), B takes the unit, then A's payment completes.
async fn oversold_race(s: &Shop, refund: bool) {
    set_stock(s, "mug", Some(1)).await;
    let a = s.checkout(MUG).await;
    assert!(s.app.store.release(&reservation_of(s, &a)).await.unwrap(), "the race: released while open");
    assert!(!s.app.store.release(&reservation_of(s, &a)).await.unwrap(), "a release happens once");
    let b = s.checkout(MUG).await;
    s.pay(&b, "pay").await;
    s.wait_order(&b, |o| o.state == OrderState::Fulfilled).await;
    s.pay(&a, "pay").await;
    let order = s.wait_order(&a, |o| o.state == OrderState::Fulfilled).await;
    let run = format!("stock-oversold:{a}");
    eventually("the on_oversold run finished", async || {
        crate::common::sql(&s.database_url, "SELECT attempts, done_at FROM hook_runs WHERE event_id = $1", &run)
            .await
            .first()
            .is_some_and(|(_, done)| done.is_some())
    })
    .await;
    let runs =
        crate::common::sql(&s.database_url, "SELECT attempts, done_at FROM hook_runs WHERE event_id = $1", &run).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].0, 1, "on_oversold ran once");
    let l = level(&s.app.store, "mug").await;
    assert_eq!(l.on_hand, Some(0), "stock never below zero: {l:?}");
    assert_eq!(l.oversold, 1, "the unit that was not there is counted: {l:?}");
    let refunds: Vec<_> = s.requests_to("/v1/refunds").into_iter().filter(|r| r.method == "POST").collect();
    if refund {
        assert_eq!(refunds.len(), 1, "refunded once");
        assert!(refunds[0].params.contains(&("payment_intent".to_string(), order.payment_intent.clone().unwrap())));
        assert_eq!(l.sold, 1, "only B's unit was sold: {l:?}");
        s.wait_order(&a, |o| o.money.amount_refunded == o.money.amount && o.money.amount > 0).await;
    } else {
        assert!(refunds.is_empty());
        assert_eq!(l.sold, 2, "{l:?}");
    }
    // A redelivery of A's completion changes nothing.
    let completed = s
        .emu
        .events()
        .into_iter()
        .find(|e| e["type"] == "checkout.session.completed" && e["data"]["object"]["id"] == a.as_str())
        .unwrap();
    let (status, _) = s.deliver(completed.to_string().as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(level(&s.app.store, "mug").await, l);
}

#[tokio::test]
async fn the_stock_route_guards_like_the_order_actions_and_replays_by_key() {
    let (s, _db) = stock_shop(Backend::Sqlite, &[]).await;
    let body = json!({"product": "mug", "stock": 4});
    let send = |token: Option<&'static str>, origin: &str, ctype: &str, key: Option<&str>, body: String| {
        let mut req =
            s.http.post(s.url("/api/stock")).header("origin", origin).header("content-type", ctype).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(send(None, &s.site, "application/json", Some("a"), body.to_string()).await, 401);
    assert_eq!(
        send(Some("wrong-token-0123456789abcdefghijklmnop"), &s.site, "application/json", Some("a"), body.to_string())
            .await,
        401
    );
    assert_eq!(send(Some(TOKEN), "https://evil.example", "application/json", Some("a"), body.to_string()).await, 403);
    assert_eq!(send(Some(TOKEN), &s.site, "text/plain", Some("a"), body.to_string()).await, 415);
    assert_eq!(send(Some(TOKEN), &s.site, "application/json", None, body.to_string()).await, 400);
    for bad in [
        json!({"product": "mug"}),
        json!({"product": "mug", "stock": -1}),
        json!({"product": "mug", "stock": 1.5}),
        json!({"product": "mug", "stock": "3"}),
        json!({"product": "mug", "stock": 3, "price": 1}),
    ] {
        let (status, _, answer) = post_stock(&s, "k-bad", &bad).await;
        assert_eq!(status, 400, "{bad}: {answer}");
    }
    let (status, _, _) = post_stock(&s, "k-unknown", &json!({"product": "nope", "stock": 1})).await;
    assert_eq!(status, 404);
    let (status, _, first) = post_stock(&s, "k-1", &body).await;
    assert_eq!((status, first["available"].as_i64()), (200, Some(4)));
    set_stock(&s, "mug", Some(7)).await;
    let (status, headers, replay) = post_stock(&s, "k-1", &body).await;
    assert_eq!((status, &replay), (200, &first), "the first answer again");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(level(&s.app.store, "mug").await.on_hand, Some(7), "a replay does not act again");
    let (status, _, _) = post_stock(&s, "k-1", &json!({"product": "mug", "stock": 5})).await;
    assert_eq!(status, 409, "another body under the same key");
    let unlimited = set_stock(&s, "mug", None).await;
    assert_eq!((unlimited["stock"].clone(), unlimited["available"].clone()), (Value::Null, Value::Null));
    // Availability as shoppers see it: exact when few, else "in_stock".
    for (n, shown) in [(3, json!(3)), (5, json!(5)), (6, json!("in_stock")), (0, json!(0))] {
        set_stock(&s, "mug", Some(n)).await;
        let (_, _, products) = s.get("/api/products").await;
        let mug = products["products"].as_array().unwrap().iter().find(|p| p["id"] == "mug").unwrap().clone();
        assert_eq!(mug["available"], shown, "{n} units");
    }
    let (status, answer) = s.post_json("/api/create-checkout", MUG, "203.0.113.5").await.into_status_and_body();
    assert_eq!((status, answer["error"]["message"].as_str()), (409, Some("Borrow-checked Mug is sold out")));
    set_stock(&s, "mug", Some(1)).await;
    let two = r#"{"items":[{"id":"mug","quantity":2}]}"#;
    let (status, answer) = s.post_json("/api/create-checkout", two, "203.0.113.5").await.into_status_and_body();
    assert_eq!((status, answer["error"]["message"].as_str()), (409, Some("only 1 left of Borrow-checked Mug")));
    let with_code = r#"{"items":[{"id":"mug","quantity":2}],"code":"SAVE10"}"#;
    let (status, _) = s.post_json("/api/create-checkout", with_code, "203.0.113.5").await.into_status_and_body();
    assert_eq!(status, 409);
    assert!(s.emu.requests().is_empty(), "nothing sent to Stripe, not even the code's look-up");
    // A failure after the reservation (too many codes tried) gives the units back at once.
    let limited = [("RATE_LIMIT_APPLY_DISCOUNT", "1/60")];
    let (t, _db) = stock_shop(Backend::Sqlite, &limited).await;
    set_stock(&t, "mug", Some(1)).await;
    crate::common::within_one_window(60, 10).await;
    for (code, want) in [("SAVE10", 200), ("FIVEOFF", 429)] {
        let cart = format!(r#"{{"items":[{{"id":"mug","quantity":1}}],"code":"{code}"}}"#);
        let (status, answer) = t.post_json("/api/create-checkout", &cart, "203.0.113.6").await.into_status_and_body();
        assert_eq!(status, want, "{code}: {answer}");
        if status == 200 {
            t.control(&format!("/_emulator/sessions/{}/expire", session_of(&answer)), json!({})).await;
            eventually("the expired session's unit back", async || level(&t.app.store, "mug").await.reserved == 0)
                .await;
        }
    }
    assert_eq!(level(&t.app.store, "mug").await.reserved, 0, "the refused checkout's unit went back");
}

#[tokio::test]
async fn the_stock_route_is_off_without_a_token_and_counts_against_the_owners_limit() {
    let off = crate::common::shop(ShopOptions::default()).await;
    const MUG_ONE: &str = r#"{"product":"mug","stock":1}"#;
    let r = off.owner_post("/api/stock", TOKEN, Some("k"), MUG_ONE.into()).send().await.unwrap();
    assert_eq!(r.status(), 404, "ADMIN_TOKEN unset: no such route");
    // RATE_LIMIT_ORDER_ACTIONS counts before the token is checked.
    let (s, _db) = stock_shop(Backend::Sqlite, &[("RATE_LIMIT_ORDER_ACTIONS", "2/60")]).await;
    crate::common::within_one_window(60, 10).await;
    let mut statuses = Vec::new();
    for i in 0..3 {
        let r = s
            .owner_post("/api/stock", "wrong-token-0123456789abcdefghijklmnop", Some(&format!("k{i}")), MUG_ONE.into())
            .header("x-real-ip", "198.51.100.77")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, vec![401, 401, 429]);
}

#[tokio::test]
async fn the_emulator_checks_expires_at_and_expires_by_its_control_route() {
    let (s, _db) = stock_shop(Backend::Sqlite, &[]).await;
    let now = checkout::clock::now();
    let create = async |expires_at: i64| {
        let form = [
            ("mode", "payment".to_string()),
            ("success_url", "http://localhost/ok".to_string()),
            ("line_items[0][price_data][currency]", "usd".to_string()),
            ("line_items[0][price_data][unit_amount]", "100".to_string()),
            ("line_items[0][price_data][product_data][name]", "x".to_string()),
            ("line_items[0][quantity]", "1".to_string()),
            ("expires_at", expires_at.to_string()),
        ];
        let r = s
            .http
            .post(format!("{}/v1/checkout/sessions", s.emu.base_url()))
            .bearer_auth(crate::common::SECRET_KEY)
            .form(&form)
            .send()
            .await
            .unwrap();
        let (status, _, json) = crate::common::split(r).await;
        (status, json)
    };
    for bad in [now + 29 * 60, now + 24 * 3600 + 120] {
        let (status, e) = create(bad).await;
        assert_eq!(status, 400, "{e}");
        assert_eq!(
            (e["error"]["type"].as_str(), e["error"]["param"].as_str()),
            (Some("invalid_request_error"), Some("expires_at"))
        );
    }
    let (status, session) = create(now + 3600).await;
    assert_eq!((status, session["expires_at"].as_i64()), (200, Some(now + 3600)), "{session}");
    let id = session["id"].as_str().unwrap();
    let (status, _) = s.control("/_emulator/sessions/cs_test_nope/expire", json!({})).await;
    assert_eq!(status, 404);
    let r = s
        .http
        .post(format!("{}/_emulator/sessions/{id}/expire", s.emu.base_url()))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_ne!(r.status().as_u16(), 200, "control routes take JSON only");
    let (status, expired) = s.control(&format!("/_emulator/sessions/{id}/expire"), json!({})).await;
    assert_eq!((status, expired["status"].as_str()), (200, Some("expired")));
    assert!(s.emu.events().iter().any(|e| e["type"] == "checkout.session.expired" && e["data"]["object"]["id"] == id));
}

/// `(status, body)` of an answer.
trait StatusAndBody {
    fn into_status_and_body(self) -> (u16, Value);
}

impl StatusAndBody for (u16, reqwest::header::HeaderMap, Value) {
    fn into_status_and_body(self) -> (u16, Value) {
        (self.0, self.2)
    }
}

each_backend! {
    #[tokio::test]
    async fn a_catalog_stock_seeds_a_product_only_once(backend) {
        let db = fresh_database(backend).await;
        let store = crate::common::open_store(&db.url);
        let later = checkout::clock::now() + 1800;
        let mug = |n: i64| vec![("mug".to_string(), n)];
        store.reserve("rsv_seed1", &mug(1), &mug(3), later).await.unwrap().unwrap();
        let l = level(&store, "mug").await;
        assert_eq!((l.on_hand, l.reserved), (Some(3), 1), "seeded from the catalog: {l:?}");
        // A later seed (a redeploy with another number) changes nothing: the store rules.
        store.reserve("rsv_seed2", &mug(2), &mug(10), later).await.unwrap().unwrap();
        let l = level(&store, "mug").await;
        assert_eq!((l.on_hand, l.reserved), (Some(3), 3), "{l:?}");
        let refused = store.reserve("rsv_seed3", &mug(1), &mug(10), later).await.unwrap();
        assert_eq!(refused, Err(checkout::store::SoldOut { product: "mug".into(), available: 0 }));
        assert!(store.reservation("rsv_seed3").await.unwrap().is_none(), "nothing recorded for a refused cart");
        // A cart is all or nothing: the sticker has units, the mug none, so neither is taken.
        let cart = vec![("stickers".to_string(), 2), ("mug".to_string(), 1)];
        let refused = store.reserve("rsv_seed4", &cart, &[("stickers".to_string(), 5)], later).await.unwrap();
        assert!(refused.is_err());
        let stickers = store.stock_levels().await.unwrap().into_iter().find(|l| l.product == "stickers");
        assert!(stickers.is_none_or(|l| l.reserved == 0), "the sticker's units went back with the refusal");
        assert!(store.release("rsv_seed1").await.unwrap());
        assert!(!store.release("rsv_seed1").await.unwrap(), "once");
        assert_eq!(level(&store, "mug").await.reserved, 2);
    }
}
