//! The doctor: the set-up mistakes that lose orders, each checked from inside the deployment
//! (`GET /api/health`, and `cargo run -p dev -- doctor https://SHOP` through it), and the
//! health view: what the webhook saw.
//!
//! Each [`Check`] is `pass`, `warn` or `fail` with a one-line message and, unless it passes, a
//! one-line fix. The checks: the keys (one cheap read, `GET /v1/webhook_endpoints`, which the
//! endpoint check needs anyway), the webhook endpoint (exactly one enabled endpoint at
//! `SITE_URL/api/webhook`, every [`EventType`], the pinned [`API_VERSION`]), reachability (the
//! function POSTs to its own public webhook URL without following redirects: only the
//! verifier's own 400 passes), the secrets, the store (reachable, schema current, the last
//! reconciliation run) and the owner's hook runs. Nothing secret is ever in an answer: no key,
//! no secret, no URL with a password or a query, no error's text (those go to the log).

use crate::app::App;
use crate::config::{Database, Mode, UiMode};
use crate::signature::RefusalClass;
use crate::store::{OpenRun, StoreError, Via};
use crate::stripe::types::List;
use crate::stripe::{API_VERSION, EventType, Form, StripeError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A reconciliation run older than this is a warning (a daily cron plus slack).
pub const RECONCILE_STALE_SECS: i64 = 26 * 3600;
/// How long the reachability probe waits for its own webhook.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(8);
/// Hook runs listed at most.
pub const HOOK_RUNS_SHOWN: u32 = 20;
/// Pages of webhook endpoints read at most (100 each).
const ENDPOINT_PAGES: usize = 10;
/// The public message of the webhook's refusal, which the reachability check expects.
pub const VERIFIER_REFUSAL: &str = "invalid webhook";

/// How a check came out (ordered: the worst is the largest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to do.
    Pass,
    /// Works, but something is likely to go wrong.
    Warn,
    /// Orders can be lost or refused: fix it.
    Fail,
}

impl Status {
    /// `PASS`, `WARN` or `FAIL`, as the command line prints it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// The check's name (`keys`, `webhook_endpoint`, ...).
    pub check: String,
    /// Pass, warn or fail.
    pub status: Status,
    /// What was found, one line.
    pub message: String,
    /// What to do, one line (warn and fail only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fix: Option<String>,
}

impl Check {
    fn pass(check: &str, message: impl Into<String>) -> Check {
        Check { check: check.into(), status: Status::Pass, message: message.into(), fix: None }
    }
    fn warn(check: &str, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { check: check.into(), status: Status::Warn, message: message.into(), fix: Some(fix.into()) }
    }
    fn fail(check: &str, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { check: check.into(), status: Status::Fail, message: message.into(), fix: Some(fix.into()) }
    }
}

/// The answer of `GET /api/health`.
#[derive(Debug, Serialize)]
pub struct Health {
    /// The deployment's `SITE_URL` (the command line compares it with the shop it was given).
    pub site_url: String,
    /// The worst status of the checks.
    pub status: Status,
    /// Every check, in a fixed order.
    pub checks: Vec<Check>,
    /// What the webhook saw (`None` when the store could not be read).
    pub record: Option<Record>,
}

/// The health view: what the webhook saw, the last reconciliation run, the owner's hook runs
/// that did not finish. Times are Unix seconds.
#[derive(Debug, Serialize)]
pub struct Record {
    /// The last event a webhook delivery brought and the store recorded.
    pub last_event: Option<SeenEvent>,
    /// The last refused delivery.
    pub last_refusal: Option<Refusal>,
    /// Refused deliveries per class over the last 24 hours (this instance's unwritten ones
    /// included).
    pub refusals_24h: BTreeMap<String, i64>,
    /// The last reconciliation run.
    pub last_reconcile_run: Option<ReconcileRunView>,
    /// Hook runs claimed and not finished, oldest first (at most [`HOOK_RUNS_SHOWN`]).
    pub hook_runs: Vec<HookRunView>,
    /// How many there are in all.
    pub hook_runs_open: i64,
}

/// An event as the health view shows it.
#[derive(Debug, Serialize)]
pub struct SeenEvent {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it was recorded.
    pub at: i64,
}

