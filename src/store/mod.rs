//! The order store: orders, fulfilments, processed event ids and the shared
//! rate-limit counters, behind one small interface with two backends —
//! embedded SQLite (local default) and Postgres (production).
//!
//! Exactly-once comes from the database, not from a read-then-write: every
//! change is one transaction of `INSERT ... ON CONFLICT` statements on
//! primary keys, so concurrent deliveries cannot both win.

mod postgres;
mod sqlite;

pub use postgres::{CONNECT_TIMEOUT, POOL_SIZE, PgStore, STATEMENT_TIMEOUT};
pub use sqlite::SqliteStore;

use serde::{Deserialize, Serialize};
use std::fmt;

/// The schema, shared by both backends (idempotent; run on every connect).
pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS orders (
        session_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        state_rank BIGINT NOT NULL,
        payment_status TEXT NOT NULL,
        amount_total BIGINT,
        currency TEXT,
        items TEXT NOT NULL,
        livemode BOOLEAN NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS fulfillments (
        session_id TEXT PRIMARY KEY,
        fulfilled_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS fulfillment_runs (
        session_id TEXT PRIMARY KEY,
        attempts BIGINT NOT NULL,
        claimed_at BIGINT NOT NULL,
        done_at BIGINT)",
    "CREATE TABLE IF NOT EXISTS processed_events (
        event_id TEXT PRIMARY KEY,
        event_type TEXT NOT NULL,
        session_id TEXT,
        received_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rate_limits (
        bucket TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        hits BIGINT NOT NULL,
        PRIMARY KEY (bucket, window_start))",
];

/// Records an event id; 0 rows affected means it was processed before.
pub(crate) const INSERT_EVENT: &str = "INSERT INTO processed_events (event_id, event_type, session_id, received_at)
     VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING";
/// Upserts an order, only ever moving its state forward.
pub(crate) const UPSERT_ORDER: &str =
    "INSERT INTO orders (session_id, state, state_rank, payment_status, amount_total, currency,
        items, livemode, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
     ON CONFLICT (session_id) DO UPDATE SET state = excluded.state,
        state_rank = excluded.state_rank, payment_status = excluded.payment_status,
        amount_total = excluded.amount_total, currency = excluded.currency,
        items = excluded.items, updated_at = excluded.updated_at
     WHERE orders.state_rank < excluded.state_rank";
/// Records the fulfilment; 1 row affected means this call fulfilled the order.
pub(crate) const INSERT_FULFILLMENT: &str = "INSERT INTO fulfillments (session_id, fulfilled_at) VALUES ($1, $2)
     ON CONFLICT (session_id) DO NOTHING";
/// Claims the run of the owner's action, in the fulfilment's own transaction.
pub(crate) const INSERT_RUN: &str = "INSERT INTO fulfillment_runs (session_id, attempts, claimed_at) VALUES ($1, 1, $2)
     ON CONFLICT (session_id) DO NOTHING";
/// Takes over a run claimed at or before `$3` that never finished; 1 row affected means this call owns it.
pub(crate) const RECLAIM_RUN: &str = "UPDATE fulfillment_runs SET attempts = attempts + 1, claimed_at = $2
     WHERE session_id = $1 AND done_at IS NULL AND claimed_at <= $3";
/// Counts a session's unfinished run (0 or 1).
pub(crate) const SELECT_PENDING_RUN: &str =
    "SELECT COUNT(*) FROM fulfillment_runs WHERE session_id = $1 AND done_at IS NULL";
/// Marks a run finished.
pub(crate) const FINISH_RUN: &str = "UPDATE fulfillment_runs SET done_at = $2 WHERE session_id = $1";
/// Reads one order.
pub(crate) const SELECT_ORDER: &str =
    "SELECT o.session_id, o.state, o.payment_status, o.amount_total, o.currency, o.items,
        (SELECT COUNT(*) FROM fulfillments f WHERE f.session_id = o.session_id)
     FROM orders o WHERE o.session_id = $1";
/// Whether an event id was processed.
pub(crate) const SELECT_EVENT: &str = "SELECT COUNT(*) FROM processed_events WHERE event_id = $1";
/// Counts one hit in a rate-limit window and returns the window's total.
pub(crate) const HIT: &str = "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 1)
     ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limits.hits + 1
     RETURNING hits";
/// Whether a rate-limit bucket has been counted (its name embeds its window).
pub(crate) const SELECT_BUCKET: &str = "SELECT COUNT(*) FROM rate_limits WHERE bucket = $1";
/// Forgets windows that ended long ago.
pub(crate) const PRUNE_HITS: &str = "DELETE FROM rate_limits WHERE window_start < $1";

/// Where an order stands. States only move forward (by rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Session complete, payment not yet arrived (delayed methods).
    AwaitingPayment,
    /// The delayed payment failed; nothing to ship.
    PaymentFailed,
    /// The session expired unpaid.
    Expired,
    /// Paid and fulfilled, exactly once.
    Fulfilled,
}

