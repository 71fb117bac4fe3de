//! End-to-end webhook latency: a signed `checkout.session.completed` POSTed
//! over loopback HTTP to `/api/webhook`, which verifies it, retrieves the
//! session with its line items from the Stripe emulator, and records the
//! order and its fulfilment in one transaction — against SQLite, and against
//! Postgres when `TEST_DATABASE_URL` is set. Then a signed `charge.refunded` for a paid order:
//! verify, retrieve the charge, one transaction (event, money, history, hook run), the hook.
//! `cargo bench --bench webhook_e2e`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Backend, ShopOptions, WEBHOOK_SECRET};
use std::time::{Duration, Instant};

const ROUNDS: usize = 200;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// Which event is measured.
#[derive(Clone, Copy)]
enum Kind {
    /// `checkout.session.completed` for a freshly paid session.
    Completed,
    /// `charge.refunded` for an order already recorded as paid.
    Refunded,
}

/// A signed event of `kind`, ready to deliver.
async fn prepare(s: &common::Shop, kind: Kind) -> Vec<u8> {
    let id = s.checkout(r#"{"items":[{"id":"tshirt","quantity":1},{"id":"mug","quantity":2}]}"#).await;
    s.emu.pay(&id, "pay").unwrap();
    let wanted = match kind {
        Kind::Completed => "checkout.session.completed",
        Kind::Refunded => {
            let r = s.get(&format!("/api/checkout-status?session_id={id}")).await;
            assert_eq!(r.0, 200, "the order is recorded first");
            s.emu.refund(&id, Some(100)).unwrap();
            "charge.refunded"
        }
    };
    let event = s.emu.events().into_iter().rev().find(|e| e["type"] == wanted).unwrap();
    serde_json::to_vec(&event).unwrap()
}

async fn run(backend: Backend, kind: Kind) {
    let s = common::shop(ShopOptions { backend: Some(backend), no_webhooks: true, ..Default::default() }).await;
    let mut samples = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS + 20 {
        let body = prepare(&s, kind).await;
        let t = checkout::clock::now();
        let header = checkout::signature::sign(WEBHOOK_SECRET.as_bytes(), t, &body);
        let started = Instant::now();
        let r = s.http.post(s.url("/api/webhook")).header("stripe-signature", header).body(body).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        let elapsed = started.elapsed();
        assert!(status.is_success() && text.contains("processed"), "{status} {text}");
        if i >= 20 {
            samples.push(elapsed);
        }
    }
    samples.sort();
    println!(
        "| {backend:?} | {} | {:.2} | {:.2} | {:.2} |",
        samples.len(),
        pct(&samples, 0.5),
        pct(&samples, 0.9),
        pct(&samples, 0.99)
    );
}

async fn table(title: &str, kind: Kind) {
    println!("{title}, ms");
    println!("| store | n | p50 | p90 | p99 |");
    println!("|---|---|---|---|---|");
    run(Backend::Sqlite, kind).await;
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        run(Backend::Postgres, kind).await;
    } else {
        println!("(Postgres skipped: set TEST_DATABASE_URL)");
    }
}

#[tokio::main]
async fn main() {
    table("webhook end to end (verify + retrieve session from the emulator + one store transaction)", Kind::Completed)
        .await;
    println!();
    table(
        "refund event end to end (verify + retrieve the charge + one store transaction + on_refunded)",
        Kind::Refunded,
    )
    .await;
}