/// A refusal as the health view shows it.
#[derive(Debug, Serialize)]
pub struct Refusal {
    /// Its class ([`RefusalClass::as_str`]).
    pub class: String,
    /// When.
    pub at: i64,
}

/// The last reconciliation run as the health view shows it.
#[derive(Debug, Serialize)]
pub struct ReconcileRunView {
    /// When it ended.
    pub at: i64,
    /// Events it acted on.
    pub processed: i64,
    /// Whether it reached the newest event.
    pub finished: bool,
    /// Whether an error stopped it.
    pub failed: bool,
}

/// An unfinished hook run as the health view shows it.
#[derive(Debug, Serialize)]
pub struct HookRunView {
    /// `fulfillment` or `after_payment`.
    pub kind: String,
    /// The Checkout Session (`fulfillment`) or event (`after_payment`) id.
    pub id: String,
    /// Attempts so far.
    pub attempts: i64,
    /// When it was last claimed.
    pub claimed_at: i64,
    /// `running` (within its lease) or `failed` (the lease lapsed: the hook failed or its
    /// instance stopped; the next delivery or run takes it over).
    pub state: &'static str,
}

/// A webhook endpoint as `GET /v1/webhook_endpoints` lists it (the fields the doctor reads).
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookEndpoint {
    /// `we_...`.
    pub id: String,
    /// Where Stripe delivers.
    pub url: String,
    /// The event types it receives (`*` for all).
    #[serde(default)]
    pub enabled_events: Vec<String>,
    /// The API version its events are rendered in (`None`: the account's default).
    pub api_version: Option<String>,
    /// `enabled` or `disabled`.
    pub status: String,
}

/// The event types the shop handles that `enabled` lacks (none when it holds `*`), in
/// [`EventType::ALL`]'s order.
pub fn missing_events(enabled: &[String]) -> Vec<&'static str> {
    if enabled.iter().any(|e| e == "*") {
        return vec![];
    }
    EventType::ALL.iter().map(|t| t.as_str()).filter(|t| !enabled.iter().any(|e| e == t)).collect()
}

/// The URL Stripe delivers to when exactly one enabled endpoint is `expected` (its query
/// included); `None` otherwise.
pub fn delivery_url<'a>(expected: &str, endpoints: &'a [WebhookEndpoint]) -> Option<&'a str> {
    let mut at = endpoints.iter().filter(|e| e.status == "enabled" && without_query(&e.url) == expected);
    match (at.next(), at.next()) {
        (Some(one), None) => Some(one.url.as_str()),
        _ => None,
    }
}

/// A URL without its query and fragment (a Deployment Protection bypass secret can sit in an
/// endpoint's query; it is never shown).
pub fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// The other of `www.host` and `host`, when `a` and `b` differ only by it.
fn www_pair(a: &str, b: &str) -> bool {
    let host = |u: &str| reqwest::Url::parse(u).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    match (host(a), host(b)) {
        (Some(a), Some(b)) => a.strip_prefix("www.") == Some(b.as_str()) || b.strip_prefix("www.") == Some(a.as_str()),
        _ => false,
    }
}

