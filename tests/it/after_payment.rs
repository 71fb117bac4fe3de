//! After payment, end to end: the emulator refunds and disputes paid sessions (its control
//! routes, over HTTP) and delivers the signed events Stripe would send; the shop derives each
//! order's money state from the objects as Stripe returns them, records one history entry per
//! change and runs the owner's hook once. Each flow runs on SQLite, and on Postgres when
//! `TEST_DATABASE_URL` is set (always in CI).

use crate::common::{Backend, Shop, ShopOptions, shop};
use checkout::order::MoneyState;
use checkout::order::{Order, OrderState};
use serde_json::{Value, json};
use stripe_emulator::WebhookFaults;

const CART: &str = r#"{"items":[{"id":"tshirt","quantity":1}]}"#;
/// $25.00 and $5.00 standard shipping.
const TOTAL: i64 = 3000;

async fn shop_on(backend: Backend) -> Shop {
    shop(ShopOptions { backend: Some(backend), ..Default::default() }).await
}

/// A paid, fulfilled order.
async fn paid_order(s: &Shop) -> String {
    let id = s.checkout(CART).await;
    s.pay(&id, "pay").await;
    s.wait_order(&id, |o| o.state == OrderState::Fulfilled).await;
    id
}

async fn refund(s: &Shop, id: &str, amount: Option<i64>) -> Value {
    let body = amount.map_or(json!({}), |a| json!({ "amount": a }));
    let (status, refund) = s.control(&format!("/_emulator/sessions/{id}/refund"), body).await;
    assert_eq!(status, 200, "refund: {refund}");
    refund
}

async fn dispute(s: &Shop, id: &str, inquiry: bool) -> String {
    let (status, d) = s.control(&format!("/_emulator/sessions/{id}/dispute"), json!({ "inquiry": inquiry })).await;
    assert_eq!(status, 200, "dispute: {d}");
    d["id"].as_str().unwrap().to_string()
}

async fn close(s: &Shop, dispute_id: &str, outcome: &str) {
    let (status, d) = s.control(&format!("/_emulator/disputes/{dispute_id}/close"), json!({ "status": outcome })).await;
    assert_eq!(status, 200, "close: {d}");
}

async fn wait_money(s: &Shop, id: &str, state: MoneyState, refunded: i64) -> Order {
    s.wait_order(id, |o| o.money.state() == state && o.money.amount_refunded == refunded).await
}

/// Every emulator delivery answered, and each answer 200.
async fn all_acknowledged(s: &Shop) {
    let events = s.emu.events().len();
    let d = s
        .deliveries_when("an answer to every event", |d| {
            let answered: std::collections::HashSet<_> =
                d.iter().filter(|d| d.status == Some(200)).map(|d| d.event_id.clone()).collect();
            answered.len() == events
        })
        .await;
    assert!(d.iter().all(|d| d.status == Some(200)), "every delivery acknowledged: {d:#?}");
}

/// `(attempts, done)` of each after-payment hook run of an order.
async fn hook_runs(s: &Shop, id: &str) -> Vec<(i64, bool)> {
    let rows = crate::common::sql(
        &s.database_url,
        "SELECT attempts, done_at FROM hook_runs WHERE session_id = $1 ORDER BY claimed_at",
        id,
    )
    .await;
    rows.into_iter().map(|(a, d)| (a, d.is_some())).collect()
}

/// How many of an order's after-payment hook runs call `hook` (`refunded`, `refund_failed`,
/// `dispute_opened`, `dispute_closed`).
async fn runs_calling(s: &Shop, id: &str, hook: &str) -> i64 {
    let sql = format!(
        "SELECT COUNT(*), CAST(NULL AS BIGINT) FROM hook_runs WHERE session_id = $1 AND calls LIKE '%\"hook\":\"{hook}\"%'"
    );
    crate::common::sql(&s.database_url, &sql, id).await[0].0
}

async fn status_json(s: &Shop, id: &str) -> Value {
    let (status, _, json) = s.get(&format!("/api/checkout-status?session_id={id}")).await;
    assert_eq!(status, 200, "{json}");
    json
}

