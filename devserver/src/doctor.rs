//! `cargo run -p dev -- doctor https://SHOP`: the deployment's own checks (`GET /api/health`
//! with `ADMIN_TOKEN`), printed one line per check — `PASS`, `WARN` or `FAIL`, the check's name
//! and what it found, and for each warning or failure its fix on the next line — plus the checks
//! only the outside can make (the public webhook URL as Stripe reaches it: redirects, 401/403).
//! Exit status 0 only when nothing FAILs.
//!
//! `ADMIN_TOKEN` comes from the process environment or `.env` (the variables `stripe-setup`
//! reads). When the shop answers 5xx, its configuration (or store) failed at start-up: the
//! function's log names the variable; the doctor also checks the variables it has here and
//! names the one the shop would refuse (`vercel env pull` fetches the deployment's). A loopback
//! `http://` shop (a local server) is accepted, with a note.

use checkout::doctor::{self, Check, Status};
use std::collections::HashMap;
use std::time::Duration;

/// The usage line.
const USAGE: &str = "usage: cargo run -p dev -- doctor https://SHOP  (your shop's public https origin)";

/// How long the shop's own checks may take (they include a Stripe read and a probe).
const HEALTH_TIMEOUT: Duration = Duration::from_secs(40);

/// Runs the command with its arguments (after `doctor`) and the variables (`.env`, then the
/// process environment over it); returns the process exit status.
pub async fn main(args: &[String], vars: &HashMap<String, String>) -> i32 {
    match run(args, vars).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("doctor: {e}");
            1
        }
    }
}

/// The shop's origin: a public `https://` origin as `stripe-setup` takes it, or a loopback
/// `http://` one (a local server), which is noted.
fn origin(shop: &str) -> Result<(String, bool), String> {
    if let Ok(url) = reqwest::Url::parse(shop)
        && url.scheme() == "http"
    {
        let host = url.host_str().unwrap_or("");
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if loopback && url.path() == "/" && url.query().is_none() && url.username().is_empty() {
            return Ok((url.origin().ascii_serialization(), true));
        }
    }
    crate::setup::shop_origin(shop).map(|o| (o, false))
}

/// Prints one check and says whether it failed.
fn print(check: &Check) -> bool {
    println!("{} {}: {}", check.status.label(), check.check, check.message);
    if let Some(fix) = check.fix.as_deref().filter(|_| check.status != Status::Pass) {
        println!("     fix: {fix}");
    }
    check.status == Status::Fail
}

fn fail(check: &str, message: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { check: check.into(), status: Status::Fail, message: message.into(), fix: Some(fix.into()) }
}

