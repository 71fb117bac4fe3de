//! Stock and reservations: how many units of a product are on hand, reserved by open
//! checkouts, sold, and sold without a unit (oversold), and each checkout's reservation.
//!
//! Every change is conditional SQL in one transaction, never a read-then-write: a reservation
//! takes units with `reserved = reserved + q WHERE on_hand - reserved >= q` (an upsert, so a
//! product without a row gets an unlimited one), a release or a sale first moves the
//! reservation's own row out of `held` (`WHERE state = 'held'`), so it happens exactly once
//! whatever the order and number of the events that ask for it.
//!
//! The statements run as [`Group`]s of [`Step`]s, which both backends execute the same way
//! ([`Store::run_groups`], and inside the fulfilment's transaction, [`Store::apply`]).

use super::{Store, StoreError, now};
use crate::config::OversoldRule;
use crate::order::{HookCall, OrderState, OrderUpdate};

/// Upserts `$1`'s stock, taking `$2` units (`$3` now) if that many are free; 0 rows: not enough.
pub(crate) const RESERVE: &str = "INSERT INTO stock (product_id, on_hand, reserved, sold, oversold, updated_at)
     VALUES ($1, NULL, $2, 0, 0, $3)
     ON CONFLICT (product_id) DO UPDATE SET reserved = stock.reserved + excluded.reserved,
        updated_at = excluded.updated_at
     WHERE stock.on_hand IS NULL OR stock.on_hand - stock.reserved >= excluded.reserved";
/// A product's initial stock from the catalog (`$2` units), only when it has no row yet.
pub(crate) const SEED: &str = "INSERT INTO stock (product_id, on_hand, reserved, sold, oversold, updated_at)
     VALUES ($1, $2, 0, 0, 0, $3) ON CONFLICT (product_id) DO NOTHING";
/// Records reservation `$1` of items `$2` (JSON), expiring at `$3`, made at `$4`.
pub(crate) const INSERT_RESERVATION: &str = "INSERT INTO stock_reservations (reservation_id, session_id, items,
        state, expires_at, created_at, updated_at) VALUES ($1, NULL, $2, 'held', $3, $4, $4)";
/// Names reservation `$1`'s Checkout Session `$2`.
pub(crate) const SET_RESERVATION_SESSION: &str =
    "UPDATE stock_reservations SET session_id = $2 WHERE reservation_id = $1";
/// Moves reservation `$1` from state `$2` to `$3` at `$4`; 0 rows: it was not in `$2`.
pub(crate) const MOVE_RESERVATION: &str =
    "UPDATE stock_reservations SET state = $3, updated_at = $4 WHERE reservation_id = $1 AND state = $2";
/// Moves reservation `$1`, while it holds its units (`held`, or `awaiting` a delayed payment),
/// to `$2` at `$3`; 0 rows: it no longer holds them.
pub(crate) const MOVE_HOLDING: &str = "UPDATE stock_reservations SET state = $2, updated_at = $3
     WHERE reservation_id = $1 AND state IN ('held', 'awaiting')";
/// Gives back `$2` reserved units of `$1` (never below zero).
pub(crate) const UNRESERVE: &str = "UPDATE stock SET
        reserved = CASE WHEN reserved >= $2 THEN reserved - $2 ELSE 0 END, updated_at = $3
     WHERE product_id = $1";
/// Turns `$2` reserved units of `$1` into a sale: they leave the shelf (never below zero; a
/// shelf the owner emptied meanwhile counts the missing units as oversold).
pub(crate) const SELL_RESERVED: &str = "UPDATE stock SET
        reserved = CASE WHEN reserved >= $2 THEN reserved - $2 ELSE 0 END,
        on_hand = CASE WHEN on_hand IS NULL THEN NULL WHEN on_hand >= $2 THEN on_hand - $2 ELSE 0 END,
        oversold = oversold + CASE WHEN on_hand IS NULL OR on_hand >= $2 THEN 0 ELSE $2 - on_hand END,
        sold = sold + $2, updated_at = $3
     WHERE product_id = $1";
/// Sells `$2` units of `$1` that were not reserved (its reservation was released), if that many
/// are free; 0 rows: not enough.
pub(crate) const SELL_FREE: &str = "UPDATE stock SET
        on_hand = CASE WHEN on_hand IS NULL THEN NULL ELSE on_hand - $2 END, sold = sold + $2, updated_at = $3
     WHERE product_id = $1 AND (on_hand IS NULL OR on_hand - reserved >= $2)";
