//! The order store: orders, fulfilments, processed event ids, the reconciliation run's
//! progress (its checkpoint, its listing cursor, the events it could not act on), the shared
//! rate-limit counters, and stock with its reservations (`stock.rs`), behind one small
//! interface with two backends —
//! embedded SQLite (local default) and Postgres (production).
//!
//! Exactly-once comes from the database, not from a read-then-write: every
//! change is one transaction of `INSERT ... ON CONFLICT` statements on
//! primary keys, so concurrent deliveries cannot both win.

mod postgres;
mod sqlite;
mod stock;

pub use postgres::{CONNECT_TIMEOUT, PgStore, STATEMENT_TIMEOUT};
pub use sqlite::SqliteStore;
pub use stock::{Reservation, ReservedItem, SaleOutcome, SoldOut, StockLevel, oversold_run};

use crate::config::Database;
use crate::order::{
    self, ActionEntry, Change, DisputeRef, HistoryEntry, HookCall, IllegalMove, Money, MoneyFacts, Order, OrderItem,
    OrderState, OrderUpdate, RefundRef, Shipment, ShipmentMove, ShippingState,
};
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
    "CREATE TABLE IF NOT EXISTS order_money (
        session_id TEXT PRIMARY KEY,
        payment_intent TEXT UNIQUE,
        money_state TEXT NOT NULL,
        amount BIGINT NOT NULL,
        amount_refunded BIGINT NOT NULL,
        dispute_id TEXT,
        dispute_status TEXT,
        dispute_amount BIGINT,
        updated_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS order_history (
        event_id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        at BIGINT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        amount BIGINT NOT NULL,
        dispute_status TEXT)",
    "CREATE UNIQUE INDEX IF NOT EXISTS order_history_by_session ON order_history (session_id, seq)",
    "CREATE TABLE IF NOT EXISTS hook_runs (
        event_id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        calls TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        claimed_at BIGINT NOT NULL,
        done_at BIGINT)",
    "CREATE TABLE IF NOT EXISTS reconcile_checkpoint (
        name TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        created BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS reconcile_listing (
        name TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS reconcile_failures (
        event_id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        event_type TEXT NOT NULL,
        object_id TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        first_at BIGINT NOT NULL,
        last_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS order_numbers (
        order_number TEXT PRIMARY KEY,
        session_id TEXT NOT NULL UNIQUE,
        assigned_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS order_details (
        session_id TEXT PRIMARY KEY,
        totals TEXT NOT NULL,
        shipping TEXT,
        updated_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS email_outbox (
        message_key TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        to_address TEXT NOT NULL,
        subject TEXT NOT NULL,
        text_body TEXT NOT NULL,
        html_body TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        claimed_at BIGINT NOT NULL,
        sent_at BIGINT,
        created_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS email_outbox_pending ON email_outbox (sent_at, created_at)",
    // Columns added after a table first shipped: Postgres adds them once; SQLite, which has no
    // `IF NOT EXISTS` here, runs the statement without it and ignores "duplicate column".
    "ALTER TABLE order_details ADD COLUMN IF NOT EXISTS customer_email TEXT",
    "CREATE INDEX IF NOT EXISTS orders_by_created ON orders (created_at, session_id)",
    "CREATE TABLE IF NOT EXISTS refunds (
        refund_id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        amount BIGINT NOT NULL,
        status TEXT NOT NULL,
        status_rank BIGINT NOT NULL,
        reason TEXT,
        created BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS refunds_by_session ON refunds (session_id)",
    "CREATE TABLE IF NOT EXISTS disputes (
        dispute_id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        amount BIGINT NOT NULL,
        status TEXT NOT NULL,
        status_rank BIGINT NOT NULL,
        created BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS disputes_by_session ON disputes (session_id)",
    "CREATE TABLE IF NOT EXISTS order_shipping (
        session_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        carrier TEXT,
        tracking_number TEXT,
        tracking_url TEXT,
        note TEXT,
        updated_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS order_actions (
        idempotency_key TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        at BIGINT NOT NULL,
        action TEXT NOT NULL,
        details TEXT NOT NULL)",
    "CREATE UNIQUE INDEX IF NOT EXISTS order_actions_by_session ON order_actions (session_id, seq)",
    "CREATE TABLE IF NOT EXISTS order_action_keys (
        idempotency_key TEXT PRIMARY KEY,
        request_hash TEXT NOT NULL,
        status BIGINT,
        answer TEXT,
        claimed_at BIGINT NOT NULL,
        done_at BIGINT)",
    "CREATE TABLE IF NOT EXISTS stock (
        product_id TEXT PRIMARY KEY,
        on_hand BIGINT,
        reserved BIGINT NOT NULL,
        sold BIGINT NOT NULL,
        oversold BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS stock_reservations (
        reservation_id TEXT PRIMARY KEY,
        session_id TEXT,
        items TEXT NOT NULL,
        state TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS stock_reservations_held ON stock_reservations (state, expires_at)",
    "CREATE TABLE IF NOT EXISTS rate_limits (
        bucket TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        hits BIGINT NOT NULL,
        PRIMARY KEY (bucket, window_start))",
    // The copy of the Stripe catalog (`CATALOG_SOURCE=stripe`): each Product and Price as
    // Stripe answered it (JSON), and when the copy was last filled from the list endpoints.
    "CREATE TABLE IF NOT EXISTS catalog_products (
        product_id TEXT PRIMARY KEY,
        tag TEXT NOT NULL,
        default_price TEXT NOT NULL,
        body TEXT NOT NULL,
        updated BIGINT NOT NULL,
        synced_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS catalog_prices (
        price_id TEXT PRIMARY KEY,
        product_id TEXT NOT NULL,
        body TEXT NOT NULL,
        synced_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS catalog_fills (
        tag TEXT PRIMARY KEY,
        filled_at BIGINT NOT NULL)",
    // The health view (`GET /api/health`): who recorded an event (`webhook`, `reconcile`,
    // `owner`) and for which event source, written by the statement that records the event.
    "ALTER TABLE processed_events ADD COLUMN IF NOT EXISTS via TEXT",
    "ALTER TABLE processed_events ADD COLUMN IF NOT EXISTS source TEXT",
    "CREATE INDEX IF NOT EXISTS processed_events_by_via ON processed_events (source, via, received_at)",
    // The webhook's refusals: one row per source, class and hour, pruned to the last day.
    "CREATE TABLE IF NOT EXISTS webhook_refusals (
        source TEXT NOT NULL,
        class TEXT NOT NULL,
        hour BIGINT NOT NULL,
        refusals BIGINT NOT NULL,
        last_at BIGINT NOT NULL,
        PRIMARY KEY (source, class, hour))",
    // The last reconciliation run per source.
    "CREATE TABLE IF NOT EXISTS reconcile_runs (
        source TEXT PRIMARY KEY,
        at BIGINT NOT NULL,
        processed BIGINT NOT NULL,
        finished BIGINT NOT NULL,
        failed BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS fulfillment_runs_open ON fulfillment_runs (claimed_at) WHERE done_at IS NULL",
    "CREATE INDEX IF NOT EXISTS hook_runs_open ON hook_runs (claimed_at) WHERE done_at IS NULL",
    // When the sweep last looked at a reservation: it takes the least recently looked-at first,
    // so reservations Stripe cannot settle never block the others.
    "ALTER TABLE stock_reservations ADD COLUMN IF NOT EXISTS swept_at BIGINT",
];

/// The schema's own version: a hash (FNV-1a, hex) of [`SCHEMA`]'s text. Postgres records it in
/// `schema_version` and re-runs the DDL only when it changes; SQLite records it too, so
/// `GET /api/health` reads the same table on both.
pub fn schema_version() -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in SCHEMA.iter().flat_map(|s| s.bytes().chain([b';'])) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The catalog copy of shop tag `$1` in one statement: a `fill` row (when it was last filled,
/// if ever) and a `product` row per Product with its default Price's JSON (`''` when not copied).
pub(crate) const SELECT_CATALOG: &str = "SELECT 'fill', CAST(filled_at AS TEXT), '' FROM catalog_fills WHERE tag = $1
     UNION ALL SELECT 'product', p.body, COALESCE(pr.body, '') FROM catalog_products p
        LEFT JOIN catalog_prices pr ON pr.price_id = p.default_price WHERE p.tag = $1";
/// Writes a Product (`$1` id, `$2` shop tag, `$3` default price id or `''`, `$4` JSON, `$5` its
/// `updated`, `$6` now), unless the copy holds a newer version of it (by Stripe's `updated`):
/// then only `synced_at` moves (Stripe still has the product, so a fill must not forget it).
pub(crate) const UPSERT_CATALOG_PRODUCT: &str = "INSERT INTO catalog_products (product_id, tag, default_price, body,
        updated, synced_at) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (product_id) DO UPDATE SET
        tag = CASE WHEN catalog_products.updated <= excluded.updated THEN excluded.tag ELSE catalog_products.tag END,
        default_price = CASE WHEN catalog_products.updated <= excluded.updated
            THEN excluded.default_price ELSE catalog_products.default_price END,
        body = CASE WHEN catalog_products.updated <= excluded.updated THEN excluded.body ELSE catalog_products.body END,
        updated = CASE WHEN catalog_products.updated <= excluded.updated
            THEN excluded.updated ELSE catalog_products.updated END,
        synced_at = excluded.synced_at";
/// Writes a Price (`$1` id, `$2` product id, `$3` JSON, `$4` now).
pub(crate) const UPSERT_CATALOG_PRICE: &str = "INSERT INTO catalog_prices (price_id, product_id, body, synced_at)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (price_id) DO UPDATE SET product_id = excluded.product_id, body = excluded.body,
        synced_at = excluded.synced_at";
/// Forgets a Product (deleted in Stripe, or no longer tagged for this shop).
pub(crate) const DELETE_CATALOG_PRODUCT: &str = "DELETE FROM catalog_products WHERE product_id = $1";
/// Forgets a Price (deleted in Stripe).
pub(crate) const DELETE_CATALOG_PRICE: &str = "DELETE FROM catalog_prices WHERE price_id = $1";
/// After a fill of tag `$1` that started at `$2`: forgets the products it did not list
/// (deleted while no event told us; archived ones are listed, and kept as withdrawn).
pub(crate) const DELETE_UNLISTED_PRODUCTS: &str = "DELETE FROM catalog_products WHERE tag = $1 AND synced_at < $2";
/// Records a fill (`$1` tag, `$2` when it started).
pub(crate) const SAVE_CATALOG_FILL: &str = "INSERT INTO catalog_fills (tag, filled_at) VALUES ($1, $2)
     ON CONFLICT (tag) DO UPDATE SET filled_at = excluded.filled_at";

/// The store's copy of the Stripe catalog (see [`Store::catalog_copy`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogCopy {
    /// When the copy was last filled from the list endpoints (Unix seconds); `None`: never.
    pub filled_at: Option<i64>,
    /// Every Product copied, with its default Price when that is copied too.
    pub products: Vec<(crate::stripe::types::Product, Option<crate::stripe::types::Price>)>,
}

/// Records an event id, who brought it (`$5`, [`Via`]) and its source (`$6`); 0 rows affected
/// means it was processed before.
pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO processed_events (event_id, event_type, session_id, received_at, via, source)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING";
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
/// Assigns an order number (`$1`) to a newly fulfilled order (`$2`); 0 rows affected means the
/// number was taken, and the fulfilling transaction draws another.
pub(crate) const INSERT_ORDER_NUMBER: &str = "INSERT INTO order_numbers (order_number, session_id, assigned_at)
     VALUES ($1, $2, $3) ON CONFLICT (order_number) DO NOTHING";
/// Records what Stripe computed for an order (totals as JSON) and where it ships (JSON, or null).
pub(crate) const UPSERT_DETAILS: &str = "INSERT INTO order_details (session_id, totals, shipping, updated_at,
        customer_email) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (session_id) DO UPDATE SET totals = excluded.totals,
        shipping = COALESCE(excluded.shipping, order_details.shipping), updated_at = excluded.updated_at,
        customer_email = COALESCE(excluded.customer_email, order_details.customer_email)";
/// Claims the run of the owner's action, in the fulfilment's own transaction.
pub(crate) const INSERT_RUN: &str = "INSERT INTO fulfillment_runs (session_id, attempts, claimed_at) VALUES ($1, 1, $2)
     ON CONFLICT (session_id) DO NOTHING";
/// The statements of one kind of hook run (see [`crate::hooks`]), keyed by `$1`.
pub(crate) struct RunSql {
    /// Takes over a run claimed at or before `$3` that never finished, setting its claim to
    /// `$2`; returns the run's session id and hook calls (a row means this call owns it).
    pub reclaim: &'static str,
    /// Counts the key's unfinished run (0 or 1).
    pub pending: &'static str,
    /// Marks the run finished at `$2`.
    pub finish: &'static str,
}

/// Runs of `on_fulfilled`, keyed by session id.
pub(crate) const FULFILLMENT_RUNS: RunSql = RunSql {
    reclaim: "UPDATE fulfillment_runs SET attempts = attempts + 1, claimed_at = $2
     WHERE session_id = $1 AND done_at IS NULL AND claimed_at <= $3 RETURNING session_id, '[]'",
    pending: "SELECT COUNT(*) FROM fulfillment_runs WHERE session_id = $1 AND done_at IS NULL",
    finish: "UPDATE fulfillment_runs SET done_at = $2 WHERE session_id = $1",
};

/// Runs of the after-payment hooks, keyed by event id.
pub(crate) const HOOK_RUNS: RunSql = RunSql {
    reclaim: "UPDATE hook_runs SET attempts = attempts + 1, claimed_at = $2
     WHERE event_id = $1 AND done_at IS NULL AND claimed_at <= $3 RETURNING session_id, calls",
    pending: "SELECT COUNT(*) FROM hook_runs WHERE event_id = $1 AND done_at IS NULL",
    finish: "UPDATE hook_runs SET done_at = $2 WHERE event_id = $1",
};

/// Records a paid order's PaymentIntent, with nothing refunded or disputed yet.
pub(crate) const INSERT_MONEY: &str = "INSERT INTO order_money (session_id, payment_intent, money_state, amount,
        amount_refunded, updated_at) VALUES ($1, $2, 'paid', $3, 0, $4) ON CONFLICT DO NOTHING";
