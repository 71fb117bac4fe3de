//! `POST /api/create-checkout: a Checkout Session priced by the server.` — the logic lives in the library (`checkout::routes`).

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    checkout::vercel::run(checkout::Route::CreateCheckout).await
}
