//! The order store's contract, run against SQLite always and Postgres when
//! `TEST_DATABASE_URL` is set: exactly-once under concurrency, states that
//! only move forward, duplicate events, shared counters, and an outage.

use crate::common::{Backend, database_url, open_store};
use checkout::order::{OrderItem, OrderState, OrderTotals, OrderUpdate};
use checkout::store::{Applied, EventRef, RunKey, Store};
use checkout::stripe::types::{Address, ShippingDetails};
use std::sync::Arc;

fn update(session_id: &str, state: OrderState) -> OrderUpdate {
    OrderUpdate {
        session_id: session_id.to_string(),
        state,
        payment_status: if state == OrderState::Fulfilled { "paid" } else { "unpaid" }.into(),
        amount_total: Some(4200),
        currency: Some("usd".into()),
        items: vec![mugs()],
        livemode: false,
        payment_intent: None,
        totals: Some(OrderTotals {
            amount_subtotal: 4200,
            amount_discount: 0,
            amount_shipping: 0,
            amount_tax: 0,
            amount_total: 4200,
            tax_included: false,
            shipping_rate: None,
        }),
        shipping: None,
        customer_email: Some("shopper@example.com".into()),
        stock: None,
    }
}

fn mugs() -> OrderItem {
    OrderItem { name: "Mug".into(), quantity: 3, amount_subtotal: Some(4200) }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", checkout::http::random_hex(10))
}

each_backend! {
    #[tokio::test]
    async fn records_once_and_only_moves_forward(backend) {
        let store = open_store(&database_url(backend));
        let id = unique("cs_test");
        let ev1 = unique("evt");
        let r = store
            .apply(
                &update(&id, OrderState::AwaitingPayment),
                Some(EventRef { id: &ev1, kind: "checkout.session.completed", via: checkout::store::Via::Webhook, source: "test" }),
            )
            .await
            .unwrap();
        assert_eq!(r, Applied::Recorded(false), "{backend:?}");
        let r = store
            .apply(
                &update(&id, OrderState::AwaitingPayment),
                Some(EventRef { id: &ev1, kind: "checkout.session.completed", via: checkout::store::Via::Webhook, source: "test" }),
            )
            .await
            .unwrap();
        assert_eq!(r, Applied::DuplicateEvent, "{backend:?}");
        let r = store.apply(&update(&id, OrderState::Fulfilled), None).await.unwrap();
        assert_eq!(r, Applied::Recorded(true));
        let r = store.apply(&update(&id, OrderState::Fulfilled), None).await.unwrap();
        assert_eq!(r, Applied::Recorded(false));
        // A late "awaiting" or "failed" never moves a fulfilled order back.
        store.apply(&update(&id, OrderState::AwaitingPayment), None).await.unwrap();
        store.apply(&update(&id, OrderState::PaymentFailed), None).await.unwrap();
        let o = store.order(&id).await.unwrap().unwrap();
        assert_eq!((o.state, o.fulfillments), (OrderState::Fulfilled, 1), "{backend:?}");
        assert_eq!(o.items, vec![mugs()]);
        assert_eq!(o.totals, update(&id, OrderState::Fulfilled).totals, "{backend:?}: Stripe's totals kept");
        assert!(o.number.as_deref().is_some_and(|n| n.starts_with("RR-") && n.len() == 10), "{o:?}");
        assert_eq!(o.amount_total, Some(4200));
        assert_eq!(o.customer_email.as_deref(), Some("shopper@example.com"), "{backend:?}: the shopper's email kept");
        assert!(store.event_seen(&ev1).await.unwrap());
        assert!(!store.event_seen(&unique("evt")).await.unwrap());
        assert!(store.order(&unique("cs_test")).await.unwrap().is_none());
        // Failed stays failed against a late "awaiting".
        let f = unique("cs_test");
        store.apply(&update(&f, OrderState::PaymentFailed), None).await.unwrap();
        store.apply(&update(&f, OrderState::AwaitingPayment), None).await.unwrap();
        assert_eq!(store.order(&f).await.unwrap().unwrap().state, OrderState::PaymentFailed);
    }
}

each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hundred_concurrent_fulfilments_record_exactly_one(backend) {
        let url = database_url(backend);
        // Ten separate handles (connections), like ten function instances.
        let stores: Vec<Arc<Store>> = (0..10).map(|_| Arc::new(open_store(&url))).collect();
        let id = unique("cs_test");
        let events = [unique("evt"), unique("evt")];
        let mut tasks = Vec::new();
        for i in 0..100 {
            let store = stores[i % 10].clone();
            let (id, ev) = (id.clone(), events[i % 2].clone());
            tasks.push(tokio::spawn(async move {
                let kind =
                    if i % 2 == 0 { "checkout.session.completed" } else { "checkout.session.async_payment_succeeded" };
                store.apply(&update(&id, OrderState::Fulfilled), Some(EventRef { id: &ev, kind, via: checkout::store::Via::Webhook, source: "test" })).await.unwrap()
            }));
        }
        let mut newly = 0;
        let mut dups = 0;
        for t in tasks {
            match t.await.unwrap() {
                Applied::Recorded(true) => newly += 1,
                Applied::DuplicateEvent => dups += 1,
                Applied::Recorded(false) => {}
            }
        }
        assert_eq!(newly, 1, "{backend:?}: exactly one fulfilment");
        assert_eq!(dups, 98, "{backend:?}: each event processed once");
        assert_eq!(stores[0].order(&id).await.unwrap().unwrap().fulfillments, 1);
    }
}

