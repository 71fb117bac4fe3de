//! What a web page must not reach. DNS rebinding: the emulator (and the dev server, which
//! reuses [`is_local_host`]) answers only requests addressed to `localhost` or a loopback IP,
//! plus the host of `public_url` when one is configured; the `/_emulator/*` control routes
//! also require a loopback peer. Cross-site requests: a page in the developer's browser can
//! still POST a form (`text/plain`, no preflight) to `http://127.0.0.1:12111`, so a
//! state-changing control request ([`control_guard`]) must be JSON and must not come from
//! another site; and the webhook endpoint it may set stays on this machine
//! ([`is_loopback_url`]).

use crate::state::Inner;
use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The host part of a `Host` header value (`name[:port]`, `[v6][:port]`), lowercased.
fn host_name(host: &str) -> Option<String> {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))) {
            return None;
        }
        inside
    } else {
        match host.split_once(':') {
            Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
            Some(_) => return None,
            None => host,
        }
    };
    (!name.is_empty()).then(|| name.to_ascii_lowercase())
}

/// Whether a `Host` header value names this machine: `localhost` or a loopback
/// IP (`127.0.0.1`, `[::1]`), with any port. Anything else may be a DNS
/// rebinding attempt (a page on `evil.example` whose name resolves to 127.0.0.1).
pub fn is_local_host(host: &str) -> bool {
    match host_name(host) {
        Some(name) => name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// Refuses (403) a request whose `Host` is not local (nor `public_url`'s host), and
/// a `/_emulator/*` request that is not local on both counts.
pub(crate) async fn host_guard(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let local = is_local_host(host);
    let public = !local
        && host_name(host).is_some_and(|h| {
            inner
                .public_url
                .split_once("://")
                .and_then(|(_, rest)| host_name(rest.split('/').next().unwrap_or("")))
                .is_some_and(|p| p == h)
        });
    let control = req.uri().path().starts_with("/_emulator");
    let peer_loopback =
        req.extensions().get::<ConnectInfo<SocketAddr>>().is_some_and(|ConnectInfo(a)| a.ip().is_loopback());
    let allowed = if control { local && peer_loopback } else { local || public };
    if allowed { next.run(req).await } else { (StatusCode::FORBIDDEN, "host not allowed").into_response() }
}

/// Whether an `Origin` header value is a page served from this machine over http:
/// `http://127.0.0.1[:port]` (any 127/8 address), `http://localhost[:port]`,
/// `http://[::1][:port]`. `null` and every other origin are not.
fn is_loopback_origin(origin: &str) -> bool {
    origin.trim().strip_prefix("http://").is_some_and(|host| !host.contains('/') && is_local_host(host))
}

/// Why a state-changing control request is refused, if it is: sent by another site's page
/// (`Sec-Fetch-Site: cross-site | same-site`, or an `Origin` that is not a loopback http
/// origin) ⇒ 403; not `Content-Type: application/json` (an empty body too) ⇒ 415. A
/// cross-site page can send JSON only after a CORS preflight, which the emulator never grants.
fn control_refusal(headers: &HeaderMap) -> Option<(StatusCode, &'static str)> {
    let fetch_site = headers.get_all("sec-fetch-site").iter().any(|v| {
        v.to_str().map_or(true, |v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("cross-site") || v.eq_ignore_ascii_case("same-site")
        })
    });
    if fetch_site {
        return Some((StatusCode::FORBIDDEN, "control routes refuse cross-site requests (Sec-Fetch-Site)"));
    }
    if headers.get_all(header::ORIGIN).iter().any(|v| !v.to_str().is_ok_and(is_loopback_origin)) {
        return Some((
            StatusCode::FORBIDDEN,
            "control routes refuse requests from a page not served over http from this machine (Origin)",
        ));
    }
    let json = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        ct.split(';').next().is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
    });
    if !json {
        return Some((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "control routes take Content-Type: application/json (send {} for no parameters)",
        ));
    }
    None
}

/// Middleware of the `/_emulator/*` routes: a request that may change state (any method but
/// GET and HEAD) is refused when a web page could have sent it; see [`control_refusal`].
/// The answer is a control error: `{"error": {"type": "invalid_request_error", "message"}}`.
pub(crate) async fn control_guard(req: Request, next: Next) -> Response {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return next.run(req).await;
    }
    match control_refusal(req.headers()) {
        None => next.run(req).await,
        Some((status, message)) => {
            (status, Json(json!({"error": {"type": "invalid_request_error", "message": message}}))).into_response()
        }
    }
}

/// Whether a webhook endpoint the control route may set stays on this machine: an `http` URL
/// whose host is `localhost` or a loopback IP (127.0.0.0/8, `[::1]`).
pub(crate) fn is_loopback_url(url: &str) -> bool {
    // The host as the delivery client will read it (IPv6 in brackets, IPv4 normalised).
    reqwest::Url::parse(url).is_ok_and(|u| u.scheme() == "http" && u.host_str().is_some_and(is_local_host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hosts() {
        for h in ["localhost", "localhost:3000", "LOCALHOST:1", "127.0.0.1", "127.0.0.1:12111", "[::1]:80", "[::1]"] {
            assert!(is_local_host(h), "{h}");
        }
        for h in [
            "",
            "evil.example",
            "evil.example:3000",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1:80",
            "localhost:80:80",
            "localhost:x",
            "[::1]x",
            "[::2]",
        ] {
            assert!(!is_local_host(h), "{h}");
        }
    }

    #[test]
    fn loopback_origins_and_urls() {
        for o in ["http://127.0.0.1:3000", "http://localhost:5173", "http://[::1]:8080", "http://localhost"] {
            assert!(is_loopback_origin(o), "{o}");
        }
        for o in [
            "null",
            "https://localhost:3000",
            "http://evil.example",
            "http://localhost.evil.example",
            "http://localhost:3000/x",
            "",
        ] {
            assert!(!is_loopback_origin(o), "{o}");
        }
        for u in [
            "http://127.0.0.1:3000/api/webhook",
            "http://localhost:1/",
            "http://LOCALHOST/x",
            "http://[::1]:9/",
            "http://127.1.2.3/",
        ] {
            assert!(is_loopback_url(u), "{u}");
        }
        for u in [
            "https://evil.example/",
            "https://127.0.0.1/",
            "http://evil.example/",
            "http://10.0.0.1/",
            "http://127.0.0.1@evil.example/",
            "http://localhost.evil.example/",
            "ftp://127.0.0.1/",
            "127.0.0.1:3000",
            "",
        ] {
            assert!(!is_loopback_url(u), "{u}");
        }
    }
}
