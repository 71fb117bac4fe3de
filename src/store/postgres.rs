//! Postgres backend (Neon or any managed Postgres): TLS through rustls with
//! the webpki roots (the URL is parsed and its TLS decided once, by
//! [`crate::config::postgres_config`]). A small pool per instance
//! ([`PoolConfig`]: `DATABASE_POOL_SIZE`, `DATABASE_IDLE_TIMEOUT_SECS`): connections opened
//! lazily, each dropped after a failure so an instance survives a database restart, and
//! closed once idle for the idle timeout — on the next checkout, and by a sweeper task
//! without traffic — so a warm but idle instance does not hold slots other functions need.
//! Every wait is short and bounded, so a hung database costs each request one timeout, not a
//! place in a queue. A refused connection is [`StoreErrorKind::Unavailable`], named in the
//! log by its SQLSTATE and the server's message (never the URL or a password).

use super::*;
use crate::config::PoolConfig;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_postgres::Client;
use tokio_postgres::types::{ToSql, Type};

/// Time to get a connection: wait for a free one, or connect (TCP, TLS,
/// startup, schema). A database that accepts and never answers fails here.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time for one operation (a statement, or one transaction).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Shortest pause between two sweeps of idle connections.
const MIN_SWEEP_EVERY: Duration = Duration::from_millis(100);

/// An open connection not in use, and since when.
struct Idle {
    client: Client,
    since: Instant,
}

/// The idle connections, most recently returned last.
type IdleList = Mutex<Vec<Idle>>;

/// The Postgres store.
pub struct PgStore {
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    pool: PoolConfig,
    /// Open connections not in use (shared with the sweeper, which holds it weakly).
    idle: Arc<IdleList>,
    /// One permit per connection in use or being opened.
    permits: Semaphore,
    /// The task closing idle connections, spawned on first use inside a runtime (the store
    /// may be built outside one) and again if its runtime went away.
    sweeper: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn err(e: impl fmt::Display) -> StoreError {
    StoreError::new(format!("postgres: {e}"))
}

/// A driver error as a store error: its kind (see [`StoreErrorKind`]) and a reason naming the
/// cause — the SQLSTATE and the server's message, or the I/O error — never the URL or password.
fn pg_err(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let message = format!("postgres: SQLSTATE {code} ({}): {}", db.severity(), db.message());
        // Class 53 (insufficient resources: 53300 too_many_connections), 57P (the server is
        // shutting down or starting: 57P01..57P03), 08 (connection exception).
        let refused = code.starts_with("53") || code.starts_with("57P") || code.starts_with("08");
        return if refused { StoreError::unavailable(message) } else { StoreError::new(message) };
    }
    let mut message = format!("postgres: {e}");
    let mut io = false;
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        io |= cause.is::<std::io::Error>();
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    // A refused or timed-out connect, a closed connection: the network or the server, not us.
    let tls = e.to_string().contains("TLS");
    if e.is_closed() || (io && !tls) || e.to_string().starts_with("timeout") {
        StoreError::unavailable(message)
    } else {
        StoreError::new(message)
    }
}

/// Takes the expired connections out of `idle` (the caller drops them outside the lock).
fn expired(idle: &IdleList, timeout: Duration) -> Vec<Idle> {
    let mut idle = idle.lock().unwrap_or_else(|p| p.into_inner());
    let (keep, gone): (Vec<Idle>, Vec<Idle>) =
        idle.drain(..).partition(|c| c.since.elapsed() < timeout && !c.client.is_closed());
    *idle = keep;
    gone
}

/// Closes idle connections past `timeout` every `every` until the store is gone.
async fn sweep(idle: Weak<IdleList>, timeout: Duration, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(idle) = idle.upgrade() else { return };
        drop(expired(&idle, timeout));
    }
}

