//! `POST /api/stock: the owner sets a product's stock (ADMIN_TOKEN).` — the logic lives in the library.

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    checkout::vercel::run(checkout::routes::stock::handle).await
}
