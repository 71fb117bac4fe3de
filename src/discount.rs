//! Promotion codes that cannot be enumerated.
//!
//! The browser submits a code; the server looks it up on Stripe and decides
//! whether it applies to this cart. A code that does not apply — unknown,
//! malformed, expired, exhausted, restricted, or Stripe unreachable — gives
//! exactly the answer of no code at all (the endpoint, `routes::apply_discount`, also pads
//! every answer to the same floor so timing tells nothing).

use crate::app::App;
use crate::cart::Cart;
use crate::ratelimit::{Guess, Limited};
use crate::stripe::Form;
use crate::stripe::types::{Expandable, List, PromotionCode};
use std::net::IpAddr;

/// Longest code looked up (Stripe's codes are short; longer input never applies).
pub const MAX_CODE_LEN: usize = 64;

/// A discount the server decided applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedDiscount {
    /// `promo_...` sent as `discounts[0][promotion_code]`.
    pub promotion_code: String,
    /// Amount off the subtotal, minor units.
    pub amount: i64,
}

/// Why a promotion code does not apply (logged only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotApplied {
    /// Inactive code.
    Inactive,
    /// Past `expires_at`.
    Expired,
    /// `max_redemptions` reached.
    Exhausted,
    /// Limited to a customer, first-time buyers, per-currency rules or products.
    Restricted,
    /// Below `minimum_amount`, or the minimum is in another currency.
    BelowMinimum,
    /// The coupon is invalid, past `redeem_by`, or exhausted.
    CouponInvalid,
    /// `amount_off` in another currency, or no usable amount.
    WrongCurrency,
    /// The coupon was not expanded (cannot check it).
    Unchecked,
}

/// Trims a code and checks its length and charset; `None` ⇒ never applies.
pub fn normalize(raw: &str) -> Option<&str> {
    let code = raw.trim();
    let ok = !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(code)
}

/// Decides whether `promo` applies to `cart` at time `now`, and for how much.
pub fn evaluate(promo: &PromotionCode, cart: &Cart, now: i64) -> Result<i64, NotApplied> {
    if !promo.active {
        return Err(NotApplied::Inactive);
    }
    if promo.expires_at.is_some_and(|t| t <= now) {
        return Err(NotApplied::Expired);
    }
    if promo.max_redemptions.is_some_and(|m| promo.times_redeemed >= m) {
        return Err(NotApplied::Exhausted);
    }
    let r = &promo.restrictions;
    let present = |v: &Option<serde_json::Value>| v.as_ref().is_some_and(|v| !v.is_null());
    if present(&promo.customer)
        || present(&promo.customer_account)
        || r.first_time_transaction
        || present(&r.currency_options)
    {
        return Err(NotApplied::Restricted);
    }
    if let Some(min) = r.minimum_amount
        && (r.minimum_amount_currency.as_deref() != Some(cart.currency.as_str()) || cart.subtotal < min)
    {
        return Err(NotApplied::BelowMinimum);
    }
    let Some(Expandable::Object(coupon)) = &promo.promotion.coupon else {
        return Err(NotApplied::Unchecked);
    };
    if !coupon.valid
        || coupon.redeem_by.is_some_and(|t| t <= now)
        || coupon.max_redemptions.is_some_and(|m| coupon.times_redeemed >= m)
    {
        return Err(NotApplied::CouponInvalid);
    }
    // `applies_to` is includable (we expand it): a product restriction cannot be checked
    // against a whole cart here, so such a coupon does not apply.
    let restricted_products = coupon
        .applies_to
        .as_ref()
        .and_then(|a| a.get("products"))
        .and_then(|p| p.as_array())
        .is_some_and(|p| !p.is_empty());
    if restricted_products {
        return Err(NotApplied::Restricted);
    }
    let amount = match (coupon.percent_off, coupon.amount_off) {
        (Some(p), None) if p > 0.0 && p <= 100.0 => (cart.subtotal as f64 * p / 100.0).round() as i64,
        (None, Some(a)) if a > 0 && coupon.currency.as_deref() == Some(cart.currency.as_str()) => a.min(cart.subtotal),
        _ => return Err(NotApplied::WrongCurrency),
    };
    Ok(amount.clamp(0, cart.subtotal))
}

/// Looks `raw` up on Stripe and decides; every failure is `None` (logged).
pub async fn resolve(app: &App, cart: &Cart, raw: &str) -> Option<AppliedDiscount> {
    let code = normalize(raw)?;
    let mut q = Form::new();
    q.push("code", code)
        .push("active", "true")
        .push("limit", "10")
        .push("expand[]", "data.promotion.coupon")
        .push("expand[]", "data.promotion.coupon.applies_to");
    let list: List<PromotionCode> = match app.stripe.get("/v1/promotion_codes", &q).await {
        Ok(list) => list,
        Err(e) => {
            crate::log::warn("promotion code look-up failed", &[("error", &e.to_string())]);
            return None;
        }
    };
    let now = crate::clock::now();
    for promo in list.data.iter().filter(|p| p.code.eq_ignore_ascii_case(code)) {
        match evaluate(promo, cart, now) {
            Ok(amount) => {
                return Some(AppliedDiscount { promotion_code: promo.id.clone(), amount });
            }
            Err(why) => {
                crate::log::info(
                    "promotion code not applied",
                    &[("promotion_code", &promo.id), ("why", &format!("{why:?}"))],
                );
            }
        }
    }
    None
}

/// Counts `raw` as a promotion-code guess from `ip` against
/// `RATE_LIMIT_APPLY_DISCOUNT`: only a code not tried before in the window
/// counts (see [`crate::ratelimit::Limiter::check_guess`]; the store keeps a
/// keyed hash, never the code). A malformed code never reaches Stripe, so it
/// is no guess. [`Guess::Uncounted`]: the shared counter could not count it, and the caller
/// treats the code exactly as one that does not apply.
pub async fn count_guess(app: &App, ip: Option<IpAddr>, raw: &str) -> Result<Guess, Limited> {
    let Some(code) = normalize(raw) else { return Ok(Guess::Admitted) };
    let key = app.config.secret_key.expose().as_bytes();
    app.limiter.check_guess(&app.store, ip, code, key, app.config.apply_discount_limit).await
}
