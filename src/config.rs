//! Environment ⇒ a validated [`Config`], once per instance.
//!
//! A refusal names the variable and the rule, never the value: the reason is
//! logged and the shopper gets a generic 500 (see [`crate::app`]).

use std::fmt;
use std::time::Duration;

/// Where Stripe's API lives unless `STRIPE_API_BASE` says otherwise.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";
/// `SITE_URL` outside Vercel when unset (the dev server's address).
pub const DEFAULT_LOCAL_SITE_URL: &str = "http://localhost:3000";
/// SQLite file used outside Vercel when `DATABASE_URL` is unset.
pub const DEFAULT_LOCAL_DATABASE: &str = "sqlite://checkout.sqlite3";

/// SHA-256 (hex) of the secrets published in `.env.example`, the emulator and
/// Stripe's documentation (`sk_test_emulator`, `pk_test_emulator`,
/// `whsec_emulator_local`, `whsec_test_secret`): anyone can sign or
/// authenticate with them, so production refuses them. Kept as hashes so the
/// function binaries never carry the secrets themselves (`tests/binaries.rs`
/// scans them).
pub const WELL_KNOWN_SECRET_SHA256: &[&str] = &[
    "4ce339e33a860655984b1f57bdc674c8d725010350010de5872685642ad5c923",
    "043e4e60e605e962168dbf6417a3d5d798434a2ebe73549d5c79be691199b7a4",
    "6cc0e7f5c7d920cf1efbcd278cc374d7559e5b3eb01516e579d7851f090f604e",
    "7a200eb89adb0904fd5bc5ac4cac4f9528b0ac7bf03cbc2aa1508c26b055776f",
];

/// Whether `value` is one of the published example secrets.
pub fn is_well_known_secret(value: &str) -> bool {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(value.as_bytes()));
    WELL_KNOWN_SECRET_SHA256.contains(&digest.as_str())
}

/// A configuration refusal: which variable, and what rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Whether a key belongs to test mode or live mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `sk_test_`, `pk_test_`, `rk_test_`.
    Test,
    /// `sk_live_`, `pk_live_`, `rk_live_`.
    Live,
}

/// A Stripe secret (`sk_`) or restricted (`rk_`) API key. Its `Debug` hides it.
#[derive(Clone)]
pub struct SecretKey {
    value: String,
    mode: Mode,
}

impl SecretKey {
    /// The key, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.value
    }
    /// Test or live.
    pub fn mode(&self) -> Mode {
        self.mode
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({:?}, redacted)", self.mode)
    }
}

/// A publishable key. The only way to build one checks the `pk_` prefix, so
/// the page can never be handed anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishableKey(String);

impl PublishableKey {
    /// Validates a `pk_test_`/`pk_live_` key.
    pub fn parse(value: &str) -> Result<(Self, Mode), ConfigError> {
        check_secret_text("STRIPE_PUBLISHABLE_KEY", value)?;
        let mode = key_mode("STRIPE_PUBLISHABLE_KEY", value, &["pk_"])?;
        Ok((PublishableKey(value.to_string()), mode))
    }
    /// The key as text; safe to publish.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A webhook signing secret (`whsec_...`). Its `Debug` hides it.
#[derive(Clone)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// Builds a secret from text, checking its form.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        check_secret_text("STRIPE_WEBHOOK_SECRET", value)?;
        if !value.starts_with("whsec_") || value.len() <= "whsec_".len() {
            return Err(ConfigError(
                "STRIPE_WEBHOOK_SECRET: each secret must start with whsec_ (an sk_ key or a \
                 Connect endpoint's secret does not work here)"
                    .into(),
            ));
        }
        Ok(WebhookSecret(value.to_string()))
    }
    /// The secret's bytes, the HMAC key.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(redacted)")
    }
}

/// A bearer token the shop checks (`CRON_SECRET`, `ADMIN_TOKEN`). Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// The token's bytes, for the constant-time comparison only.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(redacted)")
    }
}

/// Hosted (redirect to Stripe) or embedded (Stripe.js on our page) Checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiMode {
    /// `hosted_page`: the shopper is redirected to the session's `url`.
    Hosted,
    /// `embedded_page`: the page mounts Checkout with the `client_secret`.
    Embedded,
}

impl UiMode {
    /// Stripe's name for the mode in the pinned API version.
    pub fn as_str(self) -> &'static str {
        match self {
            UiMode::Hosted => "hosted_page",
            UiMode::Embedded => "embedded_page",
        }
    }
}

/// Requests allowed per window, per client IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in one window.
    pub limit: u32,
    /// Window length.
    pub window: Duration,
}