/// Locks an order's row for the rest of the transaction (Postgres; SQLite's write lock is whole-file).
pub(crate) const LOCK_ORDER: &str = "SELECT session_id FROM orders WHERE session_id = $1 FOR UPDATE";
/// What the store knows of an order's charge, in one statement: rows of `(kind, id, amount,
/// status, reason, created)` — the money as recorded (`money`: the dispute's id and status, its
/// amount as text in `reason` and the refunded amount in `created`), each refund, each dispute.
pub(crate) const SELECT_FACTS: &str = "SELECT 'money', COALESCE(dispute_id, ''), amount, COALESCE(dispute_status, ''),
        CAST(dispute_amount AS TEXT), amount_refunded FROM order_money WHERE session_id = $1
     UNION ALL SELECT 'refund', refund_id, amount, status, reason, created FROM refunds WHERE session_id = $1
     UNION ALL SELECT 'dispute', dispute_id, amount, status, NULL, created FROM disputes WHERE session_id = $1";
/// Records a refund, or moves its status forward (never back: by rank).
pub(crate) const UPSERT_REFUND: &str = "INSERT INTO refunds (refund_id, session_id, amount, status, status_rank,
        reason, created, updated_at) VALUES ($1, $2, $5, $3, $6, $4, $7, $8)
     ON CONFLICT (refund_id) DO UPDATE SET status = excluded.status, status_rank = excluded.status_rank,
        amount = excluded.amount, reason = excluded.reason, updated_at = excluded.updated_at
     WHERE refunds.status_rank < excluded.status_rank";
/// Records a dispute, or moves its status forward (never back: by rank).
pub(crate) const UPSERT_DISPUTE: &str = "INSERT INTO disputes (dispute_id, session_id, status, amount, status_rank,
        created, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (dispute_id) DO UPDATE SET status = excluded.status, status_rank = excluded.status_rank,
        amount = excluded.amount, updated_at = excluded.updated_at
     WHERE disputes.status_rank < excluded.status_rank";

/// An order's delivery as the owner recorded it (`state, carrier, tracking_number,
/// tracking_url, note`).
pub(crate) const SELECT_SHIPMENT: &str =
    "SELECT state, carrier, tracking_number, tracking_url, note FROM order_shipping WHERE session_id = $1";
/// Writes an order's delivery.
pub(crate) const UPSERT_SHIPMENT: &str = "INSERT INTO order_shipping (session_id, state, carrier, tracking_number,
        tracking_url, note, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (session_id) DO UPDATE SET state = excluded.state, carrier = excluded.carrier,
        tracking_number = excluded.tracking_number, tracking_url = excluded.tracking_url, note = excluded.note,
        updated_at = excluded.updated_at";
/// Whether an owner action (by its idempotency key) is in an order's history already.
pub(crate) const SELECT_ACTION_SEEN: &str = "SELECT COUNT(*) FROM order_actions WHERE idempotency_key = $1";
/// Appends an owner action to an order's history (numbered per order; the transaction holds
/// the order): key `$1`, order `$2`, at `$3`, action `$4`, details (JSON) `$5`.
pub(crate) const INSERT_ACTION: &str =
    "INSERT INTO order_actions (idempotency_key, session_id, seq, at, action, details)
     SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5 FROM order_actions WHERE session_id = $2
     ON CONFLICT (idempotency_key) DO NOTHING";
/// Claims an owner action's idempotency key `$1` for the request hashing to `$2` at `$3`; 0
/// rows affected means the key was claimed before.
pub(crate) const CLAIM_ACTION_KEY: &str = "INSERT INTO order_action_keys (idempotency_key, request_hash, claimed_at)
     VALUES ($1, $2, $3) ON CONFLICT (idempotency_key) DO NOTHING";
