//! Shipping and Stripe Tax on a Checkout Session: `shipping_address_collection`,
//! `shipping_options[i][shipping_rate_data]` (each stored as a shipping rate, `shr_...`) and
//! `automatic_tax[enabled]` at creation; the chosen rate, the collected name and address and
//! the tax once the shopper pays; `expand[]=shipping_cost.shipping_rate` on retrieval.
//!
//! The emulator's Stripe Tax charges [`TAX_RATE_PERCENT`] on every line (after discounts) and
//! on shipping, added on top for `exclusive` prices and taken out of them for `inclusive` ones,
//! so totals add up the way Stripe's do: `amount_subtotal − amount_discount + amount_shipping
//! + amount_tax = amount_total` (exclusive).

use crate::checkout::CheckoutInput;
use crate::error::ApiError;
use crate::form::as_list;
use crate::params::{bool_param, check_keys, parse_int, str_at};
use crate::state::{Session, State, now, rand_id};
use serde_json::{Value, json};

/// The emulator's tax rate, in percent.
pub(crate) const TAX_RATE_PERCENT: i64 = 10;

/// Most `shipping_options` one session takes (Stripe's limit).
const MAX_SHIPPING_OPTIONS: usize = 5;

/// What creation asked for.
pub(crate) struct Shipping {
    /// `shipping_address_collection[allowed_countries]`, when an address is collected.
    pub allowed_countries: Option<Vec<String>>,
    /// The offered rates: (`shr_...`, amount).
    pub options: Vec<(String, i64)>,
    /// `automatic_tax[enabled]`.
    pub automatic_tax: bool,
}

/// Step of `POST /v1/checkout/sessions`: the shipping and tax parameters, each offered rate
/// stored as a shipping rate object.
pub(crate) fn parse(st: &mut State, params: &Value, currency: &str) -> Result<Shipping, ApiError> {
    let allowed_countries = match params.get("shipping_address_collection") {
        None => None,
        Some(sac) => {
            let p = "shipping_address_collection";
            let obj = sac.as_object().ok_or_else(|| ApiError::invalid(p, "Invalid object"))?;
            check_keys(obj, &["allowed_countries"], p)?;
            let cp = format!("{p}[allowed_countries]");
            let list = obj.get("allowed_countries").and_then(as_list).ok_or_else(|| ApiError::missing(&cp))?;
            let countries: Vec<String> =
                list.iter().filter_map(|(_, v)| v.as_str()).filter(|c| !c.is_empty()).map(String::from).collect();
            if countries.is_empty() {
                return Err(ApiError::missing(&cp));
            }
            Some(countries)
        }
    };
    let mut options = Vec::new();
    if let Some(so) = params.get("shipping_options") {
        let list = as_list(so).ok_or_else(|| ApiError::invalid("shipping_options", "Invalid array"))?;
        if list.len() > MAX_SHIPPING_OPTIONS {
            return Err(ApiError::invalid("shipping_options", "You can pass at most 5 shipping options."));
        }
        for (i, option) in &list {
            let p = format!("shipping_options[{i}]");
            let obj = option.as_object().ok_or_else(|| ApiError::invalid(&p, "Invalid object"))?;
            check_keys(obj, &["shipping_rate", "shipping_rate_data"], &p)?;
            let rate = match (obj.get("shipping_rate"), obj.get("shipping_rate_data")) {
                (Some(_), Some(_)) => {
                    return Err(ApiError::exclusive(
                        &format!("{p}[shipping_rate]"),
                        "shipping_rate",
                        "shipping_rate_data",
                    ));
                }
                (None, None) => return Err(ApiError::missing(&format!("{p}[shipping_rate_data]"))),
                (Some(id), None) => {
                    let rp = format!("{p}[shipping_rate]");
                    let id = id.as_str().ok_or_else(|| ApiError::invalid(&rp, "Invalid string"))?;
                    st.shipping_rates
                        .get(id)
                        .cloned()
                        .ok_or_else(|| ApiError::no_such(400, &rp, "shipping_rate", id))?
                }
                (None, Some(data)) => rate_data(data, &format!("{p}[shipping_rate_data]"))?,
            };
            let rp = format!("{p}[shipping_rate_data][fixed_amount][currency]");
            if rate["fixed_amount"]["currency"] != currency {
                return Err(ApiError::invalid(
                    &rp,
                    format!("The shipping rate's currency must be the session's, {currency}."),
                ));
            }
            let id = rate["id"].as_str().unwrap_or_default().to_string();
            options.push((id.clone(), rate["fixed_amount"]["amount"].as_i64().unwrap_or(0)));
            st.shipping_rates.insert(id, rate);
        }
    }
    let automatic_tax = match params.get("automatic_tax") {
        None => false,
        Some(at) => {
            let obj = at.as_object().ok_or_else(|| ApiError::invalid("automatic_tax", "Invalid object"))?;
            check_keys(obj, &["enabled"], "automatic_tax")?;
            bool_param(at, "enabled")?.ok_or_else(|| ApiError::missing("automatic_tax[enabled]"))?
        }
    };
    Ok(Shipping { allowed_countries, options, automatic_tax })
}