/// The webhook endpoint check over the endpoints Stripe listed, for `expected`
/// (`SITE_URL/api/webhook`). `stripe-setup` makes an endpoint that passes.
pub fn endpoint_check(expected: &str, endpoints: &[WebhookEndpoint]) -> Check {
    const NAME: &str = "webhook_endpoint";
    let setup = |site: &str| format!("run `cargo run -p dev -- stripe-setup {site}` and store the secret it prints");
    let site = expected.trim_end_matches("/api/webhook");
    let at: Vec<&WebhookEndpoint> = endpoints.iter().filter(|e| without_query(&e.url) == expected).collect();
    let enabled: Vec<&WebhookEndpoint> = at.iter().copied().filter(|e| e.status == "enabled").collect();
    let ids = |list: &[&WebhookEndpoint]| list.iter().map(|e| e.id.as_str()).collect::<Vec<_>>().join(", ");
    let endpoint = match enabled.as_slice() {
        [one] => *one,
        [] if !at.is_empty() => {
            return Check::fail(
                NAME,
                format!("the endpoint for {expected} is disabled ({}): Stripe delivers nothing", ids(&at)),
                "enable it in Dashboard → Developers → Webhooks (or run stripe-setup again)",
            );
        }
        [] => {
            let near: Vec<&str> = endpoints
                .iter()
                .map(|e| without_query(&e.url))
                .filter(|u| u.ends_with("/api/webhook") && www_pair(u, expected))
                .collect();
            return match near.first() {
                Some(other) => Check::fail(
                    NAME,
                    format!("no endpoint for {expected}, but one for {other}: the www and apex names differ"),
                    format!("set SITE_URL to the name the site serves on without a redirect, then {}", setup(site)),
                ),
                None => Check::fail(NAME, format!("no webhook endpoint for {expected}"), setup(site)),
            };
        }
        many => {
            return Check::fail(
                NAME,
                format!(
                    "{} enabled endpoints for {expected} ({}): each delivers every event with its own secret, so one is always refused",
                    many.len(),
                    ids(many)
                ),
                "delete all but one in Dashboard → Developers → Webhooks, and keep its secret in STRIPE_WEBHOOK_SECRET",
            );
        }
    };
    let missing = missing_events(&endpoint.enabled_events);
    if !missing.is_empty() {
        return Check::fail(
            NAME,
            format!(
                "endpoint {} does not receive {} event(s) the shop needs: {}",
                endpoint.id,
                missing.len(),
                missing.join(", ")
            ),
            format!("run `cargo run -p dev -- stripe-setup {site}` again (it adds the events)"),
        );
    }
    if endpoint.api_version.as_deref() != Some(API_VERSION) {
        let shown = endpoint.api_version.as_deref().unwrap_or("the account's default");
        return Check::fail(
            NAME,
            format!("endpoint {} renders events in API version {shown}, the shop pins {API_VERSION}", endpoint.id),
            format!(
                "Stripe cannot change it: delete endpoint {}, run `cargo run -p dev -- stripe-setup {site}`, store the new secret",
                endpoint.id
            ),
        );
    }
    Check::pass(
        NAME,
        format!(
            "{} at {expected}: enabled, {} event types, API version {API_VERSION}",
            endpoint.id,
            EventType::ALL.len()
        ),
    )
}

/// What a POST to the public webhook URL answered, as the reachability check reads it (the
/// command line's outside probe reads it the same way).
#[derive(Debug, Clone)]
pub enum ProbeAnswer {
    /// A status, the `Location` header (3xx) and whether the body is the verifier's refusal.
    Status { status: u16, location: Option<String>, verifier: bool },
    /// No answer: why, in a few words (refused, timed out, name not found).
    Unreachable(String),
}

/// The reachability check of `url` (`SITE_URL/api/webhook`) from its probe's answer.
pub fn reachability_check(name: &str, url: &str, answer: &ProbeAnswer) -> Check {
    match answer {
        ProbeAnswer::Status { status: 400, verifier: true, .. } => {
            Check::pass(name, format!("POST {url} answered 400 from the shop's verifier: Stripe's deliveries arrive"))
        }
        ProbeAnswer::Status { status: 400, .. } => Check::fail(
            name,
            format!("POST {url} answered 400, but not the shop's verifier: SITE_URL reaches another site"),
            "point SITE_URL (and the webhook endpoint) at this deployment's domain",
        ),
        ProbeAnswer::Status { status, location, .. } if (300..400).contains(status) => {
            let to = location.as_deref().map(without_query).unwrap_or("(no Location)");
            let www = location.as_deref().is_some_and(|l| www_pair(l, url));
            let why = if www { ": the www and apex names differ" } else { "" };
            Check::fail(
                name,
                format!("POST {url} answered {status} → {to}{why}; Stripe does not follow redirects"),
                "use the name that serves without a redirect in SITE_URL and the webhook endpoint (run stripe-setup for it), or stop the redirect in Vercel → Domains",
            )
        }
        ProbeAnswer::Status { status: status @ (401 | 403), .. } => Check::fail(
            name,
            format!("POST {url} answered {status}: Vercel Deployment Protection (or another login) blocks Stripe"),
            "Vercel → Project → Settings → Deployment Protection: disable it for Production, or add Protection Bypass for Automation and put its secret in the endpoint URL",
        ),
        ProbeAnswer::Status { status: 404, .. } => Check::fail(
            name,
            format!("POST {url} answered 404: no webhook function there"),
            "deploy this project to the domain in SITE_URL (the function is api/webhook.rs)",
        ),
        ProbeAnswer::Status { status, .. } => Check::fail(
            name,
            format!("POST {url} answered {status} instead of the verifier's 400"),
            "open the webhook function's log in Vercel for the reason",
        ),
        ProbeAnswer::Unreachable(why) => Check::fail(
            name,
            format!("POST {url} got no answer ({why})"),
            "check the domain in Vercel → Domains and its DNS records",
        ),
    }
}

