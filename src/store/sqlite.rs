//! Embedded SQLite backend: a local file shared by every process on the
//! machine (the dev server, `vercel dev` spawning a process per request).
//! Write transactions take the lock up front (`BEGIN IMMEDIATE`) and wait for
//! each other (`busy_timeout`), so concurrent processes serialise safely.

use super::*;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::{Arc, Mutex};

/// The SQLite store. The file is opened (and its schema created) on first use, so a
/// request that never touches the store does not pay for it.
#[derive(Clone)]
pub struct SqliteStore {
    path: Arc<str>,
    conn: Arc<Mutex<Option<Connection>>>,
}

fn err(e: impl fmt::Display) -> StoreError {
    StoreError::new(format!("sqlite: {e}"))
}

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Our SQL is written with `$n` placeholders; SQLite spells them `?n`.
fn sql(text: &str) -> String {
    text.replace('$', "?")
}

impl SqliteStore {
    /// The store in the file at `path`; the file and its schema are created on first use.
    pub fn open(path: &str) -> Result<Self, StoreError> {
        if path.is_empty() {
            return Err(StoreError::new("sqlite: empty path"));
        }
        Ok(SqliteStore { path: path.into(), conn: Arc::new(Mutex::new(None)) })
    }

    /// Opens (creating if needed) the file and its schema. Connections opened at once on a
    /// fresh file (several instances, or `vercel dev`'s processes, on their first request) can
    /// get `SQLITE_BUSY` while one of them switches the file to WAL, without SQLite's busy
    /// handler waiting for it; such a set-up is tried again within [`BUSY_TIMEOUT`].
    fn connect(path: &str) -> Result<Connection, rusqlite::Error> {
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match Self::set_up(path) {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                result => return result,
            }
        }
    }

    fn set_up(path: &str) -> Result<Connection, rusqlite::Error> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Every statement is prepared once per connection, then reused (the store has ~30).
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        for stmt in SCHEMA {
            match stmt.split_once(" ADD COLUMN IF NOT EXISTS ") {
                Some((table, column)) => match conn.execute(&format!("{table} ADD COLUMN {column}"), []) {
                    Err(rusqlite::Error::SqliteFailure(_, Some(msg))) if msg.contains("duplicate column") => {}
                    other => drop(other?),
                },
                None => drop(conn.execute(stmt, [])?),
            }
        }
        // The schema's version, recorded as Postgres records it (the health view reads it).
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            [],
        )?;
        conn.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2) ON CONFLICT (version) DO NOTHING",
            params![schema_version(), now()],
        )?;
        Ok(conn)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (conn, path) = (self.conn.clone(), self.path.clone());
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::new("sqlite: poisoned"))?;
            let conn = match &mut *guard {
                Some(conn) => conn,
                empty => empty.insert(Self::connect(&path).map_err(err)?),
            };
            f(conn).map_err(err)
        })
        .await
        .map_err(err)?
    }

    pub(super) async fn apply(
        &self,
        update: &OrderUpdate,
        event: Option<EventRef<'_>>,
        groups: Vec<stock::Group>,
    ) -> Result<(Applied<bool>, Vec<stock::GroupOutcome>), StoreError> {
        let u = update.clone();
        let ev = event.map(|e| (e.id.to_string(), e.kind.to_string(), e.via.as_str(), e.source.to_string()));
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = now();
            if let Some((id, kind, via, source)) = &ev {
                let n = tx.prepare_cached(&sql(INSERT_EVENT))?.execute(params![
                    id,
                    kind,
                    u.session_id,
                    now,
                    via,
                    source
                ])?;
                if n == 0 {
                    return Ok((Applied::DuplicateEvent, Vec::new()));
                }
            }
            tx.prepare_cached(&sql(UPSERT_ORDER))?.execute(params![
                u.session_id,
                u.state.as_str(),
                u.state.rank(),
                u.payment_status,
                u.amount_total,
                u.currency,
                items_json(&u.items),
                u.livemode,
                now
            ])?;
            if let Some(pi) = &u.payment_intent
                && matches!(u.state, OrderState::Fulfilled | OrderState::AwaitingPayment)
            {
                tx.prepare_cached(&sql(INSERT_MONEY))?.execute(params![
                    u.session_id,
                    pi,
                    u.amount_total.unwrap_or(0),
                    now
                ])?;
            }
            let newly_fulfilled = u.state == OrderState::Fulfilled
                && tx.prepare_cached(&sql(INSERT_FULFILLMENT))?.execute(params![u.session_id, now])? == 1;
            if let Some((totals, shipping)) = details_json(&u) {
                tx.prepare_cached(&sql(UPSERT_DETAILS))?.execute(params![
                    u.session_id,
                    totals,
                    shipping,
                    now,
                    u.customer_email
                ])?;
            }
            if newly_fulfilled {
                tx.prepare_cached(&sql(INSERT_RUN))?.execute(params![u.session_id, now])?;
                let assigned = (0..ORDER_NUMBER_ATTEMPTS).try_fold(false, |done, _| {
                    if done {
                        return Ok(true);
                    }
                    let number = order::new_order_number();
                    tx.prepare_cached(&sql(INSERT_ORDER_NUMBER))?
                        .execute(params![number, u.session_id, now])
                        .map(|n| n == 1)
                })?;
                if !assigned {
                    return Err(rusqlite::Error::ToSqlConversionFailure("no free order number".into()));
                }
            }
            let outcomes = run_steps(&tx, &groups, true)?;
            tx.commit()?;
            Ok((Applied::Recorded(newly_fulfilled), outcomes))
        })
        .await
    }

    /// Runs groups of steps in one transaction (see [`stock::run_with`]).
    pub(super) async fn run_groups(&self, groups: Vec<stock::Group>) -> Result<Vec<stock::GroupOutcome>, StoreError> {
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let outcomes = run_steps(&tx, &groups, false)?;
            if !outcomes.iter().any(|o| matches!(o, stock::GroupOutcome::Failed(_))) {
                tx.commit()?; // else dropped: rolled back
            }
            Ok(outcomes)
        })
        .await
    }

    /// Runs one statement taking texts then integers; rows affected.
    pub(super) async fn exec(&self, text: &str, texts: &[&str], ints: &[i64]) -> Result<u64, StoreError> {
        let (text, texts, ints) = (sql(text), owned(texts), ints.to_vec());
        self.run(move |conn| Ok(conn.prepare_cached(&text)?.execute(args(&texts, &ints).as_slice())? as u64)).await
    }

    pub(super) async fn record_event(&self, event: EventRef<'_>) -> Result<bool, StoreError> {
        let (id, kind, via, source) =
            (event.id.to_string(), event.kind.to_string(), event.via.as_str(), event.source.to_string());
        self.run(move |conn| {
            let n = conn.prepare_cached(&sql(INSERT_EVENT))?.execute(params![
                id,
                kind,
                Option::<String>::None,
                now(),
                via,
                source
            ])?;
            Ok(n == 1)
        })
        .await
    }

    /// Runs a `SELECT COUNT(*)` taking one text parameter.
    pub(super) async fn count(&self, text: &str, key: &str) -> Result<i64, StoreError> {
        let (text, key) = (sql(text), key.to_string());
        self.run(move |conn| conn.prepare_cached(&text)?.query_row(params![key], |r| r.get(0))).await
    }

    pub(super) async fn order(&self, session_id: &str) -> Result<Option<Order>, StoreError> {
        let id = session_id.to_string();
        self.run(move |conn| conn.prepare_cached(&sql(SELECT_ORDER))?.query_row(params![id], order_row).optional())
            .await
    }

    pub(super) async fn orders_page(
        &self,
        starting_after: &str,
        limit: i64,
        state: &str,
    ) -> Result<Vec<Order>, StoreError> {
        let (after, state) = (starting_after.to_string(), state.to_string());
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(&sql(SELECT_ORDERS_PAGE))?;
            let rows = stmt.query_map(params![after, limit, state], order_row)?;
            rows.collect()
        })
        .await
    }

    pub(super) async fn apply_money(
        &self,
        session_id: &str,
        payment_intent: &str,
        fresh: &MoneyFacts,
        event: EventRef<'_>,
    ) -> Result<Applied<Option<Change>>, StoreError> {
        let (sid, pi, fresh) = (session_id.to_string(), payment_intent.to_string(), fresh.clone());
        let (eid, kind, via, source) =
            (event.id.to_string(), event.kind.to_string(), event.via.as_str(), event.source.to_string());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = now();
            if tx.prepare_cached(&sql(INSERT_EVENT))?.execute(params![eid, kind, sid, now, via, source])? == 0 {
                return Ok(Applied::DuplicateEvent);
            }
            let old = facts_in(&tx, &sid)?;
            let Some((new, change)) = order::decide(&old, &fresh) else {
                tx.commit()?;
                return Ok(Applied::Recorded(None));
            };
            for r in &change.refunds {
                tx.prepare_cached(&sql(UPSERT_REFUND))?.execute(params![
                    r.id,
                    sid,
                    r.status,
                    r.reason,
                    r.amount,
                    r.rank(),
                    r.created,
                    now
                ])?;
            }
            for d in &change.disputes {
                tx.prepare_cached(&sql(UPSERT_DISPUTE))?.execute(params![
                    d.id,
                    sid,
                    d.status,
                    d.amount,
                    d.rank(),
                    d.created,
                    now
                ])?;
            }
            let money = new.money();
            let d = money.dispute.as_ref();
            tx.prepare_cached(&sql(UPSERT_MONEY))?.execute(params![
                sid,
                pi,
                money.state().as_str(),
                money.amount,
                money.amount_refunded,
                d.map(|d| &d.id),
                d.map(|d| &d.status),
                d.map(|d| d.amount),
                now
            ])?;
            tx.prepare_cached(&sql(INSERT_HISTORY))?.execute(params![
                eid,
                sid,
                now,
                change.from.as_str(),
                change.to.as_str(),
                change.amount,
                change.dispute_status
            ])?;
            if !change.calls.is_empty() {
                tx.prepare_cached(&sql(INSERT_HOOK_RUN))?.execute(params![eid, sid, calls_json(&change.calls), now])?;
            }
            tx.commit()?;
            Ok(Applied::Recorded(Some(change)))
        })
        .await
    }

    pub(super) async fn apply_action(&self, a: &ActionRecord<'_>) -> Result<ActionApplied, StoreError> {
        let (sid, key, action, run_id) =
            (a.session_id.to_string(), a.idempotency_key.to_string(), a.action.to_string(), a.run_id.to_string());
        let (details, shipment) = (a.details.to_string(), a.shipment.clone());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = now();
            let seen: i64 = tx.prepare_cached(&sql(SELECT_ACTION_SEEN))?.query_row(params![key], |r| r.get(0))?;
            if seen > 0 {
                return Ok(ActionApplied::Duplicate);
            }
            let mut calls = Vec::new();
            if let Some((digital, asked)) = &shipment {
                let current = tx
                    .prepare_cached(&sql(SELECT_SHIPMENT))?
                    .query_row(params![sid], |r| {
                        let (state, carrier, tracking_number, tracking_url, note): (String, _, _, _, _) =
                            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
                        Ok(ShippingState::parse(&state).map(|state| Shipment {
                            state,
                            carrier,
                            tracking_number,
                            tracking_url,
                            note,
                        }))
                    })
                    .optional()?
                    .flatten()
                    .unwrap_or_else(|| Shipment::initial(*digital));
                let next = match order::move_shipment(&current, *digital, asked) {
                    Err(illegal) => return Ok(ActionApplied::Illegal(illegal)),
                    Ok(None) => return Ok(ActionApplied::Unchanged),
                    Ok(Some((next, c))) => {
                        calls = c;
                        next
                    }
                };
                tx.prepare_cached(&sql(UPSERT_SHIPMENT))?.execute(params![
                    sid,
                    next.state.as_str(),
                    next.carrier,
                    next.tracking_number,
                    next.tracking_url,
                    next.note,
                    now
                ])?;
            }
            tx.prepare_cached(&sql(INSERT_ACTION))?.execute(params![key, sid, now, action, details])?;
            if !calls.is_empty() {
                tx.prepare_cached(&sql(INSERT_HOOK_RUN))?.execute(params![run_id, sid, calls_json(&calls), now])?;
            }
            tx.commit()?;
            Ok(ActionApplied::Recorded(calls))
        })
        .await
    }

    pub(super) async fn money_facts(&self, session_id: &str) -> Result<MoneyFacts, StoreError> {
        let sid = session_id.to_string();
        self.run(move |conn| facts_in(conn, &sid)).await
    }

    /// History rows of a statement taking texts: `(session id, entry)`.
    pub(super) async fn history_rows(
        &self,
        text: String,
        texts: Vec<String>,
    ) -> Result<Vec<(String, HistoryEntry)>, StoreError> {
        let text = sql(&text);
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(&text)?;
            let rows = stmt.query_map(args(&texts, &[]).as_slice(), |r| {
                let entry = HistoryEntry {
                    event_id: r.get(0)?,
                    at: r.get(1)?,
                    from: r.get(2)?,
                    to: r.get(3)?,
                    amount: r.get(4)?,
                    dispute_status: r.get(5)?,
                };
                Ok((r.get(6)?, entry))
            })?;
            rows.collect()
        })
        .await
    }

    /// Runs one statement taking texts then integers; the first row's columns as text.
    pub(super) async fn row_texts(
        &self,
        text: &str,
        texts: &[&str],
        ints: &[i64],
    ) -> Result<Option<Vec<String>>, StoreError> {
        let (text, texts, ints) = (sql(text), owned(texts), ints.to_vec());
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(&text)?;
            let n = stmt.column_count();
            stmt.query_row(args(&texts, &ints).as_slice(), |r| (0..n).map(|i| r.get::<_, String>(i)).collect())
                .optional()
        })
        .await
    }

    pub(super) async fn rows_texts(
        &self,
        text: &str,
        texts: &[&str],
        ints: &[i64],
    ) -> Result<Vec<Vec<String>>, StoreError> {
        let (text, texts, ints) = (sql(text), owned(texts), ints.to_vec());
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(&text)?;
            let n = stmt.column_count();
            let rows = stmt.query_map(args(&texts, &ints).as_slice(), |r| {
                (0..n).map(|i| r.get::<_, String>(i)).collect::<Result<Vec<_>, _>>()
            })?;
            rows.collect()
        })
        .await
    }

    pub(super) async fn hit(&self, bucket: &str, window_start: i64) -> Result<i64, StoreError> {
        let b = bucket.to_string();
        self.run(move |conn| {
            let hits: i64 = conn.prepare_cached(&sql(HIT))?.query_row(params![b, window_start], |r| r.get(0))?;
            if hits == 1 {
                // First hit of a window: prune windows that ended a day ago.
                conn.prepare_cached(&sql(PRUNE_HITS))?.execute(params![window_start - 86_400])?;
            }
            Ok(hits)
        })
        .await
    }
}

