//! The reconciliation run, end to end: the emulator drops every webhook delivery (its `drop`
//! fault), the shop's `GET /api/reconcile` lists the missed events from the emulator's
//! `GET /v1/events` and hands each to the webhook's own code. On SQLite, and on Postgres when
//! `TEST_DATABASE_URL` is set (always in CI).

use crate::common::{Backend, Shop, ShopOptions, shop};
use checkout::order::MoneyState;
use checkout::order::OrderState;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use stripe_emulator::{ApiFault, WebhookFaults};

const CRON_SECRET: &str = "cron-secret-for-the-tests-0123456789";
const ADMIN_TOKEN: &str = "reconcile-owner-token-0123456789abcdef";
const CART: &str = r#"{"items":[{"id":"mug","quantity":1}]}"#;

async fn shop_with(backend: Backend, env: &[(&'static str, &str)]) -> Shop {
    let mut all = vec![("CRON_SECRET", CRON_SECRET.to_string())];
    all.extend(env.iter().map(|(k, v)| (*k, v.to_string())));
    shop(ShopOptions { backend: Some(backend), env: all, ..Default::default() }).await
}

fn drop_webhooks(s: &Shop, drop: bool) {
    s.emu.set_webhook_faults(WebhookFaults { drop, ..Default::default() });
}

/// Creates and pays `n` orders; returns their session ids.
async fn paid(s: &Shop, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = s.checkout(CART).await;
        s.pay(&id, "pay").await;
        ids.push(id);
    }
    ids
}

/// `GET /api/reconcile` with an `Authorization` header (or none).
async fn reconcile_with(s: &Shop, auth: Option<&str>) -> (u16, Value) {
    let mut req = s.http.get(s.url("/api/reconcile"));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let (status, _, json) = crate::common::split(req.send().await.unwrap()).await;
    (status, json)
}

async fn reconcile(s: &Shop) -> Value {
    let (status, json) = reconcile_with(s, Some(&format!("Bearer {CRON_SECRET}"))).await;
    assert_eq!(status, 200, "{json}");
    json
}

/// `(attempts, done)` of an order's fulfilment run; exactly one run per fulfilled order.
async fn fulfilment_run(s: &Shop, id: &str) -> (i64, bool) {
    let rows =
        crate::common::sql(&s.database_url, "SELECT attempts, done_at FROM fulfillment_runs WHERE session_id = $1", id)
            .await;
    assert_eq!(rows.len(), 1, "one fulfilment run for {id}");
    (rows[0].0, rows[0].1.is_some())
}

async fn assert_fulfilled_once(s: &Shop, ids: &[String]) {
    for id in ids {
        let order = s.app.store.order(id).await.unwrap().unwrap_or_else(|| panic!("order {id} recorded"));
        assert_eq!((order.state, order.fulfillments), (OrderState::Fulfilled, 1));
        assert_eq!(fulfilment_run(s, id).await, (1, true), "on_fulfilled ran once for {id}");
    }
}

each_backend! {
    #[tokio::test]
    async fn one_run_fulfils_thirty_orders_whose_webhooks_were_dropped_and_a_second_run_does_nothing(backend) {
        let s = shop_with(backend, &[]).await;
        drop_webhooks(&s, true);
        let ids = paid(&s, 30).await;
        assert!(s.emu.deliveries().is_empty(), "the drop fault delivers nothing");
        for id in &ids {
            assert!(s.app.store.order(id).await.unwrap().is_none(), "nothing fulfilled without a webhook");
        }
        let r = reconcile(&s).await;
        assert_eq!((r["processed"].as_u64(), r["seen"].as_u64()), (Some(30), Some(30)), "{backend:?}: {r}");
        assert_eq!((r["duplicates"].as_u64(), r["finished"].as_bool()), (Some(0), Some(true)));
        assert_fulfilled_once(&s, &ids).await;
        let r = reconcile(&s).await;
        assert_eq!((r["processed"].as_u64(), r["seen"].as_u64()), (Some(0), Some(0)), "{backend:?}: {r}");
        assert_eq!(r["finished"], true);
    }
}

each_backend! {
    #[tokio::test]
    async fn a_run_out_of_time_stops_and_the_next_resumes_without_handling_an_event_twice(backend) {
        let s = shop_with(backend, &[]).await;
        drop_webhooks(&s, true);
        let ids = paid(&s, 12).await;
        // A budget already spent: the run handles one event (it always makes progress) and stops.
        let first = checkout::reconcile::run(&s.app, Instant::now()).await.expect("run");
        assert_eq!((first.seen, first.processed, first.finished), (1, 1, false), "{backend:?}");
        let r = reconcile(&s).await;
        assert_eq!((r["processed"].as_u64(), r["seen"].as_u64()), (Some(11), Some(11)), "{backend:?}: {r}");
        assert_eq!((r["duplicates"].as_u64(), r["finished"].as_bool()), (Some(0), Some(true)));
        assert_fulfilled_once(&s, &ids).await;
    }
}

each_backend! {
    #[tokio::test]
    async fn a_run_racing_redeliveries_of_the_same_events_fulfils_each_order_once(backend) {
        let s = shop_with(backend, &[]).await;
        drop_webhooks(&s, true);
        let ids = paid(&s, 10).await;
        drop_webhooks(&s, false);
        let events: Vec<String> = s.emu.events().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
        let run = reconcile(&s);
        let resend = async {
            for e in &events {
                assert!(s.emu.resend(e));
            }
        };
        let (r, ()) = tokio::join!(run, resend);
        s.deliveries_when("every redelivery answered 200", |d| {
            d.iter().filter(|d| d.status == Some(200)).count() == events.len()
        })
        .await;
        let by_deliveries = s.emu.deliveries().iter().filter(|d| d.response_body.contains("processed")).count();
        assert_eq!(r["processed"].as_u64().unwrap() as usize + by_deliveries, 10, "{backend:?}: acted once per event");
        assert_fulfilled_once(&s, &ids).await;
    }
}

#[tokio::test]
async fn only_the_cron_secret_is_let_in() {
    let s = shop_with(Backend::Sqlite, &[]).await;
    let prefix = format!("Bearer {}", &CRON_SECRET[..CRON_SECRET.len() - 1]);
    let longer = format!("Bearer {CRON_SECRET}x");
    let lower = format!("bearer {CRON_SECRET}");
    for auth in [
        None,
        Some("Bearer wrong-secret-0123456789abcdef"),
        Some(prefix.as_str()),
        Some(longer.as_str()),
        Some(lower.as_str()),
        Some(CRON_SECRET),
        Some("Basic Y3Jvbjpjcm9u"),
    ] {
        let (status, json) = reconcile_with(&s, auth).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(json, json!({"error": {"message": "unauthorized"}}), "one generic body");
    }
    assert!(s.requests_to("/v1/events").is_empty(), "no Stripe call before authorization");
    let (status, _) = reconcile_with(&s, Some(&format!("Bearer {CRON_SECRET}"))).await;
    assert_eq!(status, 200);
    // An unset or short secret refuses every call: a configuration error, logged, generic 500.
    for secret in ["", "short-secret"] {
        let s = shop(ShopOptions { env: vec![("CRON_SECRET", secret.to_string())], ..Default::default() }).await;
        let (status, json) = reconcile_with(&s, Some(&format!("Bearer {secret}"))).await;
        assert_eq!(status, 500, "{secret:?}");
        assert!(!json.to_string().contains("CRON_SECRET"), "the reason stays in the log: {json}");
        assert!(s.requests_to("/v1/events").is_empty());
    }
}

each_backend! {
    #[tokio::test]
    async fn runs_page_through_stripes_list_both_from_the_window_and_from_the_checkpoint(backend) {
        let s = shop_with(backend, &[("RECONCILE_PAGE_SIZE", "4")]).await;
        drop_webhooks(&s, true);
        let first = paid(&s, 10).await;
        let r = reconcile(&s).await;
        assert_eq!(r["processed"], 10, "{backend:?}: {r}");
        assert!(s.requests_to("/v1/events").len() >= 4, "10 events, 4 a page: 3 pages plus the window's start");
        let before = s.requests_to("/v1/events").len();
        let second = paid(&s, 9).await;
        let r = reconcile(&s).await;
        assert_eq!((r["processed"].as_u64(), r["duplicates"].as_u64()), (Some(9), Some(0)), "{backend:?}: {r}");
        let pages: Vec<_> = s.requests_to("/v1/events")[before..].to_vec();
        assert_eq!(pages.len(), 3, "9 events after the checkpoint, 4 a page");
        assert!(pages.iter().all(|p| p.params.iter().any(|(k, _)| k == "ending_before")), "oldest first");
        assert_fulfilled_once(&s, &first).await;
        assert_fulfilled_once(&s, &second).await;
    }
}

each_backend! {
    #[tokio::test]
    async fn refunds_and_disputes_are_recovered_the_same_way(backend) {
        let s = shop_with(backend, &[]).await;
        let ids = paid(&s, 2).await;
        for id in &ids {
            s.wait_order(id, |o| o.state == OrderState::Fulfilled).await;
        }
        s.deliveries_when("both completed events answered", |d| d.iter().filter(|d| d.ok()).count() == 2).await;
        drop_webhooks(&s, true);
        s.emu.refund(&ids[0], Some(500)).unwrap();
        let dispute = s.emu.dispute(&ids[1], false).unwrap();
        s.emu.set_dispute_status(dispute["id"].as_str().unwrap(), "lost").unwrap();
        let r = reconcile(&s).await;
        assert_eq!(r["finished"], true, "{backend:?}: {r}");
        let refunded = s.app.store.order(&ids[0]).await.unwrap().unwrap();
        assert_eq!((refunded.money.state(), refunded.money.amount_refunded), (MoneyState::PartiallyRefunded, 500));
        let lost = s.app.store.order(&ids[1]).await.unwrap().unwrap();
        assert_eq!(lost.money.state(), MoneyState::DisputeLost, "{backend:?}");
        // The completed events were delivered before: listed again, they are duplicates.
        assert_eq!(r["duplicates"].as_u64(), Some(2), "{r}");
        let again = reconcile(&s).await;
        assert_eq!(again["processed"], 0);
    }
}

each_backend! {
    #[tokio::test]
    async fn a_first_run_looks_back_only_as_far_as_its_window(backend) {
        let s = shop_with(backend, &[("RECONCILE_WINDOW_SECS", "1")]).await;
        drop_webhooks(&s, true);
        let old = paid(&s, 1).await;
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let recent = paid(&s, 1).await;
        let r = reconcile(&s).await;
        assert_eq!(r["processed"], 1, "{backend:?}: {r}");
        assert!(s.app.store.order(&old[0]).await.unwrap().is_none(), "older than the window: not looked at");
        assert_fulfilled_once(&s, &recent).await;
    }
}

/// The owner's view of the events the runs could not act on: `failed_events` on the first
/// page of `GET /api/orders`.
async fn failed_events(s: &Shop) -> Vec<Value> {
    let req = s.http.get(s.url("/api/orders")).bearer_auth(ADMIN_TOKEN).header("x-real-ip", "198.51.100.40");
    let (status, _, json) = crate::common::split(req.send().await.unwrap()).await;
    assert_eq!(status, 200, "{json}");
    json["failed_events"].as_array().cloned().unwrap_or_else(|| panic!("failed_events on the first page: {json}"))
}

/// The id of the `checkout.session.completed` event of a session.
fn completed_event(s: &Shop, session_id: &str) -> String {
    let events = s.emu.events();
    let e = events
        .iter()
        .find(|e| e["type"] == "checkout.session.completed" && e["data"]["object"]["id"] == session_id)
        .expect("the emulator made the event");
    e["id"].as_str().unwrap().to_string()
}

each_backend! {
    #[tokio::test]
    async fn a_first_run_over_a_large_window_lists_within_its_budget_and_the_next_runs_continue(backend) {
        let budget = Duration::from_millis(500);
        let s = shop_with(backend, &[("RECONCILE_PAGE_SIZE", "3"), ("RECONCILE_BUDGET_MS", "500")]).await;
        drop_webhooks(&s, true);
        let ids = paid(&s, 30).await;
        // Every list call takes 100 ms: the window (30 events, 3 a page) takes 10 of them to list.
        let slow = ApiFault { delay_ms: Some(100), count: 100_000, path: Some("/v1/events".into()), ..Default::default() };
        s.emu.set_api_fault(slow);
        let (mut processed, mut seen, mut runs) = (0, 0, 0);
        loop {
            runs += 1;
            assert!(runs <= 15, "{backend:?}: the runs make progress and finish the window");
            let started = Instant::now();
            let r = reconcile(&s).await;
            let took = started.elapsed();
            // Within the budget, plus the one call under way when it ran out (and some slack).
            assert!(took < budget + Duration::from_millis(100 + 300), "{backend:?}: run {runs} took {took:?}: {r}");
            assert_eq!(r["duplicates"], 0, "{backend:?}: no event handled twice: {r}");
            processed += r["processed"].as_u64().unwrap();
            seen += r["seen"].as_u64().unwrap();
            if runs == 1 {
                assert_eq!(r["finished"], false, "{backend:?}: the window does not fit one budget: {r}");
            }
            if r["finished"] == true {
                break;
            }
        }
        assert_eq!((processed, seen), (30, 30), "{backend:?}: each event handled once, in {runs} runs");
        assert_fulfilled_once(&s, &ids).await;
        let r = reconcile(&s).await;
        assert_eq!((r["seen"].as_u64(), r["finished"].as_bool()), (Some(0), Some(true)), "{backend:?}: {r}");
    }
}

each_backend! {
    #[tokio::test]
    async fn an_event_that_keeps_failing_is_recorded_after_three_attempts_and_the_walk_goes_on(backend) {
        let s = shop_with(backend, &[("STRIPE_MAX_RETRIES", "0"), ("ADMIN_TOKEN", ADMIN_TOKEN)]).await;
        drop_webhooks(&s, true);
        let ids = paid(&s, 3).await;
        let (bad, good) = (&ids[0], &ids[1..]);
        let event = completed_event(&s, bad);
        // Stripe fails every retrieval of the oldest order's session, and only that.
        let path = format!("/v1/checkout/sessions/{bad}");
        s.emu.set_api_fault(ApiFault { status: Some(500), count: 100_000, path: Some(path), ..Default::default() });
        for attempt in 1..=2 {
            let (status, json) = reconcile_with(&s, Some(&format!("Bearer {CRON_SECRET}"))).await;
            assert_eq!(status, 502, "{backend:?}: attempt {attempt} stops the run: {json}");
            assert!(!json.to_string().contains("Injected"), "no Stripe error text in the answer: {json}");
            for id in good {
                assert!(s.app.store.order(id).await.unwrap().is_none(), "{backend:?}: still oldest first");
            }
        }
        assert!(failed_events(&s).await.is_empty(), "{backend:?}: below the bound nothing is shown as failed");
        let r = reconcile(&s).await;
        assert_eq!((r["failed"].as_u64(), r["processed"].as_u64()), (Some(1), Some(2)), "{backend:?}: {r}");
        assert_eq!(r["finished"], true, "{r}");
        assert_fulfilled_once(&s, good).await;
        assert!(s.app.store.order(bad).await.unwrap().is_none());
        let failed = failed_events(&s).await;
        assert_eq!(failed.len(), 1, "{backend:?}: {failed:?}");
        assert_eq!(failed[0]["event_id"], event.as_str());
        assert_eq!(failed[0]["type"], "checkout.session.completed");
        assert_eq!(failed[0]["object_id"], bad.as_str());
        assert_eq!((failed[0]["attempts"].as_i64(), failed[0]["reason"].as_str()), (Some(3), Some("stripe_unavailable")));
        assert!(failed[0]["last_attempt_at"].as_i64().unwrap() > 0);
        assert!(!serde_json::to_string(&failed).unwrap().contains("Injected"), "a reason class, not Stripe's text");
        // Only the first page carries them.
        let req = s
            .http
            .get(s.url(&format!("/api/orders?starting_after={}", good[1])))
            .bearer_auth(ADMIN_TOKEN)
            .header("x-real-ip", "198.51.100.40");
        let (status, _, page) = crate::common::split(req.send().await.unwrap()).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.get("failed_events").is_none(), "{page}");
        // Still failing: the next run retries it, counts the attempt, and keeps it.
        let r = reconcile(&s).await;
        assert_eq!((r["retried"].as_u64(), r["failed"].as_u64()), (Some(0), Some(0)), "{backend:?}: {r}");
        assert_eq!(failed_events(&s).await[0]["attempts"], 4);
        // Stripe recovers: the next run retries it and clears it.
        s.emu.reset_faults();
        drop_webhooks(&s, true);
        let r = reconcile(&s).await;
        assert_eq!((r["retried"].as_u64(), r["seen"].as_u64()), (Some(1), Some(0)), "{backend:?}: {r}");
        assert_fulfilled_once(&s, &ids).await;
        assert!(failed_events(&s).await.is_empty(), "{backend:?}: cleared");
    }
}