/// POSTs an empty event with no signature to `url`, following no redirect: the shop's own
/// verifier answers 400 `invalid webhook` (counted as a `no_header` refusal, never Stripe).
pub async fn probe(url: &str) -> ProbeAnswer {
    let loopback = reqwest::Url::parse(url).ok().is_some_and(|u| match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    });
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PROBE_TIMEOUT)
        .user_agent(concat!("checkout-rust-doctor/", env!("CARGO_PKG_VERSION")));
    if loopback {
        builder = builder.no_proxy();
    }
    let Ok(client) = builder.build() else { return ProbeAnswer::Unreachable("no HTTP client".into()) };
    let sent = client.post(url).header("content-type", "application/json").body("{}").send().await;
    match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let location = resp.headers().get("location").and_then(|l| l.to_str().ok()).map(String::from);
            let body = resp.bytes().await.unwrap_or_default();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let verifier = json["error"]["message"] == VERIFIER_REFUSAL;
            ProbeAnswer::Status { status, location, verifier }
        }
        Err(e) if e.is_timeout() => ProbeAnswer::Unreachable("timed out".into()),
        Err(e) if e.is_connect() => ProbeAnswer::Unreachable("connection failed".into()),
        Err(_) => ProbeAnswer::Unreachable("request failed".into()),
    }
}

/// Every endpoint Stripe lists for the key (at most [`ENDPOINT_PAGES`] pages).
async fn list_endpoints(app: &App) -> Result<Vec<WebhookEndpoint>, StripeError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..ENDPOINT_PAGES {
        let mut q = Form::new();
        q.push("limit", "100");
        if let Some(a) = &after {
            q.push("starting_after", a);
        }
        let page: List<WebhookEndpoint> = app.stripe.get("/v1/webhook_endpoints", &q).await?;
        after = page.data.last().map(|e| e.id.clone());
        let more = page.has_more && after.is_some();
        out.extend(page.data);
        if !more {
            break;
        }
    }
    Ok(out)
}

/// The keys check and the endpoint list it read (for the endpoint check), or why that list
/// is unknown (`Err`: the endpoint check's own outcome).
async fn keys_and_endpoints(app: &App) -> (Check, Result<Vec<WebhookEndpoint>, Check>) {
    const NAME: &str = "keys";
    let config = &app.config;
    let mode = match config.mode() {
        Mode::Test => "test",
        Mode::Live => "live",
    };
    let unknown =
        |why: &str| Check::warn("webhook_endpoint", format!("not checked: {why}"), "fix the keys check first");
    let listed = list_endpoints(app).await;
    let endpoints = match listed {
        Ok(list) => Ok(list),
        Err(StripeError::Api { status: 401, .. }) => {
            let check = Check::fail(
                NAME,
                "Stripe refuses STRIPE_SECRET_KEY (401): revoked, rolled or mistyped",
                "set STRIPE_SECRET_KEY to a current key from Dashboard → Developers → API keys, then redeploy",
            );
            return (check, Err(unknown("Stripe refused the key")));
        }
        Err(StripeError::Api { status: 403, .. }) => Err(Check::warn(
            "webhook_endpoint",
            "not checked: the restricted key may not read webhook endpoints",
            "give the key Webhook Endpoints: Read (Dashboard → Developers → API keys), or check the endpoint by hand",
        )),
        Err(e) => {
            crate::log::warn("doctor: listing webhook endpoints failed", &[("error", &e.to_string())]);
            let check = Check::fail(
                NAME,
                "Stripe did not answer GET /v1/webhook_endpoints (unreachable or failing)",
                "check status.stripe.com and STRIPE_API_BASE (unset in production); the function log has the error",
            );
            return (check, Err(unknown("Stripe did not answer")));
        }
    };
    let publishable = match &config.publishable_key {
        Some(_) => "the publishable key is of the same mode",
        None if config.ui_mode == UiMode::Embedded => {
            let check = Check::fail(
                NAME,
                "CHECKOUT_UI_MODE=embedded_page, but STRIPE_PUBLISHABLE_KEY is not set",
                format!("set STRIPE_PUBLISHABLE_KEY to the pk_{mode}_ key of the same account"),
            );
            return (check, endpoints);
        }
        None => "no publishable key (hosted Checkout needs none)",
    };
    (keys_check(config, publishable), endpoints)
}

