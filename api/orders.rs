//! `GET /api/orders: the owner's order list (ADMIN_TOKEN).` — the logic lives in the library.

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    checkout::vercel::run(checkout::routes::orders::handle).await
}