impl OrderState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingPayment => "awaiting_payment",
            Self::PaymentFailed => "payment_failed",
            Self::Expired => "expired",
            Self::Fulfilled => "fulfilled",
        }
    }
    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "awaiting_payment" => Self::AwaitingPayment,
            "payment_failed" => Self::PaymentFailed,
            "expired" => Self::Expired,
            "fulfilled" => Self::Fulfilled,
            _ => return None,
        })
    }
    /// Order of states: an update never moves an order to a lower rank.
    pub fn rank(self) -> i64 {
        match self {
            Self::AwaitingPayment => 1,
            Self::PaymentFailed | Self::Expired => 2,
            Self::Fulfilled => 3,
        }
    }
}

/// One purchased line as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    /// Product name.
    pub name: String,
    /// Quantity.
    pub quantity: u32,
}

/// What fulfilment learned about a session, to record.
#[derive(Debug, Clone)]
pub struct OrderUpdate {
    /// Checkout Session id.
    pub session_id: String,
    /// Target state.
    pub state: OrderState,
    /// Stripe's `payment_status`.
    pub payment_status: String,
    /// Total charged, minor units.
    pub amount_total: Option<i64>,
    /// Currency.
    pub currency: Option<String>,
    /// Lines bought.
    pub items: Vec<OrderItem>,
    /// Live or test mode.
    pub livemode: bool,
}

/// The event that caused an update, recorded in the same transaction.
#[derive(Debug, Clone)]
pub struct EventRef<'a> {
    /// `evt_...`.
    pub id: &'a str,
    /// Event type.
    pub kind: &'a str,
}

/// What one [`Store::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event id had been processed before: nothing changed.
    DuplicateEvent,
    /// Recorded; `newly_fulfilled` is true for exactly one call per order,
    /// and that call holds the claim on the owner's action (see
    /// [`Store::reclaim_fulfillment_run`]).
    Recorded {
        /// This call performed the fulfilment.
        newly_fulfilled: bool,
    },
}

/// A recorded order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Checkout Session id.
    pub session_id: String,
    /// Current state.
    pub state: OrderState,
    /// Stripe's `payment_status` when last updated.
    pub payment_status: String,
    /// Total, minor units.
    pub amount_total: Option<i64>,
    /// Currency.
    pub currency: Option<String>,
    /// Lines bought.
    pub items: Vec<OrderItem>,
    /// Fulfilment records for this session (exactly-once ⇒ 0 or 1).
    pub fulfillments: i64,
}

impl Order {
    /// Builds an order from the columns of [`SELECT_ORDER`], in order (both backends).
    pub(crate) fn from_columns(
        session_id: String,
        state: &str,
        payment_status: String,
        amount_total: Option<i64>,
        currency: Option<String>,
        items: &str,
        fulfillments: i64,
    ) -> Order {
        Order {
            session_id,
            state: OrderState::parse(state).unwrap_or(OrderState::AwaitingPayment),
            payment_status,
            amount_total,
            currency,
            items: serde_json::from_str(items).unwrap_or_default(),
            fulfillments,
        }
    }
}

