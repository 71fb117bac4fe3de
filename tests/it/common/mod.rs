//! Test harness: a real Stripe emulator over HTTP, the library's routes served
//! over real HTTP (the same `routes::dispatch` the functions and the dev
//! server run), and a real store (a fresh SQLite file, or Postgres from
//! `TEST_DATABASE_URL`).
#![allow(dead_code)]

use bytes::Bytes;
use checkout::{App, Config, Route};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stripe_emulator::{Emulator, Options};

/// The test secret key the emulator accepts.
pub const SECRET_KEY: &str = "sk_test_harness4242";
/// The webhook secret the emulator signs with in tests.
pub const WEBHOOK_SECRET: &str = "whsec_harness_secret_4242";

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// `TEST_DATABASE_URL`.
    Postgres,
    /// `TEST_PGBOUNCER_URL`: the same Postgres through PgBouncer in transaction mode
    /// (tests/pgbouncer/start.sh), as production reaches it through a pooled endpoint.
    Pgbouncer,
}

impl Backend {
    /// Whether the store is Postgres (directly or through PgBouncer).
    pub fn is_postgres(self) -> bool {
        matches!(self, Backend::Postgres | Backend::Pgbouncer)
    }
}

/// `TEST_DATABASE_URL`, or `None`.
pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())
}

/// `TEST_PGBOUNCER_URL`, or `None`.
pub fn pgbouncer_url() -> Option<String> {
    std::env::var("TEST_PGBOUNCER_URL").ok().filter(|u| !u.is_empty())
}

/// One test per store: `NAME::sqlite` always, `NAME::postgres`, marked ignored with its
/// reason on a machine without `TEST_DATABASE_URL`, and `NAME::pgbouncer`, the same through
/// PgBouncer in transaction mode, ignored without `TEST_PGBOUNCER_URL` (neither is ever
/// skipped in CI: see tests/support/tools.rs).
#[macro_export]
macro_rules! each_backend {
    ($(#[$attr:meta])* async fn $name:ident($backend:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(#[$attr])*
            async fn sqlite() {
                let $backend = $crate::common::Backend::Sqlite;
                $body
            }
            $(#[$attr])*
            #[cfg_attr(not(has_postgres), ignore = "needs Postgres: set TEST_DATABASE_URL (README, Tests)")]
            async fn postgres() {
                let $backend = $crate::common::Backend::Postgres;
                $body
            }
            $(#[$attr])*
            #[cfg_attr(
                not(has_pgbouncer),
                ignore = "needs PgBouncer: run tests/pgbouncer/start.sh and set TEST_PGBOUNCER_URL (README, Tests)"
            )]
            async fn pgbouncer() {
                let $backend = $crate::common::Backend::Pgbouncer;
                $body
            }
        }
    };
}