each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hundred_concurrent_fulfilments_get_unique_order_numbers(backend) {
        let url = database_url(backend);
        let stores: Vec<Arc<Store>> = (0..10).map(|_| Arc::new(open_store(&url))).collect();
        let ids: Vec<String> = (0..100).map(|_| unique("cs_test")).collect();
        let mut tasks = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let (store, id) = (stores[i % 10].clone(), id.clone());
            tasks.push(tokio::spawn(async move { store.apply(&update(&id, OrderState::Fulfilled), None).await.unwrap() }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Applied::Recorded(true));
        }
        let mut numbers = Vec::new();
        for id in &ids {
            let order = stores[0].order(id).await.unwrap().unwrap();
            numbers.push(order.number.expect("every fulfilled order has a number"));
        }
        numbers.sort();
        numbers.dedup();
        assert_eq!(numbers.len(), 100, "{backend:?}: 100 distinct order numbers");
        // A number is assigned once: fulfilling again keeps it.
        let before = stores[1].order(&ids[0]).await.unwrap().unwrap().number;
        stores[2].apply(&update(&ids[0], OrderState::Fulfilled), None).await.unwrap();
        assert_eq!(stores[3].order(&ids[0]).await.unwrap().unwrap().number, before);
    }
}

each_backend! {
    #[tokio::test]
    async fn shipping_details_are_kept_and_orders_page_newest_first(backend) {
        let store = open_store(&database_url(backend));
        let ids: Vec<String> = (0..5).map(|_| unique("cs_test")).collect();
        for id in &ids {
            let mut order = update(id, OrderState::Fulfilled);
            order.shipping = Some(ShippingDetails {
                name: "Ada Lovelace".into(),
                address: Address { country: Some("GB".into()), city: Some("London".into()), ..Address::default() },
            });
            store.apply(&order, None).await.unwrap();
        }
        let o = store.order(&ids[0]).await.unwrap().unwrap();
        assert_eq!(o.shipping.as_ref().and_then(|s| s.address.country.as_deref()), Some("GB"), "{backend:?}");
        // Walk the whole table a page of 2 at a time: every order once, newest first (ties in
        // the creation second fall back to the session id).
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.orders_page(after.as_deref(), 2, None).await.unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 2);
            seen.extend(page.iter().map(|o| (o.created_at, o.session_id.clone())));
            after = page.last().map(|o| o.session_id.clone());
        }
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, sorted, "{backend:?}: newest first, no repeats");
        for id in &ids {
            assert_eq!(seen.iter().filter(|(_, s)| s == id).count(), 1, "{backend:?}: {id} listed once");
        }
    }
}

each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_lapsed_fulfilment_run_is_taken_over_once(backend) {
        let url = database_url(backend);
        let stores: Vec<Arc<Store>> = (0..5).map(|_| Arc::new(open_store(&url))).collect();
        let store = &stores[0];
        let now = checkout::clock::now();
        // Only a fulfilment claims a run.
        let waiting = unique("cs_test");
        store.apply(&update(&waiting, OrderState::AwaitingPayment), None).await.unwrap();
        assert!(
            store.reclaim_run(RunKey::Fulfillment(&waiting), now + 3600, 120).await.unwrap().is_none(),
            "{backend:?}"
        );
        let id = unique("cs_test");
        let r = store.apply(&update(&id, OrderState::Fulfilled), None).await.unwrap();
        assert_eq!(r, Applied::Recorded(true));
        // The fulfilling call's claim is not taken over within its lease...
        assert!(store.reclaim_run(RunKey::Fulfillment(&id), now + 60, 120).await.unwrap().is_none(), "{backend:?}");
        // ...and after it, by exactly one of many concurrent callers.
        let later = now + 600;
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (store, id) = (stores[i % 5].clone(), id.clone());
                tokio::spawn(
                    async move { store.reclaim_run(RunKey::Fulfillment(&id), later, 120).await.unwrap().is_some() },
                )
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            won += t.await.unwrap() as usize;
        }
        assert_eq!(won, 1, "{backend:?}");
        // A finished run is never run again.
        store.finish_run(RunKey::Fulfillment(&id)).await.unwrap();
        assert!(store.reclaim_run(RunKey::Fulfillment(&id), now + 86_400, 120).await.unwrap().is_none(), "{backend:?}");
        assert_eq!(store.order(&id).await.unwrap().unwrap().fulfillments, 1);
    }
}

