//! `GET /api/products: the catalog for the storefront.` — the logic lives in the library.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), vercel_runtime::Error> {
    checkout::vercel::run(checkout::routes::products::handle).await
}