/// The keys check once the secret key worked: test keys in production (allowed on purpose by
/// `ALLOW_TEST_KEYS_IN_PRODUCTION=true`, refused at start-up otherwise) warn.
pub fn keys_check(config: &crate::config::Config, publishable: &str) -> Check {
    const NAME: &str = "keys";
    if config.allow_test_keys_in_production {
        return Check::warn(
            NAME,
            "test keys with VERCEL_ENV=production, allowed by ALLOW_TEST_KEYS_IN_PRODUCTION=true: orders paid with public test cards are fulfilled",
            "set the live keys (sk_live_, pk_live_) and remove ALLOW_TEST_KEYS_IN_PRODUCTION (without it, production refuses test keys at start-up)",
        );
    }
    let mode = match config.mode() {
        Mode::Test => "test",
        Mode::Live => "live",
    };
    let production = if config.production { ", production" } else { "" };
    Check::pass(
        NAME,
        format!("{mode} mode{production}: the secret key works (GET /v1/webhook_endpoints); {publishable}"),
    )
}

/// Runs every check and reads the health view.
pub async fn examine(app: &App) -> Health {
    let config = &app.config;
    let url = format!("{}/api/webhook", config.site_url);
    let (keys, endpoints) = keys_and_endpoints(app).await;
    // The probe goes where Stripe delivers: the one enabled endpoint's own URL, with the
    // Deployment Protection bypass its query may carry (used, never shown), else SITE_URL's.
    let target = endpoints.as_ref().ok().and_then(|list| delivery_url(&url, list)).unwrap_or(&url);
    let answer = probe(target).await;
    // After the probe, so the record counts its refusal (`no_header`) too.
    let record = read_record(app).await;
    let endpoint = match endpoints {
        Ok(list) => endpoint_check(&url, &list),
        Err(check) => check,
    };
    let mut checks = vec![keys, endpoint, reachability_check("reachability", &url, &answer)];
    checks.push(webhook_secret_check(app, record.as_ref().ok()));
    checks.push(cron_secret_check(app));
    checks.push(Check::pass("admin_token", "set (32+ characters, no whitespace): this request used it"));
    checks.push(database_url_check(config));
    match &record {
        Ok(r) => {
            checks.push(Check::pass("store", format!("reachable ({})", config.database.describe())));
            checks.push(r.schema.clone());
            let last = r.view.last_reconcile_run.as_ref();
            checks.push(reconcile_check(
                config.production,
                &config.site_url,
                last,
                r.failed_events,
                crate::clock::now(),
            ));
            checks.push(hook_runs_check(r));
        }
        Err(e) => {
            crate::log::warn("doctor: the store could not be read", &[("error", &e.to_string())]);
            let what = if e.is_unavailable() { "refused a connection" } else { "failed a read" };
            checks.push(Check::fail(
                "store",
                format!("the store {what} ({})", config.database.describe()),
                "check DATABASE_URL and the database's status; the function log has the error",
            ));
        }
    }
    let status = checks.iter().map(|c| c.status).max().unwrap_or(Status::Pass);
    Health { site_url: config.site_url.clone(), status, checks, record: record.ok().map(|r| r.view) }
}

/// What the store says, with the checks that read it.
struct Read {
    view: Record,
    schema: Check,
    failed_events: usize,
    /// Signature mismatches over the last day: how many, and the last one's time.
    mismatches: Option<(i64, i64)>,
}