/// An idempotency key's record: the request hash, the answer's status (0 while in progress),
/// the answer, when it was claimed.
pub(crate) const SELECT_ACTION_KEY: &str = "SELECT request_hash, CAST(COALESCE(status, 0) AS TEXT),
        COALESCE(answer, ''), CAST(claimed_at AS TEXT) FROM order_action_keys WHERE idempotency_key = $1";
/// Takes over key `$1` (request `$2`) claimed at or before `$4` and never answered, claiming
/// it at `$3`; 1 row affected means this call holds it.
pub(crate) const RECLAIM_ACTION_KEY: &str = "UPDATE order_action_keys SET claimed_at = $3
     WHERE idempotency_key = $1 AND request_hash = $2 AND status IS NULL AND claimed_at <= $4";
/// Stores key `$1`'s answer `$2` with status `$3` at `$4`.
pub(crate) const FINISH_ACTION_KEY: &str =
    "UPDATE order_action_keys SET answer = $2, status = $3, done_at = $4 WHERE idempotency_key = $1";
/// Lets go of key `$1` while unanswered (the action failed on our side: the client may retry).
pub(crate) const RELEASE_ACTION_KEY: &str =
    "DELETE FROM order_action_keys WHERE idempotency_key = $1 AND status IS NULL";

/// Builds an order's money facts from the rows of [`SELECT_FACTS`].
pub(crate) fn facts_from_rows(
    rows: impl IntoIterator<Item = (String, String, i64, String, Option<String>, i64)>,
) -> MoneyFacts {
    let mut facts = MoneyFacts::default();
    let mut recorded = None;
    for (kind, id, amount, status, reason, created) in rows {
        match kind.as_str() {
            "money" => {
                facts.amount = amount;
                let dispute_amount = reason.and_then(|a| a.parse().ok()).unwrap_or(0);
                let dispute = (!id.is_empty()).then_some(DisputeRef { id, status, amount: dispute_amount, created: 0 });
                recorded = Some(Money { amount_refunded: created, amount, dispute });
            }
            "refund" => facts.refunds.push(RefundRef { id, amount, status, reason, created }),
            _ => facts.disputes.push(DisputeRef { id, status, amount, created }),
        }
    }
    facts.refunds.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    // Money that moved before rows were kept is the baseline of the order's first rows.
    facts.recorded_before_rows = recorded.filter(|m| m.amount_refunded > 0 || m.dispute.is_some());
    facts
}
/// Writes an order's money.
pub(crate) const UPSERT_MONEY: &str = "INSERT INTO order_money (session_id, payment_intent, money_state, amount,
        amount_refunded, dispute_id, dispute_status, dispute_amount, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (session_id) DO UPDATE SET money_state = excluded.money_state, amount = excluded.amount,
        amount_refunded = excluded.amount_refunded, dispute_id = excluded.dispute_id,
        dispute_status = excluded.dispute_status, dispute_amount = excluded.dispute_amount,
        updated_at = excluded.updated_at";
/// Appends to an order's history (numbered per order; the transaction holds the order).
pub(crate) const INSERT_HISTORY: &str = "INSERT INTO order_history (event_id, session_id, seq, at, from_state,
        to_state, amount, dispute_status)
     SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5, $6, $7 FROM order_history WHERE session_id = $2";
/// Claims the run of an event's after-payment hooks, in the transaction that changed the order.
pub(crate) const INSERT_HOOK_RUN: &str = "INSERT INTO hook_runs (event_id, session_id, calls, attempts, claimed_at)
     VALUES ($1, $2, $3, 1, $4)";
/// The order an order number names.
pub(crate) const SELECT_SESSION_FOR_NUMBER: &str = "SELECT session_id FROM order_numbers WHERE order_number = $1";
/// A reconciliation checkpoint: the last event a run handled (id, created as text).
pub(crate) const SELECT_CHECKPOINT: &str =
    "SELECT event_id, CAST(created AS TEXT) FROM reconcile_checkpoint WHERE name = $1";
/// Moves checkpoint `$1` to event `$2` created at `$3` — never back to an older event.
pub(crate) const SAVE_CHECKPOINT: &str = "INSERT INTO reconcile_checkpoint (name, event_id, created, updated_at)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id, created = excluded.created,
        updated_at = excluded.updated_at
     WHERE reconcile_checkpoint.created <= excluded.created";
/// A source's unfinished listing of its first window: the oldest event listed so far and the
/// window's start.
pub(crate) const SELECT_LISTING: &str =
    "SELECT event_id, CAST(window_start AS TEXT) FROM reconcile_listing WHERE name = $1";
/// Saves listing `$1`'s progress: oldest event `$2` so far, in the window from `$3`.
pub(crate) const SAVE_LISTING: &str = "INSERT INTO reconcile_listing (name, event_id, window_start, updated_at)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id, window_start = excluded.window_start,
        updated_at = excluded.updated_at";
/// Forgets listing `$1` (its walk has a checkpoint now).
pub(crate) const CLEAR_LISTING: &str = "DELETE FROM reconcile_listing WHERE name = $1";
/// Counts one failed attempt at event `$1` (type `$2`, object `$3`) for reason `$4` at `$5`;
/// a new row is `retrying`, an existing one keeps its state. Returns the attempts so far.
pub(crate) const RECORD_FAILED_ATTEMPT: &str =
    "INSERT INTO reconcile_failures (event_id, source, event_type, object_id, state, reason, attempts, first_at,
        last_at) VALUES ($1, $5, $2, $3, 'retrying', $4, 1, $6, $6)
     ON CONFLICT (event_id) DO UPDATE SET attempts = reconcile_failures.attempts + 1,
        reason = excluded.reason, last_at = excluded.last_at
     RETURNING CAST(attempts AS TEXT)";
/// Sets failure `$1`'s state to `$2`.
pub(crate) const SET_FAILURE_STATE: &str = "UPDATE reconcile_failures SET state = $2 WHERE event_id = $1";
/// Forgets failure `$1` (the event was acted on after all).
pub(crate) const CLEAR_FAILURE: &str = "DELETE FROM reconcile_failures WHERE event_id = $1";
/// The failure columns [`FailedEvent::from_texts`] reads.
macro_rules! failure_columns {
    () => {
        "SELECT event_id, event_type, object_id, state, reason, CAST(attempts AS TEXT),
            CAST(first_at AS TEXT), CAST(last_at AS TEXT) FROM reconcile_failures"
    };
}
/// Failures of source `$3` in state `$1` or `$2`, least recently attempted first, at most `$4`.
pub(crate) const SELECT_FAILURES_TO_RETRY: &str = concat!(
    failure_columns!(),
    " WHERE source = $3 AND (state = $1 OR state = $2) ORDER BY last_at, event_id LIMIT $4"
);
/// Failures of source `$2` not in state `$1`, most recently attempted first, at most `$3`.
pub(crate) const SELECT_FAILURES_SHOWN: &str =
    concat!(failure_columns!(), " WHERE source = $2 AND state <> $1 ORDER BY last_at DESC, event_id LIMIT $3");
/// Failures of source `$2` in state `$1` (at most `$3`).
pub(crate) const SELECT_FAILURES_IN: &str = concat!(failure_columns!(), " WHERE source = $2 AND state = $1 LIMIT $3");
/// An order's history, oldest first.
pub(crate) const SELECT_HISTORY: &str = "SELECT event_id, at, from_state, to_state, amount, dispute_status, session_id
     FROM order_history WHERE session_id = $1 ORDER BY seq";

