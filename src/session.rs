//! The Checkout Session this shop creates, and how it knows its own: the parameters sent to
//! `POST /v1/checkout/sessions` (every amount from the catalog — shipping rates included —, the
//! discount the server decided, URLs from `SITE_URL`, Stripe Tax when configured), and the tag
//! every such session carries.

use crate::cart::Cart;
use crate::catalog;
use crate::config::{Config, UiMode};
use crate::discount::AppliedDiscount;
use crate::stripe::Form;
use crate::stripe::types::Session;

/// The metadata every session this shop creates carries; sessions without it (Payment Links,
/// other integrations on the same account) are never fulfilled here.
pub const SESSION_TAG: (&str, &str) = ("shop", "checkout-rust");

/// The metadata key naming a session's stock reservation ([`crate::stock`]).
pub const RESERVATION_KEY: &str = "reservation";

/// Adds a checkout's reservation to its session's form: `expires_at` (when the reservation
/// lapses) and `metadata[reservation]` (so every event about the session finds it).
pub fn hold(form: &mut Form, reservation: &str, expires_at: i64) {
    form.push("expires_at", expires_at.to_string()).push(format!("metadata[{RESERVATION_KEY}]"), reservation);
}

/// Longest Checkout Session id Stripe issues (`maxLength` 66 in its OpenAPI spec).
pub const MAX_SESSION_ID_LEN: usize = 66;

/// The form sent to `POST /v1/checkout/sessions`. URLs come from `SITE_URL`,
/// amounts from the catalog (`price_data`, or with the Stripe catalog the copy's Price id, whose
/// amount is the one the cart was checked with), the discount from [`crate::discount::resolve`]. A cart with a
/// shippable product collects an address in `SHIPPING_ALLOWED_COUNTRIES` and offers the
/// catalog's rates; `STRIPE_AUTOMATIC_TAX=true` adds Stripe Tax with the catalog's tax codes
/// and behaviour.
pub fn params(config: &Config, cart: &Cart, discount: Option<&AppliedDiscount>) -> Form {
    let tax = config.automatic_tax.then_some(&catalog::catalog().tax);
    let mut f = Form::new();
    f.push("mode", "payment").push("ui_mode", config.ui_mode.as_str());
    for (i, line) in cart.lines.iter().enumerate() {
        let p = &line.product;
        match &p.price {
            Some(price) => {
                f.push(format!("line_items[{i}][price]"), price.as_str());
            }
            None => {
                let pd = format!("line_items[{i}][price_data]");
                f.push(format!("{pd}[currency]"), p.currency.as_str())
                    .push(format!("{pd}[unit_amount]"), p.unit_amount.to_string())
                    .push(format!("{pd}[product_data][name]"), p.name.as_str());
                if !p.description.is_empty() {
                    f.push(format!("{pd}[product_data][description]"), p.description.as_str());
                }
                if let Some(tax) = tax {
                    if let Some(code) = &p.tax_code {
                        f.push(format!("{pd}[product_data][tax_code]"), code.as_str());
                    }
                    f.push(format!("{pd}[tax_behavior]"), tax.behavior.as_str());
                }
            }
        }
        f.push(format!("line_items[{i}][quantity]"), line.quantity.to_string());
    }
    f.push(format!("metadata[{}]", SESSION_TAG.0), SESSION_TAG.1);
    let landing = format!("{}/success.html?session_id={{CHECKOUT_SESSION_ID}}", config.site_url);
    match config.ui_mode {
        UiMode::Hosted => {
            f.push("success_url", landing).push("cancel_url", format!("{}/cancel.html", config.site_url));
        }
        UiMode::Embedded => {
            f.push("return_url", landing);
        }
    }
    if let Some(d) = discount {
        f.push("discounts[0][promotion_code]", d.promotion_code.as_str());
    }
    if cart.lines.iter().any(|l| l.product.shippable) {
        for country in &config.shipping_countries {
            f.push("shipping_address_collection[allowed_countries][]", country.as_str());
        }
        for (i, rate) in catalog::catalog().shipping_rates.iter().enumerate() {
            let rd = format!("shipping_options[{i}][shipping_rate_data]");
            f.push(format!("{rd}[type]"), "fixed_amount")
                .push(format!("{rd}[display_name]"), rate.display_name.as_str())
                .push(format!("{rd}[fixed_amount][amount]"), rate.amount_for(cart.subtotal).to_string())
                .push(format!("{rd}[fixed_amount][currency]"), cart.currency.as_str());
            if let Some([min, max]) = rate.delivery_business_days {
                for (end, days) in [("minimum", min), ("maximum", max)] {
                    f.push(format!("{rd}[delivery_estimate][{end}][unit]"), "business_day")
                        .push(format!("{rd}[delivery_estimate][{end}][value]"), days.to_string());
                }
            }
            if let Some(tax) = tax {
                if let Some(code) = &tax.shipping_tax_code {
                    f.push(format!("{rd}[tax_code]"), code.as_str());
                }
                f.push(format!("{rd}[tax_behavior]"), tax.behavior.as_str());
            }
        }
    }
    if tax.is_some() {
        f.push("automatic_tax[enabled]", "true");
    }
    f
}

/// Whether a session is one this shop created: `mode=payment` with [`SESSION_TAG`].
pub fn is_ours(session: &Session) -> bool {
    session.metadata.get(SESSION_TAG.0).map(String::as_str) == Some(SESSION_TAG.1)
        && session.mode.as_deref() == Some("payment")
}

/// Whether `id` has the form of a Checkout Session id Stripe could have issued.
pub fn is_session_id(id: &str) -> bool {
    let rest = id.strip_prefix("cs_test_").or_else(|| id.strip_prefix("cs_live_"));
    id.len() <= MAX_SESSION_ID_LEN
        && rest.is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}
