//! The Checkout Session this shop creates, and how it knows its own: the parameters sent to
//! `POST /v1/checkout/sessions` (every amount from the catalog, the discount the server
//! decided, URLs from `SITE_URL`), and the tag every such session carries.

use crate::cart::Cart;
use crate::config::{Config, UiMode};
use crate::discount::AppliedDiscount;
use crate::stripe::Form;
use crate::stripe::types::Session;

/// The metadata every session this shop creates carries; sessions without it (Payment Links,
/// other integrations on the same account) are never fulfilled here.
pub const SESSION_TAG: (&str, &str) = ("shop", "checkout-rust");

/// Longest Checkout Session id Stripe issues (`maxLength` 66 in its OpenAPI spec).
pub const MAX_SESSION_ID_LEN: usize = 66;

/// The form sent to `POST /v1/checkout/sessions`. URLs come from `SITE_URL`,
/// amounts from the catalog, the discount from [`crate::discount::resolve`].
pub fn params(config: &Config, cart: &Cart, discount: Option<&AppliedDiscount>) -> Form {
    let mut f = Form::new();
    f.push("mode", "payment").push("ui_mode", config.ui_mode.as_str());
    for (i, line) in cart.lines.iter().enumerate() {
        let p = line.product;
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