/// Everything the functions read from the environment, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// `STRIPE_SECRET_KEY`.
    pub secret_key: SecretKey,
    /// `STRIPE_PUBLISHABLE_KEY`, optional (hosted Checkout needs none).
    pub publishable_key: Option<PublishableKey>,
    /// `STRIPE_WEBHOOK_SECRET`, comma-separated for rotation; empty when unset.
    pub webhook_secrets: Vec<WebhookSecret>,
    /// `STRIPE_API_BASE` without a trailing slash.
    pub api_base: String,
    /// `SITE_URL`: the shop's origin, normalised (lowercase scheme and host, no
    /// default port, no trailing slash).
    pub site_url: String,
    /// `DATABASE_URL` parsed: `postgres://...`, `sqlite://path` or `sqlite:path`.
    pub database: Database,
    /// `CHECKOUT_UI_MODE`: `hosted_page` (default) or `embedded_page`.
    pub ui_mode: UiMode,
    /// `STRIPE_MAX_RETRIES` (default 2, like stripe-node).
    pub max_retries: u32,
    /// `DISCOUNT_RESPONSE_FLOOR_MS`: every apply-discount answer takes at least this long.
    pub discount_floor: Duration,
    /// `RATE_LIMIT_APPLY_DISCOUNT` as `N/SECONDS` (default 10/60): distinct
    /// promotion codes a client may try per window (apply-discount and checkout).
    pub apply_discount_limit: RateLimit,
    /// `RATE_LIMIT_APPLY_DISCOUNT_REQUESTS` as `N/SECONDS` (default 60/60):
    /// apply-discount requests per client, whatever the code (cart changes).
    pub apply_discount_requests_limit: RateLimit,
    /// `RATE_LIMIT_CREATE_CHECKOUT` as `N/SECONDS` (default 20/60).
    pub create_checkout_limit: RateLimit,
    /// `RATE_LIMIT_CHECKOUT_STATUS` as `N/SECONDS` (default 120/60).
    pub checkout_status_limit: RateLimit,
    /// `CRON_SECRET`, and the reconciliation run's other settings.
    pub reconcile: ReconcileConfig,
    /// `STRIPE_AUTOMATIC_TAX=true`: Stripe Tax computes tax (`automatic_tax[enabled]=true`, with
    /// the catalog's tax codes and behaviour). Off by default.
    pub automatic_tax: bool,
    /// `SHIPPING_ALLOWED_COUNTRIES`: ISO codes a shippable cart may be sent to
    /// (default [`DEFAULT_SHIPPING_COUNTRIES`]).
    pub shipping_countries: Vec<String>,
    /// `ADMIN_TOKEN` for `GET /api/orders`: `None` when unset (the route answers 404), else the
    /// token, or why every call is refused (shorter than [`ADMIN_TOKEN_MIN_LEN`], whitespace).
    pub admin_token: Option<Result<BearerToken, &'static str>>,
    /// `RATE_LIMIT_ORDERS` as `N/SECONDS` (default 30/60): `/api/orders` requests per client,
    /// counted before the token is checked, so guesses are limited.
    pub orders_limit: RateLimit,
    /// `EMAIL_API_KEY`, `EMAIL_FROM`, ...: the shopper's email; `None` (no email) when unset.
    pub email: Option<EmailConfig>,
    /// `RATE_LIMIT_ORDER_ACTIONS` as `N/SECONDS` (default 30/60): `/api/order-action` requests
    /// per client, counted before the token is checked.
    pub order_actions_limit: RateLimit,
    /// `CATALOG_SOURCE` (`file`, the default, or `stripe`) and `CATALOG_TAG`: where the shop's
    /// products and prices come from.
    pub catalog_source: CatalogSource,
    /// `VERCEL_ENV=production`.
    pub production: bool,
    /// `ALLOW_TEST_KEYS_IN_PRODUCTION=true` (test keys in production, on purpose).
    pub allow_test_keys_in_production: bool,
    /// Whether `DATABASE_URL` looks like a pooled endpoint ([`is_pooled_url`]); `None` for SQLite.
    pub database_pooled: Option<bool>,
    /// `STOCK_OVERSOLD`: what happens to a payment that completes after its reservation was
    /// released and finds too few units (default [`OversoldRule::Fulfill`]).
    pub stock_oversold: OversoldRule,
}

/// Where the products and their prices come from (`CATALOG_SOURCE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogSource {
    /// `file`: `src/catalog.json`, compiled in.
    File,
    /// `stripe`: the account's Products whose `metadata[shop]` is `tag` (`CATALOG_TAG`), each
    /// with its default Price, copied into the store (see [`crate::products`]).
    Stripe {
        /// The value of `metadata[shop]` that marks a Product as this shop's.
        tag: String,
    },
}

/// `CATALOG_TAG`'s default: the value every session's `metadata[shop]` carries too.
pub const DEFAULT_CATALOG_TAG: &str = "checkout-rust";