/// Sells `$2` units of `$1` when fewer are free: takes the free ones, counts the rest oversold.
pub(crate) const SELL_SHORT: &str = "UPDATE stock SET
        on_hand = CASE WHEN on_hand > reserved THEN reserved ELSE on_hand END,
        oversold = oversold + $2 - CASE WHEN on_hand > reserved THEN on_hand - reserved ELSE 0 END,
        sold = sold + $2, updated_at = $3
     WHERE product_id = $1";
/// Counts `$2` units of `$1` sold without a unit and refunded (nothing leaves the shelf).
pub(crate) const COUNT_REFUNDED: &str =
    "UPDATE stock SET oversold = oversold + $2, updated_at = $3 WHERE product_id = $1";
/// Sets `$1`'s units on hand to `$2` (null: unlimited) at `$3`.
pub(crate) const SET_STOCK: &str = "INSERT INTO stock (product_id, on_hand, reserved, sold, oversold, updated_at)
     VALUES ($1, $2, 0, 0, 0, $3)
     ON CONFLICT (product_id) DO UPDATE SET on_hand = excluded.on_hand, updated_at = excluded.updated_at";
/// Every product's stock: `product_id, on_hand ('' when unlimited), reserved, sold, oversold`.
pub(crate) const SELECT_STOCK: &str = "SELECT product_id, COALESCE(CAST(on_hand AS TEXT), ''), CAST(reserved AS TEXT),
        CAST(sold AS TEXT), CAST(oversold AS TEXT) FROM stock";
/// A reservation: `items, state, session_id ('' when not known), expires_at`.
pub(crate) const SELECT_RESERVATION: &str = "SELECT items, state, COALESCE(session_id, ''), CAST(expires_at AS TEXT)
     FROM stock_reservations WHERE reservation_id = $1";
/// Held reservations that expired at or before `$1`, and awaiting ones (a delayed payment)
/// that expired at or before `$3`; the least recently swept first, then the oldest; at most
/// `$2`: `reservation_id, session_id ('' when not known)`.
pub(crate) const SELECT_LAPSED: &str = "SELECT reservation_id, COALESCE(session_id, '') FROM stock_reservations
     WHERE (state = 'held' AND expires_at <= $1) OR (state = 'awaiting' AND expires_at <= $3)
     ORDER BY COALESCE(swept_at, 0), expires_at, reservation_id LIMIT $2";
/// Notes that the sweep looked at reservation `$1` at `$2`.
pub(crate) const MARK_SWEPT: &str = "UPDATE stock_reservations SET swept_at = $2 WHERE reservation_id = $1";

/// Unfinished `on_oversold` runs claimed at or before `$1` (their lease lapsed), at most `$2`:
/// their orders' session ids.
pub(crate) const SELECT_LAPSED_OVERSOLD: &str = "SELECT session_id FROM hook_runs
     WHERE event_id LIKE 'stock-oversold:%' AND done_at IS NULL AND claimed_at <= $1
     ORDER BY claimed_at, event_id LIMIT $2";

/// Forgets settled reservations (sold, released, oversold, refunded) last changed before `$1`:
/// a later event about one finds no reservation and changes nothing, as a settled one would.
pub(crate) const PRUNE_RESERVATIONS: &str = "DELETE FROM stock_reservations
     WHERE state NOT IN ('held', 'awaiting') AND updated_at < $1";

/// What a step's rows-affected count means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Runs; its count does not matter.
    Plain,
    /// 0 rows ends its group quietly (nothing to do: e.g. the reservation is not `held`).
    Guard,
    /// 0 rows fails its group: everything the group did is rolled back.
    Require,
    /// 0 rows runs the next step instead of skipping it (a fallback), and marks the group short.
    Try,
}

/// One statement: SQL, text parameters then integer ones (`None` is NULL).
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub sql: &'static str,
    pub texts: Vec<String>,
    pub ints: Vec<Option<i64>>,
    pub kind: Kind,
}

impl Step {
    fn new(kind: Kind, sql: &'static str, texts: &[&str], ints: &[Option<i64>]) -> Step {
        Step { sql, texts: texts.iter().map(|t| t.to_string()).collect(), ints: ints.to_vec(), kind }
    }
}

