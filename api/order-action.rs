//! `POST /api/order-action: the owner's actions on an order (ADMIN_TOKEN).` — the logic lives in the library.

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    checkout::vercel::run(checkout::routes::order_action::handle).await
}