/// A store failure (unreachable, locked, corrupt). Logged; the caller answers 5xx.
#[derive(Debug, Clone)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// The order store.
pub enum Store {
    /// Embedded SQLite file.
    Sqlite(SqliteStore),
    /// Postgres over TLS (or plain on loopback).
    Postgres(Box<PgStore>),
}

impl Store {
    /// Opens the store named by a `DATABASE_URL` (`sqlite://path` or `postgres://...`).
    /// Postgres connects lazily, so an instance starts even while the database is down.
    pub fn open(url: &str) -> Result<Store, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(Store::Sqlite(SqliteStore::open(path)?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(Box::new(PgStore::new(url)?)))
        } else {
            Err(StoreError("unsupported DATABASE_URL scheme".into()))
        }
    }

    /// In one transaction: records the event id (if any; a duplicate stops
    /// here), moves the order forward, and records the fulfilment once.
    pub async fn apply(&self, update: &OrderUpdate, event: Option<EventRef<'_>>) -> Result<Applied, StoreError> {
        match self {
            Store::Sqlite(s) => s.apply(update, event).await,
            Store::Postgres(s) => s.apply(update, event).await,
        }
    }

    /// Records an event id that needs no order change; false if seen before.
    pub async fn record_event(&self, event: EventRef<'_>) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.record_event(event).await,
            Store::Postgres(s) => s.record_event(event).await,
        }
    }

    /// Takes over the owner's action for a fulfilled order whose run was
    /// claimed `lease_secs` or more before `now` and never finished (the
    /// instance died mid-run, or the commit's answer was lost). True for
    /// exactly one caller per lapsed claim.
    pub async fn reclaim_fulfillment_run(
        &self,
        session_id: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.update(RECLAIM_RUN, session_id, &[now, now - lease_secs]).await? == 1)
    }

    /// Records that the owner's action for an order finished.
    pub async fn finish_fulfillment_run(&self, session_id: &str) -> Result<(), StoreError> {
        self.update(FINISH_RUN, session_id, &[now()]).await.map(drop)
    }

    /// Whether an event id was already processed.
    pub async fn event_seen(&self, event_id: &str) -> Result<bool, StoreError> {
        Ok(self.count(SELECT_EVENT, event_id).await? > 0)
    }

    /// Whether an order's run of the owner's action was claimed and has not finished.
    pub async fn fulfillment_run_pending(&self, session_id: &str) -> Result<bool, StoreError> {
        Ok(self.count(SELECT_PENDING_RUN, session_id).await? > 0)
    }

    async fn update(&self, sql: &str, key: &str, ints: &[i64]) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.update(sql, key, ints).await,
            Store::Postgres(s) => s.update(sql, key, ints).await,
        }
    }

    async fn count(&self, sql: &str, key: &str) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(s) => s.count(sql, key).await,
            Store::Postgres(s) => s.count(sql, key).await,
        }
    }

    /// The order for a session, if recorded.
    pub async fn order(&self, session_id: &str) -> Result<Option<Order>, StoreError> {
        match self {
            Store::Sqlite(s) => s.order(session_id).await,
            Store::Postgres(s) => s.order(session_id).await,
        }
    }

    /// Whether `bucket` was ever counted with [`Store::hit`] (a bucket whose
    /// name embeds its window reads one window); counts nothing.
    pub async fn bucket_seen(&self, bucket: &str) -> Result<bool, StoreError> {
        Ok(self.count(SELECT_BUCKET, bucket).await? > 0)
    }

    /// Counts one hit for `bucket` in the window starting at `window_start`
    /// and returns the window's total across every instance.
    pub async fn hit(&self, bucket: &str, window_start: i64) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(s) => s.hit(bucket, window_start).await,
            Store::Postgres(s) => s.hit(bucket, window_start).await,
        }
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub(crate) fn items_json(items: &[OrderItem]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}