/// Steps that succeed or fail together (a savepoint).
#[derive(Debug, Clone, Default)]
pub(crate) struct Group(pub Vec<Step>);

/// What running a group did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupOutcome {
    /// Every step ran; `short` when a [`Kind::Try`] step fell back.
    Done { short: bool },
    /// A guard found nothing to do.
    Skipped,
    /// A [`Kind::Require`] step (its index) touched nothing: the group was rolled back.
    Failed(usize),
}

/// What a backend is asked to do next by a [`Plan`].
#[derive(Debug)]
pub(crate) enum Next<'a> {
    /// Run this statement; tell the plan the rows it affected.
    Exec(&'a Step),
    /// `SAVEPOINT stock` (a group starts).
    Savepoint,
    /// `ROLLBACK TO SAVEPOINT stock` (a group failed).
    Rollback,
    /// Every group ran: what each did.
    Done(Vec<GroupOutcome>),
}

/// Groups of steps run inside the caller's transaction: the logic both backends share (each
/// only runs what [`Plan::next`] asks, in a plain loop). The groups are alternatives: the first
/// that completes ends the plan (its guards make the others moot), so a common case costs one
/// statement per step it runs. A group with a [`Kind::Require`] step runs inside a savepoint
/// when `savepoints` is on; with it off, the caller rolls the whole transaction back when a group
/// failed (a plan standing alone).
pub(crate) struct Plan<'a> {
    groups: &'a [Group],
    savepoints: bool,
    group: usize,
    /// The next step; `None` while the group has not started.
    step: Option<usize>,
    outcome: GroupOutcome,
    out: Vec<GroupOutcome>,
    rolling_back: bool,
}

impl<'a> Plan<'a> {
    /// A plan for `groups`, with savepoints for groups that may fail or without.
    pub(crate) fn new(groups: &'a [Group], savepoints: bool) -> Plan<'a> {
        Plan {
            groups,
            savepoints,
            group: 0,
            step: None,
            outcome: GroupOutcome::Done { short: false },
            out: Vec::new(),
            rolling_back: false,
        }
    }

    /// What to do next, given the rows the last [`Next::Exec`] affected (`None` otherwise).
    pub(crate) fn next(&mut self, rows: Option<u64>) -> Next<'a> {
        if std::mem::take(&mut self.rolling_back) {
            return self.end_group();
        }
        let Some(group) = self.groups.get(self.group) else {
            return Next::Done(std::mem::take(&mut self.out));
        };
        let mut at = match self.step {
            None => {
                self.step = Some(0);
                if self.savepoints && group.0.iter().any(|s| s.kind == Kind::Require) {
                    return Next::Savepoint;
                }
                0
            }
            Some(at) => at,
        };
        if let Some(n) = rows {
            let step = &group.0[at];
            at += 1;
            match step.kind {
                Kind::Guard if n == 0 => {
                    self.outcome = GroupOutcome::Skipped;
                    return self.end_group();
                }
                Kind::Require if n == 0 => {
                    self.outcome = GroupOutcome::Failed(at - 1);
                    if self.savepoints {
                        self.rolling_back = true;
                        return Next::Rollback;
                    }
                    return self.end_group();
                }
                Kind::Try if n == 0 => self.outcome = GroupOutcome::Done { short: true },
                Kind::Try => at += 1, // its fallback is not needed
                _ => {}
            }
        }
        self.step = Some(at);
        match group.0.get(at) {
            Some(step) => Next::Exec(step),
            None => self.end_group(),
        }
    }

    /// Records the group's outcome and moves to the next group, or ends the plan after a group
    /// that completed.
    fn end_group(&mut self) -> Next<'a> {
        let outcome = std::mem::replace(&mut self.outcome, GroupOutcome::Done { short: false });
        self.out.push(outcome);
        self.group = if matches!(outcome, GroupOutcome::Done { .. }) { self.groups.len() } else { self.group + 1 };
        self.step = None;
        self.next(None)
    }
}

/// One product's units in a reservation.
pub type ReservedItem = (String, i64);

