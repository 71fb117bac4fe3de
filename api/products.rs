//! `GET /api/products: the catalog for the storefront.` — the logic lives in the library (`checkout::routes`).

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    checkout::vercel::run(checkout::Route::Products).await
}
