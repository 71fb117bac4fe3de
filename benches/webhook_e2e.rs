//! End-to-end webhook latency: a signed `checkout.session.completed` POSTed
//! over loopback HTTP to `/api/webhook`, which verifies it, retrieves the
//! session with its line items from the Stripe emulator, and records the
//! order and its fulfilment in one transaction — against SQLite, and against
//! Postgres when `TEST_DATABASE_URL` is set. Then a signed `charge.refunded` for a paid order:
//! verify, retrieve the charge, one transaction (event, money, history, hook run), the hook.
//! With Postgres, a third row puts the database `PG_RTT_MS` (default 1) away behind a proxy
//! (tests/common/wire.rs), as Neon is from a Vercel function, and counts round trips per event.
//! `cargo bench --bench webhook_e2e`.

#[path = "../tests/it/common/mod.rs"]
mod common;

use common::wire::{self, Wire};
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

/// Where the store is for one row of a table.
enum Store {
    /// A fresh SQLite file, or `TEST_DATABASE_URL` directly.
    Local(Backend),
    /// `TEST_DATABASE_URL` behind a proxy adding this round-trip time (and counting trips).
    Away(Duration),
}

async fn run(store: Store, kind: Kind) {
    let (label, wire, opts) = match store {
        Store::Local(backend) => {
            (format!("{backend:?}"), None, ShopOptions { backend: Some(backend), ..Default::default() })
        }
        Store::Away(rtt) => {
            let url = common::postgres_url().unwrap();
            let wire = Wire::start(wire::upstream(&url).await, rtt).await;
            let opts = ShopOptions { database_url: Some(wire.url(&url)), ..Default::default() };
            (format!("Postgres, {} ms away", rtt.as_secs_f64() * 1e3), Some(wire), opts)
        }
    };
    let s = common::shop(ShopOptions { no_webhooks: true, ..opts }).await;
    let mut samples = Vec::with_capacity(ROUNDS);
    let mut trips = 0;
    for i in 0..ROUNDS + 20 {
        let body = prepare(&s, kind).await;
        let t = checkout::clock::now();
        let header = checkout::signature::sign(WEBHOOK_SECRET.as_bytes(), t, &body);
        if let Some(w) = &wire {
            w.reset();
        }
        let started = Instant::now();
        let r = s.http.post(s.url("/api/webhook")).header("stripe-signature", header).body(body).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        let elapsed = started.elapsed();
        assert!(status.is_success() && text.contains("processed"), "{status} {text}");
        if i >= 20 {
            samples.push(elapsed);
            trips += wire.as_ref().map_or(0, Wire::round_trips);
        }
    }
    samples.sort();
    let trips = match wire {
        Some(_) => format!("{:.1}", trips as f64 / samples.len() as f64),
        None => "–".into(),
    };
    println!(
        "| {label} | {} | {:.2} | {:.2} | {:.2} | {trips} |",
        samples.len(),
        pct(&samples, 0.5),
        pct(&samples, 0.9),
        pct(&samples, 0.99)
    );
}

async fn table(title: &str, kind: Kind) {
    println!("{title}, ms");
    println!("| store | n | p50 | p90 | p99 | database round trips per event |");
    println!("|---|---|---|---|---|---|");
    run(Store::Local(Backend::Sqlite), kind).await;
    if common::postgres_url().is_some() {
        run(Store::Local(Backend::Postgres), kind).await;
        let ms = std::env::var("PG_RTT_MS").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(1.0);
        run(Store::Away(Duration::from_secs_f64(ms / 1e3)), kind).await;
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
