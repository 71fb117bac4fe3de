//! `stripe-emulator` binary: serves the offline Stripe emulator on 127.0.0.1.
//!
//! Environment: `EMULATOR_PORT` (default 12111), `EMULATOR_WEBHOOK_URL` (optional),
//! `EMULATOR_WEBHOOK_SECRET` (default `whsec_emulator_local`), `EMULATOR_PUBLIC_URL`
//! (optional), `EMULATOR_PROMOTION_CODES` (optional path to a promotion-code fixture).

use stripe_emulator::{Emulator, Options};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let port = match env("EMULATOR_PORT").map(|p| p.trim().parse::<u16>()) {
        None => 12111,
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            eprintln!("stripe-emulator: EMULATOR_PORT must be a port number");
            std::process::exit(2);
        }
    };
    let secret = env("EMULATOR_WEBHOOK_SECRET").unwrap_or_else(|| "whsec_emulator_local".into());
    if secret.chars().any(char::is_whitespace) {
        eprintln!("stripe-emulator: EMULATOR_WEBHOOK_SECRET contains whitespace");
        std::process::exit(2);
    }
    let promotion_codes_json = match env("EMULATOR_PROMOTION_CODES") {
        None => None,
        Some(p) => match std::fs::read_to_string(&p) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("stripe-emulator: cannot read {p}: {e}");
                std::process::exit(2);
            }
        },
    };
    let webhook_url = env("EMULATOR_WEBHOOK_URL");
    let opts = Options {
        port,
        webhook_url: webhook_url.clone(),
        webhook_secret: secret,
        public_url: env("EMULATOR_PUBLIC_URL"),
        promotion_codes_json,
        ..Default::default()
    };
    let emu = match Emulator::start(opts).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("stripe-emulator: cannot start on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    println!("Stripe emulator (API {}) listening on {}", stripe_emulator::API_VERSION, emu.base_url());
    println!("Webhook secret: {}", emu.webhook_secret());
    match &webhook_url {
        Some(u) => println!("Webhooks are sent to: {u}"),
        None => println!("Webhooks: not delivered (set EMULATOR_WEBHOOK_URL)"),
    }
    println!(
        "Emails (Resend's API shape, any re_ key): POST {}/emails; outbox at {}/_emulator/outbox",
        emu.base_url(),
        emu.base_url()
    );
    println!("Put these lines in .env:");
    println!("STRIPE_API_BASE={}", emu.base_url());
    println!("STRIPE_SECRET_KEY=sk_test_emulator");
    println!("STRIPE_WEBHOOK_SECRET={}", emu.webhook_secret());
    let _ = tokio::signal::ctrl_c().await;
    emu.shutdown().await;
}
