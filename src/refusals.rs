//! The webhook's refusals, counted for the health view without a database write per request.
//!
//! Each instance counts refusals in memory, per class ([`RefusalClass`]) and hour. The first
//! refusal after a quiet spell is written at once; later ones wait: at most one write every
//! [`FLUSH_EVERY`] per instance (a timer writes what is still pending when that time is up).
//! A write is one bounded upsert — one row per source, class and hour, added to what other
//! instances counted — and, once per hour, a prune to the last [`KEPT_HOURS`]. So a flood of
//! forged deliveries costs the database a few writes a minute and at most
//! `classes × (KEPT_HOURS + 1)` rows per source, however many requests it sends. What an
//! instance counted after its last write is lost if the instance is stopped first (at most
//! [`FLUSH_EVERY`] of counts).

use crate::signature::RefusalClass;
use crate::store::{RefusalCount, Store};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Shortest time between two writes of one instance's counts.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);
/// Hours of counts the store keeps.
pub const KEPT_HOURS: i64 = 24;

/// One instance's refusals not yet written (see the module doc).
#[derive(Default)]
pub struct RefusalTally {
    state: Arc<Mutex<Pending>>,
}

#[derive(Default)]
struct Pending {
    /// Counts per class and hour since the last write.
    counts: Vec<RefusalCount>,
    /// When the last write started.
    last_write: Option<Instant>,
    /// Whether a timer will write what is pending.
    armed: bool,
    /// The hour of the last prune.
    pruned_hour: Option<i64>,
    /// Writes so far (the bound the tests check).
    writes: u64,
}

/// What one write sends.
struct Batch {
    counts: Vec<RefusalCount>,
    prune_before: Option<i64>,
}

impl Pending {
    fn add(&mut self, class: RefusalClass, now: i64) {
        let hour = now.div_euclid(3600);
        match self.counts.iter_mut().find(|c| c.class == class.as_str() && c.hour == hour) {
            Some(c) => {
                c.refusals += 1;
                c.last_at = c.last_at.max(now);
            }
            None => self.counts.push(RefusalCount { class: class.as_str(), hour, refusals: 1, last_at: now }),
        }
    }

    /// How long until a write is allowed (zero: now).
    fn wait(&self) -> Duration {
        self.last_write.map_or(Duration::ZERO, |at| FLUSH_EVERY.saturating_sub(at.elapsed()))
    }

    /// Takes what is pending for a write now.
    fn take(&mut self, now: i64) -> Batch {
        let hour = now.div_euclid(3600);
        let prune_before = (self.pruned_hour != Some(hour)).then_some(hour - KEPT_HOURS + 1);
        self.pruned_hour = Some(hour);
        self.last_write = Some(Instant::now());
        self.writes += 1;
        Batch { counts: std::mem::take(&mut self.counts), prune_before }
    }
}

impl RefusalTally {
    /// Counts one refusal of `class` at `now` for `source`; writes what is pending when the
    /// last write was [`FLUSH_EVERY`] ago or more, and otherwise makes sure a timer will.
    pub async fn count(&self, store: &Store, source: &str, class: RefusalClass, now: i64) {
        let batch = {
            let mut p = self.state.lock().unwrap_or_else(|e| e.into_inner());
            p.add(class, now);
            let wait = p.wait();
            if wait.is_zero() {
                Some(p.take(now))
            } else {
                if !p.armed && tokio::runtime::Handle::try_current().is_ok() {
                    p.armed = true;
                    let (state, store, source) = (self.state.clone(), store.clone(), source.to_string());
                    tokio::spawn(async move {
                        tokio::time::sleep(wait).await;
                        let batch = {
                            let mut p = state.lock().unwrap_or_else(|e| e.into_inner());
                            p.armed = false;
                            // A refusal may have written everything meanwhile.
                            (!p.counts.is_empty()).then(|| p.take(crate::clock::now()))
                        };
                        if let Some(batch) = batch {
                            write(&store, &source, batch).await;
                        }
                    });
                }
                None
            }
        };
        if let Some(batch) = batch {
            write(store, source, batch).await;
        }
    }

    /// What this instance counted and has not written yet: `(class, refusals, last time)`.
    pub fn pending(&self) -> Vec<(&'static str, i64, i64)> {
        let p = self.state.lock().unwrap_or_else(|e| e.into_inner());
        p.counts.iter().map(|c| (c.class, c.refusals, c.last_at)).collect()
    }

    /// Writes this instance has made so far.
    pub fn writes(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).writes
    }
}

/// One write; a failure is logged and its counts dropped (they are a health signal, not money).
async fn write(store: &Store, source: &str, batch: Batch) {
    if let Err(e) = store.add_refusals(source, &batch.counts, batch.prune_before).await {
        crate::log::warn("webhook refusal counts not written", &[("error", &e.to_string())]);
    }
}
