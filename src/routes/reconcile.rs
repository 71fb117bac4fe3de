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
use ::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Runs a reconciliation for Vercel Cron.
pub async fn handle<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError> {
    http::require_method(req.method(), &[Method::GET])?;
    authorize(&app.config.reconcile.cron_secret, req.headers())?;
    let report = run_once(app).await?;
    let mut resp = http::json(StatusCode::OK, &report);
    resp.headers_mut().insert(http::header::CACHE_CONTROL, http::header::HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Accepts only `Authorization: Bearer <CRON_SECRET>`, compared in constant time (of
/// SHA-256 digests, so not even the length leaks).
pub fn authorize(secret: &Result<String, &'static str>, headers: &HeaderMap) -> Result<(), ApiError> {
    let secret = secret.as_ref().map_err(|reason| ApiError::internal(*reason))?;
    let unauthorized = || ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized");
    let given = headers.get(http::header::AUTHORIZATION).ok_or_else(unauthorized)?.as_bytes();
    let token = given.strip_prefix(b"Bearer ").ok_or_else(|| unauthorized().with_reason("not a Bearer token"))?;
    let same: bool = Sha256::digest(token).ct_eq(&Sha256::digest(secret.as_bytes())).into();
    if same { Ok(()) } else { Err(unauthorized().with_reason("wrong CRON_SECRET")) }
}
