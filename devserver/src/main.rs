//! `cargo run -p dev`: the whole shop on http://localhost:3000, offline by default.
//!
//! Serves `public/` (each path with the headers vercel.json gives it on Vercel, see
//! [`headers`]) and every `/api/*` route in-process through the same library code the Vercel
//! functions run. Without a real `STRIPE_SECRET_KEY` it starts the Stripe emulator, points
//! the functions at it and creates the shop's webhook endpoint there (`/api/webhook`, the
//! shop's events, as `stripe-setup` does in Stripe), whose secret it uses; with real
//! test keys in `.env` it talks to Stripe (forward webhooks with `stripe listen`).
//! Never deployed.
//!
//! `cargo run -p dev -- stripe-setup [--live] https://SHOP` instead creates (or updates) the
//! shop's webhook endpoint in the owner's Stripe account (see [`setup`]);
//! `cargo run -p dev -- catalog-push [--live]` copies `src/catalog.json` to it as Products and
//! Prices (see [`push`]). The emulator starts with the same Products and Prices, so
//! `CATALOG_SOURCE=stripe` works offline too. `cargo run -p dev -- doctor https://SHOP` checks a
//! deployment (see [`doctor`]).

mod doctor;
mod headers;
mod push;
mod setup;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use checkout::{App, Config, Route};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower::ServiceExt;
use tower_http::services::ServeDir;

/// The emulator's port unless `EMULATOR_PORT` says otherwise (stripe-mock's default too; a
/// free port is used when it is taken).
const DEFAULT_EMULATOR_PORT: u16 = 12111;

/// Test key the emulator accepts; also marks "offline mode" in `.env`.
pub(crate) const EMULATOR_SECRET_KEY: &str = "sk_test_emulator";
/// Publishable key paired with it.
const EMULATOR_PUBLISHABLE_KEY: &str = "pk_test_emulator";

