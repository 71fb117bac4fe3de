//! `POST /api/apply-discount: server-side totals for a promotion code.` — the logic lives in the library.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), vercel_runtime::Error> {
    checkout::vercel::run(checkout::routes::apply_discount::handle).await
}
