//! The one clock: Unix seconds, for Stripe timestamps, leases, windows and the store.

/// Seconds since the Unix epoch (0 if the system clock is before it).
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