/// A reservation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Its id (the session's `metadata[reservation]`).
    pub id: String,
    /// `(product id, quantity)` per product.
    pub items: Vec<ReservedItem>,
    /// `held`, `awaiting` (its session completed, a delayed payment pending: still holding its
    /// units), `released`, `sold`, `oversold` (sold without every unit) or `refunded` (paid
    /// after its release with too few units left, and refunded by the rule).
    pub state: String,
    /// The Checkout Session, once Stripe created it.
    pub session_id: Option<String>,
    /// When its session expires (Unix seconds).
    pub expires_at: i64,
}

/// A product's stock as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StockLevel {
    /// The shop's product id.
    pub product: String,
    /// Units on hand (including reserved ones); `None`: unlimited.
    pub on_hand: Option<i64>,
    /// Units held by open checkouts.
    pub reserved: i64,
    /// Units sold in all.
    pub sold: i64,
    /// Units sold that were not there (a payment completed after its reservation was released).
    pub oversold: i64,
}

impl StockLevel {
    /// Units a new checkout can take now (`None`: unlimited).
    pub fn available(&self) -> Option<i64> {
        self.on_hand.map(|n| (n - self.reserved).max(0))
    }
}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoldOut {
    /// The product without enough units.
    pub product: String,
    /// Units a checkout could still take (0: sold out).
    pub available: i64,
}

/// What the fulfilment's transaction did with an order's reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleOutcome {
    /// Nothing (no reservation, or it was sold before).
    None,
    /// Its held units were sold.
    Sold,
    /// Paid after its release, and the units were still free: sold.
    SoldLate,
    /// Paid after its release with too few units left: sold anyway, the missing units counted
    /// oversold ([`OversoldRule::Fulfill`]).
    Oversold,
    /// Paid after its release with too few units left: nothing taken, to be refunded
    /// ([`OversoldRule::Refund`]).
    Refund,
    /// Its units went back (the session expired or its payment failed).
    Released,
}

/// The groups that turn reservation `id` (of `items`) into a sale, in the fulfilment's
/// transaction: held units are sold; units of a released reservation are sold if free, else
/// [`OversoldRule`] decides. Exactly one group can pass its guard.
pub(crate) fn sale_groups(id: &str, items: &[ReservedItem], rule: OversoldRule) -> Vec<Group> {
    let now = Some(now());
    let moved = |from: &str, to: &str, kind| Step::new(kind, MOVE_RESERVATION, &[id, from, to], &[now]);
    let per_item = |sql, kind| items.iter().map(move |(p, q)| Step::new(kind, sql, &[p], &[Some(*q), now]));
    let mut held = vec![Step::new(Kind::Guard, MOVE_HOLDING, &[id, "sold"], &[now])];
    held.extend(per_item(SELL_RESERVED, Kind::Plain));
    // All the units are free again: sold as if still held.
    let mut late = vec![moved("released", "sold", Kind::Guard)];
    late.extend(per_item(SELL_FREE, Kind::Require));
    let mut short = match rule {
        OversoldRule::Fulfill => vec![moved("released", "oversold", Kind::Guard)],
        OversoldRule::Refund => vec![moved("released", "refunded", Kind::Guard)],
    };
    match rule {
        OversoldRule::Fulfill => {
            for (p, q) in items {
                short.push(Step::new(Kind::Try, SELL_FREE, &[p], &[Some(*q), now]));
                short.push(Step::new(Kind::Plain, SELL_SHORT, &[p], &[Some(*q), now]));
            }
        }
        OversoldRule::Refund => short.extend(per_item(COUNT_REFUNDED, Kind::Plain)),
    }
    vec![Group(held), Group(late), Group(short)]
}

/// The groups an order's update runs on its reservation `r`: a fulfilled order sells it
/// ([`sale_groups`], plus, when its payment outran the release, the claim of `on_oversold`'s
/// run and for [`OversoldRule::Refund`] the fulfilment run closed unrun); an expired or failed
/// one releases it; any other state leaves it.
pub(crate) fn order_groups(order: &OrderUpdate, r: &Reservation, rule: OversoldRule) -> Vec<Group> {
    let sid = order.session_id.as_str();
    match order.state {
        OrderState::Fulfilled => {
            let mut groups = sale_groups(&r.id, &r.items, rule);
            let refunded = rule == OversoldRule::Refund;
            let calls = super::calls_json(&[HookCall::Oversold { refunded }]);
            let short = &mut groups[2].0;
            let now = Some(now());
            short.push(Step::new(Kind::Plain, super::INSERT_HOOK_RUN, &[&oversold_run(sid), sid, &calls], &[now]));
            if refunded {
                short.push(Step::new(Kind::Plain, super::FULFILLMENT_RUNS.finish, &[sid], &[now]));
            }
            groups
        }
        OrderState::Expired | OrderState::PaymentFailed => vec![release_group(&r.id, &r.items)],
        // Paid by a delayed method: its units stay reserved until the outcome, and the sweep
        // stops asking Stripe about it (its outcome's event, or the run's walk, settles it).
        OrderState::AwaitingPayment => {
            let moved = Step::new(Kind::Guard, MOVE_RESERVATION, &[&r.id, "held", "awaiting"], &[Some(now())]);
            vec![Group(vec![moved])]
        }
    }
}

