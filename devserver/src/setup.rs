//! `cargo run -p dev -- stripe-setup [--live] https://SHOP`: creates (or, run again, updates) the
//! shop's webhook endpoint in the owner's Stripe account.
//!
//! The endpoint is `https://SHOP/api/webhook`, with `enabled_events[]` exactly the events the
//! shop handles ([`EventType::ALL`], the one list) and `api_version` the shop's pinned
//! [`API_VERSION`]. On create it prints the signing secret once, with the line that stores it
//! in Vercel; it is never written anywhere. Run again, it finds the endpoint by its URL and
//! updates its events; the secret stays as it was. The key is `STRIPE_SECRET_KEY` (process
//! environment, else `.env`); `STRIPE_API_BASE` (default `https://api.stripe.com`) points it
//! elsewhere (tests: the emulator). A live key needs `--live`.

use checkout::stripe::{API_VERSION, EventType, Form};
use serde_json::Value;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Where Stripe's API lives unless `STRIPE_API_BASE` says otherwise.
const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// The usage line.
const USAGE: &str = "usage: cargo run -p dev -- stripe-setup [--live] https://SHOP  (your shop's public https origin)";

/// Runs the command with its arguments (after `stripe-setup`) and the variables (`.env`, then
/// the process environment over it); returns the process exit status.
pub async fn main(args: &[String], vars: &HashMap<String, String>) -> i32 {
    match run(args, vars).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stripe-setup: {e}");
            1
        }
    }
}

/// The names of the events the shop handles, in [`EventType::ALL`]'s order.
pub fn event_names() -> Vec<&'static str> {
    EventType::ALL.iter().map(|t| t.as_str()).collect()
}

async fn run(args: &[String], vars: &HashMap<String, String>) -> Result<i32, String> {
    let mut live = false;
    let mut shop = None;
    for a in args {
        match a.as_str() {
            "--live" => live = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(0);
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}\n{USAGE}")),
            url if shop.is_none() => shop = Some(url),
            _ => return Err(format!("one shop URL only\n{USAGE}")),
        }
    }
    let shop = shop.ok_or_else(|| USAGE.to_string())?;
    let origin = shop_origin(shop)?;
    let url = format!("{origin}/api/webhook");
    let host = origin.trim_start_matches("https://").to_string();

    let Account { api, base, live: key_is_live } = account(vars, live)?;
    let mode = if key_is_live { "LIVE" } else { "test" };
    println!("Stripe ({mode} mode, {base}): webhook endpoint {url}");

    let events = event_names();
    let found = api.endpoints_at(&url).await?;
    let Some(existing) = found.first().cloned() else {
        let created = api.create(&url, &format!("Checkout shop {host}: order webhooks (stripe-setup)"), &host).await?;
        let id = created["id"].as_str().unwrap_or("?");
        let secret = created["secret"].as_str().filter(|s| s.starts_with("whsec_")).ok_or_else(|| {
            format!("Stripe created endpoint {id} but answered no signing secret; delete it and run this again")
        })?;
        println!("Created webhook endpoint {id}");
        println!("  events ({}): {}", events.len(), events.join(", "));
        println!("  api_version: {API_VERSION}");
        println!();
        println!("Its signing secret, shown this once (it is not saved anywhere):");
        println!();
        println!("  {secret}");
        println!();
        println!("Store it in Vercel: run the line below and paste the secret when prompted, then redeploy:");
        println!();
        println!("  vercel env add STRIPE_WEBHOOK_SECRET production");
        return Ok(0);
    };
    let id = existing["id"].as_str().unwrap_or("?").to_string();
    if found.len() > 1 {
        let others: Vec<&str> = found.iter().skip(1).filter_map(|e| e["id"].as_str()).collect();
        println!("Note: {} endpoints have this URL; updating {id}, leaving {}", found.len(), others.join(", "));
    }
    let mut form = Form::new();
    for (i, e) in events.iter().enumerate() {
        form.push(format!("enabled_events[{i}]"), *e);
    }
    let updated = api.post(&format!("/v1/webhook_endpoints/{id}"), &form).await?;
    println!("Updated webhook endpoint {id}");
    println!("  events ({}): {}", events.len(), events.join(", "));
    println!("  its signing secret is unchanged: STRIPE_WEBHOOK_SECRET in Vercel stays as it is");
    if updated["status"] == "disabled" {
        println!("  note: the endpoint is disabled; enable it in the Dashboard (Developers → Webhooks)");
    }
    let version = updated["api_version"].as_str();
    if version != Some(API_VERSION) {
        let shown = version.unwrap_or("the account's default");
        eprintln!(
            "stripe-setup: the endpoint's api_version is {shown}, but the shop pins {API_VERSION}, and Stripe \
             cannot change an endpoint's api_version. Fix: delete endpoint {id} (Dashboard → Developers → \
             Webhooks, or `stripe webhook_endpoints delete {id}`), run this command again, and store the new \
             secret it prints."
        );
        return Ok(1);
    }
    println!("  api_version: {API_VERSION}");
    Ok(0)
}

