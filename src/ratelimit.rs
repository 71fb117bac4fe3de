//! Rate limits per client IP: an in-instance token bucket (cheap, stops a
//! burst at once) plus a fixed-window counter in the order store, so the
//! limit holds across every instance of a function.

use crate::config::RateLimit;
use crate::store::{Store, StoreError};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// A request refused by a limit: how long to wait, and which limit (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// When the client may try again.
    pub retry_after: Duration,
    /// Which limit refused it (logged, never answered).
    pub reason: String,
}

/// What counting one promotion-code guess found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guess {
    /// Counted (or admitted before in this window): the code may be looked up.
    Admitted,
    /// The shared counter could not count it (the store is down or slow): the limit cannot be
    /// shown to hold across instances, so the code is treated exactly as one that does not
    /// apply (fail closed).
    Uncounted,
}

/// Distinct promotion codes one client had admitted in one window (keyed hashes).
#[derive(Debug, Default)]
struct Guesses {
    window_start: i64,
    codes: HashSet<[u8; 16]>,
}

/// The in-instance token buckets, keyed by scope and client, and the
/// in-instance record of distinct promotion codes per client.
#[derive(Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<String, Bucket>>,
    guesses: Mutex<HashMap<String, Guesses>>,
}

/// A keyed hash of a promotion code tried by one client: HMAC-SHA256 under a
/// server secret, truncated to 128 bits. The store keeps this, never the code,
/// and without the key nobody can test the stored hashes against guesses.
pub fn code_digest(key: &[u8], client: &str, code: &str) -> [u8; 16] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"checkout-rust discount guess v1\0");
    mac.update(client.as_bytes());
    mac.update(b"\0");
    mac.update(code.to_ascii_lowercase().as_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// The current fixed window of `limit`: (now, window length, window start), seconds.
fn window(limit: RateLimit) -> (i64, i64, i64) {
    let now = crate::clock::now();
    let window = limit.window.as_secs().max(1) as i64;
    (now, window, now - now.rem_euclid(window))
}

/// The client key: the IP, or its /64 for IPv6 (one subscriber owns a /64).
pub fn client_key(ip: Option<IpAddr>) -> String {
    // `::ffff:a.b.c.d` is the IPv4 client a.b.c.d, not one /64 shared by every IPv4 client.
    match ip.map(|ip| ip.to_canonical()) {
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
    pub async fn check(&self, store: &Store, scope: &str, ip: Option<IpAddr>, limit: RateLimit) -> Result<(), Limited> {
        let key = format!("{scope}:{}", client_key(ip));
        if let Err(wait) = self.take_local(&key, limit) {
            return Err(Limited { retry_after: wait, reason: format!("rate limit (instance) {scope}") });
        }
        let (now, window, window_start) = window(limit);
        let hit = tokio::time::timeout(SHARED_COUNTER_BUDGET, store.hit(&key, window_start))
            .await
            .unwrap_or_else(|_| Err(StoreError::new("shared counter over its time budget")));
        match hit {
            Ok(hits) if hits > i64::from(limit.limit) => {
                let wait = Duration::from_secs((window_start + window - now).max(1) as u64);
                Err(Limited { retry_after: wait, reason: format!("rate limit (shared) {scope}") })
            }
            Ok(_) => Ok(()),
            Err(e) => {
                crate::log::warn("rate-limit counter unavailable", &[("error", &e.to_string())]);
                Ok(())
            }
        }
    }
}

impl Limiter {
    /// Admits one promotion-code guess from `ip`: a guess is a *distinct* code
    /// (compared by [`code_digest`] under `hash_key`, case-insensitively) per
    /// client per window, so re-applying a code already admitted costs
    /// nothing, while more than `limit.limit` different codes answer 429. The
    /// in-instance record decides at once; the store's record (hashes only)
    /// makes the limit hold across instances, within [`SHARED_COUNTER_BUDGET`]. A guess the
    /// store cannot count is [`Guess::Uncounted`] (logged): without the shared record, 8
    /// instances would each admit the limit.
    pub async fn check_guess(
        &self,
        store: &Store,
        ip: Option<IpAddr>,
        code: &str,
        hash_key: &[u8],
        limit: RateLimit,
    ) -> Result<Guess, Limited> {
        let client = client_key(ip);
        let digest = code_digest(hash_key, &client, code);
        let (now, window, window_start) = window(limit);
        let refuse = |which: &str| {
            let wait = Duration::from_secs((window_start + window - now).max(1) as u64);
            Limited { retry_after: wait, reason: format!("distinct discount codes ({which})") }
        };
        let newly_local = {
            let mut guesses = self.guesses.lock().unwrap_or_else(|p| p.into_inner());
            if guesses.len() >= MAX_BUCKETS && !guesses.contains_key(&client) {
                guesses.retain(|_, g| g.window_start == window_start);
                if guesses.len() >= MAX_BUCKETS {
                    guesses.clear(); // the shared record still holds
                }
            }
            let g = guesses.entry(client.clone()).or_default();
            if g.window_start != window_start {
                *g = Guesses { window_start, codes: HashSet::new() };
            }
            if g.codes.contains(&digest) {
                false
            } else if g.codes.len() >= limit.limit as usize {
                return Err(refuse("instance"));
            } else {
                g.codes.insert(digest);
                true
            }
        };
        // Shared: a code admitted before in this window is free; a new one is
        // counted, and recorded as admitted only when within the limit.
        let code_bucket = format!("discount-code:{client}:{window_start}:{}", hex::encode(digest));
        let shared = async {
            if store.bucket_seen(&code_bucket).await? {
                return Ok(true);
            }
            let distinct = store.hit(&format!("discount-codes:{client}"), window_start).await?;
            if distinct > i64::from(limit.limit) {
                return Ok(false);
            }
            store.hit(&code_bucket, window_start).await?;
            Ok(true)
        };
        let shared = tokio::time::timeout(SHARED_COUNTER_BUDGET, shared)
            .await
            .unwrap_or_else(|_| Err(StoreError::new("shared counter over its time budget")));
        let forget = || {
            if newly_local {
                let mut guesses = self.guesses.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(g) = guesses.get_mut(&client) {
                    g.codes.remove(&digest);
                }
            }
        };
        match shared {
            Ok(true) => Ok(Guess::Admitted),
            Ok(false) => {
                forget();
                Err(refuse("shared"))
            }
            // Admitted on this instance earlier in the window: it was counted then.
            Err(_) if !newly_local => Ok(Guess::Admitted),
            Err(e) => {
                crate::log::warn(
                    "promotion-code guess not counted: treated as a code that does not apply",
                    &[("error", &e.to_string())],
                );
                forget();
                Ok(Guess::Uncounted)
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

    #[test]
    fn ipv4_mapped_addresses_are_their_ipv4_client() {
        let a: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        let b: IpAddr = "::ffff:198.51.100.9".parse().unwrap();
        assert_eq!(client_key(Some(a)), "203.0.113.7");
        assert_ne!(client_key(Some(a)), client_key(Some(b)), "two IPv4 clients are two buckets");
    }
}
