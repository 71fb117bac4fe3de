//! Webhook signature micro-benchmarks (hand-written harness, no extra deps).
//!
//! `cargo bench --bench signature` (the bench profile inherits `[profile.release]`:
//! opt-level "s", fat LTO, one codegen unit — the functions' codegen). Each case is calibrated to ~0.25 s
//! per sample, 7 samples; the median sample is reported, with the min–max
//! spread so noise on a shared machine is visible. Total < 15 s.
//!
//! Cases, all over the same ~3 KB `checkout.session.completed` event:
//! - `hmac floor`: one raw HMAC-SHA256 of `"{t}.{payload}"` (`signature::compute`),
//!   the cost no verifier can go below;
//! - `verify 1×1`: `signature::verify`, one secret, one `v1` (the normal case);
//! - `authenticate`: `webhook::authenticate` = verify + the one-pass event reader (`stripe::event::parse`);
//! - `verify 3×3`: three secrets × three `v1` (rotation worst case: 3 HMACs, 9
//!   constant-time compares, the match in the last position).

#![recursion_limit = "256"]

use checkout::config::WebhookSecret;
use checkout::routes::webhook;
use checkout::signature;
use std::hint::black_box;
use std::time::{Duration, Instant};

const T: i64 = 1_767_225_600; // fixed: `now` is a parameter, so no clock
const SECRET: &str = "whsec_bench_3c1f0e9a7d2b4c6e8f1a3b5c7d9e0f21";

