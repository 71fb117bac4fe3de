//! `cargo run -p dev`: the whole shop on http://localhost:3000, offline by default.
//!
//! Serves `public/` (with the headers vercel.json gives static files) and every
//! `/api/*` route in-process through the same library code the Vercel functions
//! run. Without a real `STRIPE_SECRET_KEY` it starts the Stripe emulator, points
//! the functions at it and wires its webhook secret to `/api/webhook`; with real
//! test keys in `.env` it talks to Stripe (forward webhooks with `stripe listen`).
//! Never deployed.

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use checkout::{App, Config, Route};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Test key the emulator accepts; also marks "offline mode" in `.env`.
const EMULATOR_SECRET_KEY: &str = "sk_test_emulator";
/// Publishable key paired with it.
const EMULATOR_PUBLISHABLE_KEY: &str = "pk_test_emulator";

struct Dev {
    app: App,
    public: PathBuf,
    static_headers: Vec<(HeaderName, HeaderValue)>,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("dev server: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let root = project_root();
    let mut vars = read_dotenv(&root.join(".env"));
    // The process environment wins over .env, as with Vercel.
    for (k, v) in std::env::vars() {
        vars.insert(k, v);
    }
    let port: u16 = match vars.get("PORT") {
        Some(p) => p.parse().map_err(|_| "PORT must be a number".to_string())?,
        None => 3000,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let site = format!("http://localhost:{port}");
    vars.entry("SITE_URL".into()).or_insert_with(|| site.clone());

    let real_key =
        vars.get("STRIPE_SECRET_KEY").filter(|k| !k.is_empty() && k.as_str() != EMULATOR_SECRET_KEY).is_some();
    let offline = !real_key || vars.get("STRIPE_API_BASE").is_some_and(|b| !b.is_empty());
    let _emulator = if !real_key {
        let emu_port = vars.get("EMULATOR_PORT").and_then(|p| p.parse().ok()).unwrap_or(12111);
        let mut options = stripe_emulator::Options {
            port: emu_port,
            webhook_url: Some(format!("http://127.0.0.1:{port}/api/webhook")),
            ..Default::default()
        };
        // How long a delayed payment method "processes" (tests make it long enough to see).
        if let Some(ms) = vars.get("EMULATOR_ASYNC_DELAY_MS").and_then(|v| v.parse().ok()) {
            options.async_delay = std::time::Duration::from_millis(ms);
        }
        let emu = stripe_emulator::Emulator::start(options)
            .await
            .map_err(|e| format!("cannot start the Stripe emulator on port {emu_port}: {e}"))?;
        vars.insert("STRIPE_SECRET_KEY".into(), EMULATOR_SECRET_KEY.into());
        vars.insert("STRIPE_PUBLISHABLE_KEY".into(), EMULATOR_PUBLISHABLE_KEY.into());
        vars.insert("STRIPE_API_BASE".into(), emu.base_url());
        vars.insert("STRIPE_WEBHOOK_SECRET".into(), emu.webhook_secret().to_string());
        Some(emu)
    } else {
        None
    };

    // The reconciliation route needs a CRON_SECRET; a fresh random one per start unless set.
    let cron_secret =
        vars.entry("CRON_SECRET".into()).or_insert_with(|| format!("dev-{}", checkout::http::random_hex(16))).clone();
    let config = Config::from_lookup(|k| vars.get(k).cloned()).map_err(|e| format!("configuration error: {e}"))?;
    let app = App::new(config).map_err(|e| format!("store error: {e}"))?;
    let dev =
        Arc::new(Dev { static_headers: static_headers(&root.join("vercel.json"))?, public: root.join("public"), app });

    println!();
    if let Some(emu) = &_emulator {
        println!("  Mode:      OFFLINE — Stripe emulator at {} (no Stripe account needed)", emu.base_url());
        println!("  Webhooks:  emulator → {site}/api/webhook, signed with its test secret");
    } else if offline {
        println!("  Mode:      custom STRIPE_API_BASE ({})", dev.app.config.api_base);
    } else {
        println!("  Mode:      REAL STRIPE (test keys from .env)");
        println!("  Webhooks:  run `stripe listen --forward-to {site}/api/webhook` and put its whsec_ in .env");
    }
    println!("  Store:     {}", redact_url(&dev.app.config.database_url));
    println!();
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
            drop(e.into_response()); // logs its reason
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
    static_file(&dev, &path).await
}

async fn static_file(dev: &Dev, path: &str) -> Response {
    let rel = if path.ends_with('/') { format!("{path}index.html") } else { path.to_string() };
    let rel = rel.trim_start_matches('/');
    let safe = Path::new(rel).components().all(|c| matches!(c, Component::Normal(_)));
    let file = dev.public.join(rel);
    let read = if safe { tokio::fs::read(&file).await.ok() } else { None };
    let (status, body, kind) = match read {
        Some(bytes) => (StatusCode::OK, bytes, content_type(&file)),
        None => (StatusCode::NOT_FOUND, b"Not found".to_vec(), "text/plain; charset=utf-8"),
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    for (k, v) in &dev.static_headers {
        h.insert(k.clone(), v.clone());
    }
    resp
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// The headers vercel.json applies to every path, so the dev server serves
/// static files exactly as Vercel will.
fn static_headers(path: &Path) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read vercel.json: {e}"))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("vercel.json: {e}"))?;
    let mut out = Vec::new();
    for rule in json["headers"].as_array().into_iter().flatten() {
        if rule["source"] != "/(.*)" {
            continue;
        }
        for h in rule["headers"].as_array().into_iter().flatten() {
            let (Some(k), Some(v)) = (h["key"].as_str(), h["value"].as_str()) else { continue };
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
            let value = HeaderValue::from_str(v).map_err(|e| e.to_string())?;
            out.push((name, value));
        }
    }
    Ok(out)
}

/// `KEY=VALUE` lines; `#` comments; optional quotes. Missing file ⇒ empty.
fn read_dotenv(path: &Path) -> HashMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else { return HashMap::new() };
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start();
            if line.starts_with('#') {
                return None;
            }
            let (k, v) = line.split_once('=')?;
            let v = v.trim_end_matches(['\r']);
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

fn redact_url(url: &str) -> String {
    match url.split_once('@') {
        Some((_, host)) => format!("postgres://***@{host}"),
        None => url.to_string(),
    }
}

/// The repository root: where `public/` and `vercel.json` are.
fn project_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}