impl PgStore {
    /// A store for a parsed `DATABASE_URL` (TLS decided: see
    /// [`crate::config::postgres_config`]) with the instance's pool settings; nothing is
    /// connected until first use.
    pub fn new(mut config: tokio_postgres::Config, pool: PoolConfig) -> Result<Self, StoreError> {
        config.connect_timeout(CONNECT_TIMEOUT);
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let tls_config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(err)?
                .with_root_certificates(roots)
                .with_no_client_auth();
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config);
        Ok(PgStore {
            config,
            tls,
            pool,
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Semaphore::new(pool.size.max(1)),
            sweeper: Mutex::new(None),
        })
    }

    /// The pool settings.
    pub fn pool(&self) -> PoolConfig {
        self.pool
    }

    /// How many connections are open and idle now.
    pub fn idle_connections(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    async fn connect(&self) -> Result<Client, StoreError> {
        let (client, connection) = self.config.connect(self.tls.clone()).await.map_err(pg_err)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                crate::log::warn("postgres connection closed", &[("error", &pg_err(e).to_string())]);
            }
        });
        // Migrate under an advisory lock so concurrent cold starts do not race: one simple-query
        // message, so one round trip (a failed statement aborts the rest and drops the connection).
        client.batch_execute(&migration()).await.map_err(pg_err)?;
        Ok(client)
    }

    /// Starts the idle sweeper if it is not running (first use, or its runtime went away).
    fn ensure_sweeper(&self) {
        let mut sweeper = self.sweeper.lock().unwrap_or_else(|p| p.into_inner());
        if sweeper.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let timeout = self.pool.idle_timeout;
        let every = (timeout / 4).max(MIN_SWEEP_EVERY);
        *sweeper = Some(runtime.spawn(sweep(Arc::downgrade(&self.idle), timeout, every)));
    }

    /// Runs `f` on a pooled connection: the most recently used idle one that has not been idle
    /// past the idle timeout (older ones are closed here), or a new one (waiting for a free
    /// slot and connecting share one [`CONNECT_TIMEOUT`]); `f` gets [`STATEMENT_TIMEOUT`]. The
    /// connection goes back to the pool after success and is dropped after a failure or a
    /// cancellation, so the next call reconnects.
    async fn with<T>(
        &self,
        f: impl AsyncFnOnce(&mut Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        self.ensure_sweeper();
        let (_permit, mut client) = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let permit = self.permits.acquire().await.map_err(err)?;
            drop(expired(&self.idle, self.pool.idle_timeout));
            let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let client = match idle {
                Some(c) => c.client,
                None => self.connect().await?,
            };
            Ok::<_, StoreError>((permit, client))
        })
        .await
        .map_err(|_| StoreError::unavailable("postgres: no connection within the connect timeout"))??;
        match tokio::time::timeout(STATEMENT_TIMEOUT, f(&mut client)).await {
            Ok(Ok(v)) => {
                self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(Idle { client, since: Instant::now() });
                Ok(v)
            }
            Ok(Err(e)) => Err(pg_err(e)),
            Err(_) => Err(StoreError::new("postgres: operation timed out")),
        }
    }

    pub(super) async fn apply(
        &self,
        u: &OrderUpdate,
        event: Option<EventRef<'_>>,
        groups: Vec<stock::Group>,
    ) -> Result<(Applied<bool>, Vec<stock::GroupOutcome>), StoreError> {
        type Answer = (Applied<bool>, Vec<stock::GroupOutcome>);
        self.with(async |client| -> Result<Result<Answer, StoreError>, tokio_postgres::Error> {
            let tx = client.transaction().await?;
            let now = now();
            if let Some(e) = &event {
                let n = tx
                    .execute_typed(
                        INSERT_EVENT,
                        &typed(&[&e.id, &e.kind, &u.session_id, &now, &e.via.as_str(), &e.source]),
                    )
                    .await?;
                if n == 0 {
                    return Ok(Ok((Applied::DuplicateEvent, Vec::new())));
                }
            }
            tx.execute_typed(
                UPSERT_ORDER,
                &typed(&[
                    &u.session_id,
                    &u.state.as_str(),
                    &u.state.rank(),
                    &u.payment_status,
                    &u.amount_total,
                    &u.currency,
                    &items_json(&u.items),
                    &u.livemode,
                    &now,
                ]),
            )
            .await?;
            if let Some(pi) = &u.payment_intent
                && matches!(u.state, OrderState::Fulfilled | OrderState::AwaitingPayment)
            {
                tx.execute_typed(INSERT_MONEY, &typed(&[&u.session_id, pi, &u.amount_total.unwrap_or(0), &now]))
                    .await?;
            }
            let newly_fulfilled = u.state == OrderState::Fulfilled
                && tx.execute_typed(INSERT_FULFILLMENT, &typed(&[&u.session_id, &now])).await? == 1;
            if let Some((totals, shipping)) = details_json(u) {
                tx.execute_typed(UPSERT_DETAILS, &typed(&[&u.session_id, &totals, &shipping, &now, &u.customer_email]))
                    .await?;
            }
            if newly_fulfilled {
                tx.execute_typed(INSERT_RUN, &typed(&[&u.session_id, &now])).await?;
                let mut assigned = false;
                for _ in 0..ORDER_NUMBER_ATTEMPTS {
                    let number = order::new_order_number();
                    if tx.execute_typed(INSERT_ORDER_NUMBER, &typed(&[&number, &u.session_id, &now])).await? == 1 {
                        assigned = true;
                        break;
                    }
                }
                if !assigned {
                    return Ok(Err(StoreError::new("postgres: no free order number")));
                }
            }
            let outcomes = run_steps(&tx, &groups, true).await?;
            tx.commit().await?;
            Ok(Ok((Applied::Recorded(newly_fulfilled), outcomes)))
        })
        .await?
    }

    /// Runs groups of steps in one transaction (see [`stock::run_with`]).
    pub(super) async fn run_groups(&self, groups: Vec<stock::Group>) -> Result<Vec<stock::GroupOutcome>, StoreError> {
        self.with(async |client| {
            let tx = client.transaction().await?;
            let outcomes = run_steps(&tx, &groups, false).await?;
            if outcomes.iter().any(|o| matches!(o, stock::GroupOutcome::Failed(_))) {
                tx.rollback().await?;
            } else {
                tx.commit().await?;
            }
            Ok(outcomes)
        })
        .await
    }

    /// Runs one statement taking texts then integers; rows affected.
    pub(super) async fn exec(&self, text: &str, texts: &[&str], ints: &[i64]) -> Result<u64, StoreError> {
        self.with(async |client| client.execute_typed(text, &args(texts, ints)).await).await
    }

    pub(super) async fn record_event(&self, event: EventRef<'_>) -> Result<bool, StoreError> {
        self.with(async |client| {
            let none: Option<String> = None;
            let n = client
                .execute_typed(
                    INSERT_EVENT,
                    &typed(&[&event.id, &event.kind, &none, &now(), &event.via.as_str(), &event.source]),
                )
                .await?;
            Ok(n == 1)
        })
        .await
    }

    /// Runs a `SELECT COUNT(*)` taking one text parameter.
    pub(super) async fn count(&self, text: &str, key: &str) -> Result<i64, StoreError> {
        self.with(async |client| Ok(client.query_typed_one(text, &typed(&[&key])).await?.get(0))).await
    }

    pub(super) async fn order(&self, session_id: &str) -> Result<Option<Order>, StoreError> {
        self.with(async |client| {
            Ok(client.query_typed_opt(SELECT_ORDER, &typed(&[&session_id])).await?.as_ref().map(order_row))
        })
        .await
    }

    pub(super) async fn orders_page(
        &self,
        starting_after: &str,
        limit: i64,
        state: &str,
    ) -> Result<Vec<Order>, StoreError> {
        self.with(async |client| {
            Ok(client
                .query_typed(SELECT_ORDERS_PAGE, &typed(&[&starting_after, &limit, &state]))
                .await?
                .iter()
                .map(order_row)
                .collect())
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
        self.with(async |client| {
            let tx = client.transaction().await?;
            let now = now();
            if tx
                .execute_typed(
                    INSERT_EVENT,
                    &typed(&[&event.id, &event.kind, &session_id, &now, &event.via.as_str(), &event.source]),
                )
                .await?
                == 0
            {
                return Ok(Applied::DuplicateEvent);
            }
            // Concurrent events for one order take turns from here.
            tx.execute_typed(LOCK_ORDER, &typed(&[&session_id])).await?;
            let rows = tx.query_typed(SELECT_FACTS, &typed(&[&session_id])).await?;
            let old =
                facts_from_rows(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))));
            let Some((new, change)) = order::decide(&old, fresh) else {
                tx.commit().await?;
                return Ok(Applied::Recorded(None));
            };
            for r in &change.refunds {
                tx.execute_typed(
                    UPSERT_REFUND,
                    &typed(&[
                        &r.id.as_str(),
                        &session_id,
                        &r.status.as_str(),
                        &r.reason.as_deref(),
                        &r.amount,
                        &r.rank(),
                        &r.created,
                        &now,
                    ]),
                )
                .await?;
            }
            for d in &change.disputes {
                tx.execute_typed(
                    UPSERT_DISPUTE,
                    &typed(&[&d.id.as_str(), &session_id, &d.status.as_str(), &d.amount, &d.rank(), &d.created, &now]),
                )
                .await?;
            }
            let money = new.money();
            let d = money.dispute.as_ref();
            tx.execute_typed(
                UPSERT_MONEY,
                &typed(&[
                    &session_id,
                    &payment_intent,
                    &money.state().as_str(),
                    &money.amount,
                    &money.amount_refunded,
                    &d.map(|d| d.id.as_str()),
                    &d.map(|d| d.status.as_str()),
                    &d.map(|d| d.amount),
                    &now,
                ]),
            )
            .await?;
            tx.execute_typed(
                INSERT_HISTORY,
                &typed(&[
                    &event.id,
                    &session_id,
                    &now,
                    &change.from.as_str(),
                    &change.to.as_str(),
                    &change.amount,
                    &change.dispute_status,
                ]),
            )
            .await?;
            if !change.calls.is_empty() {
                tx.execute_typed(INSERT_HOOK_RUN, &typed(&[&event.id, &session_id, &calls_json(&change.calls), &now]))
                    .await?;
            }
            tx.commit().await?;
            Ok(Applied::Recorded(Some(change)))
        })
        .await
    }

    pub(super) async fn apply_action(&self, a: &ActionRecord<'_>) -> Result<ActionApplied, StoreError> {
        let details = a.details.to_string();
        self.with(async |client| {
            let tx = client.transaction().await?;
            let now = now();
            // Concurrent actions on one order take turns from here.
            tx.execute_typed(LOCK_ORDER, &typed(&[&a.session_id])).await?;
            let seen: i64 = tx.query_typed_one(SELECT_ACTION_SEEN, &typed(&[&a.idempotency_key])).await?.get(0);
            if seen > 0 {
                return Ok(ActionApplied::Duplicate);
            }
            let mut calls = Vec::new();
            if let Some((digital, asked)) = &a.shipment {
                let row = tx.query_typed_opt(SELECT_SHIPMENT, &typed(&[&a.session_id])).await?;
                let current = row
                    .and_then(|r| {
                        ShippingState::parse(r.get::<_, &str>(0)).map(|state| Shipment {
                            state,
                            carrier: r.get(1),
                            tracking_number: r.get(2),
                            tracking_url: r.get(3),
                            note: r.get(4),
                        })
                    })
                    .unwrap_or_else(|| Shipment::initial(*digital));
                let next = match order::move_shipment(&current, *digital, asked) {
                    Err(illegal) => return Ok(ActionApplied::Illegal(illegal)),
                    Ok(None) => return Ok(ActionApplied::Unchanged),
                    Ok(Some((next, c))) => {
                        calls = c;
                        next
                    }
                };
                tx.execute_typed(
                    UPSERT_SHIPMENT,
                    &typed(&[
                        &a.session_id,
                        &next.state.as_str(),
                        &next.carrier,
                        &next.tracking_number,
                        &next.tracking_url,
                        &next.note,
                        &now,
                    ]),
                )
                .await?;
            }
            tx.execute_typed(INSERT_ACTION, &typed(&[&a.idempotency_key, &a.session_id, &now, &a.action, &details]))
                .await?;
            if !calls.is_empty() {
                tx.execute_typed(INSERT_HOOK_RUN, &typed(&[&a.run_id, &a.session_id, &calls_json(&calls), &now]))
                    .await?;
            }
            tx.commit().await?;
            Ok(ActionApplied::Recorded(calls))
        })
        .await
    }

    pub(super) async fn money_facts(&self, session_id: &str) -> Result<MoneyFacts, StoreError> {
        self.with(async |client| {
            let rows = client.query_typed(SELECT_FACTS, &typed(&[&session_id])).await?;
            Ok(facts_from_rows(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))))
        })
        .await
    }

    /// History rows of a statement taking texts: `(session id, entry)`.
    pub(super) async fn history_rows(
        &self,
        text: &str,
        texts: &[&str],
    ) -> Result<Vec<(String, HistoryEntry)>, StoreError> {
        self.with(async |client| {
            let rows = client.query_typed(text, &args(texts, &[])).await?;
            Ok(rows
                .iter()
                .map(|r| {
                    let entry = HistoryEntry {
                        event_id: r.get(0),
                        at: r.get(1),
                        from: r.get(2),
                        to: r.get(3),
                        amount: r.get(4),
                        dispute_status: r.get(5),
                    };
                    (r.get(6), entry)
                })
                .collect())
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
        self.with(async |client| {
            let row = client.query_typed_opt(text, &args(texts, ints)).await?;
            Ok(row.map(|r| (0..r.len()).map(|i| r.get::<_, String>(i)).collect()))
        })
        .await
    }

    pub(super) async fn rows_texts(
        &self,
        text: &str,
        texts: &[&str],
        ints: &[i64],
    ) -> Result<Vec<Vec<String>>, StoreError> {
        self.with(async |client| {
            let rows = client.query_typed(text, &args(texts, ints)).await?;
            Ok(rows.iter().map(|r| (0..r.len()).map(|i| r.get::<_, String>(i)).collect()).collect())
        })
        .await
    }

    pub(super) async fn hit(&self, bucket: &str, window_start: i64) -> Result<i64, StoreError> {
        self.with(async |client| {
            let hits: i64 = client.query_typed_one(HIT, &typed(&[&bucket, &window_start])).await?.get(0);
            if hits == 1 {
                client.execute_typed(PRUNE_HITS, &typed(&[&(window_start - 86_400)])).await?;
            }
            Ok(hits)
        })
        .await
    }
}

/// An order from the columns of [`SELECT_ORDER`].
fn order_row(r: &tokio_postgres::Row) -> Order {
    let order =
        Order::from_columns(r.get(0), r.get::<_, &str>(1), r.get(2), r.get(3), r.get(4), r.get::<_, &str>(5), r.get(6));
    let money = money_from_columns(r.get(8), r.get(9), r.get(10), r.get(11), r.get(12));
    order
        .with_money(r.get(13), r.get(7), money)
        .with_details(r.get(14), r.get(15), r.get(16), r.get(17))
        .with_shipment(r.get(18), r.get(19), r.get(20), r.get(21), r.get(22))
        .with_customer_email(r.get(23))
}

/// A statement parameter and the Postgres type it is sent as. Naming the types lets every
/// statement go in one round trip (`execute_typed` / `query_typed`: parse, bind and execute in
/// one flight, no separate prepare), with unnamed statements that any pooler accepts.
trait Param: ToSql + Sync {
    /// The parameter's type on the wire (the schema's TEXT, BIGINT and BOOLEAN).
    const TYPE: Type;
}

impl Param for &str {
    const TYPE: Type = Type::TEXT;
}
impl Param for String {
    const TYPE: Type = Type::TEXT;
}
impl Param for i64 {
    const TYPE: Type = Type::INT8;
}
impl Param for bool {
    const TYPE: Type = Type::BOOL;
}
impl<T: Param> Param for Option<T> {
    const TYPE: Type = T::TYPE;
}

/// A parameter, whatever its Rust type (see [`Param`]).
trait Typed: Sync {
    /// The value with its wire type.
    fn typed(&self) -> (&(dyn ToSql + Sync), Type);
}

impl<T: Param> Typed for T {
    fn typed(&self) -> (&(dyn ToSql + Sync), Type) {
        (self, T::TYPE)
    }
}

/// Runs stock steps in the transaction `tx` (see [`stock::Plan`]).
async fn run_steps(
    tx: &tokio_postgres::Transaction<'_>,
    groups: &[stock::Group],
    savepoints: bool,
) -> Result<Vec<stock::GroupOutcome>, tokio_postgres::Error> {
    let mut plan = stock::Plan::new(groups, savepoints);
    let mut rows = None;
    loop {
        match plan.next(rows.take()) {
            stock::Next::Exec(step) => {
                let mut params: Vec<(&(dyn ToSql + Sync), Type)> = step.texts.iter().map(|t| t.typed()).collect();
                params.extend(step.ints.iter().map(|i| i.typed()));
                rows = Some(tx.execute_typed(step.sql, &params).await?);
            }
            stock::Next::Savepoint => tx.batch_execute("SAVEPOINT stock").await?,
            stock::Next::Rollback => tx.batch_execute("ROLLBACK TO SAVEPOINT stock").await?,
            stock::Next::Done(outcomes) => return Ok(outcomes),
        }
    }
}

/// A statement's parameters with their types, in order.
fn typed<'a>(params: &[&'a dyn Typed]) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    params.iter().map(|&p| p.typed()).collect()
}

