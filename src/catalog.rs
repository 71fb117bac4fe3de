//! The catalog: the single source of truth for products and prices.
//!
//! `src/catalog.json` is compiled into every function, so no request, header
//! or environment variable can change what an item costs.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// One product as sold by the shop. Amounts are integers in the currency's
/// minor unit (cents for `usd`), as Stripe expects them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// Stable id the browser refers to.
    pub id: String,
    /// Name shown on the page and on Stripe's checkout page.
    pub name: String,
    /// Short description.
    pub description: String,
    /// Price per unit in minor units.
    pub unit_amount: i64,
    /// Lowercase ISO currency code.
    pub currency: String,
    /// Largest quantity of this product in one order.
    pub max_quantity: u32,
    /// Optional Stripe Price id; when set it is sent instead of `price_data`.
    #[serde(default, skip_serializing)]
    pub price: Option<String>,
}

/// The compiled-in catalog text.
pub const CATALOG_JSON: &str = include_str!("catalog.json");

/// All products, parsed and validated once per instance.
pub fn products() -> &'static [Product] {
    static CATALOG: OnceLock<Vec<Product>> = OnceLock::new();
    CATALOG.get_or_init(|| parse(CATALOG_JSON).expect("src/catalog.json is invalid"))
}

/// Looks a product up by id.
pub fn find(id: &str) -> Option<&'static Product> {
    products().iter().find(|p| p.id == id)
}

/// Parses and validates a catalog; the build's unit test runs this on the
/// real file, so a bad edit fails the tests rather than a shopper's request.
pub fn parse(text: &str) -> Result<Vec<Product>, String> {
    let products: Vec<Product> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if products.is_empty() {
        return Err("catalog is empty".into());
    }
    let currency = &products[0].currency;
    for (i, p) in products.iter().enumerate() {
        let valid_id = !p.id.is_empty()
            && p.id.len() <= 64
            && p.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_id {
            return Err(format!("product {i}: id must be 1-64 of [A-Za-z0-9_-]"));
        }
        if products[..i].iter().any(|q| q.id == p.id) {
            return Err(format!("product {i}: duplicate id {}", p.id));
        }
        if p.name.trim().is_empty() {
            return Err(format!("product {}: empty name", p.id));
        }
        if p.unit_amount <= 0 || p.unit_amount > 99_999_999 {
            return Err(format!("product {}: unit_amount out of range", p.id));
        }
        if p.currency.len() != 3 || !p.currency.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(format!("product {}: currency must be 3 lowercase letters", p.id));
        }
        if &p.currency != currency {
            return Err(format!("product {}: all products must share one currency", p.id));
        }
        if p.max_quantity == 0 || p.max_quantity > 999 {
            return Err(format!("product {}: max_quantity must be 1..=999", p.id));
        }
        if let Some(price) = &p.price
            && !price.starts_with("price_")
        {
            return Err(format!("product {}: price must be a Stripe price id", p.id));
        }
    }
    Ok(products)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_catalog_is_valid() {
        assert!(parse(CATALOG_JSON).is_ok());
        assert!(find("tshirt").is_some());
        assert!(find("nope").is_none());
    }

    #[test]
    fn refuses_bad_catalogs() {
        let ok = r#"{"id":"a","name":"A","description":"","unit_amount":100,"currency":"usd","max_quantity":3}"#;
        assert!(parse(&format!("[{ok}]")).is_ok());
        for bad in [
            "[]".to_string(),
            ok.replace("100", "0"),
            ok.replace("100", "-5"),
            ok.replace("\"usd\"", "\"USD\""),
            ok.replace("\"usd\"", "\"us\""),
            ok.replace("\"max_quantity\":3", "\"max_quantity\":0"),
            ok.replace("\"id\":\"a\"", "\"id\":\"a b\""),
            ok.replace("}", ",\"extra\":1}"),
            format!("{ok},{ok}"),
            format!("{ok},{}", ok.replace("\"a\"", "\"b\"").replace("usd", "eur")),
        ] {
            let text = if bad.starts_with('[') { bad.clone() } else { format!("[{bad}]") };
            assert!(parse(&text).is_err(), "accepted {text}");
        }
    }
}