/// `CATALOG_SOURCE` and `CATALOG_TAG` (1-100 of `[A-Za-z0-9_.-]`).
fn catalog_source(var: &impl Fn(&str) -> Option<String>) -> Result<CatalogSource, ConfigError> {
    let tag = var("CATALOG_TAG").unwrap_or_else(|| DEFAULT_CATALOG_TAG.to_string());
    if tag.is_empty()
        || tag.len() > 100
        || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(ConfigError("CATALOG_TAG: must be 1-100 of [A-Za-z0-9_.-]".into()));
    }
    match var("CATALOG_SOURCE").as_deref() {
        None | Some("file") => Ok(CatalogSource::File),
        Some("stripe") => Ok(CatalogSource::Stripe { tag }),
        Some(_) => Err(ConfigError("CATALOG_SOURCE: must be file or stripe".into())),
    }
}

/// Whether a Postgres URL looks like a connection pooler's endpoint, by the usual marks: a host
/// containing `-pooler` (Neon's pooled hosts), port 6432 (PgBouncer's default) or
/// `pgbouncer=true` (Prisma's marker, which Supabase's pooled strings carry). A heuristic: a
/// pooler on another name and port is not recognised (the doctor then only warns).
pub fn is_pooled_url(url: &str) -> bool {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let flagged = query.split('&').any(|p| p.eq_ignore_ascii_case("pgbouncer=true"));
    let authority = base.split_once("://").map_or(base, |(_, rest)| rest);
    let authority = authority.split('/').next().unwrap_or("");
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let pooler_host = hosts.to_ascii_lowercase().contains("-pooler");
    let port_6432 = hosts.split(',').any(|h| h.rsplit_once(':').is_some_and(|(_, port)| port == "6432"));
    flagged || pooler_host || port_6432
}

/// What the shop does with a payment that completed after its stock reservation was released
/// (a sweep raced it) when the units are no longer there: `STOCK_OVERSOLD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OversoldRule {
    /// `fulfill` (default): the order is fulfilled; the missing units are counted oversold
    /// (stock never goes below zero) and the owner's `on_oversold` hook hears of it.
    Fulfill,
    /// `refund`: the order is refunded in full at once and not fulfilled; `on_oversold` hears.
    Refund,
}

/// Where the shop's transactional email goes (see [`crate::email`]).
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// `EMAIL_API_KEY`: the provider's key (Resend: `re_...`); its `Debug` hides it.
    pub api_key: SecretText,
    /// `EMAIL_FROM`: e.g. `Ferris Shop <orders@shop.example>`.
    pub from: String,
    /// `EMAIL_REPLY_TO`, optional.
    pub reply_to: Option<String>,
    /// `EMAIL_API_BASE` (default `https://api.resend.com`; the dev server points it at the
    /// emulator's outbox).
    pub api_base: String,
    /// `EMAIL_ORDER_CONFIRMATION=true`: also send "order confirmed" (off by default, for shops
    /// whose Stripe account sends no receipts).
    pub order_confirmation: bool,
}

/// A secret string whose `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(String);

impl SecretText {
    /// The secret, for the one request that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(redacted)")
    }
}

/// The email settings: all unset is no email; a key without a sender is a configuration error.
fn email_config(var: &impl Fn(&str) -> Option<String>, production: bool) -> Result<Option<EmailConfig>, ConfigError> {
    let key = var("EMAIL_API_KEY");
    let from = var("EMAIL_FROM");
    let (key, from) = match (key, from) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(ConfigError("EMAIL_FROM: required with EMAIL_API_KEY".into())),
        (None, Some(_)) => return Err(ConfigError("EMAIL_API_KEY: required with EMAIL_FROM".into())),
        (Some(k), Some(f)) => (k, f),
    };
    if key.trim() != key || key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(ConfigError("EMAIL_API_KEY: empty or contains whitespace".into()));
    }
    let address_ok = |v: &str| v.contains('@') && !v.chars().any(|c| c.is_control()) && v.len() <= 320;
    if !address_ok(&from) {
        return Err(ConfigError("EMAIL_FROM: must be an address (`Shop <orders@shop.example>`)".into()));
    }
    let reply_to = var("EMAIL_REPLY_TO");
    if reply_to.as_deref().is_some_and(|r| !address_ok(r)) {
        return Err(ConfigError("EMAIL_REPLY_TO: must be an address".into()));
    }
    let api_base = match var("EMAIL_API_BASE") {
        None => DEFAULT_EMAIL_API_BASE.to_string(),
        Some(v) => {
            let base = check_url("EMAIL_API_BASE", &v, true)?;
            if production && base != DEFAULT_EMAIL_API_BASE {
                return Err(ConfigError(
                    "EMAIL_API_BASE: must be https://api.resend.com (or unset) when VERCEL_ENV=production".into(),
                ));
            }
            base
        }
    };
    let order_confirmation = match var("EMAIL_ORDER_CONFIRMATION").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ConfigError("EMAIL_ORDER_CONFIRMATION: must be true, false or unset".into())),
    };
    Ok(Some(EmailConfig { api_key: SecretText(key), from, reply_to, api_base, order_confirmation }))
}

