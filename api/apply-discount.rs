//! `POST /api/apply-discount: server-side totals for a promotion code.` — the logic lives in the library (`checkout::routes`).

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    checkout::vercel::run(checkout::Route::ApplyDiscount).await
}
