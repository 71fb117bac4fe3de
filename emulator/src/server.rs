//! The emulator's router: `/v1` behind its pipeline layers, the email stand-in (`/emails`), the
//! hosted page, the control routes, all behind the host guard.

use crate::state::Inner;
use crate::{API_VERSION, api, pipeline};
use axum::extract::State;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// Builds the emulator's router.
pub(crate) fn router(inner: Arc<Inner>) -> Router {
    // Layers wrap what is already there: the last added runs first.
    let v1 = any(api::handle)
        .layer(from_fn_with_state(inner.clone(), pipeline::faults))
        .layer(from_fn_with_state(inner.clone(), pipeline::idempotency))
        .layer(axum::middleware::from_fn(pipeline::auth))
        .layer(from_fn_with_state(inner.clone(), pipeline::record));
    Router::new()
        .route("/", get(root))
        .route("/v1/{*rest}", v1)
        .route("/emails", post(crate::email::send))
        .route("/c/pay/{id}", get(crate::page::page).post(crate::page::page_action))
        .merge(crate::control::routes())
        .layer(from_fn_with_state(inner.clone(), crate::guard::host_guard))
        .with_state(inner)
}

async fn root(s: State<Arc<Inner>>) -> impl IntoResponse {
    let url = s.0.webhook_url.lock().unwrap().clone();
    Json(json!({
        "emulator": "stripe-emulator", "api_version": API_VERSION, "base_url": s.0.base_url,
        "webhook_url": url, "livemode": false
    }))
}