each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn shared_counter_counts_every_hit(backend) {
        let url = database_url(backend);
        let stores: Vec<Arc<Store>> = (0..5).map(|_| Arc::new(open_store(&url))).collect();
        let bucket = unique("test");
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let s = stores[i % 5].clone();
                let b = bucket.clone();
                tokio::spawn(async move { s.hit(&b, 1_000).await.unwrap() })
            })
            .collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap());
        }
        seen.sort();
        assert_eq!(seen, (1..=50).collect::<Vec<i64>>(), "{backend:?}");
        assert_eq!(stores[0].hit(&bucket, 2_000).await.unwrap(), 1, "a new window starts at 1");
    }
}

/// A TCP proxy in front of Postgres that a test can take down and bring back.
struct Switch {
    addr: std::net::SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
}

async fn switch_to(target: std::net::SocketAddr) -> Switch {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (up, rx) = tokio::sync::watch::channel(true);
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else { return };
            let mut rx = rx.clone();
            if !*rx.borrow() {
                continue; // down: drop the connection at once
            }
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else { return };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = rx.wait_for(|up| !*up) => {} // taken down: cut live connections
                }
            });
        }
    });
    Switch { addr, up }
}

#[tokio::test]
#[cfg_attr(not(has_postgres), ignore = "needs Postgres: set TEST_DATABASE_URL (README, Tests)")]
async fn store_down_answers_5xx_and_a_later_retry_succeeds() {
    let pg = crate::common::postgres_url().expect("TEST_DATABASE_URL");
    let url: reqwest::Url = pg.parse().unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432)).parse().unwrap();
    let switch = switch_to(target).await;
    let mut via = url.clone();
    via.set_port(Some(switch.addr.port())).unwrap();
    let shop = crate::common::shop(crate::common::ShopOptions {
        database_url: Some(via.to_string()),
        no_webhooks: true,
        ..Default::default()
    })
    .await;
    let id = shop.checkout(r#"{"items":[{"id":"mug","quantity":1}]}"#).await;
    shop.pay(&id, "pay").await;
    let event = shop.emu.events().into_iter().find(|e| e["type"] == "checkout.session.completed").unwrap();
    let body = serde_json::to_vec(&event).unwrap();
    let now = checkout::clock::now();
    let post = |body: Vec<u8>| {
        let header = checkout::signature::sign(crate::common::WEBHOOK_SECRET.as_bytes(), now, &body);
        shop.http.post(shop.url("/api/webhook")).header("stripe-signature", header).body(body).send()
    };

    switch.up.send(true).unwrap();
    switch.up.send(false).unwrap();
    let r = post(body.clone()).await.unwrap();
    assert_eq!(r.status(), 503, "store unreachable ⇒ 503 so Stripe retries");
    assert_eq!(r.headers()["retry-after"], "5", "503 says when to come back");
    let text = r.text().await.unwrap();
    assert!(!text.contains("postgres") && text.contains("reference"), "{text}");

    switch.up.send(true).unwrap();
    let r = post(body).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let direct = open_store(&pg);
    let o = direct.order(&id).await.unwrap().unwrap();
    assert_eq!((o.state, o.fulfillments), (OrderState::Fulfilled, 1));
    let _ = Backend::Postgres;
}

#[tokio::test]
async fn sqlx_style_sqlite_urls_open_the_same_file() {
    let url = crate::common::sqlite_url();
    let path = url.strip_prefix("sqlite://").unwrap();
    let short = format!("sqlite:{path}");
    let config = checkout::Config::from_lookup(|k| match k {
        "STRIPE_SECRET_KEY" => Some("sk_test_sqlx_form_4242".into()),
        "DATABASE_URL" => Some(short.clone()),
        _ => None,
    })
    .expect("sqlite:path is a valid DATABASE_URL");
    assert!(matches!(&config.database, checkout::config::Database::Sqlite(p) if p == path), "{:?}", config.database);
    let id = unique("cs_test");
    open_store(&short).apply(&update(&id, OrderState::Fulfilled), None).await.unwrap();
    let order = open_store(&url).order(&id).await.unwrap();
    assert_eq!(order.map(|o| o.fulfillments), Some(1), "sqlite:path and sqlite://path are one file");
    assert!(checkout::config::Database::parse("sqlite:").is_err(), "an empty path is no database");
}

/// Many instances whose first request arrives at once on a fresh SQLite file (the first
/// requests after `vercel dev` starts, or several instances in one process): each one's
/// set-up (WAL switch, schema) may meet SQLITE_BUSY without SQLite's busy handler waiting,
/// and must still succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn instances_opening_a_fresh_sqlite_file_at_once_all_succeed() {
    for _ in 0..10 {
        let url = crate::common::sqlite_url();
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let store = open_store(&url);
                tokio::spawn(async move { store.apply(&update(&unique("cs_test"), OrderState::Fulfilled), None).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), Applied::Recorded(true));
        }
    }
}