/// The id of the `on_oversold` run of an order (a [`super::RunKey::Event`] run).
pub fn oversold_run(session_id: &str) -> String {
    format!("stock-oversold:{session_id}")
}

/// What [`order_groups`]' outcomes mean.
pub(crate) fn outcome_of(order: &OrderUpdate, outcomes: &[GroupOutcome]) -> SaleOutcome {
    let done = |i: usize| matches!(outcomes.get(i), Some(GroupOutcome::Done { .. }));
    match order.state {
        OrderState::Fulfilled if done(0) => SaleOutcome::Sold,
        OrderState::Fulfilled if done(1) => SaleOutcome::SoldLate,
        OrderState::Fulfilled if done(2) => match order.stock.as_ref().map(|s| s.rule) {
            Some(OversoldRule::Refund) => SaleOutcome::Refund,
            _ => SaleOutcome::Oversold,
        },
        OrderState::Expired | OrderState::PaymentFailed if done(0) => SaleOutcome::Released,
        _ => SaleOutcome::None,
    }
}

/// The group that releases reservation `id` (of `items`) once: its units go back.
fn release_group(id: &str, items: &[ReservedItem]) -> Group {
    let now = Some(now());
    let mut steps = vec![Step::new(Kind::Guard, MOVE_HOLDING, &[id, "released"], &[now])];
    steps.extend(items.iter().map(|(p, q)| Step::new(Kind::Plain, UNRESERVE, &[p], &[Some(*q), now])));
    Group(steps)
}

fn items_from_json(text: &str) -> Vec<ReservedItem> {
    serde_json::from_str(text).unwrap_or_default()
}

impl Store {
    /// In one transaction: seeds each product's initial stock (`seed`, from the catalog; only a
    /// product without a row), takes `items`' units if every product has enough free (one
    /// conditional upsert each; a product without a row gets an unlimited one), and records the
    /// reservation `id` expiring at `expires_at`. All or nothing: the first product short is
    /// the error. Rows are taken in product-id order.
    pub async fn reserve(
        &self,
        id: &str,
        items: &[ReservedItem],
        seed: &[ReservedItem],
        expires_at: i64,
    ) -> Result<Result<(), SoldOut>, StoreError> {
        // Every transaction on stock rows takes them in product-id order (the sale and the
        // release follow the recorded items, kept in this order), so carts [A, B] and [B, A]
        // never deadlock each other on Postgres.
        let (mut items, mut seed) = (items.to_vec(), seed.to_vec());
        items.sort();
        seed.sort();
        let (items, seed) = (&items[..], &seed[..]);
        let now = Some(now());
        let mut steps: Vec<Step> =
            seed.iter().map(|(p, n)| Step::new(Kind::Plain, SEED, &[p], &[Some(*n), now])).collect();
        let first = steps.len();
        steps.extend(items.iter().map(|(p, q)| Step::new(Kind::Require, RESERVE, &[p], &[Some(*q), now])));
        let json = serde_json::to_string(items).map_err(|e| StoreError::new(e.to_string()))?;
        steps.push(Step::new(Kind::Require, INSERT_RESERVATION, &[id, &json], &[Some(expires_at), now]));
        match self.run_groups(vec![Group(steps)]).await?.first() {
            Some(GroupOutcome::Failed(i)) if *i >= first && *i < first + items.len() => {
                let product = items[*i - first].0.clone();
                let available = self.stock_levels().await?.into_iter().find(|s| s.product == product);
                let available = available.and_then(|s| s.available()).unwrap_or(0);
                Ok(Err(SoldOut { product, available }))
            }
            Some(GroupOutcome::Failed(_)) => Err(StoreError::new("reservation not recorded")),
            _ => Ok(Ok(())),
        }
    }

