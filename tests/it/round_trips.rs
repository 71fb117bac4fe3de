//! Round trips to Postgres per operation, counted on the wire (tests/it/common/wire.rs). On
//! Vercel the database is a network hop away (Neon: TLS, about a millisecond in the same
//! region), so each round trip is time every request waits and the instance stays billed
//! for. A statement is one round trip (parameters sent with their types, no separate
//! prepare), and a new connection sets up its schema in one.

use crate::common::wire::{self, Wire};
use crate::common::{Shop, ShopOptions};
use checkout::order::OrderState;
use std::time::Duration;

/// A shop whose store reaches Postgres through a counting proxy.
async fn shop_on_wire() -> (Shop, Wire) {
    let url = crate::common::postgres_url().expect("needs TEST_DATABASE_URL");
    let wire = Wire::start(wire::upstream(&url).await, Duration::ZERO).await;
    let shop = crate::common::shop(ShopOptions {
        database_url: Some(wire.url(&url)),
        no_webhooks: true,
        ..Default::default()
    })
    .await;
    (shop, wire)
}

/// Delivers the newest event of `kind` to the webhook, signed; its status and answer.
async fn deliver(s: &Shop, kind: &str) -> (u16, serde_json::Value) {
    let event = s.emu.events().into_iter().rev().find(|e| e["type"] == kind).expect("the emulator made the event");
    s.deliver(&serde_json::to_vec(&event).unwrap()).await
}