/// Statement parameters: texts, then integers.
fn args<'a>(texts: &'a [&'a str], ints: &'a [i64]) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    let texts = texts.iter().map(|t| t.typed());
    texts.chain(ints.iter().map(|i| i.typed())).collect()
}

/// The schema as one simple-query message: the advisory lock and every statement of
/// [`SCHEMA`] in one transaction.
fn migration() -> String {
    // The schema's own version (see [`schema_version`]). Once a database has it, connecting
    // runs no DDL at all: `CREATE INDEX IF NOT EXISTS` and `ALTER TABLE` lock their tables even
    // when there is nothing to do, which made connecting instances deadlock with live traffic.
    let hash = schema_version();
    let mut sql = String::from(
        "BEGIN; SELECT pg_advisory_xact_lock(72430001);
         CREATE TABLE IF NOT EXISTS schema_version (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL);",
    );
    sql.push_str(&format!(
        "DO $migrate$ BEGIN IF NOT EXISTS (SELECT 1 FROM schema_version WHERE version = '{hash}') THEN "
    ));
    for stmt in SCHEMA {
        sql.push_str("EXECUTE $stmt$");
        sql.push_str(stmt);
        sql.push_str("$stmt$; ");
    }
    sql.push_str(&format!(
        "INSERT INTO schema_version VALUES ('{hash}', EXTRACT(EPOCH FROM now())::BIGINT); \
         END IF; END $migrate$; COMMIT;"
    ));
    sql
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(sweeper) = self.sweeper.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            sweeper.abort();
        }
    }
}
