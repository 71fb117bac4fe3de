//! DNS-rebinding guard: the emulator (and the dev server, which reuses
//! [`is_local_host`]) answers only requests addressed to `localhost` or a
//! loopback IP, plus the host of `public_url` when one is configured. The
//! `/_emulator/*` control routes also require a loopback peer.

use crate::state::Inner;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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
}