/// The owner's Stripe account as a command reaches it: the API client, its base URL, and
/// whether the key is live.
pub(crate) struct Account {
    /// The client (key, pinned version).
    pub api: Api,
    /// `STRIPE_API_BASE`, default `https://api.stripe.com`.
    pub base: String,
    /// A live key (`sk_live_`/`rk_live_`), accepted only with `--live`.
    pub live: bool,
}

/// Reads the key as the owner's commands do: `STRIPE_SECRET_KEY` (process environment, else
/// `.env`), a secret or restricted key, not the emulator's offline key against Stripe, a live
/// key only with `--live` (`live_allowed`) and only to Stripe itself.
pub(crate) fn account(vars: &HashMap<String, String>, live_allowed: bool) -> Result<Account, String> {
    let var = |k: &str| vars.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let key = var("STRIPE_SECRET_KEY")
        .ok_or("STRIPE_SECRET_KEY is not set (put your Stripe secret key in the environment or .env)")?;
    if !(key.starts_with("sk_") || key.starts_with("rk_")) {
        return Err("STRIPE_SECRET_KEY must be a secret (sk_...) or restricted (rk_...) key".into());
    }
    let base = var("STRIPE_API_BASE").unwrap_or(DEFAULT_API_BASE).trim_end_matches('/').to_string();
    if key == crate::EMULATOR_SECRET_KEY && base == DEFAULT_API_BASE {
        return Err("STRIPE_SECRET_KEY is the emulator's offline key: put your Stripe secret key (sk_test_... or \
                    sk_live_...) in the environment or .env"
            .into());
    }
    let live = key.starts_with("sk_live_") || key.starts_with("rk_live_");
    if live && !live_allowed {
        return Err("refusing a live key (sk_live_/rk_live_) without --live: run it again with --live to use \
                    the live account"
            .into());
    }
    if live && base != DEFAULT_API_BASE {
        return Err(format!("refusing to send a live key to {base}: live keys only go to {DEFAULT_API_BASE}"));
    }
    Ok(Account { api: Api::new(&base, key)?, base, live })
}

/// `https://SHOP` (a bare origin, public host) as `https://host[:port]`; otherwise the one-line
/// reason it is refused.
pub fn shop_origin(shop: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(shop).map_err(|_| format!("{shop:?} is not a URL; give the shop's https://SHOP"))?;
    match url.scheme() {
        "https" => {}
        "http" => {
            return Err("refusing an http:// URL: Stripe sends live events to https only (use https://SHOP)".into());
        }
        s => return Err(format!("refusing a {s}: URL: give the shop's https://SHOP")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("refusing a URL with credentials (user:password@): give the shop's https://SHOP".into());
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(
            "refusing a URL with a path, query or fragment: give the shop's origin https://SHOP (the command adds /api/webhook)"
                .into(),
        );
    }
    // The parser normalises the host: IPv4 in dotted decimal, IPv6 in brackets, names lowercased.
    let host = url.host_str().unwrap_or("");
    let public = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<Ipv6Addr>().is_ok_and(|ip| public_ip(IpAddr::V6(ip)))
    } else if let Ok(v4) = host.parse::<Ipv4Addr>() {
        public_ip(IpAddr::V4(v4))
    } else {
        !host.is_empty() && public_name(host)
    };
    if !public {
        return Err(format!(
            "refusing {}: not a public host (Stripe must reach it from the internet; for local testing use `stripe listen`)",
            host
        ));
    }
    let origin = url.origin().ascii_serialization();
    Ok(origin)
}

/// A DNS name Stripe could reach: not `localhost`, `*.localhost`, `*.local`, `*.internal`, nor
/// a single label.
fn public_name(d: &str) -> bool {
    let d = d.trim_end_matches('.').to_ascii_lowercase();
    let private_suffix = [".localhost", ".local", ".internal", ".home.arpa", ".lan"].iter().any(|s| d.ends_with(s));
    d != "localhost" && !private_suffix && d.contains('.')
}

/// An IP literal outside the loopback, private, link-local, shared and unspecified ranges.
fn public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b); // 100.64.0.0/10, carrier-grade NAT
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || shared
        || a == 0)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00; // fc00::/7
    let link_local = first & 0xffc0 == 0xfe80; // fe80::/10
    !(ip.is_loopback() || ip.is_unspecified() || unique_local || link_local)
}

/// Creates a webhook endpoint at `url` for the shop's events and pinned version (the dev
/// server's own, on the emulator); answers the `webhook_endpoint` object, `secret` included.
pub async fn create_endpoint(base: &str, key: &str, url: &str, description: &str, shop: &str) -> Result<Value, String> {
    Api::new(base, key)?.create(url, description, shop).await
}

