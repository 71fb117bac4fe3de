//! Limited stock, as Stripe's guide "Managing limited inventory with Checkout" describes it:
//! a checkout reserves its cart's units before its session is created ([`reserve`]; the
//! session expires [`CHECKOUT_EXPIRY_SECS`] ahead), the reservation becomes a sale when the
//! order is fulfilled and goes back when the session expires or its payment fails (both in
//! the order's own transaction: see [`crate::store::Store::apply_sale`]), and the reconciliation run's
//! sweep ([`crate::reconcile::sweep_stock`]) asks Stripe about reservations whose session was
//! never heard of after it expired.
//!
//! Stock is keyed by the shop's product id. A product without a stock row, or with a row
//! whose `on_hand` is null, is unlimited; `catalog.json`'s `stock` seeds a product's row the
//! first time a checkout names it, and only when it has none (after that, `POST /api/stock`
//! rules). What `/api/products` tells shoppers is [`Availability`]: exact only for small
//! numbers.

use crate::app::App;
use crate::cart::Cart;
use crate::hooks::{self, Run, RunKey};
use crate::store::{ReservedItem, SaleOutcome, SoldOut, StockLevel, StoreError};
use crate::stripe::{Form, StripeError};
use serde::Serialize;

/// How far ahead a checkout's session expires: Stripe's minimum (30 minutes) plus a minute
/// for the clocks and the request in flight (Stripe refuses less than 30 minutes).
pub const CHECKOUT_EXPIRY_SECS: i64 = 31 * 60;

/// How long after its session's `expires_at` [`sweep`] looks at a reservation it has heard
/// nothing about (the `checkout.session.expired` event's usual delay, with room).
pub const SWEEP_MARGIN_SECS: i64 = 5 * 60;

/// How long after its session's `expires_at` the sweep also asks Stripe about a reservation
/// waiting on a delayed payment (`awaiting`) whose outcome event never came: bank debits
/// settle within days.
pub const AWAITING_SWEEP_AFTER_SECS: i64 = 3 * 86_400;

/// Reservations one sweep looks at, at most (each may cost one Stripe call).
pub const SWEEP_PER_RUN: u32 = 20;

/// How long a settled reservation is kept (Stripe lists events for 30 days; one about a
/// forgotten reservation changes nothing).
pub const KEEP_SETTLED_SECS: i64 = 30 * 86_400;

/// At or below this many units left, shoppers are told the exact number ("Only 3 left").
pub const EXACT_BELOW: i64 = 5;

/// A checkout's reservation, held until its session is paid, expires or fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The reservation id, sent as the session's `metadata[reservation]`.
    pub id: String,
    /// When the session expires (`expires_at`, Unix seconds).
    pub expires_at: i64,
}

/// Why a checkout could not reserve its cart.
#[derive(Debug)]
pub enum StockError {
    /// A product has fewer units free than the cart asks (409, naming it).
    SoldOut {
        /// The product's name, for the message.
        name: String,
        /// Units still free (0: sold out).
        available: i64,
    },
    /// The store failed.
    Store(StoreError),
}

impl StockError {
    /// The shopper's message: `"NAME is sold out"`, `"only N left of NAME"` when N is at most
    /// [`EXACT_BELOW`] (as `/api/products` says), else `"not enough left of NAME"` (exact
    /// stock is not disclosed).
    pub fn message(&self) -> String {
        match self {
            StockError::SoldOut { name, available: 0 } => format!("{name} is sold out"),
            StockError::SoldOut { name, available } if *available <= EXACT_BELOW => {
                format!("only {available} left of {name}")
            }
            StockError::SoldOut { name, .. } => format!("not enough left of {name}"),
            StockError::Store(e) => e.to_string(),
        }
    }
}

/// Reserves a cart's units, all or nothing, in one transaction of conditional statements
/// (see [`crate::store::Store::reserve`]).
pub async fn reserve(app: &App, cart: &Cart) -> Result<Held, StockError> {
    let items: Vec<ReservedItem> = cart.lines.iter().map(|l| (l.product.id.clone(), i64::from(l.quantity))).collect();
    let seed: Vec<ReservedItem> =
        cart.lines.iter().filter_map(|l| Some((l.product.id.clone(), i64::from(l.product.stock?)))).collect();
    let held = Held {
        id: format!("rsv_{}", crate::http::random_hex(16)),
        expires_at: crate::clock::now() + CHECKOUT_EXPIRY_SECS,
    };
    match app.store.reserve(&held.id, &items, &seed, held.expires_at).await.map_err(StockError::Store)? {
        Ok(()) => Ok(held),
        Err(SoldOut { product, available }) => {
            let name = cart.lines.iter().find(|l| l.product.id == product).map_or(product, |l| l.product.name.clone());
            Err(StockError::SoldOut { name, available })
        }
    }
}

/// Releases a reservation at once (its session could not be created); logged, never fails the
/// caller: a reservation left held is released by the reconciliation run's sweep after it expires.
pub async fn release_now(app: &App, held: &Held) {
    if let Err(e) = app.store.release(&held.id).await {
        crate::log::warn("reservation not released", &[("reservation", &held.id), ("error", &e.to_string())]);
    }
}

/// What shoppers are told of a product's stock in `/api/products`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Availability {
    /// The exact units left, when at most [`EXACT_BELOW`] (0: sold out).
    Exact(i64),
    /// More than [`EXACT_BELOW`] left: `"in_stock"`.
    InStock(InStock),
}