/// `shipping_rate_data`: a new, inactive shipping rate object.
fn rate_data(data: &Value, p: &str) -> Result<Value, ApiError> {
    let obj = data.as_object().ok_or_else(|| ApiError::invalid(p, "Invalid object"))?;
    check_keys(
        obj,
        &["type", "display_name", "fixed_amount", "delivery_estimate", "tax_behavior", "tax_code", "metadata"],
        p,
    )?;
    let np = format!("{p}[display_name]");
    let name = match str_at(data, "display_name", &np)? {
        None => return Err(ApiError::missing(&np)),
        Some("") => return Err(ApiError::empty(&np)),
        Some(n) => n.to_string(),
    };
    let fp = format!("{p}[fixed_amount]");
    let fixed = obj.get("fixed_amount").ok_or_else(|| ApiError::missing(&fp))?;
    let ap = format!("{fp}[amount]");
    let amount = parse_int(str_at(fixed, "amount", &ap)?.ok_or_else(|| ApiError::missing(&ap))?, &ap)?;
    if !(0..=99_999_999).contains(&amount) {
        return Err(ApiError::invalid(&ap, "This value must be between 0 and 99999999."));
    }
    let cp = format!("{fp}[currency]");
    let currency = str_at(fixed, "currency", &cp)?.ok_or_else(|| ApiError::missing(&cp))?;
    let bound = |end: &str| -> Result<Value, ApiError> {
        let b = &data["delivery_estimate"][end];
        if b.is_null() {
            return Ok(Value::Null);
        }
        let vp = format!("{p}[delivery_estimate][{end}][value]");
        let value = parse_int(str_at(b, "value", &vp)?.ok_or_else(|| ApiError::missing(&vp))?, &vp)?;
        Ok(json!({ "unit": b["unit"], "value": value }))
    };
    let estimate = if data.get("delivery_estimate").is_some() {
        json!({ "maximum": bound("maximum")?, "minimum": bound("minimum")? })
    } else {
        Value::Null
    };
    Ok(json!({
        "id": rand_id("shr_", 24), "object": "shipping_rate", "active": false, "created": now(),
        "delivery_estimate": estimate, "display_name": name,
        "fixed_amount": { "amount": amount, "currency": currency },
        "livemode": false, "metadata": data.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "tax_behavior": data.get("tax_behavior").cloned().unwrap_or_else(|| json!("unspecified")),
        "tax_code": data.get("tax_code").cloned().unwrap_or(Value::Null),
        "type": "fixed_amount"
    }))
}

/// The new session's shipping and tax fields; the first rate is preselected, as Stripe does.
pub(crate) fn apply(obj: &mut Value, shipping: &Shipping) {
    if let Some(countries) = &shipping.allowed_countries {
        obj["shipping_address_collection"] = json!({ "allowed_countries": countries });
    }
    obj["shipping_options"] =
        shipping.options.iter().map(|(id, amount)| json!({ "shipping_amount": amount, "shipping_rate": id })).collect();
    if let Some((id, _)) = shipping.options.first() {
        choose_rate(obj, id, shipping.options[0].1);
    }
    if shipping.automatic_tax {
        obj["automatic_tax"] = json!({ "enabled": true, "liability": { "type": "self" }, "provider": "stripe", "status": "requires_location_inputs" });
    }
}

/// Sets the chosen rate: `shipping_cost`, `total_details.amount_shipping` and the total.
fn choose_rate(obj: &mut Value, id: &str, amount: i64) {
    let before = obj["total_details"]["amount_shipping"].as_i64().unwrap_or(0);
    obj["shipping_cost"] =
        json!({ "amount_subtotal": amount, "amount_tax": 0, "amount_total": amount, "shipping_rate": id });
    obj["total_details"]["amount_shipping"] = json!(amount);
    obj["amount_total"] = json!(obj["amount_total"].as_i64().unwrap_or(0) - before + amount);
}