async fn read_record(app: &App) -> Result<Read, StoreError> {
    let store = &app.store;
    let now = crate::clock::now();
    let last_event = store.last_event(&app.source, Via::Webhook).await?;
    let hour = now.div_euclid(3600) - crate::refusals::KEPT_HOURS + 1;
    let mut refusals: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (class, n, at) in store.refusals(&app.source, hour).await? {
        refusals.insert(class, (n, at));
    }
    for (class, n, at) in app.refusals.pending() {
        let entry = refusals.entry(class.to_string()).or_insert((0, 0));
        entry.0 += n;
        entry.1 = entry.1.max(at);
    }
    let last_refusal = refusals
        .iter()
        .max_by_key(|(_, (_, at))| *at)
        .map(|(class, (_, at))| Refusal { class: class.clone(), at: *at });
    let mismatches = refusals.get(RefusalClass::SignatureMismatch.as_str()).copied();
    let run = store.reconcile_run(&app.source).await?;
    let (runs, open) = store.open_runs(HOOK_RUNS_SHOWN).await?;
    let versions = store.schema_versions(5).await?;
    let failed_events = store.failures_shown(&app.source, 100).await?.len();
    let ours = crate::store::schema_version();
    let schema = match versions.first() {
        Some((v, _)) if *v == ours => Check::pass("schema", format!("current (version {ours})")),
        Some((v, _)) if versions.iter().any(|(x, _)| *x == ours) => Check::warn(
            "schema",
            format!(
                "version {ours} is applied, but another deployment applied {v} after it: two versions of the code share this database"
            ),
            "give each deployment (Preview, Production) its own database, or redeploy the same commit everywhere",
        ),
        _ => Check::fail(
            "schema",
            format!("version {ours} is not recorded"),
            "redeploy: a new connection applies the schema",
        ),
    };
    let lease = crate::hooks::RUN_LEASE_SECS;
    let view = Record {
        last_event: last_event.map(|(kind, at)| SeenEvent { kind, at }),
        last_refusal,
        refusals_24h: refusals.into_iter().map(|(class, (n, _))| (class, n)).collect(),
        last_reconcile_run: run.map(|r| ReconcileRunView {
            at: r.at,
            processed: r.processed,
            finished: r.finished,
            failed: r.failed,
        }),
        hook_runs: runs
            .into_iter()
            .map(|OpenRun { kind, id, attempts, claimed_at }| HookRunView {
                state: if claimed_at <= now - lease { "failed" } else { "running" },
                kind,
                id,
                attempts,
                claimed_at,
            })
            .collect(),
        hook_runs_open: open,
    };
    Ok(Read { view, schema, failed_events, mismatches })
}

fn webhook_secret_check(app: &App, read: Option<&Read>) -> Check {
    const NAME: &str = "webhook_secret";
    let n = app.config.webhook_secrets.len();
    if n == 0 {
        return Check::fail(
            NAME,
            "STRIPE_WEBHOOK_SECRET is not set: every delivery is refused",
            "store the endpoint's signing secret: `vercel env add STRIPE_WEBHOOK_SECRET production` (stripe-setup prints it), then redeploy",
        );
    }
    let set = if n == 1 { "set".to_string() } else { format!("{n} secrets set (rotation)") };
    let Some(read) = read else {
        return Check::pass(NAME, format!("{set}; no whitespace or newline (refused at start-up)"));
    };
    let last_ok = read.view.last_event.as_ref().map(|e| e.at);
    match read.mismatches {
        Some((n, at)) if n > 0 && last_ok.is_none_or(|ok| ok < at) => Check::warn(
            NAME,
            format!(
                "{n} deliveries in 24 h were signed with no configured secret, and none verified since: STRIPE_WEBHOOK_SECRET may not be this endpoint's"
            ),
            "copy the endpoint's signing secret (Dashboard → Developers → Webhooks → the endpoint) into STRIPE_WEBHOOK_SECRET and redeploy",
        ),
        _ => Check::pass(NAME, format!("{set}; no whitespace or newline (refused at start-up)")),
    }
}