/// A realistic test-mode `checkout.session.completed` event, pretty-printed as
/// Stripe sends it, padded to 3072 bytes.
fn event() -> Vec<u8> {
    let session = serde_json::json!({
        "id": "cs_test_b1Qm3n8ZxYtR4kLp9WvA2sD7fG5hJ0kL3zXc6vB9nM1qW4eR7tY2uI5oP8aS",
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": false},
        "after_expiration": null,
        "allow_promotion_codes": false,
        "amount_subtotal": 2800,
        "amount_total": 2520,
        "billing_address_collection": null,
        "cancel_url": "https://shop.example.com/?canceled=1",
        "client_reference_id": "ord_7f3a9c2e5b1d4f6a",
        "client_secret": null,
        "consent": null,
        "consent_collection": null,
        "created": T - 120,
        "currency": "usd",
        "currency_conversion": null,
        "custom_fields": [],
        "customer": null,
        "customer_creation": "if_required",
        "customer_details": {
            "address": {"city": "Berlin", "country": "DE", "line1": "Hauptstraße 1", "line2": null, "postal_code": "10115", "state": null},
            "email": "jenny.rosen@example.com",
            "name": "Jenny Rosen",
            "phone": null,
            "tax_exempt": "none",
            "tax_ids": []
        },
        "customer_email": null,
        "discounts": [{"coupon": null, "promotion_code": "promo_1QbXyZ2eZvKYlo2C8aBcDeFg"}],
        "expires_at": T + 86_280,
        "invoice": null,
        "livemode": false,
        "locale": null,
        "metadata": {"order_ref": "ord_7f3a9c2e5b1d4f6a", "cart": "mug:2"},
        "mode": "payment",
        "payment_intent": "pi_3QbXyZ2eZvKYlo2C1a2b3c4d",
        "payment_link": null,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": {"id": "pmc_1QbXyZ2eZvKYlo2CabcdEFGH", "parent": null},
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card", "link"],
        "payment_status": "paid",
        "permissions": null,
        "phone_number_collection": {"enabled": false},
        "recovered_from": null,
        "saved_payment_method_options": null,
        "setup_intent": null,
        "shipping_address_collection": null,
        "shipping_cost": null,
        "shipping_options": [],
        "status": "complete",
        "submit_type": null,
        "subscription": null,
        "success_url": "https://shop.example.com/success.html?session_id={CHECKOUT_SESSION_ID}",
        "total_details": {"amount_discount": 280, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": null,
        "wallet_options": null
    });
    let mut ev = serde_json::json!({
        "id": "evt_1QbXyZ2eZvKYlo2CqRsTuVwX",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": T - 5,
        "data": {"object": session},
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": "checkout.session.completed"
    });
    // Pad to ~3 KB with a metadata note (Stripe pretty-prints; we do too).
    let mut body = serde_json::to_vec_pretty(&ev).unwrap();
    if body.len() < 3072 {
        let pad = "x".repeat(3072 - body.len() - 18); // `,\n      "note": ""`
        ev["data"]["object"]["metadata"]["note"] = pad.into();
        body = serde_json::to_vec_pretty(&ev).unwrap();
    }
    body
}

struct Row {
    name: &'static str,
    median_ns: f64,
    min_ns: f64,
    max_ns: f64,
}

/// Runs `f` in calibrated batches; returns ns/op of each of `samples` samples.
fn measure(mut f: impl FnMut()) -> (f64, f64, f64) {
    const SAMPLE: Duration = Duration::from_millis(250);
    const SAMPLES: usize = 7;
    // Warm up and calibrate: double the batch until one takes >= 25 ms.
    let mut iters: u64 = 1;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        let took = start.elapsed();
        if took >= Duration::from_millis(25) {
            iters = ((iters as f64) * SAMPLE.as_secs_f64() / took.as_secs_f64()).max(1.0) as u64;
            break;
        }
        iters *= 2;
    }
    let mut ns: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    ns.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (ns[SAMPLES / 2], ns[0], ns[SAMPLES - 1])
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // special but we still only run when asked to bench, to keep tests fast.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("signature bench: run with `cargo bench --bench signature`");
        return;
    }

    let body = event();
    let one = vec![WebhookSecret::parse(SECRET).unwrap()];
    let header = signature::sign(SECRET.as_bytes(), T, &body);

    // Rotation worst case: three secrets, three v1; only the last v1 under the
    // last secret matches (verify never short-circuits anyway).
    let three: Vec<WebhookSecret> = ["whsec_old_rotated_a1b2c3d4e5f6", "whsec_older_rotated_f6e5d4c3b2a1", SECRET]
        .iter()
        .map(|s| WebhookSecret::parse(s).unwrap())
        .collect();
    let wrong_a = hex::encode(signature::compute(b"whsec_other_1", T, &body));
    let wrong_b = hex::encode(signature::compute(b"whsec_other_2", T, &body));
    let right = hex::encode(signature::compute(SECRET.as_bytes(), T, &body));
    let header3 = format!("t={T},v1={wrong_a},v1={wrong_b},v1={right}");

    // Sanity: every case accepts (a bench of a rejection would be meaningless).
    assert_eq!(signature::verify(&body, Some(&header), &one, T), Ok(()));
    assert!(webhook::authenticate(&body, Some(&header), &one, T).is_ok_and(|event| event.is_ok()));
    assert_eq!(signature::verify(&body, Some(&header3), &three, T), Ok(()));

    let mut rows = Vec::new();
    let (m, lo, hi) = measure(|| {
        black_box(signature::compute(black_box(SECRET.as_bytes()), black_box(T), black_box(&body)));
    });
    rows.push(Row { name: "hmac floor (compute)", median_ns: m, min_ns: lo, max_ns: hi });
    let (m, lo, hi) = measure(|| {
        black_box(signature::verify(black_box(&body), black_box(Some(&header)), black_box(&one), black_box(T)))
            .unwrap();
    });
    rows.push(Row { name: "verify 1 secret x 1 v1", median_ns: m, min_ns: lo, max_ns: hi });
    let (m, lo, hi) = measure(|| {
        black_box(webhook::authenticate(black_box(&body), black_box(Some(&header)), black_box(&one), black_box(T)))
            .unwrap()
            .unwrap();
    });
    rows.push(Row { name: "authenticate (verify+JSON)", median_ns: m, min_ns: lo, max_ns: hi });
    let (m, lo, hi) = measure(|| {
        black_box(signature::verify(black_box(&body), black_box(Some(&header3)), black_box(&three), black_box(T)))
            .unwrap();
    });
    rows.push(Row { name: "verify 3 secrets x 3 v1", median_ns: m, min_ns: lo, max_ns: hi });

    let floor = rows[0].median_ns;
    println!();
    println!("payload: {} bytes (checkout.session.completed), one thread, median of 7 samples", body.len());
    println!();
    println!("| case                        |     ns/op |       ops/s | x floor | spread (min–max ns) |");
    println!("|-----------------------------|----------:|------------:|--------:|---------------------|");
    for r in &rows {
        println!(
            "| {:<27} | {:>9.0} | {:>11.0} | {:>7.2} | {:>8.0} – {:<8.0} |",
            r.name,
            r.median_ns,
            1e9 / r.median_ns,
            r.median_ns / floor,
            r.min_ns,
            r.max_ns
        );
    }
    println!();
}
