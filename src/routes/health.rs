//! `GET /api/health`: the doctor's checks and the health view, for the owner.
//!
//! Parse: GET; `ADMIN_TOKEN` unset ⇒ 404; the per-IP limit `RATE_LIMIT_ORDERS` (its own
//! bucket), counted before the token is checked (429); `Authorization: Bearer
//! <ADMIN_TOKEN>` compared in constant time (401 with one generic body). Decide: every check of
//! [`crate::doctor`] (one Stripe read, one POST to the shop's own public webhook URL, a few
//! store reads). Answer: [`crate::doctor::Health`] — `{"status", "checks": [{"check",
//! "status", "message", "fix"}], "record"}` — `no-store`, 200 whatever the checks found.
//! Never a key, a secret, a URL with a password or query, or an error's text.
//!
//! A configuration the instance refuses (a secret with a newline, keys of two modes) leaves no
//! instance to run the checks: like every function, this one then answers a generic 500 and
//! logs the variable and the rule; `cargo run -p dev -- doctor` then checks the variables it
//! has locally and names the one refused.

use crate::app::App;
use crate::http::{self, ApiError, Method, Response, StatusCode};

/// Runs the doctor for the owner.
pub async fn handle<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError> {
    http::require_method(req.method(), &[Method::GET])?;
    let Some(token) = &app.config.admin_token else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no such route").with_reason("ADMIN_TOKEN is not set"));
    };
    let ip = http::client_ip(req.headers());
    app.limiter.check(&app.store, "health", ip, app.config.orders_limit).await?;
    http::authorize_bearer(token, req.headers(), "ADMIN_TOKEN")?;
    let health = crate::doctor::examine(app).await;
    Ok(http::json(StatusCode::OK, &health))
}