each_backend! {
    #[tokio::test]
    async fn partial_then_full_refund(backend) {
        let s = shop_on(backend).await;
        let id = paid_order(&s).await;
        refund(&s, &id, Some(100)).await;
        let order = wait_money(&s, &id, MoneyState::PartiallyRefunded, 100).await;
        assert_eq!(order.state, OrderState::Fulfilled, "fulfilment stays beside the money state");
        assert!(order.payment_intent.as_deref().is_some_and(|p| p.starts_with("pi_")), "{backend:?}");
        let json = status_json(&s, &id).await;
        assert_eq!(
            (json["money_state"].as_str(), json["amount_refunded"].as_i64()),
            (Some("partially_refunded"), Some(100))
        );
        refund(&s, &id, None).await;
        wait_money(&s, &id, MoneyState::Refunded, TOTAL).await;
        all_acknowledged(&s).await;
        let history = s.app.store.history(&id).await.unwrap();
        let steps: Vec<_> = history.iter().map(|h| (h.from.as_str(), h.to.as_str(), h.amount)).collect();
        assert_eq!(steps, [("paid", "partially_refunded", 100), ("partially_refunded", "refunded", TOTAL - 100)]);
        assert_eq!(hook_runs(&s, &id).await, [(1, true), (1, true)], "{backend:?}: on_refunded once per refund");
        assert_eq!(status_json(&s, &id).await["money_state"], "refunded");
        // Four events (refund.created and charge.refunded per refund), two changes: each event
        // recorded once, each change once.
        assert_eq!(s.emu.events().iter().filter(|e| e["type"] == "refund.created").count(), 2);
    }
}