/// Runs stock steps in the transaction `tx` is in (see [`stock::Plan`]).
fn run_steps(
    tx: &Connection,
    groups: &[stock::Group],
    savepoints: bool,
) -> Result<Vec<stock::GroupOutcome>, rusqlite::Error> {
    let mut plan = stock::Plan::new(groups, savepoints);
    let mut rows = None;
    loop {
        match plan.next(rows.take()) {
            stock::Next::Exec(step) => {
                let mut args: Vec<&dyn rusqlite::ToSql> =
                    step.texts.iter().map(|t| t as &dyn rusqlite::ToSql).collect();
                args.extend(step.ints.iter().map(|i| i as &dyn rusqlite::ToSql));
                rows = Some(tx.prepare_cached(&sql(step.sql))?.execute(args.as_slice())? as u64);
            }
            stock::Next::Savepoint => tx.execute_batch("SAVEPOINT stock")?,
            stock::Next::Rollback => tx.execute_batch("ROLLBACK TO SAVEPOINT stock")?,
            stock::Next::Done(outcomes) => return Ok(outcomes),
        }
    }
}

/// An order's money facts ([`SELECT_FACTS`]) on a connection or in a transaction.
fn facts_in(conn: &Connection, session_id: &str) -> Result<MoneyFacts, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(&sql(SELECT_FACTS))?;
    let rows = stmt
        .query_map(params![session_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?;
    Ok(facts_from_rows(rows.collect::<Result<Vec<_>, _>>()?))
}

/// An order from the columns of [`SELECT_ORDER`].
fn order_row(r: &rusqlite::Row<'_>) -> Result<Order, rusqlite::Error> {
    let order = Order::from_columns(
        r.get(0)?,
        &r.get::<_, String>(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        &r.get::<_, String>(5)?,
        r.get(6)?,
    );
    let money = money_from_columns(r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?);
    Ok(order
        .with_money(r.get(13)?, r.get(7)?, money)
        .with_details(r.get(14)?, r.get(15)?, r.get(16)?, r.get(17)?)
        .with_shipment(r.get(18)?, r.get(19)?, r.get(20)?, r.get(21)?, r.get(22)?)
        .with_customer_email(r.get(23)?))
}

fn owned(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

/// Statement parameters: texts, then integers.
fn args<'a>(texts: &'a [String], ints: &'a [i64]) -> Vec<&'a dyn rusqlite::ToSql> {
    let mut args: Vec<&dyn rusqlite::ToSql> = texts.iter().map(|t| t as &dyn rusqlite::ToSql).collect();
    args.extend(ints.iter().map(|i| i as &dyn rusqlite::ToSql));
    args
}