/// The money histories and owner actions of up to `n` orders (`$1..$n`), in one statement for
/// a page, every column as text: `session_id, kind ('money' | 'action'), id, at`, then for money
/// `from, to, amount, dispute_status ('' if none)`, for an action `action, details, '0', ''`,
/// then `seq`.
pub(crate) fn select_histories(n: usize) -> String {
    let ids: Vec<String> = (1..=n.max(1)).map(|i| format!("${i}")).collect();
    let ids = ids.join(", ");
    format!(
        "SELECT session_id, 'money', event_id, CAST(at AS TEXT), from_state, to_state, CAST(amount AS TEXT),
            COALESCE(dispute_status, ''), CAST(seq AS TEXT) FROM order_history WHERE session_id IN ({ids})
         UNION ALL
         SELECT session_id, 'action', idempotency_key, CAST(at AS TEXT), action, details, '0', '',
            CAST(seq AS TEXT) FROM order_actions WHERE session_id IN ({ids})"
    )
}
/// The columns of an order, with its money (7.. : the PaymentIntent, then as in
/// [`money_from_columns`]), mode, number, details and creation time (13..), and the owner's
/// record of its delivery (18..: as in [`Order::with_shipment`]).
macro_rules! order_columns {
    () => {
        "SELECT o.session_id, o.state, o.payment_status, o.amount_total, o.currency, o.items,
            (SELECT COUNT(*) FROM fulfillments f WHERE f.session_id = o.session_id),
            m.payment_intent, m.amount, m.amount_refunded, m.dispute_id, m.dispute_status, m.dispute_amount,
            o.livemode, n.order_number, d.totals, d.shipping, o.created_at,
            s.state, s.carrier, s.tracking_number, s.tracking_url, s.note, d.customer_email
         FROM orders o LEFT JOIN order_money m ON m.session_id = o.session_id
            LEFT JOIN order_numbers n ON n.session_id = o.session_id
            LEFT JOIN order_details d ON d.session_id = o.session_id
            LEFT JOIN order_shipping s ON s.session_id = o.session_id"
    };
}
/// Reads one order (columns: [`order_columns`]).
pub(crate) const SELECT_ORDER: &str = concat!(order_columns!(), " WHERE o.session_id = $1");
/// A page of orders, newest first: those created before the order `$1` (all when `$1` is
/// empty), in state `$3` (any when `$3` is empty), at most `$2`.
pub(crate) const SELECT_ORDERS_PAGE: &str = concat!(
    order_columns!(),
    " WHERE ($1 = '' OR (o.created_at, o.session_id) <
        (SELECT c.created_at, c.session_id FROM orders c WHERE c.session_id = $1))
       AND ($3 = '' OR o.state = $3)
     ORDER BY o.created_at DESC, o.session_id DESC LIMIT $2"
);
/// Queues message `$1` (once: a second queueing of the same fact does nothing).
pub(crate) const QUEUE_EMAIL: &str = "INSERT INTO email_outbox (message_key, session_id, to_address, subject,
        text_body, html_body, attempts, claimed_at, sent_at, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, 0, 0, NULL, $7) ON CONFLICT (message_key) DO NOTHING";
/// Claims unsent message `$1` for a send at `$2` when no other send holds it (claimed at or
/// before `$3`); returns what to send.
pub(crate) const CLAIM_EMAIL: &str = "UPDATE email_outbox SET attempts = attempts + 1, claimed_at = $2
     WHERE message_key = $1 AND sent_at IS NULL AND claimed_at <= $3
     RETURNING to_address, subject, text_body, html_body";
/// Marks message `$1` sent at `$2`.
pub(crate) const EMAIL_SENT: &str = "UPDATE email_outbox SET sent_at = $2 WHERE message_key = $1";
/// Lets message `$1` be claimed again at once (its send failed).
pub(crate) const EMAIL_RELEASE: &str =
    "UPDATE email_outbox SET claimed_at = 0 WHERE message_key = $1 AND sent_at IS NULL";
/// Unsent messages no send holds (claimed at or before `$1`), oldest first, at most `$2`.
pub(crate) const PENDING_EMAILS: &str = "SELECT message_key FROM email_outbox
     WHERE sent_at IS NULL AND claimed_at <= $1 ORDER BY created_at, message_key LIMIT $2";

/// Whether event `$1` was processed, and the order PaymentIntent `$2` paid for ('' if none).
pub(crate) const SELECT_EVENT_AND_SESSION: &str =
    "SELECT CAST((SELECT COUNT(*) FROM processed_events WHERE event_id = $1) AS TEXT),
        COALESCE((SELECT session_id FROM order_money WHERE payment_intent = $2), '')";
/// The last event source `$1` recorded via `$2`: its type and time.
pub(crate) const SELECT_LAST_EVENT: &str = "SELECT event_type, CAST(received_at AS TEXT) FROM processed_events
     WHERE source = $1 AND via = $2 ORDER BY received_at DESC, event_id LIMIT 1";
/// Source `$1`'s refusals per class since hour `$2`: class, count, last time.
pub(crate) const SELECT_REFUSALS: &str = "SELECT class, CAST(SUM(refusals) AS TEXT), CAST(MAX(last_at) AS TEXT)
     FROM webhook_refusals WHERE source = $1 AND hour >= $2 GROUP BY class ORDER BY class";
/// Forgets refusal rows older than hour `$1` (every source).
pub(crate) const PRUNE_REFUSALS: &str = "DELETE FROM webhook_refusals WHERE hour < $1";
/// Records source `$1`'s last reconciliation run: at `$2`, processed `$3`, finished `$4`
/// (0/1), stopped by an error `$5` (0/1).
pub(crate) const SAVE_RECONCILE_RUN: &str = "INSERT INTO reconcile_runs (source, at, processed, finished, failed)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (source) DO UPDATE SET at = excluded.at, processed = excluded.processed,
        finished = excluded.finished, failed = excluded.failed";
/// Source `$1`'s last reconciliation run.
pub(crate) const SELECT_RECONCILE_RUN: &str = "SELECT CAST(at AS TEXT), CAST(processed AS TEXT),
        CAST(finished AS TEXT), CAST(failed AS TEXT) FROM reconcile_runs WHERE source = $1";
/// Hook runs claimed and not finished, oldest claim first, at most `$1`: kind, key, attempts,
/// claimed at.
pub(crate) const SELECT_OPEN_RUNS: &str = "SELECT kind, id, attempts, claimed_at FROM (
        SELECT 'fulfillment' AS kind, session_id AS id, CAST(attempts AS TEXT) AS attempts,
            CAST(claimed_at AS TEXT) AS claimed_at, claimed_at AS t FROM fulfillment_runs WHERE done_at IS NULL
        UNION ALL
        SELECT 'after_payment', event_id, CAST(attempts AS TEXT), CAST(claimed_at AS TEXT), claimed_at
            FROM hook_runs WHERE done_at IS NULL) AS open_runs
     ORDER BY t, id LIMIT $1";
/// How many hook runs are claimed and not finished.
pub(crate) const COUNT_OPEN_RUNS: &str = "SELECT CAST(
        (SELECT COUNT(*) FROM fulfillment_runs WHERE done_at IS NULL)
        + (SELECT COUNT(*) FROM hook_runs WHERE done_at IS NULL) AS TEXT)";
/// The schema versions recorded, newest first.
pub(crate) const SELECT_SCHEMA_VERSIONS: &str =
    "SELECT version, CAST(applied_at AS TEXT) FROM schema_version ORDER BY applied_at DESC, version LIMIT $1";

/// Counts refusals: `n` rows of (class, hour, refusals, last time) for source `$1` — classes are
/// `$2..=$(n+1)`, then each row's three integers — added to what other instances counted.
pub(crate) fn upsert_refusals(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let int = n + 2 + 3 * i;
            format!("($1, ${}, ${int}, ${}, ${})", i + 2, int + 1, int + 2)
        })
        .collect();
    format!(
        "INSERT INTO webhook_refusals (source, class, hour, refusals, last_at) VALUES {}
         ON CONFLICT (source, class, hour) DO UPDATE SET refusals = webhook_refusals.refusals + excluded.refusals,
            last_at = CASE WHEN excluded.last_at > webhook_refusals.last_at THEN excluded.last_at
                ELSE webhook_refusals.last_at END",
        rows.join(", ")
    )
}

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

/// The event that caused an update, recorded in the same transaction.
#[derive(Debug, Clone)]
pub struct EventRef<'a> {
    /// `evt_...`.
    pub id: &'a str,
    /// Event type.
    pub kind: &'a str,
    /// Who brought it (the health view's "last event the webhook verified" reads it).
    pub via: Via,
    /// Whose events: one Stripe account and mode (`App::source`).
    pub source: &'a str,
}

/// Who brought an event to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A webhook delivery, verified.
    Webhook,
    /// The reconciliation run, listing missed events.
    Reconcile,
    /// An owner action (a refund made from the admin page).
    Owner,
}

impl Via {
    /// `webhook`, `reconcile` or `owner`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Webhook => "webhook",
            Via::Reconcile => "reconcile",
            Via::Owner => "owner",
        }
    }
}

/// Which run: an order's fulfilment (the owner's `on_fulfilled`, keyed by session id), or the
/// after-payment hooks one event caused (keyed by event id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKey<'a> {
    /// `on_fulfilled` for this Checkout Session.
    Fulfillment(&'a str),
    /// `on_refunded` / `on_dispute` for this event.
    Event(&'a str),
}

impl RunKey<'_> {
    /// The key's id (session or event).
    pub fn id(&self) -> &str {
        match self {
            RunKey::Fulfillment(id) | RunKey::Event(id) => id,
        }
    }
}

/// A message to the shopper, as the outbox keeps it (rendered once, when its fact happened;
/// [`crate::email`] renders and sends it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// The shopper's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// What one write caused by an event did ([`Store::apply`], [`Store::apply_money`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied<T> {
    /// The event id had been processed before: nothing changed.
    DuplicateEvent,
    /// Recorded, with what the write found: for [`Store::apply`] whether this call fulfilled
    /// the order (true for exactly one call per order, which holds the claim on the owner's
    /// action, see [`Store::reclaim_run`]); for [`Store::apply_money`] the change, if any (a
    /// change with hook calls claimed their run for this call).
    Recorded(T),
}