/// The word `"in_stock"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InStock {
    /// More than [`EXACT_BELOW`] left.
    InStock,
}

impl Availability {
    /// What a stock level tells shoppers; `None` when unlimited.
    pub fn of(level: Option<&StockLevel>, seed: Option<u32>) -> Option<Availability> {
        let units = match level {
            Some(level) => level.available()?,
            None => i64::from(seed?),
        };
        Some(if units <= EXACT_BELOW { Availability::Exact(units) } else { Availability::InStock(InStock::InStock) })
    }
}

/// After an order's transaction: an order paid after its reservation was released and whose
/// units were gone runs its `on_oversold` run — for [`crate::config::OversoldRule::Refund`],
/// the refund first. Other outcomes have nothing to run.
pub async fn after_sale(app: &App, session_id: &str, outcome: SaleOutcome) -> Run {
    match outcome {
        SaleOutcome::Oversold | SaleOutcome::Refund => {
            crate::log::warn("order paid after its stock reservation was released", &[("session_id", session_id)]);
            run_oversold(app, session_id, outcome == SaleOutcome::Refund).await
        }
        _ => Run::Done,
    }
}

/// Takes over an `on_oversold` run left unfinished (its refund or hook failed, or its instance
/// died) once its lease lapsed, as [`hooks::resume`] does for the other runs; a run still
/// leased to another caller is [`Run::Held`] (a webhook answers 5xx and Stripe retries).
pub async fn resume(app: &App, session_id: &str) -> Run {
    let key_id = crate::store::oversold_run(session_id);
    let key = RunKey::Event(&key_id);
    match app.store.reclaim_run(key, crate::clock::now(), hooks::RUN_LEASE_SECS).await {
        Ok(Some(claimed)) => {
            let refund = claimed.calls.iter().any(|c| matches!(c, hooks::HookCall::Oversold { refunded: true }));
            run_oversold(app, session_id, refund).await
        }
        Ok(None) => match app.store.run_pending(key).await {
            Ok(true) => Run::Held,
            Ok(false) => Run::Done,
            Err(e) => Run::failed(&e),
        },
        Err(e) => Run::failed(&e),
    }
}

/// Runs a claimed `on_oversold` run: refunds the order first when the rule says so.
async fn run_oversold(app: &App, session_id: &str, refund: bool) -> Run {
    let key_id = crate::store::oversold_run(session_id);
    if refund && let Err(e) = refund_order(app, session_id).await {
        crate::log::warn("oversold order not refunded", &[("session_id", session_id), ("error", &e)]);
        return Run::Failed;
    }
    let calls = [hooks::HookCall::Oversold { refunded: refund }];
    hooks::run_claimed(app, RunKey::Event(&key_id), session_id, &calls).await
}

/// Refunds an order's payment in full (Stripe's idempotency key is derived from the order, so
/// a retry refunds once).
async fn refund_order(app: &App, session_id: &str) -> Result<(), String> {
    let order = app.store.order(session_id).await.map_err(|e| e.to_string())?.ok_or("order not recorded")?;
    let Some(pi) = order.payment_intent else {
        // A free order (a 100% discount) has no payment to refund.
        return if order.amount_total == Some(0) { Ok(()) } else { Err("order without a PaymentIntent".into()) };
    };
    let mut form = Form::new();
    form.push("payment_intent", pi.as_str())
        .push("reason", "requested_by_customer")
        .push("metadata[shop]", "stock-oversold");
    let key = format!("stock-oversold-refund-{session_id}");
    let refunded: Result<serde_json::Value, StripeError> = app.stripe.post("/v1/refunds", &form, &key).await;
    match refunded {
        Ok(_) => Ok(()),
        // Refunded already (this run's earlier attempt, after Stripe forgot its idempotency key
        // at 24 h, or the owner): the refund this run owes exists, so the hook may run.
        Err(StripeError::Api { code: Some(code), .. }) if code == "charge_already_refunded" => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// A product's stock for the owner (`POST /api/stock`'s answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StockState {
    /// The product id.
    pub product: String,
    /// Units on hand (reserved ones included); `null`: unlimited.
    pub stock: Option<i64>,
    /// Units held by open checkouts.
    pub reserved: i64,
    /// Units a new checkout can take (`null`: unlimited).
    pub available: Option<i64>,
    /// Units sold in all.
    pub sold: i64,
    /// Units paid for after their reservation was released when none were left.
    pub oversold: i64,
}

/// Sets a product's units on hand (`None`: unlimited) and answers its stock.
pub async fn set(app: &App, product: &str, stock: Option<i64>) -> Result<StockState, StoreError> {
    app.store.set_stock(product, stock).await?;
    let level = app.store.stock_levels().await?.into_iter().find(|l| l.product == product);
    let level = level.ok_or_else(|| StoreError::new("stock row missing after it was set"))?;
    Ok(StockState {
        available: level.available(),
        product: level.product,
        stock: level.on_hand,
        reserved: level.reserved,
        sold: level.sold,
        oversold: level.oversold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_tells_the_exact_count_only_when_few_are_left() {
        let refusal = |available| StockError::SoldOut { name: "Mug".into(), available }.message();
        assert_eq!(refusal(0), "Mug is sold out");
        assert_eq!(refusal(EXACT_BELOW), format!("only {EXACT_BELOW} left of Mug"));
        assert_eq!(refusal(EXACT_BELOW + 1), "not enough left of Mug", "as /api/products: no exact count");
        assert_eq!(refusal(998), "not enough left of Mug");
    }
}