each_backend! {
    #[tokio::test]
    async fn a_hook_run_held_by_a_delivery_does_not_block_later_events(backend) {
        let s = shop_with(backend, &[("ADMIN_TOKEN", ADMIN_TOKEN)]).await;
        let held = paid(&s, 1).await;
        s.wait_order(&held[0], |o| o.state == OrderState::Fulfilled).await;
        s.deliveries_when("the completed event answered", |d| d.iter().any(|d| d.ok())).await;
        // Another instance is in the middle of the order's on_fulfilled: claimed just now, not done.
        let db = &s.database_url;
        let unfinish = "UPDATE fulfillment_runs SET done_at = NULL WHERE session_id = $1 RETURNING attempts, done_at";
        assert_eq!(crate::common::sql(db, unfinish, &held[0]).await.len(), 1);
        drop_webhooks(&s, true);
        let later = paid(&s, 2).await;
        let r = reconcile(&s).await;
        assert_eq!((r["processed"].as_u64(), r["failed"].as_u64()), (Some(2), Some(1)), "{backend:?}: {r}");
        assert_eq!(r["finished"], true, "{r}");
        assert_fulfilled_once(&s, &later).await;
        let failed = failed_events(&s).await;
        assert_eq!(failed.len(), 1, "{backend:?}: {failed:?}");
        assert_eq!(failed[0]["event_id"], completed_event(&s, &held[0]).as_str());
        assert_eq!(failed[0]["reason"], "hook_run_unsettled");
        // The delivery's instance finishes its run: the next run retries the event and clears it.
        let finish = "UPDATE fulfillment_runs SET done_at = 1 WHERE session_id = $1 RETURNING attempts, done_at";
        crate::common::sql(db, finish, &held[0]).await;
        let r = reconcile(&s).await;
        assert_eq!((r["retried"].as_u64(), r["seen"].as_u64()), (Some(1), Some(0)), "{backend:?}: {r}");
        assert!(failed_events(&s).await.is_empty(), "{backend:?}: cleared");
    }
}

