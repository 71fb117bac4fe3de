//! The shopper's cart as the browser sends it, checked against the catalog.
//!
//! The browser names products and quantities, nothing else: unknown fields
//! (a price, an amount, a promotion id) are refused, and every amount is
//! computed here from [`crate::catalog`].

use crate::catalog::{Lookup, Offer, Product};
use serde::Deserialize;

/// Why a cart was refused: a message naming the field, safe to show the shopper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartError {
    /// The cart is malformed or names an unknown product (400).
    Invalid(String),
    /// A product the shop no longer sells (archived, its price withdrawn): 409, the message
    /// names it.
    Unavailable(String),
}

impl CartError {
    /// `NAME is no longer available` (409): the one sentence for a product the shop stopped
    /// selling, whether the copy knew it already or Stripe told us at checkout.
    pub fn no_longer_available(name: &str) -> CartError {
        CartError::Unavailable(format!("{name} is no longer available"))
    }
}

impl std::fmt::Display for CartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CartError::Invalid(m) | CartError::Unavailable(m) => f.write_str(m),
        }
    }
}

/// Most distinct lines one cart may hold.
pub const MAX_LINES: usize = 20;

/// The JSON body of `create-checkout` and `apply-discount`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartRequest {
    /// Lines of the cart.
    pub items: Vec<ItemRequest>,
    /// Optional promotion code typed by the shopper.
    #[serde(default)]
    pub code: Option<String>,
}

/// One requested line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    /// Catalog product id.
    pub id: String,
    /// Quantity, 1..=the product's `max_quantity`.
    pub quantity: i64,
}

/// A validated cart line.
#[derive(Debug, Clone)]
pub struct Line {
    /// The product as sold now.
    pub product: Product,
    /// Quantity, within the product's bounds.
    pub quantity: u32,
}

/// A validated cart: lines, their currency, and the subtotal in minor units.
#[derive(Debug, Clone)]
pub struct Cart {
    /// Validated lines, in the order the shopper sent them.
    pub lines: Vec<Line>,
    /// The one currency of every line.
    pub currency: String,
    /// Sum of unit amount × quantity.
    pub subtotal: i64,
}

impl CartRequest {
    /// Checks every line against the compiled-in catalog; the error names the field.
    pub fn validate(&self) -> Result<Cart, CartError> {
        self.validate_in(Offer::file())
    }

    /// Checks every line against what the shop sells now; the error names the field (a
    /// product no longer sold is [`CartError::Unavailable`]).
    pub fn validate_in(&self, offer: &Offer) -> Result<Cart, CartError> {
        let invalid = |m: String| Err(CartError::Invalid(m));
        if self.items.is_empty() {
            return invalid("items: the cart is empty".into());
        }
        if self.items.len() > MAX_LINES {
            return invalid(format!("items: at most {MAX_LINES} lines per order"));
        }
        let mut lines: Vec<Line> = Vec::with_capacity(self.items.len());
        for (i, item) in self.items.iter().enumerate() {
            let product = match offer.find(&item.id) {
                Lookup::OnSale(p) => p,
                Lookup::Withdrawn(name) => {
                    return Err(CartError::no_longer_available(name));
                }
                Lookup::Unknown => return invalid(format!("items[{i}].id: unknown product")),
            };
            if lines.iter().any(|l| l.product.id == product.id) {
                return invalid(format!("items[{i}].id: product listed twice"));
            }
            if item.quantity < 1 || item.quantity > i64::from(product.max_quantity) {
                return invalid(format!("items[{i}].quantity: must be between 1 and {}", product.max_quantity));
            }
            lines.push(Line { product: product.clone(), quantity: item.quantity as u32 });
        }
        let currency = lines[0].product.currency.clone();
        let subtotal = lines.iter().map(|l| l.product.unit_amount * i64::from(l.quantity)).sum();
        Ok(Cart { lines, currency, subtotal })
    }
}
