//! `POST /api/create-checkout: a Checkout Session priced by the server.` — the logic lives in the library.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), vercel_runtime::Error> {
    checkout::vercel::run(checkout::routes::create_checkout::handle).await
}