#[tokio::test]
async fn the_emulator_lists_events_as_stripe_does() {
    let s = shop_with(Backend::Sqlite, &[]).await;
    drop_webhooks(&s, true);
    let ids = paid(&s, 3).await;
    s.emu.refund(&ids[0], None).unwrap();
    let get = async |query: &str| {
        let r = s
            .http
            .get(format!("{}/v1/events?{query}", s.emu.base_url()))
            .bearer_auth(crate::common::SECRET_KEY)
            .send()
            .await
            .unwrap();
        crate::common::split(r).await
    };
    let types = |v: &Value| {
        v["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let (_, _, all) = get("limit=100").await;
    assert_eq!(
        types(&all),
        [
            "charge.refunded",
            "refund.created",
            "checkout.session.completed",
            "checkout.session.completed",
            "checkout.session.completed"
        ]
    );
    let (_, _, only) = get("types[]=refund.created&types[]=charge.refunded").await;
    assert_eq!(types(&only), ["charge.refunded", "refund.created"]);
    let (_, _, one) = get("type=checkout.session.completed&limit=2").await;
    assert_eq!((one["data"].as_array().unwrap().len(), one["has_more"].as_bool()), (2, Some(true)));
    // ending_before: the page just newer than the cursor, newest first.
    let oldest = all["data"][4]["id"].as_str().unwrap();
    let (_, _, newer) = get(&format!("ending_before={oldest}&limit=2")).await;
    assert_eq!(newer["data"][1]["id"], all["data"][3]["id"]);
    assert_eq!(newer["has_more"], true);
    let (_, _, undelivered) = get("delivery_success=false&limit=100").await;
    assert_eq!(undelivered["data"].as_array().unwrap().len(), 5, "the drop fault delivered nothing");
    let (_, _, future) = get(&format!("created[gt]={}", i64::MAX / 2)).await;
    assert_eq!(future["data"].as_array().unwrap().len(), 0);
    let (status, _, e) = get("created[gt]=soon").await;
    assert_eq!(status, 400, "{e}");
    let (status, _, e) = get("types[]=a&type=b").await;
    assert_eq!(status, 400, "{e}");
}
