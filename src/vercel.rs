//! The bridge to Vercel's Rust runtime. Each `api/*.rs` passes its own
//! route function, so the binary links that route alone (LTO drops the rest).

use crate::app::App;
use crate::http::{self, ApiError, Response};
use vercel_runtime::{Request, ResponseBody, service_fn};

/// Serves one route with `vercel_runtime` (IPC on Vercel, `VERCEL_DEV_PORT`
/// locally), with the instance's shared state; every error becomes its response, logged once
/// here.
pub async fn run<H, Fut>(route: H) -> Result<(), vercel_runtime::Error>
where
    H: Fn(&'static App, Request) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    vercel_runtime::run(service_fn(move |req: Request| async move {
        let response = match App::shared() {
            Ok(app) => http::answer(route(app, req).await),
            Err(reason) => http::answer(Err(ApiError::internal(reason))),
        };
        Ok::<_, vercel_runtime::Error>(response.map(ResponseBody::from))
    }))
    .await
}