/// Resend's API.
pub const DEFAULT_EMAIL_API_BASE: &str = "https://api.resend.com";

/// Where a shippable cart may be sent when `SHIPPING_ALLOWED_COUNTRIES` is unset.
pub const DEFAULT_SHIPPING_COUNTRIES: &[&str] = &["US", "CA"];

/// The shortest `ADMIN_TOKEN` accepted.
pub const ADMIN_TOKEN_MIN_LEN: usize = 32;

/// Every country code Stripe accepts in `shipping_address_collection[allowed_countries][]`
/// (the enum of the OpenAPI spec; `tests/stripe_spec.rs` checks this list against it).
pub const STRIPE_SHIPPING_COUNTRIES: &str = "AC AD AE AF AG AI AL AM AO AQ AR AT AU AW AX AZ BA BB BD BE BF BG \
    BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CD CF CG CH CI CK CL CM CN CO CR CV CW CY CZ DE DJ DK DM DO DZ EC \
    EE EG EH ER ES ET FI FJ FK FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HN HR HT HU ID IE IL \
    IM IN IO IQ IS IT JE JM JO JP KE KG KH KI KM KN KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MK \
    ML MM MN MO MQ MR MS MT MU MV MW MX MY MZ NA NC NE NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT \
    PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SZ TA TC TD TF TG TH TJ TK TL TM TN \
    TO TR TT TV TW TZ UA UG US UY UZ VA VC VE VG VN VU WF WS XK YE YT ZA ZM ZW ZZ";

fn shipping_countries(var: &impl Fn(&str) -> Option<String>) -> Result<Vec<String>, ConfigError> {
    let Some(v) = var("SHIPPING_ALLOWED_COUNTRIES") else {
        return Ok(DEFAULT_SHIPPING_COUNTRIES.iter().map(|c| c.to_string()).collect());
    };
    let mut out: Vec<String> = Vec::new();
    for code in v.split(',').map(str::trim) {
        let code = code.to_ascii_uppercase();
        if code.len() != 2 || !STRIPE_SHIPPING_COUNTRIES.split_whitespace().any(|c| c == code) {
            return Err(ConfigError(
                "SHIPPING_ALLOWED_COUNTRIES: each entry must be a two-letter country code Stripe ships to, \
                 comma-separated (e.g. US,CA,GB)"
                    .into(),
            ));
        }
        if !out.contains(&code) {
            out.push(code);
        }
    }
    Ok(out)
}

fn admin_token(var: &impl Fn(&str) -> Option<String>) -> Option<Result<BearerToken, &'static str>> {
    Some(match var("ADMIN_TOKEN")? {
        v if v.chars().any(char::is_whitespace) => {
            Err("ADMIN_TOKEN contains whitespace: /api/orders refuses every call")
        }
        v if v.len() < ADMIN_TOKEN_MIN_LEN => {
            Err("ADMIN_TOKEN is shorter than 32 characters: /api/orders refuses every call")
        }
        v => Ok(BearerToken(v)),
    })
}

/// The reconciliation run's settings (`GET /api/reconcile`).
#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// `CRON_SECRET` (at least 16 characters), or why the route refuses every call.
    pub cron_secret: Result<BearerToken, &'static str>,
    /// `RECONCILE_WINDOW_SECS`: how far back the first run looks (default 3 days, at most
    /// Stripe's 30 days of events).
    pub window: Duration,
    /// `RECONCILE_BUDGET_MS`: a run stops starting work after this long (default 20 s, well
    /// under vercel.json's `maxDuration` of 30 s; the next run resumes).
    pub budget: Duration,
    /// `RECONCILE_PAGE_SIZE`: events per `GET /v1/events` page (default 100, Stripe's maximum).
    pub page_size: u32,
}

/// The shortest `CRON_SECRET` accepted (Vercel recommends at least 16 random characters).
pub const CRON_SECRET_MIN_LEN: usize = 16;

