//! Wall time of `POST /api/create-checkout` over loopback HTTP, Stripe emulator included.
//!
//! `cargo bench --bench checkout`. Starts `stripe_emulator::Emulator` and the
//! library's routes on a hyper server (the same `routes::dispatch` the function
//! binaries run, served as tests/common does), then times, one request at a
//! time over a keep-alive client: 20 warm-up then 300 measured requests, for a
//! cart without a code (one Stripe call: create the session) and with `SAVE10`
//! (two: look up the promotion code, then create). Each timing covers the
//! client's request, our handler (cart check, rate limiter incl. the SQLite
//! shared counter, form encoding) and the emulator round trip over HTTP.
//!
//! The routes log one JSON line per session to stderr, as on Vercel. To keep the
//! output readable the bench runs itself as a child with stderr on a pipe and
//! drops those `info` lines (the child still pays for writing them).

#[path = "../tests/it/common/mod.rs"]
mod common;

use checkout::{App, Config};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stripe_emulator::{Emulator, Options};

const WARMUP: usize = 20;
const MEASURED: usize = 300;
const SECRET_KEY: &str = "sk_test_bench4242";
const CHILD_ENV: &str = "CHECKOUT_BENCH_CHILD";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("checkout bench: run with `cargo bench --bench checkout`");
        return;
    }
    if std::env::var_os(CHILD_ENV).is_some() {
        return child();
    }
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args(&args[1..])
        .env(CHILD_ENV, "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("bench child starts");
    let stderr = child.stderr.take().unwrap();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if !line.starts_with(r#"{"level":"info""#) {
            eprintln!("{line}");
        }
    }
    let status = child.wait().expect("bench child ends");
    std::process::exit(status.code().unwrap_or(1));
}

#[tokio::main]
async fn child() {
    let emu = Emulator::start(Options { webhook_secret: "whsec_bench_emulator".into(), ..Default::default() })
        .await
        .expect("emulator starts");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let site = format!("http://localhost:{}", addr.port());
    let dir = std::env::temp_dir().join("checkout-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join(format!("checkout-{}.sqlite3", std::process::id()));
    let env: HashMap<&str, String> = HashMap::from([
        ("STRIPE_SECRET_KEY", SECRET_KEY.to_string()),
        ("STRIPE_WEBHOOK_SECRET", "whsec_bench_emulator".to_string()),
        ("STRIPE_API_BASE", emu.base_url()),
        ("SITE_URL", site.clone()),
        ("DATABASE_URL", format!("sqlite://{}", db.display())),
        ("DISCOUNT_RESPONSE_FLOOR_MS", "0".to_string()),
        // The bench is one client IP making 640 requests: lift the limiter's
        // ceiling so it is exercised (bucket + shared counter) but never refuses.
        ("RATE_LIMIT_CREATE_CHECKOUT", "1000000/60".to_string()),
        // A code at checkout also counts against apply-discount's limit.
        ("RATE_LIMIT_APPLY_DISCOUNT", "1000000/60".to_string()),
    ]);
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("bench config is valid");
    let app = Arc::new(App::new(config).expect("store opens"));
    common::serve(listener, app);

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{}/api/create-checkout", addr.port());

    println!();
    println!(
        "create-checkout over loopback HTTP (client -> routes -> emulator), sequential, keep-alive; {WARMUP} warm-up + {MEASURED} measured"
    );
    println!();
    println!(
        "| cart                          | Stripe calls | median ms | p90 ms | p99 ms | max ms | req/s (1 client) |"
    );
    println!(
        "|-------------------------------|-------------:|----------:|-------:|-------:|-------:|-----------------:|"
    );
    let deadline = Instant::now() + Duration::from_secs(50);
    for (label, calls, body) in [
        ("mug x2, no code", 1, r#"{"items":[{"id":"mug","quantity":2}]}"#),
        ("mug x2, code SAVE10", 2, r#"{"items":[{"id":"mug","quantity":2}],"code":"SAVE10"}"#),
    ] {
        let mut ms = Vec::with_capacity(MEASURED);
        for i in 0..WARMUP + MEASURED {
            assert!(Instant::now() < deadline, "checkout bench exceeded its time budget");
            let start = Instant::now();
            let resp = http
                .post(&url)
                .header("content-type", "application/json")
                .header("origin", &site)
                .body(body)
                .send()
                .await
                .expect("create-checkout answers");
            let status = resp.status();
            let bytes = resp.bytes().await.expect("body");
            let took = start.elapsed();
            assert_eq!(status, 200, "create-checkout failed: {}", String::from_utf8_lossy(&bytes));
            assert!(bytes.starts_with(br#"{"url":"#), "{}", String::from_utf8_lossy(&bytes));
            if i >= WARMUP {
                ms.push(took.as_secs_f64() * 1e3);
            }
        }
        let total: f64 = ms.iter().sum();
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let q = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
        println!(
            "| {:<29} | {:>12} | {:>9.3} | {:>6.3} | {:>6.3} | {:>6.3} | {:>16.0} |",
            label,
            calls,
            q(0.50),
            q(0.90),
            q(0.99),
            ms[ms.len() - 1],
            ms.len() as f64 / (total / 1e3)
        );
    }
    println!();
    let _ = std::fs::remove_file(&db);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}