/// An owner action to record in an order's history ([`Store::apply_action`]).
#[derive(Debug, Clone)]
pub struct ActionRecord<'a> {
    /// The order's session id.
    pub session_id: &'a str,
    /// The owner's idempotency key (the history entry's key).
    pub idempotency_key: &'a str,
    /// `refund`, `ship`, `deliver`, `cancel` or `note`.
    pub action: &'a str,
    /// Its fields, as JSON.
    pub details: serde_json::Value,
    /// The delivery change it asks, with whether the order is digital (none for a refund).
    pub shipment: Option<(bool, ShipmentMove)>,
    /// The id of the run of the owner's hooks it may claim.
    pub run_id: &'a str,
}

/// What [`Store::apply_action`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionApplied {
    /// The action (its key) was recorded before: nothing changed.
    Duplicate,
    /// The delivery cannot move as asked: nothing changed.
    Illegal(IllegalMove),
    /// The delivery already stood as asked: nothing changed, nothing recorded.
    Unchanged,
    /// Recorded in the order's history; the hook calls whose run it claimed (may be empty).
    Recorded(Vec<HookCall>),
}

/// Where an owner action's idempotency key stands ([`Store::claim_action_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// This call holds the key: act, then [`Store::finish_action_key`] or
    /// [`Store::release_action_key`].
    Claimed,
    /// Answered before: the status and the answer's body.
    Done(u16, String),
    /// Another call holds it and has not answered yet.
    InProgress,
    /// The key was used with another request.
    Mismatch,
}

/// An order's history: what happened to its money, and the owner's actions, each oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderLog {
    /// Money changes (refunds, disputes).
    pub history: Vec<HistoryEntry>,
    /// Owner actions.
    pub actions: Vec<ActionEntry>,
}

/// Builds money from an order's money columns (all absent: nothing recorded yet).
pub(crate) fn money_from_columns(
    amount: Option<i64>,
    amount_refunded: Option<i64>,
    dispute_id: Option<String>,
    dispute_status: Option<String>,
    dispute_amount: Option<i64>,
) -> Money {
    let dispute = match (dispute_id, dispute_status) {
        (Some(id), Some(status)) => Some(DisputeRef { id, status, amount: dispute_amount.unwrap_or(0), created: 0 }),
        _ => None,
    };
    Money { amount: amount.unwrap_or(0), amount_refunded: amount_refunded.unwrap_or(0), dispute }
}

/// A run taken over by [`Store::reclaim_run`]: whose order, and the hook calls to make.
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    /// The order's session id.
    pub session_id: String,
    /// The after-payment hook calls (empty for a fulfilment run).
    pub calls: Vec<HookCall>,
}

/// Where an event the reconciliation run could not act on stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureState {
    /// Below the bound of attempts: the walk stopped at it and the next run tries it again.
    Retrying,
    /// The bound was reached: the walk went past it; each run retries it separately.
    Failed,
    /// An owner's hook run it needs is not finished (held by another caller, a delivery in
    /// progress, or it failed): the walk went past it at once; each run retries it separately.
    Held,
}

impl FailureState {
    /// `retrying`, `failed` or `held`, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureState::Retrying => "retrying",
            FailureState::Failed => "failed",
            FailureState::Held => "held",
        }
    }

    fn parse(s: &str) -> FailureState {
        match s {
            "held" => FailureState::Held,
            "retrying" => FailureState::Retrying,
            _ => FailureState::Failed,
        }
    }
}

/// An event the reconciliation run could not act on, as recorded (see
/// [`Store::record_failed_attempt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEvent {
    /// `evt_...`.
    pub event_id: String,
    /// The event's type.
    pub kind: String,
    /// The Checkout Session or PaymentIntent it is about, when known.
    pub object_id: Option<String>,
    /// Where it stands.
    pub state: FailureState,
    /// Why the last attempt failed: a short class (`stripe_unavailable`, `store`,
    /// `hook_run_unsettled`, ...), never an error's text.
    pub reason: String,
    /// Attempts so far.
    pub attempts: i64,
    /// When the first attempt failed (Unix seconds).
    pub first_at: i64,
    /// When the last attempt failed (Unix seconds).
    pub last_at: i64,
}

impl FailedEvent {
    /// Reads the columns of `failure_columns!`, in order.
    fn from_texts(cols: Vec<String>) -> Option<FailedEvent> {
        let [event_id, kind, object_id, state, reason, attempts, first_at, last_at]: [String; 8] =
            cols.try_into().ok()?;
        Some(FailedEvent {
            event_id,
            kind,
            object_id: Some(object_id).filter(|o| !o.is_empty()),
            state: FailureState::parse(&state),
            reason,
            attempts: attempts.parse().ok()?,
            first_at: first_at.parse().ok()?,
            last_at: last_at.parse().ok()?,
        })
    }
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
            livemode: false,
            fulfillments,
            payment_intent: None,
            money: Money { amount: amount_total.unwrap_or(0), ..Money::default() },
            number: None,
            totals: None,
            shipping: None,
            created_at: 0,
            shipment_record: None,
            customer_email: None,
        }
    }

    /// Adds the columns of [`SELECT_ORDER`] from the order number on (JSON texts as stored).
    pub(crate) fn with_details(
        mut self,
        number: Option<String>,
        totals: Option<String>,
        shipping: Option<String>,
        created_at: i64,
    ) -> Order {
        self.number = number;
        self.totals = totals.and_then(|t| serde_json::from_str(&t).ok());
        self.shipping = shipping.and_then(|t| serde_json::from_str(&t).ok());
        self.created_at = created_at;
        self
    }

    /// Adds the delivery columns of [`SELECT_ORDER`] (all absent: nothing recorded yet).
    /// Adds the shopper's email (the last column of [`SELECT_ORDER`]).
    pub(crate) fn with_customer_email(mut self, email: Option<String>) -> Order {
        self.customer_email = email;
        self
    }

    pub(crate) fn with_shipment(
        mut self,
        state: Option<String>,
        carrier: Option<String>,
        tracking_number: Option<String>,
        tracking_url: Option<String>,
        note: Option<String>,
    ) -> Order {
        self.shipment_record = state.as_deref().and_then(ShippingState::parse).map(|state| Shipment {
            state,
            carrier,
            tracking_number,
            tracking_url,
            note,
        });
        self
    }

    /// Adds the last columns of [`SELECT_ORDER`]: the mode, then the money (absent before the
    /// order was paid).
    pub(crate) fn with_money(mut self, livemode: bool, payment_intent: Option<String>, money: Money) -> Order {
        self.livemode = livemode;
        self.payment_intent = payment_intent;
        if money.amount != 0 || money.amount_refunded != 0 || money.dispute.is_some() {
            self.money = money;
        }
        self
    }
}

/// Refusals of one class in one hour, as [`Store::add_refusals`] adds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusalCount {
    /// The refusal's class (`signature_mismatch`, ...).
    pub class: &'static str,
    /// Unix hours (seconds / 3600).
    pub hour: i64,
    /// How many.
    pub refusals: i64,
    /// The last one's time (Unix seconds).
    pub last_at: i64,
}

/// A reconciliation run as the store keeps the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileRun {
    /// When it ended (Unix seconds).
    pub at: i64,
    /// Events it acted on.
    pub processed: i64,
    /// Whether it reached the newest event.
    pub finished: bool,
    /// Whether an error stopped it.
    pub failed: bool,
}

/// A hook run claimed and not finished ([`Store::open_runs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRun {
    /// `fulfillment` (`on_fulfilled`, keyed by session) or `after_payment` (keyed by event).
    pub kind: String,
    /// The Checkout Session or event id.
    pub id: String,
    /// Attempts so far.
    pub attempts: i64,
    /// When it was last claimed (Unix seconds).
    pub claimed_at: i64,
}

/// A store failure (unreachable, refused, locked, corrupt). Logged; the caller answers 5xx:
/// 503 with `Retry-After` when [`StoreError::is_unavailable`], else 500.
#[derive(Debug, Clone)]
pub struct StoreError {
    /// What kind of failure, for the answer's status.
    pub kind: StoreErrorKind,
    /// The private reason, for the log (never a URL or password).
    pub message: String,
}

/// What kind of store failure (see [`StoreError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The database refused or could not take a connection now (Postgres SQLSTATE class 53
    /// such as 53300 `too_many_connections`, 57P03 `cannot_connect_now`, a refused or timed
    /// out connect, no free connection in time): worth retrying in a few seconds.
    Unavailable,
    /// Anything else (a failed statement, a lost answer, a broken file).
    Failed,
}

impl StoreError {
    /// A failure that is not [`StoreErrorKind::Unavailable`].
    pub fn new(message: impl Into<String>) -> Self {
        StoreError { kind: StoreErrorKind::Failed, message: message.into() }
    }

    /// The database cannot take this request now (see [`StoreErrorKind::Unavailable`]).
    pub fn unavailable(message: impl Into<String>) -> Self {
        StoreError { kind: StoreErrorKind::Unavailable, message: message.into() }
    }