    /// Names the Checkout Session a reservation belongs to.
    pub async fn set_reservation_session(&self, id: &str, session_id: &str) -> Result<(), StoreError> {
        self.exec(SET_RESERVATION_SESSION, &[id, session_id], &[]).await.map(drop)
    }

    /// Releases a held reservation: its units go back, once (false: it was not held).
    pub async fn release(&self, id: &str) -> Result<bool, StoreError> {
        let Some(r) = self.reservation(id).await? else { return Ok(false) };
        let out = self.run_groups(vec![release_group(id, &r.items)]).await?;
        Ok(matches!(out.first(), Some(GroupOutcome::Done { .. })))
    }

    /// A reservation, if recorded.
    pub async fn reservation(&self, id: &str) -> Result<Option<Reservation>, StoreError> {
        let row = self.row_texts(SELECT_RESERVATION, id, &[]).await?;
        Ok(row.and_then(|r| {
            let [items, state, session_id, expires_at] = <[String; 4]>::try_from(r).ok()?;
            Some(Reservation {
                id: id.to_string(),
                items: items_from_json(&items),
                state,
                session_id: Some(session_id).filter(|s| !s.is_empty()),
                expires_at: expires_at.parse().ok()?,
            })
        }))
    }

    /// Held reservations whose session expired at or before `before`, oldest first:
    /// `(reservation id, session id if known)`.
    pub async fn lapsed_reservations(
        &self,
        before: i64,
        awaiting_before: i64,
        limit: u32,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let rows = self.rows_texts(SELECT_LAPSED, &[], &[before, i64::from(limit), awaiting_before]).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let [id, session] = <[String; 2]>::try_from(r).ok()?;
                Some((id, Some(session).filter(|s| !s.is_empty())))
            })
            .collect())
    }

    /// Notes that the sweep looked at reservation `id` now (it then comes after the others).
    pub async fn mark_swept(&self, id: &str) -> Result<(), StoreError> {
        self.exec(MARK_SWEPT, &[id], &[now()]).await.map(drop)
    }

    /// Orders whose `on_oversold` run (a refund for want of stock, then the hook) was left
    /// unfinished `lease_secs` or more ago: the reconciliation run takes them over.
    pub async fn lapsed_oversold_runs(&self, lease_secs: i64, limit: u32) -> Result<Vec<String>, StoreError> {
        let rows = self.rows_texts(SELECT_LAPSED_OVERSOLD, &[], &[now() - lease_secs, i64::from(limit)]).await?;
        Ok(rows.into_iter().filter_map(|mut r| r.pop()).collect())
    }

    /// Forgets reservations settled before `before` (Unix seconds); how many.
    pub async fn prune_reservations(&self, before: i64) -> Result<u64, StoreError> {
        self.exec(PRUNE_RESERVATIONS, &[], &[before]).await
    }

    /// Sets a product's units on hand (`None`: unlimited); reserved and sold units are kept.
    pub async fn set_stock(&self, product: &str, on_hand: Option<i64>) -> Result<(), StoreError> {
        let step = Step::new(Kind::Plain, SET_STOCK, &[product], &[on_hand, Some(now())]);
        self.run_groups(vec![Group(vec![step])]).await.map(drop)
    }

    /// Every product with a stock row.
    pub async fn stock_levels(&self) -> Result<Vec<StockLevel>, StoreError> {
        let rows = self.rows_texts(SELECT_STOCK, &[], &[]).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let [product, on_hand, reserved, sold, oversold] = <[String; 5]>::try_from(r).ok()?;
                Some(StockLevel {
                    product,
                    on_hand: on_hand.parse().ok(),
                    reserved: reserved.parse().ok()?,
                    sold: sold.parse().ok()?,
                    oversold: oversold.parse().ok()?,
                })
            })
            .collect())
    }

    /// Runs groups of steps in one transaction (see [`run_sync`]).
    pub(crate) async fn run_groups(&self, groups: Vec<Group>) -> Result<Vec<GroupOutcome>, StoreError> {
        match self {
            Store::Sqlite(s) => s.run_groups(groups).await,
            Store::Postgres(s) => s.run_groups(groups).await,
        }
    }
}