fn reconcile_config(var: &impl Fn(&str) -> Option<String>) -> Result<ReconcileConfig, ConfigError> {
    let cron_secret = match var("CRON_SECRET") {
        None => Err("CRON_SECRET is not set: /api/reconcile refuses every call"),
        Some(v) if v.chars().any(char::is_whitespace) => {
            Err("CRON_SECRET contains whitespace: /api/reconcile refuses every call")
        }
        Some(v) if v.len() < CRON_SECRET_MIN_LEN => {
            Err("CRON_SECRET is shorter than 16 characters: /api/reconcile refuses every call")
        }
        Some(v) => Ok(BearerToken(v)),
    };
    let number = |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| match var(name) {
        None => Ok(default),
        Some(v) => v.parse::<u64>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
            ConfigError(format!("{name}: must be a whole number in {}..={}", range.start(), range.end()))
        }),
    };
    Ok(ReconcileConfig {
        cron_secret,
        window: Duration::from_secs(number("RECONCILE_WINDOW_SECS", 3 * 86_400, 1..=30 * 86_400)?),
        budget: Duration::from_millis(number("RECONCILE_BUDGET_MS", 20_000, 1..=280_000)?),
        page_size: number("RECONCILE_PAGE_SIZE", 100, 1..=100)? as u32,
    })
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `get`, so tests can pass a table.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        // An empty variable counts as unset (Vercel's UI and .env files make empty values easy).
        let var = |name: &str| get(name).filter(|v| !v.is_empty());
        let on_vercel = var("VERCEL").is_some_and(|v| v == "1");
        let production = var("VERCEL_ENV").is_some_and(|v| v == "production");

        let secret = var("STRIPE_SECRET_KEY").ok_or_else(|| ConfigError("STRIPE_SECRET_KEY: not set".into()))?;
        check_secret_text("STRIPE_SECRET_KEY", &secret)?;
        let mode = key_mode("STRIPE_SECRET_KEY", &secret, &["sk_", "rk_"])?;
        let secret_key = SecretKey { value: secret, mode };

        let publishable_key = match var("STRIPE_PUBLISHABLE_KEY") {
            None => None,
            Some(v) => {
                let (key, pk_mode) = PublishableKey::parse(&v)?;
                if pk_mode != mode {
                    return Err(ConfigError(
                        "STRIPE_PUBLISHABLE_KEY: test and live keys are mixed with STRIPE_SECRET_KEY".into(),
                    ));
                }
                Some(key)
            }
        };
        if mode == Mode::Live && !production {
            return Err(ConfigError("STRIPE_SECRET_KEY: live keys are only allowed when VERCEL_ENV=production".into()));
        }
        let allow_test_keys = match var("ALLOW_TEST_KEYS_IN_PRODUCTION").as_deref() {
            None => false,
            Some("true") => true,
            Some(_) => return Err(ConfigError("ALLOW_TEST_KEYS_IN_PRODUCTION: must be true or unset".into())),
        };
        if mode == Mode::Test && production && !allow_test_keys {
            return Err(ConfigError(
                "STRIPE_SECRET_KEY: a test key with VERCEL_ENV=production (a test-mode shop fulfils orders paid \
                 with public test cards); use live keys, or set ALLOW_TEST_KEYS_IN_PRODUCTION=true on purpose"
                    .into(),
            ));
        }

        let webhook_secrets = match get("STRIPE_WEBHOOK_SECRET") {
            None => Vec::new(),
            Some(v) if v.is_empty() => Vec::new(),
            Some(v) => v.split(',').map(WebhookSecret::parse).collect::<Result<Vec<_>, _>>()?,
        };

        let api_base = match var("STRIPE_API_BASE") {
            None => DEFAULT_API_BASE.to_string(),
            Some(v) => check_url("STRIPE_API_BASE", &v, false)?,
        };
        if api_base != DEFAULT_API_BASE && mode == Mode::Live {
            return Err(ConfigError("STRIPE_API_BASE: live keys are only sent to https://api.stripe.com".into()));
        }
        if api_base != DEFAULT_API_BASE && production {
            return Err(ConfigError(
                "STRIPE_API_BASE: must be https://api.stripe.com (or unset) when VERCEL_ENV=production".into(),
            ));
        }
        if production {
            let published = [("STRIPE_SECRET_KEY", Some(secret_key.expose().to_string()))]
                .into_iter()
                .chain([("STRIPE_PUBLISHABLE_KEY", publishable_key.as_ref().map(|k| k.as_str().to_string()))])
                .chain(
                    webhook_secrets
                        .iter()
                        .map(|s| ("STRIPE_WEBHOOK_SECRET", Some(String::from_utf8_lossy(s.expose()).into_owned()))),
                );
            for (name, value) in published {
                if value.is_some_and(|v| is_well_known_secret(&v)) {
                    return Err(ConfigError(format!(
                        "{name}: a published example value (.env.example or the emulator) with \
                         VERCEL_ENV=production; set the real one from the Stripe Dashboard"
                    )));
                }
            }
        }

        let site_url = match var("SITE_URL") {
            Some(v) if production => {
                let site = check_url("SITE_URL", &v, true)?;
                if !site.starts_with("https://") || is_local_origin(&site) {
                    return Err(ConfigError(
                        "SITE_URL: with VERCEL_ENV=production it must be the shop's public https origin, not \
                         localhost or a loopback address (paying shoppers would be sent there after paying)"
                            .into(),
                    ));
                }
                site
            }
            Some(v) => check_url("SITE_URL", &v, true)?,
            None if on_vercel => {
                return Err(ConfigError("SITE_URL: required on Vercel".into()));
            }
            None => DEFAULT_LOCAL_SITE_URL.to_string(),
        };

        let database = match var("DATABASE_URL") {
            Some(v) => {
                if v.trim() != v {
                    return Err(ConfigError("DATABASE_URL: contains whitespace".into()));
                }
                let database = Database::parse(&v)?;
                if on_vercel && matches!(database, Database::Sqlite(_)) {
                    return Err(ConfigError(
                        "DATABASE_URL: SQLite files do not survive on Vercel; use Postgres".into(),
                    ));
                }
                database
            }
            None if on_vercel => {
                return Err(ConfigError(
                    "DATABASE_URL: required on Vercel (a local file would silently vanish)".into(),
                ));
            }
            None => Database::parse(DEFAULT_LOCAL_DATABASE)?,
        };
        let database_pooled = match &database {
            Database::Sqlite(_) => None,
            Database::Postgres(..) => Some(var("DATABASE_URL").is_some_and(|url| is_pooled_url(&url))),
        };
        let pool = PoolConfig::from_lookup(var)?;
        let database = database.with_pool(pool);

        let ui_mode = match var("CHECKOUT_UI_MODE").as_deref() {
            None | Some("hosted_page") => UiMode::Hosted,
            Some("embedded_page") => UiMode::Embedded,
            Some(_) => {
                return Err(ConfigError("CHECKOUT_UI_MODE: must be hosted_page or embedded_page".into()));
            }
        };

        let max_retries = match var("STRIPE_MAX_RETRIES") {
            None => 2,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= 5)
                .ok_or_else(|| ConfigError("STRIPE_MAX_RETRIES: must be 0..=5".into()))?,
        };
        let discount_floor = match var("DISCOUNT_RESPONSE_FLOOR_MS") {
            None => Duration::from_millis(400),
            Some(v) => Duration::from_millis(
                v.parse::<u64>()
                    .ok()
                    .filter(|n| *n <= 10_000)
                    .ok_or_else(|| ConfigError("DISCOUNT_RESPONSE_FLOOR_MS: must be 0..=10000".into()))?,
            ),
        };

        Ok(Config {
            secret_key,
            publishable_key,
            webhook_secrets,
            api_base,
            site_url,
            database,
            ui_mode,
            max_retries,
            discount_floor,
            apply_discount_limit: rate_limit(&var, "RATE_LIMIT_APPLY_DISCOUNT", 10, 60)?,
            apply_discount_requests_limit: rate_limit(&var, "RATE_LIMIT_APPLY_DISCOUNT_REQUESTS", 60, 60)?,
            create_checkout_limit: rate_limit(&var, "RATE_LIMIT_CREATE_CHECKOUT", 20, 60)?,
            checkout_status_limit: rate_limit(&var, "RATE_LIMIT_CHECKOUT_STATUS", 120, 60)?,
            reconcile: reconcile_config(&var)?,
            automatic_tax: match var("STRIPE_AUTOMATIC_TAX").as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => return Err(ConfigError("STRIPE_AUTOMATIC_TAX: must be true, false or unset".into())),
            },
            shipping_countries: shipping_countries(&var)?,
            admin_token: admin_token(&var),
            orders_limit: rate_limit(&var, "RATE_LIMIT_ORDERS", 30, 60)?,
            email: email_config(&var, production)?,
            order_actions_limit: rate_limit(&var, "RATE_LIMIT_ORDER_ACTIONS", 30, 60)?,
            catalog_source: catalog_source(&var)?,
            production,
            allow_test_keys_in_production: production && allow_test_keys,
            database_pooled,
            stock_oversold: match var("STOCK_OVERSOLD").as_deref() {
                None | Some("fulfill") => OversoldRule::Fulfill,
                Some("refund") => OversoldRule::Refund,
                Some(_) => return Err(ConfigError("STOCK_OVERSOLD: must be fulfill or refund".into())),
            },
        })
    }

    /// Test or live, from the secret key.
    pub fn mode(&self) -> Mode {
        self.secret_key.mode()
    }
}