#[tokio::test]
async fn a_failed_refund_puts_the_money_back() {
    let s = shop(ShopOptions::default()).await;
    let id = paid_order(&s).await;
    let r = refund(&s, &id, Some(700)).await;
    wait_money(&s, &id, MoneyState::PartiallyRefunded, 700).await;
    let (status, _) = s.control(&format!("/_emulator/refunds/{}/fail", r["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(status, 200);
    wait_money(&s, &id, MoneyState::Paid, 0).await;
    all_acknowledged(&s).await;
    let history = s.app.store.history(&id).await.unwrap();
    assert_eq!(history.last().map(|h| (h.to.as_str(), h.amount)), Some(("paid", -700)));
    // The owner heard of the refund once, and of its failure once (issue 19).
    assert_eq!(runs_calling(&s, &id, "refunded").await, 1);
    assert_eq!(runs_calling(&s, &id, "refund_failed").await, 1, "the owner hears the money came back");
}

/// A refund after a won dispute is shown: the refunded amount and, beside it, the dispute's
/// status (issue 19: the order said `dispute_won` with nothing refunded).
#[tokio::test]
async fn a_refund_after_a_won_dispute_shows_beside_the_dispute() {
    let s = shop(ShopOptions::default()).await;
    let id = paid_order(&s).await;
    let d = dispute(&s, &id, false).await;
    wait_money(&s, &id, MoneyState::Disputed, 0).await;
    close(&s, &d, "won").await;
    wait_money(&s, &id, MoneyState::DisputeWon, 0).await;
    let total = status_json(&s, &id).await["amount_total"].as_i64().unwrap();
    refund(&s, &id, None).await;
    wait_money(&s, &id, MoneyState::Refunded, total).await;
    let json = status_json(&s, &id).await;
    assert_eq!(json["money_state"], "refunded", "{json}");
    assert_eq!(json["amount_refunded"], total, "{json}");
    assert_eq!(json["dispute_status"], "won", "{json}");
    all_acknowledged(&s).await;
}

/// An inquiry that Stripe escalates to a chargeback (`warning_needs_response` ⇒
/// `needs_response`) tells the owner again (issue 19).
#[tokio::test]
async fn an_inquiry_escalated_to_a_chargeback_tells_the_owner_again() {
    let s = shop(ShopOptions::default()).await;
    let id = paid_order(&s).await;
    let d = dispute(&s, &id, true).await;
    s.wait_order(&id, |o| o.money.dispute.as_ref().is_some_and(|d| d.status == "warning_needs_response")).await;
    let (status, body) =
        s.control(&format!("/_emulator/disputes/{d}/update"), json!({ "status": "needs_response" })).await;
    assert_eq!(status, 200, "{body}");
    s.wait_order(&id, |o| o.money.dispute.as_ref().is_some_and(|d| d.status == "needs_response")).await;
    all_acknowledged(&s).await;
    assert_eq!(runs_calling(&s, &id, "dispute_opened").await, 2, "opened, then escalated");
}

each_backend! {
    #[tokio::test]
    async fn a_dashboard_refund_of_an_order_recorded_before_payment_intents_were_kept(backend) {
        let s = shop_on(backend).await;
        let id = paid_order(&s).await;
        // An order paid long ago, before the shop recorded PaymentIntents: no money row.
        crate::common::sql(
            &s.database_url,
            "DELETE FROM order_money WHERE session_id = $1 RETURNING amount, amount",
            &id,
        )
        .await;
        assert_eq!(s.app.store.order(&id).await.unwrap().unwrap().payment_intent, None);
        refund(&s, &id, Some(500)).await;
        let order = wait_money(&s, &id, MoneyState::PartiallyRefunded, 500).await;
        assert!(order.payment_intent.is_some(), "{backend:?}: the PaymentIntent is backfilled");
        assert_eq!(order.fulfillments, 1);
        all_acknowledged(&s).await;
        assert_eq!(hook_runs(&s, &id).await, [(1, true)]);
    }
}

each_backend! {
    #[tokio::test]
    async fn disputes_won_lost_and_an_inquiry_closed(backend) {
        let s = shop_on(backend).await;
        let won = paid_order(&s).await;
        let d = dispute(&s, &won, false).await;
        let order = wait_money(&s, &won, MoneyState::Disputed, 0).await;
        assert_eq!(order.money.dispute.as_ref().map(|d| d.status.as_str()), Some("needs_response"));
        assert_eq!(status_json(&s, &won).await["money_state"], "disputed");
        close(&s, &d, "won").await;
        wait_money(&s, &won, MoneyState::DisputeWon, 0).await;

        let lost = paid_order(&s).await;
        let d = dispute(&s, &lost, false).await;
        wait_money(&s, &lost, MoneyState::Disputed, 0).await;
        let (status, _) =
            s.control(&format!("/_emulator/disputes/{d}/update"), json!({"status": "under_review"})).await;
        assert_eq!(status, 200);
        s.wait_order(&lost, |o| o.money.dispute.as_ref().is_some_and(|d| d.status == "under_review")).await;
        close(&s, &d, "lost").await;
        wait_money(&s, &lost, MoneyState::DisputeLost, 0).await;

        let inquiry = paid_order(&s).await;
        let d = dispute(&s, &inquiry, true).await;
        wait_money(&s, &inquiry, MoneyState::Disputed, 0).await;
        close(&s, &d, "warning_closed").await;
        s.wait_order(&inquiry, |o| o.money.dispute.as_ref().is_some_and(|d| d.status == "warning_closed")).await;
        assert_eq!(s.app.store.order(&inquiry).await.unwrap().unwrap().money.state(), MoneyState::Paid);

        all_acknowledged(&s).await;
        let steps = |h: Vec<checkout::order::HistoryEntry>| h.into_iter().map(|h| h.to).collect::<Vec<_>>();
        assert_eq!(steps(s.app.store.history(&won).await.unwrap()), ["disputed", "dispute_won"], "{backend:?}");
        assert_eq!(steps(s.app.store.history(&lost).await.unwrap()), ["disputed", "disputed", "dispute_lost"]);
        assert_eq!(steps(s.app.store.history(&inquiry).await.unwrap()), ["disputed", "paid"]);
        // on_dispute: opened and closed, once each; the status update calls no hook.
        for id in [&won, &lost, &inquiry] {
            assert_eq!(hook_runs(&s, id).await, [(1, true), (1, true)], "{backend:?}");
        }
    }
}

each_backend! {
    #[tokio::test]
    async fn events_twice_and_in_reverse_order_end_in_the_same_state(backend) {
        let s = shop_on(backend).await;
        let id = paid_order(&s).await;
        all_acknowledged(&s).await;
        s.emu.set_webhook_faults(WebhookFaults { duplicate: true, reorder: true, ..Default::default() });
        refund(&s, &id, Some(300)).await;
        let d = dispute(&s, &id, false).await;
        close(&s, &d, "lost").await;
        s.emu.flush();
        let order = wait_money(&s, &id, MoneyState::DisputeLost, 300).await;
        all_acknowledged(&s).await;
        assert_eq!(order.money.dispute.as_ref().map(|d| d.status.as_str()), Some("lost"));
        // Newest first: the first event handled already sees the lost dispute and the refund;
        // every later (older) event finds nothing to change, and no stale read undoes it.
        let history = s.app.store.history(&id).await.unwrap();
        assert_eq!(history.len(), 1, "{backend:?}: {history:?}");
        assert_eq!((history[0].from.as_str(), history[0].to.as_str()), ("paid", "dispute_lost"));
        assert_eq!(hook_runs(&s, &id).await.len(), 1, "one run for the one change");
    }
}

each_backend! {
    #[tokio::test]
    async fn a_refund_before_the_completed_event_is_not_lost(backend) {
        let s = shop_on(backend).await;
        s.emu.set_webhook_faults(WebhookFaults { reorder: true, ..Default::default() });
        let id = s.checkout(CART).await;
        s.pay(&id, "pay").await;
        refund(&s, &id, Some(400)).await;
        s.emu.flush(); // charge.refunded, refund.created, then checkout.session.completed
        let order = wait_money(&s, &id, MoneyState::PartiallyRefunded, 400).await;
        all_acknowledged(&s).await;
        assert_eq!((order.state, order.fulfillments), (OrderState::Fulfilled, 1), "{backend:?}");
        let runs = crate::common::sql(
            &s.database_url,
            "SELECT attempts, done_at FROM fulfillment_runs WHERE session_id = $1",
            &id,
        )
        .await;
        assert_eq!(runs.len(), 1, "on_fulfilled ran once");
        assert!(runs[0].1.is_some());
        assert_eq!(hook_runs(&s, &id).await, [(1, true)], "on_refunded ran once");
    }
}

each_backend! {
    #[tokio::test]
    async fn fifty_concurrent_copies_of_one_refund_event_change_the_order_once(backend) {
        let s = shop_on(backend).await;
        let id = paid_order(&s).await;
        all_acknowledged(&s).await;
        s.emu.set_webhook_url(None);
        refund(&s, &id, Some(250)).await;
        let event = s.emu.events().into_iter().find(|e| e["type"] == "charge.refunded").unwrap();
        let body = serde_json::to_vec(&event).unwrap();
        let tasks: Vec<_> =
            (0..50).map(|_| tokio::spawn(crate::common::deliver_to(s.http.clone(), s.url("/api/webhook"), body.clone()))).collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        assert!(answers.iter().all(|(status, _)| *status == 200), "{backend:?}: {answers:?}");
        let processed = answers.iter().filter(|(_, j)| j["result"] == "processed").count();
        assert_eq!(processed, 1, "{backend:?}: exactly one copy acted");
        assert_eq!(s.app.store.history(&id).await.unwrap().len(), 1);
        assert_eq!(hook_runs(&s, &id).await, [(1, true)]);
    }
}

each_backend! {
    #[tokio::test]
    async fn a_refund_for_a_payment_this_shop_never_took_is_acknowledged_and_changes_nothing(backend) {
        let s = shop_on(backend).await;
        let event = json!({
            "id": "evt_foreign_refund_0001", "object": "event", "type": "charge.refunded", "livemode": false,
            "created": checkout::clock::now(), "api_version": stripe_emulator::API_VERSION,
            "data": {"object": {"id": "ch_foreign0001", "object": "charge", "amount": 999, "amount_refunded": 999,
                "refunded": true, "payment_intent": "pi_foreign0001"}}
        });
        let (status, json) = s.deliver(&serde_json::to_vec(&event).unwrap()).await;
        assert_eq!((status, json["result"].as_str()), (200, Some("ignored")), "{backend:?}");
        let (seen, session) =
            s.app.store.event_seen_and_session("evt_foreign_refund_0001", "pi_foreign0001").await.unwrap();
        assert!(!seen, "nothing recorded");
        assert_eq!(session, None);
    }
}

each_backend! {
    #[tokio::test]
    async fn stripe_down_while_handling_a_refund_answers_5xx_and_the_retry_converges(backend) {
        let s = shop_on(backend).await;
        let id = paid_order(&s).await;
        all_acknowledged(&s).await;
        s.emu.set_webhook_url(None);
        refund(&s, &id, Some(900)).await;
        let event = s.emu.events().into_iter().find(|e| e["type"] == "refund.created").unwrap();
        let body = serde_json::to_vec(&event).unwrap();
        s.emu.set_api_fault(stripe_emulator::ApiFault { status: Some(500), count: 3, ..Default::default() });
        let (status, _) = s.deliver(&body).await;
        assert_eq!(status, 502, "{backend:?}: Stripe unreachable ⇒ 5xx so Stripe retries");
        assert!(!s.app.store.event_seen(event["id"].as_str().unwrap()).await.unwrap(), "nothing recorded");
        assert_eq!(s.app.store.order(&id).await.unwrap().unwrap().money.amount_refunded, 0);
        let (status, json) = s.deliver(&body).await;
        assert_eq!((status, json["result"].as_str()), (200, Some("processed")));
        wait_money(&s, &id, MoneyState::PartiallyRefunded, 900).await;
        assert_eq!(hook_runs(&s, &id).await, [(1, true)]);
    }
}

#[tokio::test]
async fn an_unfinished_hook_run_is_resumed_by_a_redelivery() {
    let s = shop(ShopOptions::default()).await;
    let id = paid_order(&s).await;
    refund(&s, &id, Some(100)).await;
    wait_money(&s, &id, MoneyState::PartiallyRefunded, 100).await;
    all_acknowledged(&s).await;
    let db = &s.database_url;
    // The run belongs to whichever of the refund's two events changed the order.
    let mut owner = None;
    for e in s.emu.events().into_iter().filter(|e| e["type"] == "refund.created" || e["type"] == "charge.refunded") {
        let eid = e["id"].as_str().unwrap().to_string();
        if !crate::common::sql(db, "SELECT attempts, done_at FROM hook_runs WHERE event_id = $1", &eid).await.is_empty()
        {
            owner = Some((eid, serde_json::to_vec(&e).unwrap()));
        }
    }
    let (eid, body) = owner.expect("one of the refund's events claimed the hook run");
    // The instance died mid-hook: unfinished, claimed recently ⇒ a redelivery waits, then 5xx.
    crate::common::sql(db, "UPDATE hook_runs SET done_at = NULL WHERE event_id = $1 RETURNING attempts, done_at", &eid)
        .await;
    let (status, _) = s.deliver(&body).await;
    assert_eq!(status, 500, "held by another instance ⇒ Stripe retries later");
    // The lease lapsed: the next redelivery takes the run over and runs the hook.
    crate::common::sql(
        db,
        "UPDATE hook_runs SET claimed_at = claimed_at - 600 WHERE event_id = $1 RETURNING attempts, done_at",
        &eid,
    )
    .await;
    let (status, json) = s.deliver(&body).await;
    assert_eq!((status, json["result"].as_str()), (200, Some("duplicate")));
    let run = crate::common::sql(db, "SELECT attempts, done_at FROM hook_runs WHERE event_id = $1", &eid).await;
    assert_eq!((run[0].0, run[0].1.is_some()), (2, true));
}

#[tokio::test]
async fn emulator_refuses_what_stripe_refuses() {
    let s = shop(ShopOptions::default()).await;
    let id = paid_order(&s).await;
    let (status, e) = s.control(&format!("/_emulator/sessions/{id}/refund"), json!({"amount": TOTAL + 1})).await;
    assert_eq!(status, 400, "{e}");
    let d = dispute(&s, &id, false).await;
    let (status, e) = s.control(&format!("/_emulator/sessions/{id}/refund"), json!({})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("charge_disputed")), "refunds blocked while disputed");
    let (status, _) = s.control(&format!("/_emulator/disputes/{d}/close"), json!({"status": "warning_closed"})).await;
    assert_eq!(status, 400, "warning_closed is for inquiries");
    let unpaid = s.checkout(CART).await;
    let (status, _) = s.control(&format!("/_emulator/sessions/{unpaid}/refund"), json!({})).await;
    assert_eq!(status, 400, "nothing to refund before payment");
    // The shop reads them through the /v1 routes, in Stripe's shapes.
    let get = async |path: String| {
        let r = s.http.get(format!("{}{path}", s.emu.base_url())).bearer_auth(crate::common::SECRET_KEY).send().await;
        crate::common::split(r.unwrap()).await.2
    };
    let pi = s.app.store.order(&id).await.unwrap().unwrap().payment_intent.unwrap();
    let list = get(format!("/v1/disputes?payment_intent={pi}")).await;
    assert_eq!(list["data"][0]["id"], d.as_str());
    assert_eq!(list["data"][0]["object"], "dispute");
    let charge = get(format!("/v1/charges/{}", list["data"][0]["charge"].as_str().unwrap())).await;
    assert_eq!((charge["object"].as_str(), charge["disputed"].as_bool()), (Some("charge"), Some(true)));
}