/// A fresh SQLite URL in the temp dir.
pub fn sqlite_url() -> String {
    let dir = std::env::temp_dir().join("checkout-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let name = format!("t-{}-{}.sqlite3", std::process::id(), checkout::http::random_hex(8));
    format!("sqlite://{}", dir.join(name).display())
}

/// The database URL for a backend.
pub fn database_url(backend: Backend) -> String {
    match backend {
        Backend::Sqlite => sqlite_url(),
        Backend::Postgres => postgres_url().expect("the Postgres variant needs TEST_DATABASE_URL"),
        Backend::Pgbouncer => pgbouncer_url().expect("the PgBouncer variant needs TEST_PGBOUNCER_URL"),
    }
}

/// Emulator options for fast tests.
pub fn emulator_options() -> Options {
    Options {
        webhook_secret: WEBHOOK_SECRET.into(),
        retry_base: Duration::from_millis(50),
        max_attempts: 5,
        webhook_timeout: Duration::from_secs(3),
        async_delay: Duration::from_millis(150),
        reorder_quiet: Duration::from_millis(200),
        ..Default::default()
    }
}

/// A running shop: emulator + routes over HTTP + store.
pub struct Shop {
    /// The Stripe emulator.
    pub emu: Emulator,
    /// The shop's state.
    pub app: Arc<App>,
    /// Where the routes listen.
    pub addr: SocketAddr,
    /// `http://localhost:PORT` (= SITE_URL).
    pub site: String,
    /// HTTP client for the test.
    pub http: reqwest::Client,
    /// The shop's `DATABASE_URL`, for tests that read its tables directly.
    pub database_url: String,
}

/// Builder options.
#[derive(Default, Clone)]
pub struct ShopOptions {
    /// Store backend (default SQLite).
    pub backend: Option<Backend>,
    /// Explicit DATABASE_URL (wins over backend).
    pub database_url: Option<String>,
    /// Extra/overriding environment variables.
    pub env: Vec<(&'static str, String)>,
    /// Whether the emulator delivers webhooks to the shop (default true).
    pub no_webhooks: bool,
}

/// Sends the code under test's log lines through `eprint!`, which the test harness captures
/// (printed only for a failing test).
pub fn capture_logs() {
    checkout::log::set_sink(|line| eprint!("{line}"));
}

/// Starts the emulator and the shop.
pub async fn shop(opts: ShopOptions) -> Shop {
    let emu = Emulator::start(emulator_options()).await.expect("emulator starts");
    shop_with_emulator(emu, opts).await
}

/// Starts the shop against an existing emulator.
pub async fn shop_with_emulator(emu: Emulator, opts: ShopOptions) -> Shop {
    let instance = instance(&emu.base_url(), &opts).await;
    if !opts.no_webhooks {
        emu.set_webhook_url(Some(instance.url("/api/webhook")));
    }
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let Instance { app, addr, site, database_url } = instance;
    Shop { emu, app, addr, site, http, database_url }
}

/// One instance of the functions: its own state (store, pool, limiter) served over HTTP.
pub struct Instance {
    /// The instance's state.
    pub app: Arc<App>,
    /// Where its routes listen.
    pub addr: SocketAddr,
    /// `http://localhost:PORT` (= SITE_URL).
    pub site: String,
    /// Its `DATABASE_URL`.
    pub database_url: String,
}

impl Instance {
    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }
}

/// Starts one instance against the Stripe API at `api_base` (an emulator's [`Emulator::base_url`]);
/// several on one database play several instances of the functions.
pub async fn instance(api_base: &str, opts: &ShopOptions) -> Instance {
    capture_logs();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let site = format!("http://localhost:{}", addr.port());
    let db = opts.database_url.clone().unwrap_or_else(|| database_url(opts.backend.unwrap_or(Backend::Sqlite)));
    let mut env: HashMap<&str, String> = HashMap::from([
        ("STRIPE_SECRET_KEY", SECRET_KEY.to_string()),
        ("STRIPE_PUBLISHABLE_KEY", "pk_test_harness4242".to_string()),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
        ("STRIPE_API_BASE", api_base.to_string()),
        ("SITE_URL", site.clone()),
        ("DATABASE_URL", db.clone()),
        ("DISCOUNT_RESPONSE_FLOOR_MS", "0".to_string()),
        // Practically unlimited: with Postgres the shared counters are per IP across every
        // test binary (and every checkout of the repository) using the same database in the
        // same minute. Tests of the limits set their own.
        ("RATE_LIMIT_APPLY_DISCOUNT", "1000000/60".to_string()),
        ("RATE_LIMIT_APPLY_DISCOUNT_REQUESTS", "1000000/60".to_string()),
        ("RATE_LIMIT_CREATE_CHECKOUT", "1000000/60".to_string()),
        ("RATE_LIMIT_CHECKOUT_STATUS", "1000000/60".to_string()),
    ]);
    for (k, v) in &opts.env {
        env.insert(k, v.clone());
    }
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("test config is valid");
    let app = Arc::new(App::new(config).expect("store opens"));
    serve(listener, app.clone());
    Instance { app, addr, site, database_url: db }
}

/// Serves every route of `app` on `listener`. Like Vercel's edge, `x-real-ip`
/// is the socket peer — unless the test sets it (tests simulate clients).
pub fn serve(listener: tokio::net::TcpListener, app: Arc<App>) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else { return };
            let app = app.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    let app = app.clone();
                    async move {
                        if !req.headers().contains_key("x-real-ip") {
                            req.headers_mut().insert("x-real-ip", peer.ip().to_string().parse().unwrap());
                        }
                        let resp = match Route::from_path(req.uri().path()) {
                            Some(route) => checkout::routes::dispatch(route, &app, req).await,
                            None => checkout::http::ApiError::new(http::StatusCode::NOT_FOUND, "no such route")
                                .into_response(),
                        };
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
}

impl Shop {
    /// Expires an open session through Stripe's API (`POST /v1/checkout/sessions/{id}/expire`,
    /// as an owner or a timeout would) and waits until the shop recorded it expired.
    pub async fn expire(&self, session_id: &str) {
        let r = self
            .http
            .post(format!("{}/v1/checkout/sessions/{session_id}/expire", self.emu.base_url()))
            .bearer_auth(SECRET_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        self.wait_order(session_id, |o| o.state == checkout::order::OrderState::Expired).await;
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    /// An owner's POST to `path` as the admin page sends it: `Authorization: Bearer {token}`,
    /// the same-site `Origin`, `Content-Type: application/json` and, when given, the
    /// `Idempotency-Key`.
    pub fn owner_post(&self, path: &str, token: &str, key: Option<&str>, body: String) -> reqwest::RequestBuilder {
        let req = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .header("origin", &self.site)
            .header("content-type", "application/json")
            .body(body);
        match key {
            Some(k) => req.header("idempotency-key", k),
            None => req,
        }
    }

    /// POSTs JSON as the storefront does (same-site Origin, a client IP).
    pub async fn post_json(
        &self,
        path: &str,
        body: &str,
        ip: &str,
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let resp = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .header("origin", &self.site)
            .header("x-real-ip", ip)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        split(resp).await
    }

    /// GETs a path.
    pub async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        split(self.http.get(self.url(path)).send().await.unwrap()).await
    }

    /// Creates a checkout for `body` and returns the session id.
    pub async fn checkout(&self, body: &str) -> String {
        let (status, _, json) = self.post_json("/api/create-checkout", body, "203.0.113.1").await;
        assert_eq!(status, 200, "create-checkout failed: {json}");
        let url = json["url"].as_str().expect("hosted url");
        url.rsplit('/').next().unwrap().to_string()
    }

    /// Pays (or otherwise acts on) a session on the emulator's hosted page.
    pub async fn pay(&self, session_id: &str, action: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/c/pay/{session_id}", self.emu.base_url()))
            .form(&[("action", action)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 303, "hosted page answered {}", resp.status());
        resp.headers()["location"].to_str().unwrap().to_string()
    }

    /// Delivers a freshly signed event body to the webhook (see [`deliver_to`]).
    pub async fn deliver(&self, body: &[u8]) -> (u16, serde_json::Value) {
        deliver_to(self.http.clone(), self.url("/api/webhook"), body.to_vec()).await
    }

    /// The requests the emulator received for `path`, in order.
    pub fn requests_to(&self, path: &str) -> Vec<stripe_emulator::RecordedRequest> {
        self.emu.requests().into_iter().filter(|r| r.path == path).collect()
    }

    /// Waits (up to 10 s) until the emulator's delivery log satisfies `pred`: an order can be
    /// recorded before the emulator has read the endpoint's answer.
    pub async fn deliveries_when(
        &self,
        what: &str,
        pred: impl Fn(&[stripe_emulator::Delivery]) -> bool,
    ) -> Vec<stripe_emulator::Delivery> {
        match self.emu.wait_for_deliveries(pred, Duration::from_secs(10)).await {
            Ok(d) => d,
            Err(d) => panic!("deliveries never showed {what}: {d:?}"),
        }
    }

    /// A paid, fulfilled order of `cart`: its session id and order number.
    pub async fn paid(&self, cart: &str) -> (String, String) {
        let id = self.checkout(cart).await;
        self.pay(&id, "pay").await;
        let order =
            self.wait_order(&id, |o| o.state == checkout::order::OrderState::Fulfilled && o.number.is_some()).await;
        (id, order.number.unwrap())
    }

    /// POSTs `body` to one of the emulator's control routes; (status, body).
    pub async fn control(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.emu.base_url()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let (status, _, json) = split(r).await;
        (status, json)
    }

    /// Waits until the store's order for `session_id` satisfies `pred`.
    pub async fn wait_order(
        &self,
        session_id: &str,
        pred: impl Fn(&checkout::order::Order) -> bool,
    ) -> checkout::order::Order {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(o) = self.app.store.order(session_id).await.unwrap()
                && pred(&o)
            {
                return o;
            }
            assert!(std::time::Instant::now() < deadline, "order {session_id} never reached the expected state");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// POSTs a freshly signed event body to a shop's webhook at `url`; the status and JSON answer.
/// Owned arguments, so concurrent deliveries can be spawned.
pub async fn deliver_to(http: reqwest::Client, url: String, body: Vec<u8>) -> (u16, serde_json::Value) {
    let header = checkout::signature::sign(WEBHOOK_SECRET.as_bytes(), checkout::clock::now(), &body);
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .header("stripe-signature", header)
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, _, json) = split(r).await;
    (status, json)
}

/// Status, headers and JSON body (Null when the body is not JSON).
pub async fn split(resp: reqwest::Response) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap();
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

/// Calls a route in-process with a `Full<Bytes>` body (no socket).
pub async fn call(app: &App, route: Route, req: http::Request<Full<Bytes>>) -> (u16, http::HeaderMap, Bytes) {
    let resp = checkout::routes::dispatch(route, app, req).await;
    let (parts, body) = resp.into_parts();
    (parts.status.as_u16(), parts.headers, body.collect().await.unwrap().to_bytes())
}

/// POSTs `body` with chunked transfer encoding (no Content-Length) over a raw
/// socket and returns the status code.
pub async fn raw_chunked_post(addr: SocketAddr, path: &str, origin: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nOrigin: {origin}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(1024) {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if sock.write_all(&frame).await.is_err() {
            break; // the server may answer and close early
        }
    }
    let _ = sock.write_all(b"0\r\n\r\n").await;
    let mut buf = Vec::new();
    let _ = sock.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

pub mod wire;

#[path = "../../support/tools.rs"]
pub mod tools;

/// Fails a test whose tool turned out missing after all: the build script marks a suite
/// ignored when it cannot find its tool, so a suite that runs must find it.
pub fn tool_missing(what: &str) {
    panic!("{what} is unavailable: run .ci/run's install steps (see README, Tests)");
}

/// Runs an oracle script from tests/oracle with JSON on stdin; `None` if it cannot run.
pub fn oracle(cmd: &str, script: &str, input: &str) -> Option<Vec<bool>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle");
    let mut child = std::process::Command::new(cmd)
        .arg(script)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    use std::io::Write;
    // A script that dies at once (its npm/PyPI package missing) closes stdin: EPIPE here.
    let written = child.stdin.take().unwrap().write_all(input.as_bytes());
    let out = child.wait_with_output().ok()?;
    if written.is_err() || !out.status.success() {
        eprintln!("{cmd} {script} failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Standard base64, padded (the oracles' JSON carries raw bodies this way).
pub fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Runs one statement with the session id as `$1` on the shop's database.
pub async fn sql(db: &str, text: &str, session_id: &str) -> Vec<(i64, Option<i64>)> {
    if let Some(path) = db.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut stmt = conn.prepare(&text.replace('$', "?")).unwrap();
        let rows = stmt.query_map([session_id], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.map(Result::unwrap).collect()
    } else {
        let (client, conn) = tokio_postgres::connect(db, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        // Typed: an unnamed statement in one flight, which a transaction pooler accepts.
        let rows = client.query_typed(text, &[(&session_id, tokio_postgres::types::Type::TEXT)]).await.unwrap();
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    }
}

/// Opens a store handle on a `DATABASE_URL` (another instance's, to the same database).
pub fn open_store(url: &str) -> checkout::store::Store {
    checkout::store::Store::open(&checkout::config::Database::parse(url).unwrap()).unwrap()
}

/// Waits, if need be, until at least `room` seconds are left in the current fixed rate-limit
/// window of `window` seconds (windows are aligned to the clock), so the requests a test
/// counts all fall into one window.
pub async fn within_one_window(window: i64, room: i64) {
    let left = window - checkout::clock::now().rem_euclid(window);
    if left < room {
        tokio::time::sleep(Duration::from_secs((left + 1) as u64)).await;
    }
}