fn cron_secret_check(app: &App) -> Check {
    const NAME: &str = "cron_secret";
    match &app.config.reconcile.cron_secret {
        Err(reason) => Check::fail(NAME, *reason, "set CRON_SECRET to `openssl rand -hex 32` in Vercel, then redeploy"),
        Ok(token) if token.expose().len() < 32 => Check::warn(
            NAME,
            format!("CRON_SECRET has {} characters; 32 or more are advised", token.expose().len()),
            "set CRON_SECRET to `openssl rand -hex 32` in Vercel, then redeploy",
        ),
        Ok(_) => Check::pass(NAME, "set (32+ characters, no whitespace)"),
    }
}

/// The `DATABASE_URL` check: a production shop on Postgres should use a pooled endpoint
/// (by [`crate::config::is_pooled_url`]'s heuristic).
pub fn database_url_check(config: &crate::config::Config) -> Check {
    const NAME: &str = "database_url";
    match (&config.database, config.database_pooled) {
        (Database::Sqlite(_), _) => Check::pass(NAME, "an SQLite file (local only; Vercel requires Postgres)"),
        (_, Some(true)) => Check::pass(NAME, "Postgres through a pooled endpoint"),
        (_, _) if config.production => Check::warn(
            NAME,
            "Postgres, not through a pooled endpoint that the doctor recognises (host with -pooler, port 6432 or pgbouncer=true)",
            "use the provider's pooled connection string (Neon: the host ending in -pooler; else PgBouncer/Supavisor in transaction mode)",
        ),
        _ => Check::pass(NAME, "Postgres, direct (use the pooled endpoint in production)"),
    }
}

/// The reconciliation check: the last run's age and outcome (`production`: a shop that never
/// ran one fails), and the events it could not act on.
pub fn reconcile_check(
    production: bool,
    site_url: &str,
    last: Option<&ReconcileRunView>,
    failed_events: usize,
    now: i64,
) -> Check {
    const NAME: &str = "reconcile";
    let free_plan = "on Vercel's Hobby plan the cron runs once a day, so a missed webhook waits up to a day";
    let mut check = match last {
        None if production => Check::fail(
            NAME,
            format!("the reconciliation run never ran: missed webhooks are never recovered ({free_plan})"),
            format!(
                "check vercel.json's crons and CRON_SECRET, then run it once: curl -H \"Authorization: Bearer $CRON_SECRET\" {site_url}/api/reconcile"
            ),
        ),
        None => Check::warn(
            NAME,
            "the reconciliation run never ran here",
            format!(
                "run it once: curl -H \"Authorization: Bearer $CRON_SECRET\" {site_url}/api/reconcile (Vercel Cron calls it when deployed)"
            ),
        ),
        Some(run) if now - run.at > RECONCILE_STALE_SECS => Check::warn(
            NAME,
            format!("the last reconciliation run was {} h ago ({free_plan})", (now - run.at) / 3600),
            "check Vercel → Project → Settings → Cron Jobs and the reconcile function's log",
        ),
        Some(run) if run.failed => Check::warn(
            NAME,
            format!("the last run ({} min ago) was stopped by an error; the next one resumes", (now - run.at) / 60),
            "open the reconcile function's log in Vercel for the reason",
        ),
        Some(run) => {
            let finished = if run.finished { "finished" } else { "out of time, the next run resumes" };
            Check::pass(
                NAME,
                format!("last run {} min ago: {} processed, {finished}", (now - run.at) / 60, run.processed),
            )
        }
    };
    if failed_events > 0 && check.status == Status::Pass {
        check = Check::warn(
            NAME,
            format!("{failed_events} event(s) the run could not act on"),
            "see failed_events on the admin page's first page of orders, and the reconcile function's log",
        );
    }
    check
}

fn hook_runs_check(read: &Read) -> Check {
    const NAME: &str = "hook_runs";
    let failed: Vec<&HookRunView> = read.view.hook_runs.iter().filter(|r| r.state == "failed").collect();
    match failed.first() {
        Some(oldest) => Check::warn(
            NAME,
            format!(
                "{} owner's hook run(s) did not finish (oldest: {} {}, {} attempts)",
                failed.len(),
                oldest.kind,
                oldest.id,
                oldest.attempts
            ),
            "read the hook's error in the function log (src/hooks.rs); the next delivery or reconciliation run retries it",
        ),
        None if read.view.hook_runs_open > 0 => Check::pass(NAME, format!("{} running now", read.view.hook_runs_open)),
        None => Check::pass(NAME, "none unfinished"),
    }
}
