//! Embedded SQLite backend: a local file shared by every process on the
//! machine (the dev server, `vercel dev` spawning a process per request).
//! Write transactions take the lock up front (`BEGIN IMMEDIATE`) and wait for
//! each other (`busy_timeout`), so concurrent processes serialise safely.

use super::*;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::{Arc, Mutex};

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

fn err(e: impl fmt::Display) -> StoreError {
    StoreError(format!("sqlite: {e}"))
}

/// Our SQL is written with `$n` placeholders; SQLite spells them `?n`.
fn sql(text: &str) -> String {
    text.replace('$', "?")
}

impl SqliteStore {
    /// Opens (creating if needed) the file and its schema.
    pub fn open(path: &str) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(err)?;
        for stmt in SCHEMA {
            conn.execute(stmt, []).map_err(err)?;
        }
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError("sqlite: poisoned".into()))?;
            f(&mut guard).map_err(err)
        })
        .await
        .map_err(err)?
    }

    pub(super) async fn apply(&self, update: &OrderUpdate, event: Option<EventRef<'_>>) -> Result<Applied, StoreError> {
        let u = update.clone();
        let ev = event.map(|e| (e.id.to_string(), e.kind.to_string()));
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = now();
            if let Some((id, kind)) = &ev {
                let n = tx.execute(&sql(INSERT_EVENT), params![id, kind, u.session_id, now])?;
                if n == 0 {
                    return Ok(Applied::DuplicateEvent);
                }
            }
            tx.execute(
                &sql(UPSERT_ORDER),
                params![
                    u.session_id,
                    u.state.as_str(),
                    u.state.rank(),
                    u.payment_status,
                    u.amount_total,
                    u.currency,
                    items_json(&u.items),
                    u.livemode,
                    now
                ],
            )?;
            let newly_fulfilled = u.state == OrderState::Fulfilled
                && tx.execute(&sql(INSERT_FULFILLMENT), params![u.session_id, now])? == 1;
            if newly_fulfilled {
                tx.execute(&sql(INSERT_RUN), params![u.session_id, now])?;
            }
            tx.commit()?;
            Ok(Applied::Recorded { newly_fulfilled })
        })
        .await
    }

    /// Runs one statement taking a session id then integers; rows affected.
    pub(super) async fn update(&self, text: &str, session_id: &str, ints: &[i64]) -> Result<u64, StoreError> {
        let (text, id, ints) = (sql(text), session_id.to_string(), ints.to_vec());
        self.run(move |conn| {
            let mut args: Vec<&dyn rusqlite::ToSql> = vec![&id];
            args.extend(ints.iter().map(|i| i as &dyn rusqlite::ToSql));
            Ok(conn.execute(&text, args.as_slice())? as u64)
        })
        .await
    }

    pub(super) async fn record_event(&self, event: EventRef<'_>) -> Result<bool, StoreError> {
        let (id, kind) = (event.id.to_string(), event.kind.to_string());
        self.run(move |conn| {
            let n = conn.execute(&sql(INSERT_EVENT), params![id, kind, Option::<String>::None, now()])?;
            Ok(n == 1)
        })
        .await
    }

    /// Runs a `SELECT COUNT(*)` taking one text parameter.
    pub(super) async fn count(&self, text: &str, key: &str) -> Result<i64, StoreError> {
        let (text, key) = (sql(text), key.to_string());
        self.run(move |conn| conn.query_row(&text, params![key], |r| r.get(0))).await
    }

    pub(super) async fn order(&self, session_id: &str) -> Result<Option<Order>, StoreError> {
        let id = session_id.to_string();
        self.run(move |conn| {
            conn.query_row(&sql(SELECT_ORDER), params![id], |r| {
                Ok(Order::from_columns(
                    r.get(0)?,
                    &r.get::<_, String>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    &r.get::<_, String>(5)?,
                    r.get(6)?,
                ))
            })
            .optional()
        })
        .await
    }

    pub(super) async fn hit(&self, bucket: &str, window_start: i64) -> Result<i64, StoreError> {
        let b = bucket.to_string();
        self.run(move |conn| {
            let hits: i64 = conn.query_row(&sql(HIT), params![b, window_start], |r| r.get(0))?;
            if hits == 1 {
                // First hit of a window: prune windows that ended a day ago.
                conn.execute(&sql(PRUNE_HITS), params![window_start - 86_400])?;
            }
            Ok(hits)
        })
        .await
    }
}