/// `expand[]=shipping_cost.shipping_rate`: the rate object in place of its id.
pub(crate) fn expand_rate(st: &State, obj: &mut Value) {
    if let Some(rate) = obj["shipping_cost"]["shipping_rate"].as_str().and_then(|id| st.shipping_rates.get(id)) {
        obj["shipping_cost"]["shipping_rate"] = rate.clone();
    }
}

/// The address the hosted page proposes: Stripe's test address, in `country`.
pub(crate) fn default_address(country: &str) -> Value {
    json!({ "city": "South San Francisco", "country": country, "line1": "354 Oyster Point Blvd", "line2": null,
            "postal_code": "94080", "state": "CA" })
}

/// The country the hosted page proposes: US when allowed, else the first allowed.
pub(crate) fn default_country(obj: &Value) -> String {
    let allowed: Vec<&str> = obj["shipping_address_collection"]["allowed_countries"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if allowed.is_empty() || allowed.contains(&"US") { "US".into() } else { allowed[0].to_string() }
}

/// At payment: the chosen rate, the collected name and address (when the session collects
/// one, in an allowed country), and the tax when automatic tax is on.
pub(crate) fn at_payment(s: &mut Session, choice: &CheckoutInput) -> Result<(), String> {
    if let Some(rate) = &choice.shipping_rate {
        let amount = s.obj["shipping_options"]
            .as_array()
            .and_then(|o| o.iter().find(|x| x["shipping_rate"] == rate.as_str()))
            .and_then(|x| x["shipping_amount"].as_i64())
            .ok_or_else(|| format!("The shipping rate {rate} is not offered in this session."))?;
        choose_rate(&mut s.obj, rate, amount);
    }
    if s.obj["shipping_address_collection"].is_object() {
        let country = default_country(&s.obj);
        let address = choice.address.clone().unwrap_or_else(|| default_address(&country));
        let allowed = &s.obj["shipping_address_collection"]["allowed_countries"];
        if !allowed.as_array().is_some_and(|a| a.contains(&address["country"])) {
            return Err("We don't ship to that country.".into());
        }
        let name = choice.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| "Jenny Rosen".into());
        s.obj["collected_information"] = json!({
            "business_name": null, "individual_name": null,
            "shipping_details": { "address": address, "name": name }
        });
    }
    if s.obj["automatic_tax"]["enabled"] == true {
        add_tax(s);
    }
    Ok(())
}

/// The emulator's Stripe Tax: [`TAX_RATE_PERCENT`] of each line after discounts and of
/// shipping; on top for exclusive prices, included for inclusive ones.
fn add_tax(s: &mut Session) {
    let tax_of = |amount: i64, inclusive: bool| {
        if inclusive {
            amount - (amount * 100 + (100 + TAX_RATE_PERCENT) / 2) / (100 + TAX_RATE_PERCENT)
        } else {
            (amount * TAX_RATE_PERCENT + 50) / 100
        }
    };
    let mut added = 0;
    let mut total_tax = 0;
    for li in &mut s.line_items {
        let inclusive = li["price"]["tax_behavior"] == "inclusive";
        let taxable = li["amount_subtotal"].as_i64().unwrap_or(0) - li["amount_discount"].as_i64().unwrap_or(0);
        let tax = tax_of(taxable, inclusive);
        li["amount_tax"] = json!(tax);
        total_tax += tax;
        if !inclusive {
            li["amount_total"] = json!(taxable + tax);
            added += tax;
        }
    }
    if s.obj["shipping_cost"].is_object() {
        // Shipping follows the lines' behaviour (one catalog, one behaviour).
        let inclusive = s.line_items.first().is_some_and(|li| li["price"]["tax_behavior"] == "inclusive");
        let amount = s.obj["shipping_cost"]["amount_subtotal"].as_i64().unwrap_or(0);
        let tax = tax_of(amount, inclusive);
        s.obj["shipping_cost"]["amount_tax"] = json!(tax);
        total_tax += tax;
        if !inclusive {
            s.obj["shipping_cost"]["amount_total"] = json!(amount + tax);
            added += tax;
        }
    }
    s.obj["total_details"]["amount_tax"] = json!(total_tax);
    s.obj["amount_total"] = json!(s.obj["amount_total"].as_i64().unwrap_or(0) + added);
    s.obj["automatic_tax"]["status"] = json!("complete");
}
