//! The reconciliation run's throughput: N paid orders whose webhooks were all dropped, then
//! one `GET /api/reconcile` (list the events from the emulator, fulfil each order: retrieve
//! the session, one store transaction, the owner's hook). Against SQLite, and Postgres when
//! `TEST_DATABASE_URL` is set. `cargo bench --bench reconcile` (N = 1000; `RECONCILE_BENCH_N`).

#[path = "../tests/it/common/mod.rs"]
mod common;

use common::{Backend, ShopOptions};
use std::time::Instant;
use stripe_emulator::WebhookFaults;

const SECRET: &str = "bench-cron-secret-0123456789";

async fn run(backend: Backend, n: usize) {
    let env = vec![
        ("CRON_SECRET", SECRET.to_string()),
        ("RECONCILE_BUDGET_MS", "280000".to_string()),
        ("RATE_LIMIT_CREATE_CHECKOUT", "100000/60".to_string()),
    ];
    let s = common::shop(ShopOptions { backend: Some(backend), env, ..Default::default() }).await;
    s.emu.set_webhook_faults(WebhookFaults { drop: true, ..Default::default() });
    for _ in 0..n {
        let id = s.checkout(r#"{"items":[{"id":"tshirt","quantity":1}]}"#).await;
        s.emu.pay(&id, "pay").unwrap();
    }
    let started = Instant::now();
    let r = s.http.get(s.url("/api/reconcile")).bearer_auth(SECRET).send().await.unwrap();
    let elapsed = started.elapsed();
    let (status, _, json) = common::split(r).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["processed"].as_u64(), Some(n as u64), "{json}");
    let requests = s.requests_to("/v1/events").len();
    println!(
        "| {backend:?} | {n} | {:.2} | {:.0} | {requests} |",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let n = std::env::var("RECONCILE_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    println!("reconciliation run over missed checkout.session.completed events (emulator on loopback)");
    println!("| store | events | run (s) | events/s | list requests |");
    println!("|---|---|---|---|---|");
    run(Backend::Sqlite, n).await;
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        run(Backend::Postgres, n).await;
    } else {
        println!("(Postgres skipped: set TEST_DATABASE_URL)");
    }
}
