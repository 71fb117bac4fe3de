//! Convergence of an order's money under any interleaving (issue 19): a simulated Stripe charge
//! whose refunds (create, succeed, fail, cancel) and disputes (open as inquiry or chargeback,
//! escalate, review, win, lose, close, funds withdrawn/reinstated) evolve at random, each step's
//! event delivered 1-3 times (a missed delivery is recovered once by the reconciliation run) in
//! any order, each delivery reading Stripe at any time from its event's creation on (stale by
//! any amount). After every delivery the order's refunds, disputes and money equal Stripe's
//! final objects, and each fact reached the owner's hooks once: the real store (SQLite, and
//! Postgres in the backend suite) deciding with the real `order::decide`.

use checkout::order::{DisputeRef, HookCall, MoneyFacts, OrderItem, OrderState, OrderUpdate, RefundRef};
use checkout::store::{Applied, EventRef};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::collections::HashMap;

const AMOUNT: i64 = 2500;

/// Stripe's side: the charge's refunds and disputes, as they stand after each step.
#[derive(Clone, Default)]
struct Stripe {
    /// Makes the ids unique, as Stripe's are (one case per session).
    prefix: String,
    refunds: Vec<RefundRef>,
    disputes: Vec<DisputeRef>,
}

impl Stripe {
    fn facts(&self) -> MoneyFacts {
        MoneyFacts {
            amount: AMOUNT,
            refunds: self.refunds.clone(),
            disputes: self.disputes.clone(),
            ..MoneyFacts::default()
        }
    }

    fn open_dispute(&mut self) -> Option<&mut DisputeRef> {
        self.disputes.iter_mut().find(|d| d.is_open())
    }

    /// Applies step `op` (with a parameter `n`) if Stripe allows it; the event type it emits.
    fn step(&mut self, op: u8, n: u8, t: i64) -> Option<&'static str> {
        let left = AMOUNT - self.facts().money().amount_refunded;
        let pick = (n as usize) % self.refunds.len().max(1);
        match op % 9 {
            0 if left > 0 && self.open_dispute().is_none() => {
                let amount = (i64::from(n) * 37 % left).max(1);
                let status = if n.is_multiple_of(2) { "pending" } else { "succeeded" };
                let id = format!("re_{}_{t}", self.prefix);
                self.refunds.push(RefundRef { id, amount, status: status.into(), reason: None, created: t });
                Some("refund.created")
            }
            1 if !self.refunds.is_empty() => {
                let r = &mut self.refunds[pick];
                (r.status == "pending").then(|| {
                    r.status = "succeeded".into();
                    "refund.updated"
                })
            }
            2 if !self.refunds.is_empty() => {
                let r = &mut self.refunds[pick];
                matches!(r.status.as_str(), "pending" | "succeeded").then(|| {
                    r.status = "failed".into();
                    "refund.failed"
                })
            }
            3 if !self.refunds.is_empty() => {
                let r = &mut self.refunds[pick];
                (r.status == "pending").then(|| {
                    r.status = "canceled".into();
                    "refund.updated"
                })
            }
            4 if self.open_dispute().is_none() => {
                let status = if n.is_multiple_of(2) { "warning_needs_response" } else { "needs_response" };
                let id = format!("du_{}_{t}", self.prefix);
                self.disputes.push(DisputeRef { id, status: status.into(), amount: AMOUNT, created: t });
                Some("charge.dispute.created")
            }
            5 => {
                let d = self.open_dispute()?;
                let next = match d.status.as_str() {
                    "warning_needs_response" => "needs_response",
                    "needs_response" => "under_review",
                    "warning_under_review" => "needs_response",
                    _ => return None,
                };
                d.status = next.into();
                Some("charge.dispute.updated")
            }
            6 => {
                let d = self.open_dispute()?;
                d.status = if d.is_inquiry() {
                    ["warning_closed", "warning_under_review"][n as usize % 2]
                } else {
                    ["won", "lost"][n as usize % 2]
                }
                .into();
                Some(if d.is_open() { "charge.dispute.updated" } else { "charge.dispute.closed" })
            }
            7 if !self.disputes.is_empty() => Some("charge.dispute.funds_withdrawn"),
            8 if !self.disputes.is_empty() => Some("charge.dispute.funds_reinstated"),
            _ => None,
        }
    }
}

