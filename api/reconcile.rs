//! `GET /api/reconcile: Vercel Cron's reconciliation run (missed events).` — the logic lives in the library.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), vercel_runtime::Error> {
    checkout::vercel::run(checkout::routes::reconcile::handle).await
}
