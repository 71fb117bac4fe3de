//! The data the Checkout Session modules hand each other, kept below them all so none has
//! to import another for a type: a line being priced at creation ([`Line`], built by
//! `sessions`, discounted by `promotions`) and what the shopper entered at payment
//! ([`CheckoutInput`], from `page` or a test, read by `lifecycle` and `shipping`).

use serde_json::Value;

/// A priced line during creation.
pub(crate) struct Line {
    /// The line's description (the product's name).
    pub name: String,
    /// The price object.
    pub price: Value,
    /// The product's id.
    pub product: String,
    /// How many.
    pub quantity: i64,
    /// Unit amount × quantity.
    pub subtotal: i64,
    /// The share of the coupon's discount on this line.
    pub discount: i64,
}

/// What the shopper entered on the hosted page; a test's `pay` leaves it all to the defaults.
#[derive(Debug, Clone, Default)]
pub struct CheckoutInput {
    /// Email for the receipt; the session's `customer_email`, else `shopper@example.com`.
    pub email: Option<String>,
    /// The shipping rate chosen (`shr_...`); the preselected first one when `None`.
    pub shipping_rate: Option<String>,
    /// Shipping recipient; "Jenny Rosen" when `None`.
    pub name: Option<String>,
    /// Shipping address (`line1`, `city`, `postal_code`, `state`, `country`); Stripe's test
    /// address in the first allowed country when `None`.
    pub address: Option<Value>,
}