fn rate_limit(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    limit: u32,
    seconds: u64,
) -> Result<RateLimit, ConfigError> {
    let Some(v) = var(name) else {
        return Ok(RateLimit { limit, window: Duration::from_secs(seconds) });
    };
    let parsed = v.split_once('/').and_then(|(n, s)| {
        let n = n.parse::<u32>().ok().filter(|n| *n >= 1)?;
        let s = s.parse::<u64>().ok().filter(|s| (1..=86_400).contains(s))?;
        Some(RateLimit { limit: n, window: Duration::from_secs(s) })
    });
    parsed.ok_or_else(|| ConfigError(format!("{name}: must look like 10/60 (requests/seconds)")))
}

/// Refuses whitespace anywhere in a secret: a pasted trailing newline is the
/// classic way a correct key stops working.
fn check_secret_text(name: &str, value: &str) -> Result<(), ConfigError> {
    if value.trim() != value {
        return Err(ConfigError(format!("{name}: leading or trailing whitespace")));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(ConfigError(format!("{name}: contains whitespace or a newline")));
    }
    Ok(())
}

fn key_mode(name: &str, value: &str, prefixes: &[&str]) -> Result<Mode, ConfigError> {
    let Some(rest) = prefixes.iter().find_map(|p| value.strip_prefix(p)) else {
        return Err(ConfigError(format!("{name}: must start with {}", prefixes.join(" or "))));
    };
    let (mode, body) = if let Some(b) = rest.strip_prefix("test_") {
        (Mode::Test, b)
    } else if let Some(b) = rest.strip_prefix("live_") {
        (Mode::Live, b)
    } else {
        return Err(ConfigError(format!("{name}: must be a test_ or live_ key")));
    };
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(ConfigError(format!("{name}: malformed key")));
    }
    Ok(mode)
}