struct Dev {
    app: App,
    public: PathBuf,
    /// vercel.json's headers, matched per path as Vercel matches them.
    static_headers: headers::HeaderRules,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let command = args.get(1).map(String::as_str);
    if let Some(name @ ("stripe-setup" | "catalog-push" | "doctor")) = command {
        let code = match variables(&project_root()) {
            Ok(vars) if name == "stripe-setup" => setup::main(&args[2..], &vars).await,
            Ok(vars) if name == "doctor" => doctor::main(&args[2..], &vars).await,
            Ok(vars) => push::main(&args[2..], &vars).await,
            Err(e) => {
                eprintln!("{name}: {e}");
                1
            }
        };
        std::process::exit(code);
    }
    if let Err(e) = run().await {
        eprintln!("dev server: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let root = project_root();
    let mut vars = variables(&root)?;
    let port: u16 = match vars.get("PORT").filter(|v| !v.is_empty()) {
        Some(p) => p.parse().map_err(|_| format!("PORT must be a port number (got {p:?})"))?,
        None => 3000,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
        format!("cannot listen on 127.0.0.1:{port}: {e} — set PORT to a free port (e.g. PORT=3001 cargo run -p dev)")
    })?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let site = format!("http://localhost:{port}");
    vars.entry("SITE_URL".into()).or_insert_with(|| site.clone());

    let real_key =
        vars.get("STRIPE_SECRET_KEY").filter(|k| !k.is_empty() && k.as_str() != EMULATOR_SECRET_KEY).is_some();
    let offline = !real_key || vars.get("STRIPE_API_BASE").is_some_and(|b| !b.is_empty());
    let _emulator = if !real_key {
        let chosen: Option<u16> = match vars.get("EMULATOR_PORT").filter(|v| !v.is_empty()) {
            Some(p) => Some(p.parse().map_err(|_| format!("EMULATOR_PORT must be a port number (got {p:?})"))?),
            None => None,
        };
        // No configured webhook URL: the dev server creates its endpoint through the API below.
        // The catalog as Products and Prices, as `catalog-push` would make them.
        let tag = vars
            .get("CATALOG_TAG")
            .filter(|t| !t.is_empty())
            .cloned()
            .unwrap_or_else(|| checkout::config::DEFAULT_CATALOG_TAG.to_string());
        let mut options = stripe_emulator::Options {
            port: chosen.unwrap_or(DEFAULT_EMULATOR_PORT),
            catalog_json: Some(push::emulator_fixture(checkout::catalog::catalog(), &tag)),
            ..Default::default()
        };
        // How long a delayed payment method "processes" (tests make it long enough to see).
        if let Some(ms) = vars.get("EMULATOR_ASYNC_DELAY_MS").and_then(|v| v.parse().ok()) {
            options.async_delay = std::time::Duration::from_millis(ms);
        }
        let emu = match stripe_emulator::Emulator::start(options.clone()).await {
            Ok(emu) => emu,
            // The default port is taken (another emulator, or stripe-mock): any free port will do.
            Err(e) if chosen.is_none() && e.kind() == std::io::ErrorKind::AddrInUse => {
                stripe_emulator::Emulator::start(stripe_emulator::Options { port: 0, ..options })
                    .await
                    .map_err(|e| format!("cannot start the Stripe emulator on a free port: {e}"))?
            }
            Err(e) => {
                let port = options.port;
                return Err(format!(
                    "cannot start the Stripe emulator on 127.0.0.1:{port}: {e} — set EMULATOR_PORT to a free port"
                ));
            }
        };
        vars.insert("STRIPE_SECRET_KEY".into(), EMULATOR_SECRET_KEY.into());
        vars.insert("STRIPE_PUBLISHABLE_KEY".into(), EMULATOR_PUBLISHABLE_KEY.into());
        vars.insert("STRIPE_API_BASE".into(), emu.base_url());
        // The shop's webhook endpoint, created as `stripe-setup` creates it in Stripe (the same
        // events and version); its secret signs the deliveries to /api/webhook.
        // At SITE_URL when it is this machine (so `doctor` finds it), else at the loopback port.
        let site_url = vars.get("SITE_URL").map(|s| s.trim_end_matches('/').to_string()).unwrap_or_default();
        let local_site = ["http://localhost:", "http://127.0.0.1:"].iter().any(|p| site_url.starts_with(p));
        let hook =
            if local_site { format!("{site_url}/api/webhook") } else { format!("http://127.0.0.1:{port}/api/webhook") };
        let endpoint = setup::create_endpoint(&emu.base_url(), EMULATOR_SECRET_KEY, &hook, "dev server", "localhost")
            .await
            .map_err(|e| format!("cannot create the dev server's webhook endpoint on the emulator: {e}"))?;
        let secret = endpoint["secret"].as_str().ok_or("the emulator answered no webhook secret")?;
        vars.insert("STRIPE_WEBHOOK_SECRET".into(), secret.to_string());
        // The shopper's email goes to the emulator's outbox, with no configuration.
        if !vars.contains_key("EMAIL_API_KEY") {
            vars.insert("EMAIL_API_KEY".into(), stripe_emulator::EMAIL_API_KEY.into());
            vars.insert("EMAIL_FROM".into(), "Ferris Shop <orders@shop.localhost>".into());
            vars.insert("EMAIL_API_BASE".into(), emu.base_url());
        }
        Some(emu)
    } else {
        None
    };

    // The reconciliation route needs a CRON_SECRET; a fresh random one per start unless set.
    let cron_secret =
        vars.entry("CRON_SECRET".into()).or_insert_with(|| format!("dev-{}", checkout::http::random_hex(16))).clone();
    let config = Config::from_lookup(|k| vars.get(k).cloned()).map_err(|e| format!("configuration error: {e}"))?;
    let app = App::new(config).map_err(|e| format!("store error: {e}"))?;
    let vercel_json =
        std::fs::read_to_string(root.join("vercel.json")).map_err(|e| format!("cannot read vercel.json: {e}"))?;
    let static_headers = headers::HeaderRules::from_vercel_json(&vercel_json)?;
    let dev = Arc::new(Dev { static_headers, public: root.join("public"), app });

    println!();
    if let Some(emu) = &_emulator {
        println!("  Mode:      OFFLINE — Stripe emulator at {} (no Stripe account needed)", emu.base_url());
        println!(
            "  Webhooks:  emulator → {site}/api/webhook ({} event types, the endpoint's own secret)",
            setup::event_names().len()
        );
        println!("  Outbox:    {}/_emulator/outbox (emails the shop sends, offline)", emu.base_url());
    } else if offline {
        println!("  Mode:      custom STRIPE_API_BASE ({})", dev.app.config.api_base);
    } else {
        println!("  Mode:      REAL STRIPE (test keys from .env)");
        println!("  Webhooks:  run `stripe listen --forward-to {site}/api/webhook` and put its whsec_ in .env");
    }
    println!("  Store:     {}", dev.app.config.database.describe());
    println!();
    if vars.contains_key("ADMIN_TOKEN") {
        println!("  Admin:     {site}/admin.html (paste ADMIN_TOKEN from .env)");
    } else {
        println!("  Admin:     {site}/admin.html — off: put ADMIN_TOKEN=<32+ characters, e.g. `openssl rand -hex 32`>");
        println!("             in .env and restart");
    }
    println!("  Reconcile: curl -H 'Authorization: Bearer {cron_secret}' {site}/api/reconcile");
    println!("             (what Vercel Cron calls; lists missed events and acts on them)");
    let every = vars.get("RECONCILE_EVERY_SECS").and_then(|v| v.parse::<u64>().ok()).filter(|s| *s > 0);
    if let Some(secs) = every {
        println!("             RECONCILE_EVERY_SECS={secs}: the dev server also runs it every {secs} s");
        tokio::spawn(reconcile_every(dev.clone(), std::time::Duration::from_secs(secs)));
    }
    println!();
    println!("  Open the shop:  {site}/");
    println!("  (try the code SAVE10 in offline mode; press Ctrl-C to stop)");
    println!();

    let router = Router::new().fallback(serve).with_state(dev);
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.map_err(|e| e.to_string())
}

/// The opt-in local stand-in for Vercel Cron (`RECONCILE_EVERY_SECS`): off by default, so
/// what a run finds stays predictable.
async fn reconcile_every(dev: Arc<Dev>, period: std::time::Duration) {
    loop {
        tokio::time::sleep(period).await;
        if let Err(e) = checkout::reconcile::run_once(&dev.app).await {
            checkout::log::warn("reconciliation run failed", &[("error", &e.to_string())]);
        }
    }
}

async fn serve(State(dev): State<Arc<Dev>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, mut req: Request) -> Response {
    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 must not reach the shop.
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let site_host = dev.app.config.site_url.split_once("://").map_or("", |(_, h)| h);
    if !stripe_emulator::is_local_host(host) && !host.eq_ignore_ascii_case(site_host) {
        return (StatusCode::FORBIDDEN, "host not allowed").into_response();
    }
    let path = req.uri().path().to_string();
    if let Some(route) = Route::from_path(&path) {
        // Like Vercel's edge: the client IP comes from the socket, never from the client.
        let ip = HeaderValue::from_str(&peer.ip().to_string()).expect("an IP is a header value");
        req.headers_mut().insert("x-real-ip", ip);
        let resp = checkout::routes::dispatch(route, &dev.app, req).await;
        return resp.map(Body::new).into_response();
    }
    if path.starts_with("/api/") {
        let resp = checkout::http::ApiError::new(StatusCode::NOT_FOUND, "no such function").into_response();
        return resp.map(Body::new).into_response();
    }
    // A page opened on another local name (127.0.0.1 for localhost) moves to SITE_URL's origin:
    // the cart lives in that origin's sessionStorage, and the same-site checks expect it.
    if !host.eq_ignore_ascii_case(site_host)
        && matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD)
    {
        let target = format!("{}{}", dev.app.config.site_url, req.uri().path_and_query().map_or("/", |p| p.as_str()));
        if let Ok(location) = HeaderValue::from_str(&target) {
            return (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response();
        }
    }
    static_file(&dev, req).await
}

/// A file of `public/` (`tower_http`'s `ServeDir`: no path escapes it, `/` ⇒ `index.html`)
/// with the headers vercel.json gives its path on Vercel, never cached.
async fn static_file(dev: &Dev, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let mut resp = match ServeDir::new(&dev.public).oneshot(req).await {
        Ok(resp) => resp.map(Body::new),
        Err(never) => match never {},
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    for (k, v) in dev.static_headers.for_path(&path) {
        h.insert(k, v);
    }
    resp
}

/// The variables of `root/.env`, with the process environment over them (it wins, as with
/// Vercel).
fn variables(root: &Path) -> Result<HashMap<String, String>, String> {
    let mut vars = read_dotenv(&root.join(".env"))?;
    for (k, v) in std::env::vars() {
        vars.insert(k, v);
    }
    Ok(vars)
}

/// The variables of `.env` (dotenvy's syntax); a missing file is no variables.
fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, String> {
    match dotenvy::from_path_iter(path) {
        Ok(iter) => iter.map(|kv| kv.map_err(|e| format!(".env: {e}"))).collect(),
        Err(e) if e.not_found() => Ok(HashMap::new()),
        Err(e) => Err(format!(".env: {e}")),
    }
}

/// The repository root: where `public/` and `vercel.json` are.
fn project_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}
