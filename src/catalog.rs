//! The catalog: the single source of truth for products, prices, shipping rates and tax
//! settings.
//!
//! `src/catalog.json` is compiled into every function, so no request, header or environment
//! variable can change what an item or its shipping costs. With `CATALOG_SOURCE=stripe` the
//! products and prices come from the store's copy of the Stripe account's instead (see
//! [`Offer`], built by `crate::products`); shipping rates and tax settings stay here.

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
    /// Whether it is a physical good that ships: a cart holding one collects a shipping
    /// address and offers the catalog's shipping rates.
    pub shippable: bool,
    /// Stripe Tax product tax code (`txcd_...`), sent when automatic tax is on.
    #[serde(default, skip_serializing)]
    pub tax_code: Option<String>,
    /// Optional Stripe Price id; when set it is sent instead of `price_data`.
    #[serde(default, skip_serializing)]
    pub price: Option<String>,
    /// Image URLs (the Stripe Product's `images`; none in the file catalog).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Optional initial units on hand (limited stock): the store's row is seeded with it the
    /// first time a checkout names the product, only when it has none (see [`crate::stock`]
    /// — after that the owner's `POST /api/stock` rules). Never shown as such.
    #[serde(default, skip_serializing)]
    pub stock: Option<u32>,
}

/// What the shop sells now: the products on sale, in display order, and those it knows but no
/// longer sells (an archived product, an unusable price): a cart naming one is refused as "no
/// longer available" rather than as unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offer {
    /// On sale, in display order.
    pub on_sale: Vec<Product>,
    /// Known but not sold: `(id, name)`.
    pub withdrawn: Vec<(String, String)>,
}

/// A product id looked up in an [`Offer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// On sale.
    OnSale(&'a Product),
    /// Known, no longer sold: its name.
    Withdrawn(&'a str),
    /// Never heard of.
    Unknown,
}

impl Offer {
    /// The compiled-in catalog's offer (everything on sale), built once per instance.
    pub fn file() -> &'static Offer {
        static OFFER: OnceLock<Offer> = OnceLock::new();
        OFFER.get_or_init(|| Offer { on_sale: products().to_vec(), withdrawn: vec![] })
    }

    /// Looks a product id up.
    pub fn find(&self, id: &str) -> Lookup<'_> {
        if let Some(p) = self.on_sale.iter().find(|p| p.id == id) {
            return Lookup::OnSale(p);
        }
        match self.withdrawn.iter().find(|(w, _)| w == id) {
            Some((_, name)) => Lookup::Withdrawn(name),
            None => Lookup::Unknown,
        }
    }
}

/// The shop's one currency (the compiled-in catalog's; its shipping rates are in it).
pub fn currency() -> &'static str {
    &catalog().products[0].currency
}

/// Whether `id` may name a product to the browser: 1-64 of `[A-Za-z0-9_-]`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Largest unit amount the shop sells at (Stripe's 8 digits).
pub const MAX_UNIT_AMOUNT: i64 = 99_999_999;

/// Largest `max_quantity` of a product.
pub const MAX_QUANTITY: u32 = 999;

/// Whether `code` looks like a Stripe Tax code (`txcd_` and 8 digits).
pub fn valid_tax_code(code: &str) -> bool {
    code.strip_prefix("txcd_").is_some_and(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// A shipping rate the server offers for carts with shippable goods (sent as
/// `shipping_options[i][shipping_rate_data]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ShippingRate {
    /// Stable id (ours, for the page and the logs).
    pub id: String,
    /// Name shown at checkout (at most 100 characters, Stripe's limit).
    pub display_name: String,
    /// Price in minor units of the catalog's currency.
    pub amount: i64,
    /// When the cart's subtotal (before any discount) reaches this, the rate is free.
    #[serde(default)]
    pub free_from_subtotal: Option<i64>,
    /// Delivery estimate in business days, `[minimum, maximum]`.
    #[serde(default)]
    pub delivery_business_days: Option<[u32; 2]>,
}

impl ShippingRate {
    /// What this rate costs for a cart with this subtotal.
    pub fn amount_for(&self, subtotal: i64) -> i64 {
        match self.free_from_subtotal {
            Some(from) if subtotal >= from => 0,
            _ => self.amount,
        }
    }
}

/// Whether catalog prices include tax (Stripe's `tax_behavior`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TaxBehavior {
    /// Tax is added on top of the prices.
    Exclusive,
    /// Prices already include tax.
    Inclusive,
}

