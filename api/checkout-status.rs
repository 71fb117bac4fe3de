//! `GET /api/checkout-status: what the success page shows.` — the logic lives in the library.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), vercel_runtime::Error> {
    checkout::vercel::run(checkout::routes::checkout_status::handle).await
}