/// A small Stripe client for the owner's commands (the key, the pinned version, errors in one
/// line).
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    fn new(base: &str, key: &str) -> Result<Api, String> {
        let mut builder = reqwest::Client::builder();
        if base.starts_with("http://127.0.0.1:") || base.starts_with("http://localhost:") {
            builder = builder.no_proxy(); // the emulator, on this machine
        }
        let http = builder
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .user_agent(concat!("checkout-rust-setup/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Api { http, base: base.to_string(), key: key.to_string() })
    }

    /// Every endpoint whose `url` is `url` (all pages of `GET /v1/webhook_endpoints`).
    async fn endpoints_at(&self, url: &str) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut q = Form::new();
            q.push("limit", "100");
            if let Some(a) = &after {
                q.push("starting_after", a);
            }
            let page = self.send(self.http.get(format!("{}/v1/webhook_endpoints?{}", self.base, q.encode()))).await?;
            let data = page["data"].as_array().ok_or("Stripe's endpoint list has no data")?;
            out.extend(data.iter().filter(|e| e["url"] == url).cloned());
            after = data.last().and_then(|e| e["id"].as_str()).map(String::from);
            if page["has_more"] != true || after.is_none() {
                return Ok(out);
            }
        }
    }

    /// `POST /v1/webhook_endpoints`: `url`, the shop's events, its pinned version, a
    /// description and `metadata[shop]`.
    async fn create(&self, url: &str, description: &str, shop: &str) -> Result<Value, String> {
        let mut form = Form::new();
        form.push("url", url);
        for (i, e) in event_names().iter().enumerate() {
            form.push(format!("enabled_events[{i}]"), *e);
        }
        form.push("api_version", API_VERSION).push("description", description).push("metadata[shop]", shop);
        self.post("/v1/webhook_endpoints", &form).await
    }

    /// `GET {path}?{query}`.
    pub(crate) async fn get(&self, path: &str, query: &Form) -> Result<Value, String> {
        self.send(self.http.get(format!("{}{path}?{}", self.base, query.encode()))).await
    }

    /// `GET {path}`; `None` when Stripe answers 404.
    pub(crate) async fn find(&self, path: &str, query: &Form) -> Result<Option<Value>, String> {
        let req = self.http.get(format!("{}{path}?{}", self.base, query.encode()));
        match self.send_status(req).await? {
            (404, _) => Ok(None),
            (_, r) => r.map(Some),
        }
    }

    /// `POST {path}` with `form`, one idempotency key.
    pub(crate) async fn post(&self, path: &str, form: &Form) -> Result<Value, String> {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Idempotency-Key", format!("stripe-setup-{}", checkout::http::random_hex(16)))
            .body(form.encode());
        self.send(req).await
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, String> {
        self.send_status(req).await?.1
    }

    /// Sends with the key and version: the status and the answer (an error in one line).
    async fn send_status(&self, req: reqwest::RequestBuilder) -> Result<(u16, Result<Value, String>), String> {
        let resp = req
            .bearer_auth(&self.key)
            .header("Stripe-Version", API_VERSION)
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {}", self.base, without_url(&e)))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| format!("no answer from {}: {}", self.base, without_url(&e)))?;
        let body: Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("unreadable answer from Stripe ({status}): {e}"))?;
        if status.is_success() {
            return Ok((status.as_u16(), Ok(body)));
        }
        let err = &body["error"];
        let message = err["message"].as_str().unwrap_or("no message");
        let param = err["param"].as_str().map(|p| format!(" (param {p})")).unwrap_or_default();
        Ok((status.as_u16(), Err(format!("Stripe answered {status}{param}: {message}"))))
    }
}

/// A transport error's cause, without the request URL.
fn without_url(e: &reqwest::Error) -> String {
    let mut source = std::error::Error::source(e);
    let mut detail = if e.is_timeout() { "timed out".to_string() } else { "connection failed".to_string() };
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_urls() {
        assert_eq!(shop_origin("https://shop.example.com").unwrap(), "https://shop.example.com");
        assert_eq!(shop_origin("https://Shop.Example.com/").unwrap(), "https://shop.example.com");
        assert_eq!(shop_origin("https://shop.example.com:8443").unwrap(), "https://shop.example.com:8443");
        assert_eq!(shop_origin("https://8.8.8.8").unwrap(), "https://8.8.8.8");
        for bad in [
            "http://shop.example.com",
            "shop.example.com",
            "https://shop.example.com/shop",
            "https://shop.example.com/api/webhook",
            "https://shop.example.com/?x=1",
            "https://shop.example.com/?",
            "https://shop.example.com/#top",
            "https://user:pw@shop.example.com",
            "https://localhost",
            "https://localhost:3000",
            "https://shop.localhost",
            "https://printer.local",
            "https://api.internal",
            "https://intranet",
            "https://127.0.0.1",
            "https://10.1.2.3",
            "https://172.16.0.1",
            "https://192.168.1.2",
            "https://169.254.169.254",
            "https://100.64.0.1",
            "https://0.0.0.0",
            "https://[::1]",
            "https://[fe80::1]",
            "https://[fd00::1]",
            "https://[::ffff:192.168.1.2]",
            "ftp://shop.example.com",
        ] {
            assert!(shop_origin(bad).is_err(), "{bad}");
            assert!(!shop_origin(bad).unwrap_err().contains('\n'), "{bad}: one line");
        }
    }

    #[test]
    fn the_events_are_the_enum() {
        let names = event_names();
        assert_eq!(names.len(), EventType::ALL.len());
        assert!(names.iter().all(|n| EventType::parse(n).is_some()));
    }
}