impl TaxBehavior {
    /// Stripe's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaxBehavior::Exclusive => "exclusive",
            TaxBehavior::Inclusive => "inclusive",
        }
    }
}

/// What Stripe Tax is told when `STRIPE_AUTOMATIC_TAX=true`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TaxSettings {
    /// Whether prices include tax.
    pub behavior: TaxBehavior,
    /// Tax code of the shipping rates (`txcd_92010001` is Stripe's "Shipping").
    #[serde(default)]
    pub shipping_tax_code: Option<String>,
}

/// The whole catalog.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Every product, in display order.
    pub products: Vec<Product>,
    /// Shipping rates offered when the cart holds a shippable product (at most 5, Stripe's
    /// limit for `shipping_options`).
    #[serde(default)]
    pub shipping_rates: Vec<ShippingRate>,
    /// Tax settings for Stripe Tax.
    pub tax: TaxSettings,
}

/// Most shipping rates one Checkout Session can offer.
pub const MAX_SHIPPING_RATES: usize = 5;

/// The compiled-in catalog text.
pub const CATALOG_JSON: &str = include_str!("catalog.json");

/// The catalog, parsed and validated once per instance.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| parse(CATALOG_JSON).expect("src/catalog.json is invalid"))
}

/// All products.
pub fn products() -> &'static [Product] {
    &catalog().products
}

/// Looks a product up by id.
pub fn find(id: &str) -> Option<&'static Product> {
    products().iter().find(|p| p.id == id)
}