/// A paid session whose `checkout.session.completed` has not been delivered yet.
async fn paid_session(s: &Shop) -> String {
    let id = s.checkout(r#"{"items":[{"id":"mug","quantity":2}]}"#).await;
    s.emu.pay(&id, "pay").unwrap();
    id
}

#[tokio::test]
#[cfg_attr(not(has_postgres), ignore = "needs Postgres: set TEST_DATABASE_URL (README, Tests)")]
async fn a_new_connection_sets_up_the_schema_in_one_round_trip() {
    let (s, wire) = shop_on_wire().await;
    // The first store operation of an instance: connect (startup and authentication: one
    // round trip with trust auth), the schema, then the statement itself.
    assert!(s.app.store.order("cs_test_round_trip_unknown").await.unwrap().is_none());
    let trips = wire.round_trips();
    assert!(
        trips <= 3,
        "connect + schema + one read took {trips} round trips (20 with a prepare per statement and a round trip per schema statement)"
    );
}

#[tokio::test]
#[cfg_attr(not(has_postgres), ignore = "needs Postgres: set TEST_DATABASE_URL (README, Tests)")]
async fn fulfilling_an_order_costs_one_round_trip_per_statement() {
    let (s, wire) = shop_on_wire().await;
    let warm = paid_session(&s).await; // opens the pool's connection
    assert_eq!(deliver(&s, "checkout.session.completed").await.0, 200);
    s.wait_order(&warm, |o| o.state == OrderState::Fulfilled).await;

    let id = paid_session(&s).await;
    wire.reset();
    let (status, json) = deliver(&s, "checkout.session.completed").await;
    assert_eq!((status, json["result"].as_str()), (200, Some("processed")), "{json}");
    let trips = wire.round_trips();
    let order = s.app.store.order(&id).await.unwrap().expect("recorded");
    assert_eq!(order.state, OrderState::Fulfilled);
    // Is the event new (1); the transaction: BEGIN, the event, the order, the money, the
    // fulfilment, the details, the hook run, the order number, COMMIT (9); the order read for
    // the hook (1); the hook run finished (1). A prepare per statement made it 24. Its stock
    // reservation adds 3: its row read before the transaction, and in it the guard that moves
    // it to sold and one statement per product.
    assert!(trips <= 15, "one fulfilment took {trips} round trips: {:#?}", wire.turns());

    // A redelivery: is the event new, is its hook run to take over, is it still running (8
    // with a prepare per statement).
    wire.reset();
    let (status, json) = deliver(&s, "checkout.session.completed").await;
    assert_eq!((status, json["result"].as_str()), (200, Some("duplicate")), "{json}");
    assert!(wire.round_trips() <= 3, "a duplicate took {} round trips: {:#?}", wire.round_trips(), wire.turns());
}

#[tokio::test]
#[cfg_attr(not(has_postgres), ignore = "needs Postgres: set TEST_DATABASE_URL (README, Tests)")]
async fn a_refund_event_costs_one_round_trip_per_statement() {
    let (s, wire) = shop_on_wire().await;
    let id = paid_session(&s).await;
    assert_eq!(deliver(&s, "checkout.session.completed").await.0, 200);
    s.wait_order(&id, |o| o.state == OrderState::Fulfilled).await;
    s.emu.refund(&id, Some(100)).unwrap();

    wire.reset();
    let (status, json) = deliver(&s, "charge.refunded").await;
    assert_eq!((status, json["result"].as_str()), (200, Some("processed")), "{json}");
    let trips = wire.round_trips();
    // Is the event new and the order for the PaymentIntent (1, one statement); the
    // transaction: BEGIN, the event, the lock, the refunds, disputes and money read (one
    // statement), the refund's row, the money, the history, the hook run, COMMIT (9); the order
    // read for the hook, the hook run finished (2). A prepare per statement made it 23.
    assert!(trips <= 12, "one refund event took {trips} round trips: {:#?}", wire.turns());
}

#[tokio::test]
#[cfg_attr(not(has_postgres), ignore = "needs Postgres: set TEST_DATABASE_URL (README, Tests)")]
async fn the_shared_rate_limit_counter_is_one_round_trip() {
    let (s, wire) = shop_on_wire().await;
    crate::common::within_one_window(60, 10).await; // both checkouts count in one window
    s.checkout(r#"{"items":[{"id":"mug","quantity":1}]}"#).await; // connects, prunes old windows
    wire.reset();
    s.checkout(r#"{"items":[{"id":"mug","quantity":1}]}"#).await;
    // The counter is one round trip (2 with a prepare); the stock reservation is its own
    // transaction (BEGIN, one conditional upsert per product, the reservation, COMMIT), then the
    // session's id once Stripe answered.
    let turns = wire.turns();
    assert_eq!(turns.iter().filter(|t| t.contains("rate_limits")).count(), 1, "{turns:#?}");
    assert_eq!(wire.round_trips(), 6, "a checkout of one product: {turns:#?}");
}

#[tokio::test]
#[cfg_attr(not(has_postgres), ignore = "needs Postgres: set TEST_DATABASE_URL (README, Tests)")]
async fn a_page_of_the_order_list_is_one_statement_for_orders_and_one_for_their_histories() {
    let token = "round-trips-admin-token-0123456789abcdef";
    let url = crate::common::postgres_url().expect("needs TEST_DATABASE_URL");
    let wire = Wire::start(wire::upstream(&url).await, Duration::ZERO).await;
    let s = crate::common::shop(ShopOptions {
        database_url: Some(wire.url(&url)),
        env: vec![("ADMIN_TOKEN", token.to_string()), ("RATE_LIMIT_ORDERS", "1000000/60".to_string())],
        ..Default::default()
    })
    .await;
    // Orders of which some have history (a refund), so the page has histories to read.
    for i in 0..3 {
        let id = s.checkout(r#"{"items":[{"id":"mug","quantity":1}]}"#).await;
        s.emu.pay(&id, "pay").unwrap();
        s.wait_order(&id, |o| o.state == OrderState::Fulfilled).await;
        if i < 2 {
            s.emu.refund(&id, Some(100)).unwrap();
            s.wait_order(&id, |o| o.money.amount_refunded == 100).await;
        }
    }
    let list = |limit: u32| {
        s.http
            .get(format!("{}/api/orders?limit={limit}", s.site))
            .bearer_auth(token)
            .header("x-real-ip", "203.0.113.77")
            .send()
    };
    // One rate-limit window for the whole count (a window's first hit also prunes old ones).
    crate::common::within_one_window(60, 15).await;
    assert_eq!(list(1).await.unwrap().status(), 200); // warm: the pool's connection is open
    for limit in [1, 3] {
        wire.reset();
        let page: serde_json::Value = serde_json::from_str(&list(limit).await.unwrap().text().await.unwrap()).unwrap();
        let trips = wire.round_trips();
        assert_eq!(page["data"].as_array().unwrap().len(), limit as usize);
        // The shared rate-limit counter (1), the page (1), the page's histories (1), and on the
        // first page the reconciliation's failed events (1): the same for a page of one as for
        // a page of three (one history query per order made it 1+1+N).
        assert_eq!(trips, 4, "a first page of {limit} took {trips} round trips: {:#?}", wire.turns());
    }
    let next = page_after(&s, token, 1).await;
    wire.reset();
    let r = s
        .http
        .get(format!("{}/api/orders?limit=1&starting_after={next}", s.site))
        .bearer_auth(token)
        .header("x-real-ip", "203.0.113.77")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(wire.round_trips(), 3, "a later page: counter, page, histories: {:#?}", wire.turns());
}

/// The `next_starting_after` of the first page of `limit` orders.
async fn page_after(s: &Shop, token: &str, limit: u32) -> String {
    let r = s
        .http
        .get(format!("{}/api/orders?limit={limit}", s.site))
        .bearer_auth(token)
        .header("x-real-ip", "203.0.113.77")
        .send()
        .await
        .unwrap();
    let page: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    page["next_starting_after"].as_str().expect("more orders follow").to_string()
}