async fn run(args: &[String], vars: &HashMap<String, String>) -> Result<i32, String> {
    let shop = match args {
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            return Ok(0);
        }
        [shop] if !shop.starts_with('-') => shop,
        _ => return Err(USAGE.into()),
    };
    let (origin, local) = origin(shop)?;
    let token =
        vars.get("ADMIN_TOKEN").map(|t| t.trim()).filter(|t| !t.is_empty()).ok_or(
            "ADMIN_TOKEN is not set (the doctor calls /api/health with it: put it in the environment or .env)",
        )?;
    println!("Doctor for {origin}");
    if local {
        println!(
            "note: {origin} is a local shop (http on loopback): Stripe cannot reach it; checked as a deployment would be"
        );
    }
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(HEALTH_TIMEOUT)
        .user_agent(concat!("checkout-rust-doctor/", env!("CARGO_PKG_VERSION")));
    if local {
        builder = builder.no_proxy();
    }
    let http = builder.build().map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let mut failed = false;

    // The shop's own checks.
    let health_url = format!("{origin}/api/health");
    // A deployment behind Deployment Protection with Protection Bypass for Automation: its secret
    // (Vercel's own variable name) lets the doctor through as it lets Stripe's deliveries.
    let bypass = vars.get("VERCEL_AUTOMATION_BYPASS_SECRET").map(|b| b.trim()).filter(|b| !b.is_empty());
    let mut request = http.get(&health_url).bearer_auth(token);
    if let Some(b) = bypass {
        request = request.header("x-vercel-protection-bypass", b);
    }
    let answer = request.send().await;
    match answer {
        Err(e) => {
            let why = if e.is_timeout() { "timed out" } else { "no connection" };
            failed |= print(&fail(
                "health",
                format!("GET {health_url}: {why}"),
                "check the domain in Vercel → Domains and that the project is deployed",
            ));
        }
        Ok(resp) => {
            let status = resp.status().as_u16();
            let location = resp.headers().get("location").and_then(|l| l.to_str().ok()).map(String::from);
            let bytes = resp.bytes().await.unwrap_or_default();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let ours = body["error"]["message"].is_string();
            match status {
                200 if body["checks"].is_array() => {
                    let checks: Vec<Check> = serde_json::from_value(body["checks"].clone()).unwrap_or_default();
                    for check in &checks {
                        failed |= print(check);
                    }
                    if let Some(site) = body["site_url"].as_str().filter(|s| *s != origin) {
                        print(&Check {
                            check: "site_url".into(),
                            status: Status::Warn,
                            message: format!("the deployment's SITE_URL is {site}, not {origin}"),
                            fix: Some(format!(
                                "run the doctor on {site}, or set SITE_URL to {origin} if that is the shop's name"
                            )),
                        });
                    }
                }
                300..=399 => {
                    let to = location.as_deref().map(doctor::without_query).unwrap_or("(no Location)");
                    failed |= print(&fail(
                        "health",
                        format!("GET {health_url} answered {status} → {to}"),
                        "run the doctor on the name the shop serves without a redirect",
                    ));
                }
                401 | 403 if !ours => {
                    failed |= print(&fail(
                        "health",
                        format!("GET {health_url} answered {status} before the shop: Vercel Deployment Protection"),
                        "Vercel → Project → Settings → Deployment Protection: disable it for Production (Stripe is refused the same way), or set VERCEL_AUTOMATION_BYPASS_SECRET here to its Protection Bypass for Automation secret",
                    ));
                }
                401 => {
                    failed |= print(&fail(
                        "health",
                        "the shop refused ADMIN_TOKEN (401)",
                        "use the deployment's ADMIN_TOKEN (`vercel env pull` fetches it) in the environment or .env",
                    ));
                }
                404 => {
                    failed |= print(&fail(
                        "health",
                        format!(
                            "GET {health_url} answered 404: ADMIN_TOKEN is not set in the deployment, or it predates /api/health"
                        ),
                        "set ADMIN_TOKEN in Vercel (`openssl rand -hex 32`) and redeploy",
                    ));
                }
                429 => {
                    failed |= print(&fail(
                        "health",
                        "the shop answered 429 (RATE_LIMIT_ORDERS)",
                        "wait a minute and run again",
                    ));
                }
                500..=599 => {
                    failed |= print(&fail(
                        "health",
                        format!(
                            "GET {health_url} answered {status}: the shop's configuration or store failed at start-up"
                        ),
                        "open the function log in Vercel: it names the variable and the rule, never the value",
                    ));
                    failed |= local_config(vars);
                }
                _ => {
                    failed |= print(&fail(
                        "health",
                        format!("GET {health_url} answered {status}"),
                        "deploy this project to that domain",
                    ));
                }
            }
        }
    }

    // From the outside, as Stripe reaches it.
    let hook = format!("{origin}/api/webhook");
    let target = match (bypass, reqwest::Url::parse(&hook)) {
        (Some(b), Ok(mut with)) => {
            with.query_pairs_mut().append_pair("x-vercel-protection-bypass", b);
            with.to_string()
        }
        _ => hook.clone(),
    };
    let answer = doctor::probe(&target).await;
    failed |= print(&doctor::reachability_check("outside_reachability", &hook, &answer));
    println!();
    if failed {
        println!("Something FAILs: fix it (each FAIL's fix is under it), redeploy, and run the doctor again.");
        Ok(1)
    } else {
        println!("Nothing FAILs.");
        Ok(0)
    }
}

/// The variables here, checked as the shop checks its own: the refused one named (never its
/// value). Returns whether one was refused.
fn local_config(vars: &HashMap<String, String>) -> bool {
    let get = |k: &str| vars.get(k).cloned();
    if get("STRIPE_SECRET_KEY").is_none() {
        println!(
            "     (no STRIPE_SECRET_KEY here to check: `vercel env pull .env` fetches the deployment's variables)"
        );
        return false;
    }
    match checkout::Config::from_lookup(get) {
        Ok(_) => {
            println!("     (the variables here pass the shop's checks; the deployment's differ: see its log)");
            false
        }
        Err(e) => print(&fail(
            "config",
            format!("{e} (in the environment or .env here)"),
            format!(
                "correct {} here and in Vercel (`vercel env rm` then `vercel env add`, pasting without a newline), then redeploy",
                e.0.split(':').next().unwrap_or("the variable")
            ),
        )),
    }
}