/// Parses and validates a catalog; the build's unit test runs this on the
/// real file, so a bad edit fails the tests rather than a shopper's request.
pub fn parse(text: &str) -> Result<Catalog, String> {
    let catalog: Catalog = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let products = &catalog.products;
    if products.is_empty() {
        return Err("catalog is empty".into());
    }
    let currency = &products[0].currency;
    for (i, p) in products.iter().enumerate() {
        if !valid_id(&p.id) {
            return Err(format!("product {i}: id must be 1-64 of [A-Za-z0-9_-]"));
        }
        if products[..i].iter().any(|q| q.id == p.id) {
            return Err(format!("product {i}: duplicate id {}", p.id));
        }
        if p.name.trim().is_empty() {
            return Err(format!("product {}: empty name", p.id));
        }
        if p.unit_amount <= 0 || p.unit_amount > MAX_UNIT_AMOUNT {
            return Err(format!("product {}: unit_amount out of range", p.id));
        }
        if p.currency.len() != 3 || !p.currency.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(format!("product {}: currency must be 3 lowercase letters", p.id));
        }
        if &p.currency != currency {
            return Err(format!("product {}: all products must share one currency", p.id));
        }
        if p.max_quantity == 0 || p.max_quantity > MAX_QUANTITY {
            return Err(format!("product {}: max_quantity must be 1..=999", p.id));
        }
        if let Some(price) = &p.price
            && !price.starts_with("price_")
        {
            return Err(format!("product {}: price must be a Stripe price id", p.id));
        }
        if p.tax_code.as_deref().is_some_and(|c| !valid_tax_code(c)) {
            return Err(format!("product {}: tax_code must look like txcd_99999999", p.id));
        }
    }
    let rates = &catalog.shipping_rates;
    if products.iter().any(|p| p.shippable) && rates.is_empty() {
        return Err("shipping_rates: a shippable product needs at least one rate".into());
    }
    if rates.len() > MAX_SHIPPING_RATES {
        return Err(format!("shipping_rates: at most {MAX_SHIPPING_RATES} (Stripe's limit)"));
    }
    for (i, r) in rates.iter().enumerate() {
        if !valid_id(&r.id) || rates[..i].iter().any(|q| q.id == r.id) {
            return Err(format!("shipping rate {i}: id must be unique, 1-64 of [A-Za-z0-9_-]"));
        }
        if r.display_name.trim().is_empty() || r.display_name.chars().count() > 100 {
            return Err(format!("shipping rate {}: display_name must be 1-100 characters", r.id));
        }
        if !(0..=99_999_999).contains(&r.amount) || r.free_from_subtotal.is_some_and(|f| f <= 0) {
            return Err(format!("shipping rate {}: amount or free_from_subtotal out of range", r.id));
        }
        if r.delivery_business_days.is_some_and(|[min, max]| min == 0 || min > max || max > 365) {
            return Err(format!("shipping rate {}: delivery_business_days must be [min, max], 1 <= min <= max", r.id));
        }
    }
    if catalog.tax.shipping_tax_code.as_deref().is_some_and(|c| !valid_tax_code(c)) {
        return Err("tax.shipping_tax_code must look like txcd_92010001".into());
    }
    Ok(catalog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_catalog_is_valid() {
        let c = parse(CATALOG_JSON).unwrap();
        assert!(find("tshirt").is_some_and(|p| p.shippable));
        assert!(c.products.iter().any(|p| !p.shippable), "the demo sells one digital product");
        assert!(find("nope").is_none());
    }

    #[test]
    fn free_shipping_from_a_subtotal() {
        let r = ShippingRate {
            id: "s".into(),
            display_name: "S".into(),
            amount: 500,
            free_from_subtotal: Some(7500),
            delivery_business_days: None,
        };
        assert_eq!(r.amount_for(7499), 500);
        assert_eq!(r.amount_for(7500), 0);
    }

    #[test]
    fn refuses_bad_catalogs() {
        let ok = r#"{"id":"a","name":"A","description":"","unit_amount":100,"currency":"usd","max_quantity":3,"shippable":false}"#;
        let wrap = |products: &str, rates: &str| {
            format!(r#"{{"products":[{products}],"shipping_rates":[{rates}],"tax":{{"behavior":"exclusive"}}}}"#)
        };
        let rate = r#"{"id":"std","display_name":"Standard","amount":500}"#;
        assert!(parse(&wrap(ok, "")).is_ok());
        assert!(parse(&wrap(&ok.replace("false", "true"), rate)).is_ok());
        for bad in [
            wrap("", ""),
            wrap(&ok.replace("100", "0"), ""),
            wrap(&ok.replace("100", "-5"), ""),
            wrap(&ok.replace("\"usd\"", "\"USD\""), ""),
            wrap(&ok.replace("\"usd\"", "\"us\""), ""),
            wrap(&ok.replace("\"max_quantity\":3", "\"max_quantity\":0"), ""),
            wrap(&ok.replace("\"id\":\"a\"", "\"id\":\"a b\""), ""),
            wrap(&ok.replace("}", ",\"extra\":1}"), ""),
            wrap(&format!("{ok},{ok}"), ""),
            wrap(&format!("{ok},{}", ok.replace("\"a\"", "\"b\"").replace("usd", "eur")), ""),
            wrap(&ok.replace("}", ",\"tax_code\":\"general\"}"), ""),
            wrap(&ok.replace("false", "true"), ""),
            wrap(ok, &rate.replace("500", "-1")),
            wrap(ok, &rate.replace("Standard", "")),
            wrap(ok, &format!("{rate},{rate}")),
            wrap(ok, &rate.replace("}", ",\"delivery_business_days\":[5,2]}")),
        ] {
            assert!(parse(&bad).is_err(), "accepted {bad}");
        }
    }
}
