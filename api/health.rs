//! `GET /api/health: the doctor's checks and the health view (ADMIN_TOKEN).` — the logic lives in the library.

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    checkout::vercel::run(checkout::routes::health::handle).await
}
