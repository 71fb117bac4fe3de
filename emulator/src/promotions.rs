//! Promotion codes and coupons: the rules Stripe applies when a code is redeemed on a
//! Checkout Session, how a coupon's discount is spread over the lines, and the
//! `GET /v1/promotion_codes[/{id}]` and `GET /v1/coupons/{id}` answers.

use crate::checkout::Line;
use crate::error::ApiError;
use crate::form::as_list;
use crate::money::fmt_money;
use crate::params::{bool_param, check_keys, expands, only_params, paginate, str_at};
use crate::state::{State, now};
use serde_json::{Value, json};

/// The discount a session was created with: its promotion code and coupon ids.
#[derive(Default)]
pub(crate) struct Applied {
    pub promo: Option<String>,
    pub coupon: Option<String>,
}

/// Step of session creation: reads `discounts[0][promotion_code|coupon]`, checks every rule
/// and spreads the discount over `lines`.
pub(crate) fn apply_discounts(
    st: &State,
    params: &Value,
    allow_promo: Option<bool>,
    currency: &str,
    email: Option<&str>,
    lines: &mut [Line],
) -> Result<Applied, ApiError> {
    let Some(d) = params.get("discounts") else {
        return Ok(Applied::default());
    };
    if allow_promo.is_some() {
        return Err(ApiError::exclusive("discounts", "allow_promotion_codes", "discounts"));
    }
    let dl = match d {
        Value::String(s) if s.is_empty() => vec![],
        _ => as_list(d).ok_or_else(|| ApiError::invalid("discounts", "Invalid array"))?,
    };
    if dl.len() > 1 {
        return Err(ApiError::invalid("discounts", "You may only specify one discount."));
    }
    let Some((i, dv)) = dl.first() else {
        return Ok(Applied::default());
    };
    let subtotal: i64 = lines.iter().map(|l| l.subtotal).sum();
    let p = format!("discounts[{i}]");
    let o = dv.as_object().ok_or_else(|| ApiError::invalid(&p, "Invalid object"))?;
    check_keys(o, &["promotion_code", "coupon"], &p)?;
    let mut applied = Applied::default();
    let (coupon, param) = match (str_at(dv, "promotion_code", &p)?, str_at(dv, "coupon", &p)?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::exclusive(&format!("{p}[coupon]"), "coupon", "promotion_code"));
        }
        (None, None) => return Err(ApiError::missing(&format!("{p}[promotion_code]"))),
        (Some(pc), None) => {
            let pp = format!("{p}[promotion_code]");
            let promo = st
                .promos
                .iter()
                .find(|x| x["id"] == pc)
                .ok_or_else(|| ApiError::no_such(400, &pp, "promotion code", pc))?;
            check_promo(st, promo, currency, subtotal, email).map_err(|m| ApiError::invalid(&pp, m))?;
            applied.promo = Some(pc.to_string());
            (promo["promotion"]["coupon"].as_str().unwrap_or_default().to_string(), pp)
        }
        (None, Some(c)) => {
            let cp = format!("{p}[coupon]");
            if !st.coupons.contains_key(c) {
                return Err(ApiError::no_such(400, &cp, "coupon", c));
            }
            (c.to_string(), cp)
        }
    };
    let cobj = st.coupons.get(&coupon).ok_or_else(|| ApiError::no_such(400, &param, "coupon", &coupon))?;
    check_coupon(cobj, currency).map_err(|m| ApiError::invalid(&param, m))?;
    apply_coupon(cobj, lines).map_err(|m| ApiError::invalid(&param, m))?;
    applied.coupon = Some(coupon);
    Ok(applied)
}

/// Checks the promotion-code rules; `Err` carries the message.
fn check_promo(st: &State, promo: &Value, currency: &str, subtotal: i64, email: Option<&str>) -> Result<(), String> {
    let code = promo["code"].as_str().unwrap_or_default();
    if promo["active"] != json!(true) {
        return Err(format!("The promotion code '{code}' is inactive."));
    }
    if promo["expires_at"].as_i64().is_some_and(|t| t <= now()) {
        return Err(format!("The promotion code '{code}' has expired."));
    }
    if let Some(m) = promo["max_redemptions"].as_i64()
        && promo["times_redeemed"].as_i64().unwrap_or(0) >= m
    {
        return Err(format!("The promotion code '{code}' has reached its maximum number of redemptions."));
    }
    if !promo["customer"].is_null() {
        return Err(format!("The promotion code '{code}' is restricted to a specific customer."));
    }
    let r = &promo["restrictions"];
    if let Some(min) = r["minimum_amount"].as_i64() {
        let mc = r["minimum_amount_currency"].as_str().unwrap_or("usd");
        if mc != currency {
            return Err(format!("The promotion code '{code}' only applies to purchases in {}.", mc.to_uppercase()));
        }
        if subtotal < min {
            return Err(format!("The promotion code '{code}' requires a minimum purchase of {}.", fmt_money(min, mc)));
        }
    }
    if r["first_time_transaction"] == json!(true) {
        match email {
            Some(e) if st.paid_emails.contains(&e.to_ascii_lowercase()) => {
                return Err(format!("The promotion code '{code}' is only valid for first-time customers."));
            }
            Some(_) => {}
            None => {
                return Err(format!(
                    "The promotion code '{code}' is only valid for first-time customers; pass customer_email so it can be checked."
                ));
            }
        }
    }
    Ok(())
}

