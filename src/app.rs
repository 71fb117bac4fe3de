//! One instance's state: validated config, the pooled Stripe client, the
//! order store and the in-instance rate limiter. Built once and reused across
//! invocations (Vercel keeps the process alive between requests).

use crate::config::Config;
use crate::ratelimit::Limiter;
use crate::refusals::RefusalTally;
use crate::store::{Store, StoreError};
use crate::stripe;
use std::sync::OnceLock;

/// Everything a route needs.
pub struct App {
    /// Validated configuration.
    pub config: Config,
    /// Stripe client (one connection pool per instance).
    pub stripe: stripe::Client,
    /// Order store.
    pub store: Store,
    /// In-instance token buckets (the shared counter lives in `store`).
    pub limiter: Limiter,
    /// Whose events this instance handles: one Stripe account and mode (`test
    /// https://api.stripe.com`); the reconciliation checkpoint and the health view are kept per
    /// source, so a shop that moves from test to live keys starts afresh.
    pub source: String,
    /// The webhook's refusals not yet written (see [`crate::refusals`]).
    pub refusals: RefusalTally,
    /// The Stripe catalog's first fill: one at a time per instance, and when it last failed
    /// (requests within a few seconds of a failure are refused instead of asking Stripe again).
    pub catalog_fill: tokio::sync::Mutex<Option<i64>>,
}

impl App {
    /// Builds the state for a config.
    pub fn new(config: Config) -> Result<App, StoreError> {
        let stripe = stripe::Client::new(
            &config.api_base,
            config.secret_key.clone(),
            stripe::RetryPolicy::stripe_node(config.max_retries),
        );
        let store = Store::open(&config.database)?;
        if config.email.is_none() {
            crate::log::info("shopper email off: EMAIL_API_KEY and EMAIL_FROM are unset", &[]);
        }
        let mode = match config.mode() {
            crate::config::Mode::Test => "test",
            crate::config::Mode::Live => "live",
        };
        let source = format!("{mode} {}", config.api_base);
        Ok(App {
            config,
            stripe,
            store,
            limiter: Limiter::default(),
            source,
            refusals: RefusalTally::default(),
            catalog_fill: tokio::sync::Mutex::new(None),
        })
    }

    /// The instance's state, from the environment, built on first use; or why it cannot be
    /// built (a bad configuration's exact reason, never a value), which the edge logs on every
    /// request and answers with a generic 500.
    pub fn shared() -> Result<&'static App, &'static str> {
        static APP: OnceLock<Result<App, String>> = OnceLock::new();
        let app = APP.get_or_init(|| {
            let config = Config::from_env().map_err(|e| format!("configuration error: {e}"))?;
            App::new(config).map_err(|e| format!("store error: {e}"))
        });
        app.as_ref().map_err(String::as_str)
    }
}