/// Whether a normalised origin names this machine: `localhost` (or a name under it), a
/// loopback or unspecified address.
fn is_local_origin(origin: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(origin) else { return true };
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.is_unspecified() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => true,
    }
}

/// Validates an absolute URL; plain http only for loopback hosts.
fn check_url(name: &str, value: &str, origin_only: bool) -> Result<String, ConfigError> {
    if value.trim() != value || value.chars().any(char::is_whitespace) {
        return Err(ConfigError(format!("{name}: contains whitespace")));
    }
    let url = reqwest::Url::parse(value).map_err(|_| ConfigError(format!("{name}: not an absolute URL")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(ConfigError(format!("{name}: plain http is only allowed for loopback")));
        }
        _ => return Err(ConfigError(format!("{name}: must be an http(s) URL"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError(format!("{name}: must not contain credentials")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError(format!("{name}: must not have a query or fragment")));
    }
    if origin_only && url.path() != "/" {
        return Err(ConfigError(format!("{name}: must be an origin, without a path")));
    }
    // Normalised as browsers send an Origin: scheme and host lowercased, the
    // default port and the trailing slash dropped (`https://Shop.Example:443/`
    // ⇒ `https://shop.example`), so comparisons and built URLs are exact.
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Whether a Postgres host is this machine (a loopback name or IP, or a Unix socket).
fn loopback_host(host: &tokio_postgres::config::Host) -> bool {
    match host {
        tokio_postgres::config::Host::Tcp(h) => {
            h.eq_ignore_ascii_case("localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(_) => true,
    }
}

/// Default of `DATABASE_POOL_SIZE`: most Postgres connections one instance holds. An instance
/// serves few requests at once, and each holds a connection only for one statement or
/// transaction (milliseconds, never across a Stripe call); a request beyond the pool waits
/// for a free connection, within the connect timeout.
pub const DEFAULT_POOL_SIZE: usize = 2;
/// The largest `DATABASE_POOL_SIZE` accepted.
pub const MAX_POOL_SIZE: usize = 32;
/// Default of `DATABASE_IDLE_TIMEOUT_SECS`: an idle connection is closed after this long, so
/// an instance that is warm but idle gives its connections back to the database.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `DATABASE_IDLE_TIMEOUT_SECS` accepted.
pub const MAX_IDLE_TIMEOUT_SECS: u64 = 3600;

/// One instance's Postgres pool: `DATABASE_POOL_SIZE` and `DATABASE_IDLE_TIMEOUT_SECS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most connections open at once (default [`DEFAULT_POOL_SIZE`]).
    pub size: usize,
    /// How long a connection may stay idle before it is closed (default
    /// [`DEFAULT_IDLE_TIMEOUT`]).
    pub idle_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig { size: DEFAULT_POOL_SIZE, idle_timeout: DEFAULT_IDLE_TIMEOUT }
    }
}

impl PoolConfig {
    /// Reads `DATABASE_POOL_SIZE` (1..=[`MAX_POOL_SIZE`]) and `DATABASE_IDLE_TIMEOUT_SECS`
    /// (1..=[`MAX_IDLE_TIMEOUT_SECS`]) through `var`; unset means the default.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<PoolConfig, ConfigError> {
        let number = |name: &str, default: u64, max: u64| match var(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| ConfigError(format!("{name}: must be a whole number in 1..={max}"))),
        };
        Ok(PoolConfig {
            size: number("DATABASE_POOL_SIZE", DEFAULT_POOL_SIZE as u64, MAX_POOL_SIZE as u64)? as usize,
            idle_timeout: Duration::from_secs(number(
                "DATABASE_IDLE_TIMEOUT_SECS",
                DEFAULT_IDLE_TIMEOUT.as_secs(),
                MAX_IDLE_TIMEOUT_SECS,
            )?),
        })
    }
}

/// Where the order store lives: `DATABASE_URL`, parsed once (the store takes it as given).
#[derive(Debug, Clone)]
pub enum Database {
    /// An SQLite file: `sqlite://path`, or sqlx's `sqlite:path`.
    Sqlite(String),
    /// Postgres, the URL parsed whole and its TLS decided (see [`postgres_config`]), and the
    /// instance's pool settings.
    Postgres(Box<tokio_postgres::Config>, PoolConfig),
}

impl Database {
    /// Parses a `DATABASE_URL` (`postgres://`, `postgresql://`, `sqlite://path`, `sqlite:path`).
    pub fn parse(url: &str) -> Result<Database, ConfigError> {
        let sqlite = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"));
        if let Some(path) = sqlite.filter(|p| !p.is_empty()) {
            return Ok(Database::Sqlite(path.to_string()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Database::Postgres(Box::new(postgres_config(url)?), PoolConfig::default()));
        }
        Err(ConfigError("DATABASE_URL: must start with postgres://, postgresql://, sqlite:// or sqlite:".into()))
    }

    /// The same database with these pool settings (SQLite has no pool: unchanged).
    pub fn with_pool(self, pool: PoolConfig) -> Database {
        match self {
            Database::Postgres(c, _) => Database::Postgres(c, pool),
            db => db,
        }
    }

    /// Where it is, for a banner or a log: the file, or Postgres' hosts, ports and database,
    /// never a user or password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("sqlite:{path}"),
            Database::Postgres(c, _) => {
                let hosts: Vec<String> = c
                    .get_hosts()
                    .iter()
                    .zip(c.get_ports().iter().chain(std::iter::repeat(&5432)))
                    .map(|(h, port)| match h {
                        tokio_postgres::config::Host::Tcp(h) => format!("{h}:{port}"),
                        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                    })
                    .collect();
                format!("postgres://{}/{}", hosts.join(","), c.get_dbname().unwrap_or(""))
            }
        }
    }
}

/// Parses a Postgres `DATABASE_URL` whole (hosts, ports, database, every
/// parameter), so a bad port or `sslmode` is a configuration error at start-up,
/// and decides its TLS. To any host that is not loopback, TLS is required:
/// no `sslmode` means `require`; `require`, `verify-ca` and `verify-full` all
/// verify the server's certificate against the webpki roots (rustls always
/// does); `disable`, `allow` and `prefer` — which send the password and the
/// data in the clear, or silently fall back to it — are refused.
pub fn postgres_config(url: &str) -> Result<tokio_postgres::Config, ConfigError> {
    use tokio_postgres::config::SslMode;
    let bad = |why: &str| ConfigError(format!("DATABASE_URL: {why}"));
    // tokio-postgres knows only disable/prefer/require: take sslmode out of the
    // query ourselves (raw pieces, so every other parameter keeps its encoding).
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut sslmode = None;
    let mut kept = Vec::new();
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        match piece.split_once('=') {
            Some(("sslmode", v)) => {
                if sslmode.replace(v).is_some() {
                    return Err(bad("sslmode given twice"));
                }
            }
            // Prisma's marker for a PgBouncer endpoint (in Supabase's pooled strings): nothing
            // to do here (every statement is pooler-safe), kept for the doctor's pooled check.
            Some(("pgbouncer", "true" | "false")) => {}
            _ => kept.push(piece),
        }
    }
    let rebuilt = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    let mut config: tokio_postgres::Config =
        rebuilt.parse().map_err(|_| bad("not a valid Postgres URL (check the host, port and parameters)"))?;
    if config.get_hosts().is_empty() {
        return Err(bad("no host"));
    }
    let remote =
        !config.get_hosts().iter().all(loopback_host) || !config.get_hostaddrs().iter().all(|ip| ip.is_loopback());
    let mode = match sslmode {
        None if remote => SslMode::Require,
        None => config.get_ssl_mode(),
        Some("require" | "verify-ca" | "verify-full") => SslMode::Require,
        Some("disable" | "allow" | "prefer") if remote => {
            return Err(bad(
                "sslmode=disable/allow/prefer permits a plaintext connection to a database that is not on \
                 loopback; use sslmode=require (or leave sslmode out)",
            ));
        }
        Some("disable") => SslMode::Disable,
        Some("allow" | "prefer") => SslMode::Prefer,
        Some(_) => {
            return Err(bad("sslmode must be require, verify-ca or verify-full (disable/prefer on loopback only)"));
        }
    };
    config.ssl_mode(mode);
    Ok(config)
}
