//! `GET /api/reconcile`: Vercel Cron's reconciliation run (see [`crate::reconcile`]).
//!
//! Parse: GET with `Authorization: Bearer <CRON_SECRET>`, compared in constant time; anything
//! else is 401 with a generic body, and an unset or short secret refuses every call (a logged
//! configuration error, generic 500). Decide: one run within `RECONCILE_BUDGET_MS`. Answer:
//! the run's [`crate::reconcile::Report`] (`no-store`); 502/500 when Stripe or the store stopped it. No rate
//! limit: nothing runs before the secret matched.

use crate::app::App;
use crate::http::{self, ApiError, Method, Response, StatusCode};
use crate::reconcile::run_once;

/// Runs a reconciliation for Vercel Cron.
pub async fn handle<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError> {
    http::require_method(req.method(), &[Method::GET])?;
    http::authorize_bearer(&app.config.reconcile.cron_secret, req.headers(), "CRON_SECRET")?;
    let report = run_once(app).await?;
    let mut resp = http::json(StatusCode::OK, &report);
    resp.headers_mut().insert(http::header::CACHE_CONTROL, http::header::HeaderValue::from_static("no-store"));
    Ok(resp)
}
