//! The bridge to Vercel's Rust runtime: every `api/*.rs` is `run(Route::X)`.

use crate::routes::{self, Route};
use vercel_runtime::{Request, ResponseBody, service_fn};

/// Serves one route with `vercel_runtime` (IPC on Vercel, `VERCEL_DEV_PORT` locally).
pub async fn run(route: Route) -> Result<(), vercel_runtime::Error> {
    vercel_runtime::run(service_fn(move |req: Request| async move {
        Ok::<_, vercel_runtime::Error>(routes::handle(route, req).await.map(ResponseBody::from))
    }))
    .await
}
