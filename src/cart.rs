//! The shopper's cart as the browser sends it, checked against the catalog.
//!
//! The browser names products and quantities, nothing else: unknown fields
//! (a price, an amount, a promotion id) are refused, and every amount is
//! computed here from [`crate::catalog`].

use crate::catalog::{self, Product};
use serde::Deserialize;

/// Why a cart was refused: a message naming the field, safe to show the shopper (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartError(pub String);

impl std::fmt::Display for CartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
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
    /// The catalog product.
    pub product: &'static Product,
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
    /// Checks every line against the catalog; the error names the field.
    pub fn validate(&self) -> Result<Cart, CartError> {
        if self.items.is_empty() {
            return Err(CartError("items: the cart is empty".into()));
        }
        if self.items.len() > MAX_LINES {
            return Err(CartError(format!("items: at most {MAX_LINES} lines per order")));
        }
        let mut lines: Vec<Line> = Vec::with_capacity(self.items.len());
        for (i, item) in self.items.iter().enumerate() {
            let product =
                catalog::find(&item.id).ok_or_else(|| CartError(format!("items[{i}].id: unknown product")))?;
            if lines.iter().any(|l| l.product.id == product.id) {
                return Err(CartError(format!("items[{i}].id: product listed twice")));
            }
            if item.quantity < 1 || item.quantity > i64::from(product.max_quantity) {
                return Err(CartError(format!("items[{i}].quantity: must be between 1 and {}", product.max_quantity)));
            }
            lines.push(Line { product, quantity: item.quantity as u32 });
        }
        let currency = lines[0].product.currency.clone();
        let subtotal = lines.iter().map(|l| l.product.unit_amount * i64::from(l.quantity)).sum();
        Ok(Cart { lines, currency, subtotal })
    }
}