/// Checks the coupon's own rules; `Err` carries the message.
fn check_coupon(c: &Value, currency: &str) -> Result<(), String> {
    let id = c["id"].as_str().unwrap_or_default();
    if c["valid"] != json!(true) {
        return Err(format!("The coupon '{id}' is no longer valid."));
    }
    if c["redeem_by"].as_i64().is_some_and(|t| t <= now()) {
        return Err(format!("The coupon '{id}' has expired."));
    }
    if let Some(m) = c["max_redemptions"].as_i64()
        && c["times_redeemed"].as_i64().unwrap_or(0) >= m
    {
        return Err(format!("The coupon '{id}' has reached its maximum number of redemptions."));
    }
    if c["amount_off"].is_i64() && c["currency"].as_str() != Some(currency) {
        return Err(format!(
            "The coupon '{id}' is in {} and cannot be applied to a {} purchase.",
            c["currency"].as_str().unwrap_or("?").to_uppercase(),
            currency.to_uppercase()
        ));
    }
    Ok(())
}

/// Spreads the coupon's discount over the applicable lines.
fn apply_coupon(c: &Value, lines: &mut [Line]) -> Result<(), String> {
    let products: Option<Vec<String>> =
        c["applies_to"]["products"].as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect());
    let applies = |l: &Line| products.as_ref().is_none_or(|p| p.contains(&l.product));
    let base: i64 = lines.iter().filter(|l| applies(l)).map(|l| l.subtotal).sum();
    if !lines.iter().any(applies) {
        return Err(format!(
            "The coupon '{}' does not apply to any product in this Checkout Session.",
            c["id"].as_str().unwrap_or_default()
        ));
    }
    let total = if let Some(a) = c["amount_off"].as_i64() {
        a.min(base)
    } else {
        let pct = c["percent_off"].as_f64().unwrap_or(0.0);
        ((base as f64) * pct / 100.0).round() as i64
    };
    if base == 0 || total == 0 {
        return Ok(());
    }
    let mut left = total;
    let idx: Vec<usize> = (0..lines.len()).filter(|&i| applies(&lines[i])).collect();
    for (n, &i) in idx.iter().enumerate() {
        let share =
            if n + 1 == idx.len() { left } else { (total as i128 * lines[i].subtotal as i128 / base as i128) as i64 };
        let share = share.min(lines[i].subtotal).min(left);
        lines[i].discount = share;
        left -= share;
    }
    Ok(())
}

/// Counts one redemption of the session's promotion code and coupon (on completion).
pub(crate) fn redeem(st: &mut State, promo: Option<&str>, coupon: Option<&str>) {
    if let Some(p) = promo
        && let Some(x) = st.promos.iter_mut().find(|x| x["id"] == p)
    {
        x["times_redeemed"] = json!(x["times_redeemed"].as_i64().unwrap_or(0) + 1);
    }
    if let Some(c) = coupon.and_then(|c| st.coupons.get_mut(c)) {
        c["times_redeemed"] = json!(c["times_redeemed"].as_i64().unwrap_or(0) + 1);
    }
}

/// Promotion code JSON with live counters; coupon expanded if asked, and its
/// includable `applies_to` only when `with_applies_to` (as Stripe does).
pub(crate) fn render_promo(st: &State, p: &Value, expand_coupon: bool, with_applies_to: bool) -> Value {
    let mut p = p.clone();
    if expand_coupon && let Some(c) = p["promotion"]["coupon"].as_str().and_then(|c| st.coupons.get(c)) {
        let mut c = c.clone();
        if !with_applies_to && let Some(obj) = c.as_object_mut() {
            obj.remove("applies_to");
        }
        p["promotion"]["coupon"] = c;
    }
    p
}

/// `GET /v1/promotion_codes`: `code` (case-insensitive), `active`, `coupon`, cursors.
pub(crate) fn list(st: &State, pairs: &[(String, String)], params: &Value) -> Result<Value, ApiError> {
    only_params(
        pairs,
        &["code", "active", "coupon", "customer", "limit", "expand", "starting_after", "ending_before", "created"],
    )?;
    let ex = expands(params, &["data.promotion.coupon", "data.promotion.coupon.applies_to"])?;
    // Like Stripe, a coupon's `applies_to` is includable: present only when expanded.
    let with_applies_to = ex.iter().any(|e| e == "data.promotion.coupon.applies_to");
    let active = bool_param(params, "active")?;
    let code = params.get("code").and_then(Value::as_str);
    let coupon = params.get("coupon").and_then(Value::as_str);
    let items: Vec<Value> = st
        .promos
        .iter()
        .filter(|p| code.is_none_or(|c| p["code"].as_str().is_some_and(|pc| pc.eq_ignore_ascii_case(c))))
        .filter(|p| active.is_none_or(|a| p["active"] == a))
        .filter(|p| coupon.is_none_or(|c| p["promotion"]["coupon"] == c))
        .map(|p| render_promo(st, p, !ex.is_empty(), with_applies_to))
        .collect();
    paginate(items, params, "/v1/promotion_codes")
}

/// `GET /v1/promotion_codes/{id}` (`expand[]=promotion.coupon`).
pub(crate) fn retrieve(st: &State, id: &str, pairs: &[(String, String)], params: &Value) -> Result<Value, ApiError> {
    only_params(pairs, &["expand"])?;
    let ex = expands(params, &["promotion.coupon"])?;
    let p =
        st.promos.iter().find(|p| p["id"] == id).ok_or_else(|| ApiError::no_such(404, "id", "promotion_code", id))?;
    Ok(render_promo(st, p, !ex.is_empty(), true))
}
