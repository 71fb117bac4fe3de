//! `POST /api/webhook: verified Stripe events and exactly-once fulfilment.` — the logic lives in the library.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), vercel_runtime::Error> {
    checkout::vercel::run(checkout::routes::webhook::handle).await
}