    /// Whether retrying in a few seconds may succeed (answered 503 with `Retry-After`).
    pub fn is_unavailable(&self) -> bool {
        self.kind == StoreErrorKind::Unavailable
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

/// The order store. A clone is another handle on the same file or pool.
#[derive(Clone)]
pub enum Store {
    /// Embedded SQLite file.
    Sqlite(SqliteStore),
    /// Postgres over TLS (or plain on loopback).
    Postgres(std::sync::Arc<PgStore>),
}

impl Store {
    /// Opens the store at `database` (parsed from `DATABASE_URL` by [`crate::config`]).
    /// Postgres connects lazily, so an instance starts even while the database is down.
    pub fn open(database: &Database) -> Result<Store, StoreError> {
        match database {
            Database::Sqlite(path) => Ok(Store::Sqlite(SqliteStore::open(path)?)),
            Database::Postgres(config, pool) => {
                Ok(Store::Postgres(std::sync::Arc::new(PgStore::new((**config).clone(), *pool)?)))
            }
        }
    }

    /// In one transaction: records the event id (if any; a duplicate stops
    /// here), moves the order forward, and records the fulfilment once.
    pub async fn apply(&self, order: &OrderUpdate, event: Option<EventRef<'_>>) -> Result<Applied<bool>, StoreError> {
        self.apply_sale(order, event).await.map(|(applied, _)| applied)
    }

    /// As [`Store::apply`], and in the same transaction, moves the order's stock reservation
    /// (see [`stock`]): a fulfilled order sells it, an expired or failed one releases it, each
    /// once; a payment that outran its release claims the run of `on_oversold`.
    pub async fn apply_sale(
        &self,
        order: &OrderUpdate,
        event: Option<EventRef<'_>>,
    ) -> Result<(Applied<bool>, SaleOutcome), StoreError> {
        let groups = match &order.stock {
            Some(sale) => match self.reservation(&sale.reservation).await? {
                Some(r) => stock::order_groups(order, &r, sale.rule),
                None => Vec::new(),
            },
            None => Vec::new(),
        };
        let (applied, outcomes) = match self {
            Store::Sqlite(s) => s.apply(order, event, groups).await,
            Store::Postgres(s) => s.apply(order, event, groups).await,
        }?;
        Ok((applied, stock::outcome_of(order, &outcomes)))
    }

    /// Records an event id that needs no order change; false if seen before.
    pub async fn record_event(&self, event: EventRef<'_>) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.record_event(event).await,
            Store::Postgres(s) => s.record_event(event).await,
        }
    }

    /// Takes over a hook run claimed `lease_secs` or more before `now` that never finished
    /// (the instance died mid-run, or the commit's answer was lost). `Some` for exactly one
    /// caller per lapsed claim.
    pub async fn reclaim_run(
        &self,
        key: RunKey<'_>,
        now: i64,
        lease_secs: i64,
    ) -> Result<Option<ClaimedRun>, StoreError> {
        let row = self.row_texts(run_sql(key).reclaim, key.id(), &[now, now - lease_secs]).await?;
        Ok(row.map(|mut cols| {
            let calls = cols.pop().and_then(|c| serde_json::from_str(&c).ok()).unwrap_or_default();
            ClaimedRun { session_id: cols.pop().unwrap_or_default(), calls }
        }))
    }

    /// Records that a hook run finished.
    pub async fn finish_run(&self, key: RunKey<'_>) -> Result<(), StoreError> {
        self.exec(run_sql(key).finish, &[key.id()], &[now()]).await.map(drop)
    }

    /// Whether a hook run was claimed and has not finished.
    pub async fn run_pending(&self, key: RunKey<'_>) -> Result<bool, StoreError> {
        Ok(self.count(run_sql(key).pending, key.id()).await? > 0)
    }

    /// The order an order number names, if any.
    pub async fn session_for_order_number(&self, order_number: &str) -> Result<Option<String>, StoreError> {
        Ok(self.row_texts(SELECT_SESSION_FOR_NUMBER, order_number, &[]).await?.and_then(|mut r| r.pop()))
    }

    /// In one transaction: records the event id (a duplicate stops here), then moves the
    /// order's money facts (its refunds and disputes, one row each) to `fresh` as
    /// [`order::decide`] allows, writing the rows that moved and the money they make, appending
    /// the change to its history and claiming the run of its hook calls.
    pub async fn apply_money(
        &self,
        session_id: &str,
        payment_intent: &str,
        fresh: &MoneyFacts,
        event: EventRef<'_>,
    ) -> Result<Applied<Option<Change>>, StoreError> {
        match self {
            Store::Sqlite(s) => s.apply_money(session_id, payment_intent, fresh, event).await,
            Store::Postgres(s) => s.apply_money(session_id, payment_intent, fresh, event).await,
        }
    }

    /// An order's money facts as recorded (its charged amount, refunds and disputes).
    pub async fn money_facts(&self, session_id: &str) -> Result<MoneyFacts, StoreError> {
        match self {
            Store::Sqlite(s) => s.money_facts(session_id).await,
            Store::Postgres(s) => s.money_facts(session_id).await,
        }
    }

    /// The last event a reconciliation run handled for an event source (one Stripe account
    /// and mode): `(event id, created)`.
    pub async fn checkpoint(&self, source: &str) -> Result<Option<(String, i64)>, StoreError> {
        self.text_and_int(SELECT_CHECKPOINT, source).await
    }

    /// Moves a source's reconciliation checkpoint forward to an event (never back).
    pub async fn save_checkpoint(&self, source: &str, event_id: &str, created: i64) -> Result<(), StoreError> {
        self.exec(SAVE_CHECKPOINT, &[source, event_id], &[created, now()]).await.map(drop)
    }

    /// A source's unfinished listing of its first window: `(oldest event listed so far, the
    /// window's start)`.
    pub async fn listing(&self, source: &str) -> Result<Option<(String, i64)>, StoreError> {
        self.text_and_int(SELECT_LISTING, source).await
    }

    /// The one row of `sql` for `key`, read as `(text, integer)`.
    async fn text_and_int(&self, sql: &str, key: &str) -> Result<Option<(String, i64)>, StoreError> {
        let row = self.row_texts(sql, key, &[]).await?;
        Ok(row.and_then(|mut r| {
            let int = r.pop()?.parse().ok()?;
            Some((r.pop()?, int))
        }))
    }

    /// Saves a listing's progress: the oldest event listed so far in the window from
    /// `window_start`.
    pub async fn save_listing(&self, source: &str, event_id: &str, window_start: i64) -> Result<(), StoreError> {
        self.exec(SAVE_LISTING, &[source, event_id], &[window_start, now()]).await.map(drop)
    }

    /// Forgets a source's listing (its walk has a checkpoint).
    pub async fn clear_listing(&self, source: &str) -> Result<(), StoreError> {
        self.exec(CLEAR_LISTING, &[source], &[]).await.map(drop)
    }

    /// Counts one failed attempt at an event (`object_id` empty when unknown) for `reason`;
    /// returns the attempts so far. A new record is [`FailureState::Retrying`]; an existing one
    /// keeps its state (see [`Store::set_failure_state`]).
    pub async fn record_failed_attempt(
        &self,
        source: &str,
        event: EventRef<'_>,
        object_id: &str,
        reason: &str,
    ) -> Result<i64, StoreError> {
        let texts = [event.id, event.kind, object_id, reason, source];
        let rows = self.rows_texts(RECORD_FAILED_ATTEMPT, &texts, &[now()]).await?;
        let attempts = rows.into_iter().next().and_then(|mut r| r.pop()).and_then(|a| a.parse().ok());
        attempts.ok_or_else(|| StoreError::new("failed attempt not recorded"))
    }

    /// Sets where a recorded failure stands.
    pub async fn set_failure_state(&self, event_id: &str, state: FailureState) -> Result<(), StoreError> {
        self.exec(SET_FAILURE_STATE, &[event_id, state.as_str()], &[]).await.map(drop)
    }

    /// Forgets a recorded failure (the event was acted on after all).
    pub async fn clear_failure(&self, event_id: &str) -> Result<(), StoreError> {
        self.exec(CLEAR_FAILURE, &[event_id], &[]).await.map(drop)
    }

    /// Failures are kept per event source (one Stripe account and mode, as the checkpoint): a
    /// shop that moves from test to live keys does not retry its test events.
    ///
    /// Up to `limit` failures the walk went past ([`FailureState::Failed`] or
    /// [`FailureState::Held`]), least recently attempted first: those a run retries.
    pub async fn failures_to_retry(&self, source: &str, limit: u32) -> Result<Vec<FailedEvent>, StoreError> {
        let (failed, held) = (FailureState::Failed.as_str(), FailureState::Held.as_str());
        let rows = self.rows_texts(SELECT_FAILURES_TO_RETRY, &[failed, held, source], &[i64::from(limit)]).await?;
        Ok(rows.into_iter().filter_map(FailedEvent::from_texts).collect())
    }

    /// Up to `limit` failures the walk went past, most recently attempted first: those the
    /// owner is shown.
    pub async fn failures_shown(&self, source: &str, limit: u32) -> Result<Vec<FailedEvent>, StoreError> {
        let retrying = FailureState::Retrying.as_str();
        let rows = self.rows_texts(SELECT_FAILURES_SHOWN, &[retrying, source], &[i64::from(limit)]).await?;
        Ok(rows.into_iter().filter_map(FailedEvent::from_texts).collect())
    }

    /// Up to `limit` failures the walk stopped at ([`FailureState::Retrying`]).
    pub async fn failures_retrying(&self, source: &str, limit: u32) -> Result<Vec<FailedEvent>, StoreError> {
        let retrying = FailureState::Retrying.as_str();
        let rows = self.rows_texts(SELECT_FAILURES_IN, &[retrying, source], &[i64::from(limit)]).await?;
        Ok(rows.into_iter().filter_map(FailedEvent::from_texts).collect())
    }

    /// An order's history, oldest first.
    pub async fn history(&self, session_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = match self {
            Store::Sqlite(s) => s.history_rows(SELECT_HISTORY.to_string(), vec![session_id.to_string()]).await,
            Store::Postgres(s) => s.history_rows(SELECT_HISTORY, &[session_id]).await,
        }?;
        Ok(rows.into_iter().map(|(_, entry)| entry).collect())
    }

    /// The histories and owner actions of several orders in one statement (a page of the
    /// owner's list), each oldest first, keyed by session id (an order without either has no key).
    pub async fn histories(
        &self,
        session_ids: &[&str],
    ) -> Result<std::collections::HashMap<String, OrderLog>, StoreError> {
        /// An order's entries, each with its sequence number.
        type Numbered = (Vec<(i64, HistoryEntry)>, Vec<(i64, ActionEntry)>);
        let mut by_order: std::collections::HashMap<String, Numbered> = Default::default();
        if session_ids.is_empty() {
            return Ok(Default::default());
        }
        let rows = self.rows_texts(&select_histories(session_ids.len()), session_ids, &[]).await?;
        for row in rows {
            let Ok([session_id, kind, id, at, a, b, amount, dispute_status, seq]) = <[String; 9]>::try_from(row) else {
                continue;
            };
            let (at, seq) = (at.parse().unwrap_or(0), seq.parse().unwrap_or(0));
            let log = by_order.entry(session_id).or_default();
            if kind == "action" {
                let details = serde_json::from_str(&b).unwrap_or(serde_json::Value::Null);
                log.1.push((seq, ActionEntry { at, action: a, details, idempotency_key: id }));
            } else {
                let dispute_status = Some(dispute_status).filter(|d| !d.is_empty());
                let amount = amount.parse().unwrap_or(0);
                log.0.push((seq, HistoryEntry { event_id: id, at, from: a, to: b, amount, dispute_status }));
            }
        }
        Ok(by_order
            .into_iter()
            .map(|(id, (mut history, mut actions))| {
                history.sort_by_key(|(seq, _)| *seq);
                actions.sort_by_key(|(seq, _)| *seq);
                let log = OrderLog {
                    history: history.into_iter().map(|(_, h)| h).collect(),
                    actions: actions.into_iter().map(|(_, a)| a).collect(),
                };
                (id, log)
            })
            .collect())
    }

    /// In one transaction: unless the action's key is in the order's history already, moves
    /// the order's delivery as the action asks ([`order::move_shipment`] decides), appends the
    /// action to its history and claims the run of its hook calls.
    pub async fn apply_action(&self, action: &ActionRecord<'_>) -> Result<ActionApplied, StoreError> {
        match self {
            Store::Sqlite(s) => s.apply_action(action).await,
            Store::Postgres(s) => s.apply_action(action).await,
        }
    }

    /// Claims an owner action's idempotency key for the request hashing to `request_hash`, or
    /// says where it stands; a claim left unanswered `lease_secs` or more (its instance died) is
    /// taken over.
    pub async fn claim_action_key(
        &self,
        key: &str,
        request_hash: &str,
        lease_secs: i64,
    ) -> Result<KeyClaim, StoreError> {
        for _ in 0..3 {
            let now = now();
            if self.exec(CLAIM_ACTION_KEY, &[key, request_hash], &[now]).await? == 1 {
                return Ok(KeyClaim::Claimed);
            }
            let Some(row) = self.row_texts(SELECT_ACTION_KEY, key, &[]).await? else {
                continue; // let go of in between: claim again
            };
            let Ok([hash, status, answer, claimed_at]) = <[String; 4]>::try_from(row) else {
                return Err(StoreError::new("unreadable idempotency key row"));
            };
            if hash != request_hash {
                return Ok(KeyClaim::Mismatch);
            }
            match status.parse::<u16>().unwrap_or(0) {
                0 => {}
                status => return Ok(KeyClaim::Done(status, answer)),
            }
            let lapsed = claimed_at.parse::<i64>().unwrap_or(i64::MAX) <= now - lease_secs;
            if lapsed && self.exec(RECLAIM_ACTION_KEY, &[key, request_hash], &[now, now - lease_secs]).await? == 1 {
                return Ok(KeyClaim::Claimed);
            }
            return Ok(KeyClaim::InProgress);
        }
        Ok(KeyClaim::InProgress)
    }

    /// Stores the answer of the action holding `key`.
    pub async fn finish_action_key(&self, key: &str, status: u16, answer: &str) -> Result<(), StoreError> {
        self.exec(FINISH_ACTION_KEY, &[key, answer], &[i64::from(status), now()]).await.map(drop)
    }

    /// Lets go of an unanswered key (the action failed on our side; a retry acts again).
    pub async fn release_action_key(&self, key: &str) -> Result<(), StoreError> {
        self.exec(RELEASE_ACTION_KEY, &[key], &[]).await.map(drop)
    }

    /// The last event `via` recorded for `source`: its type and time (the health view).
    pub async fn last_event(&self, source: &str, via: Via) -> Result<Option<(String, i64)>, StoreError> {
        let row = self.row_of_texts(SELECT_LAST_EVENT, &[source, via.as_str()], &[]).await?;
        Ok(row.and_then(|r| {
            let [kind, at]: [String; 2] = r.try_into().ok()?;
            Some((kind, at.parse().ok()?))
        }))
    }

    /// Adds refusal counts to `source`'s rows (one per class and hour, summed across
    /// instances) in one statement; with `prune_before`, first forgets every row older than
    /// that hour, so the table keeps at most a day of hours per class.
    pub async fn add_refusals(
        &self,
        source: &str,
        counts: &[RefusalCount],
        prune_before: Option<i64>,
    ) -> Result<(), StoreError> {
        if let Some(hour) = prune_before {
            self.exec(PRUNE_REFUSALS, &[], &[hour]).await?;
        }
        if counts.is_empty() {
            return Ok(());
        }
        let texts: Vec<&str> = std::iter::once(source).chain(counts.iter().map(|c| c.class)).collect();
        let ints: Vec<i64> = counts.iter().flat_map(|c| [c.hour, c.refusals, c.last_at]).collect();
        self.exec(&upsert_refusals(counts.len()), &texts, &ints).await.map(drop)
    }

    /// `source`'s refusals per class since `since_hour` (Unix hours): class, count, last time.
    pub async fn refusals(&self, source: &str, since_hour: i64) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let rows = self.rows_texts(SELECT_REFUSALS, &[source], &[since_hour]).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let [class, n, at]: [String; 3] = r.try_into().ok()?;
                Some((class, n.parse().ok()?, at.parse().ok()?))
            })
            .collect())
    }

    /// Records `source`'s last reconciliation run.
    pub async fn save_reconcile_run(&self, source: &str, run: &ReconcileRun) -> Result<(), StoreError> {
        let ints = [run.at, run.processed, i64::from(run.finished), i64::from(run.failed)];
        self.exec(SAVE_RECONCILE_RUN, &[source], &ints).await.map(drop)
    }

    /// `source`'s last reconciliation run, if one ever ran.
    pub async fn reconcile_run(&self, source: &str) -> Result<Option<ReconcileRun>, StoreError> {
        let row = self.row_texts(SELECT_RECONCILE_RUN, source, &[]).await?;
        Ok(row.and_then(|r| {
            let [at, processed, finished, failed]: [String; 4] = r.try_into().ok()?;
            Some(ReconcileRun {
                at: at.parse().ok()?,
                processed: processed.parse().ok()?,
                finished: finished == "1",
                failed: failed == "1",
            })
        }))
    }

    /// Up to `limit` hook runs claimed and not finished (oldest claim first), and how many
    /// there are in all.
    pub async fn open_runs(&self, limit: u32) -> Result<(Vec<OpenRun>, i64), StoreError> {
        let rows = self.rows_texts(SELECT_OPEN_RUNS, &[], &[i64::from(limit)]).await?;
        let runs = rows
            .into_iter()
            .filter_map(|r| {
                let [kind, id, attempts, claimed_at]: [String; 4] = r.try_into().ok()?;
                Some(OpenRun { kind, id, attempts: attempts.parse().ok()?, claimed_at: claimed_at.parse().ok()? })
            })
            .collect();
        let total = self.rows_texts(COUNT_OPEN_RUNS, &[], &[]).await?;
        let total = total.into_iter().next().and_then(|mut r| r.pop()).and_then(|n| n.parse().ok()).unwrap_or(0);
        Ok((runs, total))
    }

    /// The schema versions this database recorded (see [`schema_version`]), newest first, at
    /// most `limit`: `(version, applied at)`.
    pub async fn schema_versions(&self, limit: u32) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = self.rows_texts(SELECT_SCHEMA_VERSIONS, &[], &[i64::from(limit)]).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let [version, at]: [String; 2] = r.try_into().ok()?;
                Some((version, at.parse().ok()?))
            })
            .collect())
    }

    async fn row_texts(&self, sql: &str, key: &str, ints: &[i64]) -> Result<Option<Vec<String>>, StoreError> {
        self.row_of_texts(sql, &[key], ints).await
    }

    async fn row_of_texts(&self, sql: &str, texts: &[&str], ints: &[i64]) -> Result<Option<Vec<String>>, StoreError> {
        match self {
            Store::Sqlite(s) => s.row_texts(sql, texts, ints).await,
            Store::Postgres(s) => s.row_texts(sql, texts, ints).await,
        }
    }

    /// Queues a message for the shopper, once per `key` (a fact); false if it was queued before.
    pub async fn queue_email(&self, key: &str, session_id: &str, message: &OutboxMessage) -> Result<bool, StoreError> {
        let texts = [key, session_id, &message.to, &message.subject, &message.text, &message.html];
        Ok(self.exec(QUEUE_EMAIL, &texts, &[now()]).await? == 1)
    }

    /// Claims an unsent message for a send now, unless another send claimed it less than
    /// `lease_secs` ago; what to send, for exactly one caller.
    pub async fn claim_email(&self, key: &str, lease_secs: i64) -> Result<Option<OutboxMessage>, StoreError> {
        let now = now();
        let row = self.row_of_texts(CLAIM_EMAIL, &[key], &[now, now - lease_secs]).await?;
        Ok(row.and_then(|r| {
            let mut r = r.into_iter();
            Some(OutboxMessage { to: r.next()?, subject: r.next()?, text: r.next()?, html: r.next()? })
        }))
    }

    /// Records that the provider accepted a message.
    pub async fn email_sent(&self, key: &str) -> Result<(), StoreError> {
        self.exec(EMAIL_SENT, &[key], &[now()]).await.map(drop)
    }

    /// Lets a message whose send failed be claimed again at once.
    pub async fn release_email(&self, key: &str) -> Result<(), StoreError> {
        self.exec(EMAIL_RELEASE, &[key], &[]).await.map(drop)
    }

    /// Keys of unsent messages no send holds (none claimed in the last `lease_secs`), oldest
    /// first.
    pub async fn pending_emails(&self, lease_secs: i64, limit: u32) -> Result<Vec<String>, StoreError> {
        let rows = self.rows_texts(PENDING_EMAILS, &[], &[now() - lease_secs, i64::from(limit)]).await?;
        Ok(rows.into_iter().filter_map(|mut r| r.pop()).collect())
    }

    /// In one statement: whether an event id was already processed, and the order a
    /// PaymentIntent paid for, if recorded (an after-payment event asks both first).
    pub async fn event_seen_and_session(
        &self,
        event_id: &str,
        payment_intent: &str,
    ) -> Result<(bool, Option<String>), StoreError> {
        let row = self.row_of_texts(SELECT_EVENT_AND_SESSION, &[event_id, payment_intent], &[]).await?;
        let mut cols = row.unwrap_or_default().into_iter();
        let seen = cols.next().is_some_and(|n| n != "0");
        Ok((seen, cols.next().filter(|s| !s.is_empty())))
    }

    /// Every row of a statement taking texts then integers, each column read as text.
    async fn rows_texts(&self, sql: &str, texts: &[&str], ints: &[i64]) -> Result<Vec<Vec<String>>, StoreError> {
        match self {
            Store::Sqlite(s) => s.rows_texts(sql, texts, ints).await,
            Store::Postgres(s) => s.rows_texts(sql, texts, ints).await,
        }
    }

    /// Whether an event id was already processed.
    pub async fn event_seen(&self, event_id: &str) -> Result<bool, StoreError> {
        Ok(self.count(SELECT_EVENT, event_id).await? > 0)
    }

    /// Runs one statement taking texts then integers; rows affected.
    async fn exec(&self, sql: &str, texts: &[&str], ints: &[i64]) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.exec(sql, texts, ints).await,
            Store::Postgres(s) => s.exec(sql, texts, ints).await,
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

    /// Recent orders, newest first: at most `limit` of those recorded before the order
    /// `starting_after` (from the newest when `None`), only those in `state` when given.
    pub async fn orders_page(
        &self,
        starting_after: Option<&str>,
        limit: u32,
        state: Option<OrderState>,
    ) -> Result<Vec<Order>, StoreError> {
        let after = starting_after.unwrap_or("");
        let state = state.map_or("", OrderState::as_str);
        match self {
            Store::Sqlite(s) => s.orders_page(after, i64::from(limit), state).await,
            Store::Postgres(s) => s.orders_page(after, i64::from(limit), state).await,
        }
    }

    /// The copy of the Stripe catalog of shop tag `tag`, in one statement (rows that are not
    /// valid JSON, which only a hand edit could write, are skipped).
    pub async fn catalog_copy(&self, tag: &str) -> Result<CatalogCopy, StoreError> {
        let mut copy = CatalogCopy::default();
        for row in self.rows_texts(SELECT_CATALOG, &[tag], &[]).await? {
            let [kind, a, b]: [String; 3] = match row.try_into() {
                Ok(r) => r,
                Err(_) => continue,
            };
            if kind == "fill" {
                copy.filled_at = a.parse().ok();
            } else if let Ok(product) = serde_json::from_str(&a) {
                copy.products.push((product, serde_json::from_str(&b).ok()));
            }
        }
        Ok(copy)
    }

    /// Copies a Product of shop tag `tag` (its `default_price` kept as the id), unless a newer
    /// version of it is copied already.
    pub async fn save_catalog_product(
        &self,
        tag: &str,
        product: &crate::stripe::types::Product,
    ) -> Result<(), StoreError> {
        let default_price = product.default_price.as_ref().map_or("", |p| p.id());
        let mut stored = product.clone();
        stored.default_price =
            product.default_price.as_ref().map(|p| crate::stripe::types::Expandable::Id(p.id().into()));
        let body = serde_json::to_string(&stored).map_err(|e| StoreError::new(e.to_string()))?;
        let texts = [product.id.as_str(), tag, default_price, body.as_str()];
        self.exec(UPSERT_CATALOG_PRODUCT, &texts, &[product.updated, now()]).await.map(drop)
    }

    /// Copies a Price.
    pub async fn save_catalog_price(&self, price: &crate::stripe::types::Price) -> Result<(), StoreError> {
        let body = serde_json::to_string(price).map_err(|e| StoreError::new(e.to_string()))?;
        self.exec(UPSERT_CATALOG_PRICE, &[&price.id, &price.product, &body], &[now()]).await.map(drop)
    }

    /// Forgets a Product of the copy.
    pub async fn forget_catalog_product(&self, product_id: &str) -> Result<(), StoreError> {
        self.exec(DELETE_CATALOG_PRODUCT, &[product_id], &[]).await.map(drop)
    }

    /// Forgets a Price of the copy.
    pub async fn forget_catalog_price(&self, price_id: &str) -> Result<(), StoreError> {
        self.exec(DELETE_CATALOG_PRICE, &[price_id], &[]).await.map(drop)
    }

    /// Records a finished fill of tag `tag` that started at `started`: the products it did not
    /// list are forgotten.
    pub async fn catalog_filled(&self, tag: &str, started: i64) -> Result<(), StoreError> {
        self.exec(DELETE_UNLISTED_PRODUCTS, &[tag], &[started]).await?;
        self.exec(SAVE_CATALOG_FILL, &[tag], &[started]).await.map(drop)
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

pub(crate) use crate::clock::now;

fn run_sql(key: RunKey<'_>) -> &'static RunSql {
    match key {
        RunKey::Fulfillment(_) => &FULFILLMENT_RUNS,
        RunKey::Event(_) => &HOOK_RUNS,
    }
}

pub(crate) fn calls_json(calls: &[HookCall]) -> String {
    serde_json::to_string(calls).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn items_json(items: &[OrderItem]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// An order's details as stored: totals and shipping as JSON (`None`: nothing to record).
pub(crate) fn details_json(order: &OrderUpdate) -> Option<(String, Option<String>)> {
    let totals = serde_json::to_string(order.totals.as_ref()?).ok()?;
    Some((totals, order.shipping.as_ref().and_then(|s| serde_json::to_string(s).ok())))
}

/// How many order numbers a fulfilling transaction draws before giving up (a collision needs
/// 2^30 numbers in use to be likely).
pub(crate) const ORDER_NUMBER_ATTEMPTS: usize = 16;
