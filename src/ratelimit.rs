//! Rate limits per client IP: an in-instance token bucket (cheap, stops a
//! burst at once) plus a fixed-window counter in the order store, so the
//! limit holds across every instance of a function.

use crate::config::RateLimit;
use crate::http::ApiError;
use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest wait for the shared counter in the store; past it the in-instance
/// bucket alone decides (logged), so a slow or hung database cannot hold a
/// request for a connect timeout just to count it.
pub const SHARED_COUNTER_BUDGET: Duration = Duration::from_millis(300);

/// Most buckets kept per instance before idle ones are dropped.
const MAX_BUCKETS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    /// The bucket's own scope's capacity and refill rate, so clean-up judges
    /// each bucket by its own limit, not by the limit of the request that
    /// happens to trigger it.
    capacity: f64,
    per_sec: f64,
}

impl Bucket {
    /// Whether the bucket is still below capacity at `now` (a client that is
    /// still being limited; a full bucket can be forgotten).
    fn active(&self, now: Instant) -> bool {
        self.tokens + now.duration_since(self.updated).as_secs_f64() * self.per_sec < self.capacity
    }
}

/// The in-instance token buckets, keyed by scope and client.
#[derive(Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// The client key: the IP, or its /64 for IPv6 (one subscriber owns a /64).
pub fn client_key(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "unknown".to_string(),
    }
}

impl Limiter {
    /// Takes one token from `key`'s bucket; `Err(wait)` when empty.
    fn take_local(&self, key: &str, limit: RateLimit) -> Result<(), Duration> {
        let capacity = f64::from(limit.limit);
        let per_sec = capacity / limit.window.as_secs_f64();
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            buckets.retain(|_, b| b.active(now));
            if buckets.len() >= MAX_BUCKETS {
                // Still full of active clients (e.g. one per /64 of a large IPv6 block):
                // start over rather than grow; the shared counter in the store still holds.
                buckets.clear();
            }
        }
        let b = buckets.entry(key.to_string()).or_insert(Bucket { tokens: capacity, updated: now, capacity, per_sec });
        b.tokens = (b.tokens + now.duration_since(b.updated).as_secs_f64() * per_sec).min(capacity);
        b.updated = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_sec))
        }
    }

    /// Admits one request of `scope` from `ip`, or answers 429 with
    /// `Retry-After`. If the shared counter is unreachable or slower than
    /// [`SHARED_COUNTER_BUDGET`] the local bucket alone decides (logged), so a
    /// store outage does not stop the shop.
    pub async fn check(
        &self,
        store: &Store,
        scope: &str,
        ip: Option<IpAddr>,
        limit: RateLimit,
    ) -> Result<(), ApiError> {
        let key = format!("{scope}:{}", client_key(ip));
        if let Err(wait) = self.take_local(&key, limit) {
            return Err(ApiError::too_many_requests(wait).with_reason(format!("rate limit (instance) {scope}")));
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
        let window = limit.window.as_secs().max(1) as i64;
        let window_start = now - now.rem_euclid(window);
        let hit = tokio::time::timeout(SHARED_COUNTER_BUDGET, store.hit(&key, window_start))
            .await
            .unwrap_or_else(|_| Err(StoreError("shared counter over its time budget".into())));
        match hit {
            Ok(hits) if hits > i64::from(limit.limit) => {
                let wait = Duration::from_secs((window_start + window - now).max(1) as u64);
                Err(ApiError::too_many_requests(wait).with_reason(format!("rate limit (shared) {scope}")))
            }
            Ok(_) => Ok(()),
            Err(e) => {
                crate::log::warn("rate-limit counter unavailable", &[("error", &e.to_string())]);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refuses_past_capacity_and_refills() {
        let l = Limiter::default();
        let limit = RateLimit { limit: 3, window: Duration::from_millis(300) };
        for _ in 0..3 {
            assert!(l.take_local("a", limit).is_ok());
        }
        let wait = l.take_local("a", limit).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(l.take_local("b", limit).is_ok(), "buckets are per key");
        std::thread::sleep(Duration::from_millis(120));
        assert!(l.take_local("a", limit).is_ok());
    }

    #[test]
    fn clean_up_judges_each_bucket_by_its_own_scope() {
        let l = Limiter::default();
        let guesses = RateLimit { limit: 10, window: Duration::from_secs(3600) };
        let loose = RateLimit { limit: 1000, window: Duration::from_secs(1) };
        let tiny = RateLimit { limit: 3, window: Duration::from_secs(3600) };
        // A client that used up 5 of its 10 guesses.
        for _ in 0..5 {
            l.take_local("apply-discount:victim", guesses).unwrap();
        }
        // Fill the map with idle buckets of a loose scope (full again a few ms later)...
        for i in 0..MAX_BUCKETS - 1 {
            l.take_local(&format!("loose:{i}"), loose).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        // ...and trigger the clean-up from a scope with a smaller limit than the victim's.
        l.take_local("tiny:trigger", tiny).unwrap();
        let buckets = l.buckets.lock().unwrap();
        assert!(buckets.len() < 10, "idle buckets are dropped ({})", buckets.len());
        let victim = buckets.get("apply-discount:victim").expect("a half-used bucket survives clean-up");
        assert!(victim.tokens < 6.0, "{victim:?}");
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(client_key(Some(a)), client_key(Some(b)));
        assert_eq!(client_key(Some("10.0.0.1".parse().unwrap())), "10.0.0.1");
    }
}