/// One case: steps, then deliveries; checks convergence and the hooks.
async fn run_case(store: &checkout::store::Store, steps: &[(u8, u8)], deliveries: &[(u8, u8, u8)]) {
    let sid = format!("cs_test_model_{}", checkout::http::random_hex(8));
    let pi = format!("pi_model_{}", checkout::http::random_hex(8));
    let paid = OrderUpdate {
        session_id: sid.clone(),
        state: OrderState::Fulfilled,
        payment_status: "paid".into(),
        amount_total: Some(AMOUNT),
        currency: Some("usd".into()),
        items: vec![OrderItem { name: "Mug".into(), quantity: 1, amount_subtotal: Some(AMOUNT) }],
        livemode: false,
        payment_intent: Some(pi.clone()),
        totals: None,
        shipping: None,
        customer_email: None,
        stock: None,
    };
    store.apply(&paid, None).await.unwrap();
    // Stripe's history: the snapshot after each step that emitted an event.
    let mut stripe = Stripe { prefix: checkout::http::random_hex(6), ..Stripe::default() };
    let mut events: Vec<(&'static str, Stripe)> = Vec::new();
    for (i, (op, n)) in steps.iter().enumerate() {
        if let Some(kind) = stripe.step(*op, *n, i as i64 + 1) {
            events.push((kind, stripe.clone()));
        }
    }
    // Each event 1-3 times, in any order; each delivery reads Stripe at or after its event.
    let mut queue: Vec<(usize, usize)> = Vec::new();
    for (e, (copies, _, _)) in (0..events.len()).zip(deliveries.iter().cycle()) {
        for c in 0..=(copies % 3) {
            let later = deliveries[(e + usize::from(c)) % deliveries.len().max(1)].1 as usize;
            let read = e + later % (events.len() - e);
            queue.push((e, read));
        }
    }
    for i in 0..queue.len() {
        let j = i + deliveries[i % deliveries.len().max(1)].2 as usize % (queue.len() - i);
        queue.swap(i, j);
    }
    let mut calls: Vec<HookCall> = Vec::new();
    for (e, read) in queue {
        let id = format!("evt_{sid}_{e}");
        let event = EventRef { id: &id, kind: events[e].0, via: checkout::store::Via::Webhook, source: "test" };
        let r = store.apply_money(&sid, &pi, &events[read].1.facts(), event).await.unwrap();
        if std::env::var("MODEL_DEBUG").is_ok() {
            eprintln!("deliver {e} read {read}: {:?} => {r:?}", events[read].1.facts());
        }
        match r {
            Applied::Recorded(Some(change)) => calls.extend(change.calls),
            Applied::Recorded(None) | Applied::DuplicateEvent => {}
        }
    }
    // Convergence: the records equal Stripe's final objects, the money derived from them.
    let recorded = store.money_facts(&sid).await.unwrap();
    if std::env::var("MODEL_DEBUG").is_ok() {
        eprintln!("recorded for {sid}: {recorded:?}");
    }
    let mut want = stripe.facts();
    want.refunds.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    let key = |f: &MoneyFacts| {
        let mut d: Vec<(String, String)> = f.disputes.iter().map(|d| (d.id.clone(), d.status.clone())).collect();
        d.sort();
        let r: Vec<(String, i64, String)> =
            f.refunds.iter().map(|r| (r.id.clone(), r.amount, r.status.clone())).collect();
        (r, d)
    };
    if !events.is_empty() {
        assert_eq!(key(&recorded), key(&want), "the records equal Stripe's final objects");
    }
    let order = store.order(&sid).await.unwrap().unwrap();
    assert_eq!(order.money.amount_refunded, want.money().amount_refunded, "refunded amount");
    assert_eq!(
        order.money.dispute.as_ref().map(|d| &d.status),
        want.money().dispute.as_ref().map(|d| &d.status),
        "latest dispute"
    );
    assert_eq!(order.money_state(), Some(want.money().state()), "money state");
    // Each fact told once: per refund and per dispute, counted by kind.
    let mut told: HashMap<(&str, String), usize> = HashMap::new();
    for call in &calls {
        let (kind, subject) = match call {
            HookCall::Refunded { amount, .. } => ("refunded", amount.to_string()),
            HookCall::RefundFailed { amount, .. } => ("refund_failed", amount.to_string()),
            HookCall::DisputeOpened { status, .. } => ("opened", status.clone()),
            HookCall::DisputeClosed { status, .. } => ("closed", status.clone()),
            HookCall::Shipped { .. } | HookCall::Cancelled | HookCall::Oversold { .. } => {
                panic!("money changes never ship, cancel or oversell: {call:?}")
            }
        };
        *told.entry((kind, subject)).or_default() += 1;
    }
    let count = |kind: &str| calls.iter().filter(|c| format!("{c:?}").starts_with(kind)).count();
    let refunds = &want.refunds;
    let succeeded = refunds.iter().filter(|r| r.status == "succeeded").count();
    let reversed = refunds.iter().filter(|r| matches!(r.status.as_str(), "failed" | "canceled")).count();
    assert_eq!(count("RefundFailed"), reversed, "one call per failed or canceled refund: {calls:?}");
    assert!(count("Refunded") >= succeeded, "every refund that stands succeeded was told: {calls:?}");
    assert!(count("Refunded") <= succeeded + reversed, "no refund told twice: {calls:?}");
    let closed = want.disputes.iter().filter(|d| !d.is_open()).count();
    assert_eq!(count("DisputeClosed"), closed, "one call per closed dispute: {calls:?}");
    assert!(
        count("DisputeOpened") <= 2 * want.disputes.len(),
        "opened at most once, escalated at most once: {calls:?}"
    );
    let open = want.disputes.iter().filter(|d| d.is_open()).count();
    assert!(count("DisputeOpened") >= open, "an open dispute was told: {calls:?}");
}

fn check(backend: crate::common::Backend, cases: u32) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let store = crate::common::open_store(&crate::common::database_url(backend));
    let mut runner = TestRunner::new(Config { cases, ..Config::default() });
    let strategy = (
        proptest::collection::vec((any::<u8>(), any::<u8>()), 1..24),
        proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 1..32),
    );
    runner
        .run(&strategy, |(steps, deliveries)| {
            rt.block_on(run_case(&store, &steps, &deliveries));
            Ok(())
        })
        .unwrap();
}

#[test]
fn money_converges_to_stripes_objects_under_any_interleaving_sqlite() {
    check(crate::common::Backend::Sqlite, 96);
}

#[test]
#[cfg_attr(not(has_postgres), ignore = "needs Postgres: set TEST_DATABASE_URL (README, Tests)")]
fn money_converges_to_stripes_objects_under_any_interleaving_postgres() {
    check(crate::common::Backend::Postgres, 32);
}

#[test]
#[cfg_attr(
    not(has_pgbouncer),
    ignore = "needs PgBouncer: run tests/pgbouncer/start.sh, set TEST_PGBOUNCER_URL (README, Tests)"
)]
fn money_converges_to_stripes_objects_under_any_interleaving_pgbouncer() {
    check(crate::common::Backend::Pgbouncer, 16);
}
