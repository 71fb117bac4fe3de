//! The products the shop sells now, from either source (`CATALOG_SOURCE`): the compiled-in
//! `catalog.json`, or the Stripe account's Products tagged `metadata[shop]=CATALOG_TAG`, each
//! with its default Price, through the store's copy.
//!
//! The copy is filled on first use from `GET /v1/products` (every Product, archived ones too, so
//! a cart naming an archived product is told it is no longer available; paginated, the default
//! prices expanded), kept current by `product.*` and `price.*` events (webhook and
//! reconciliation) and refilled by the reconciliation run once it is older than
//! [`COPY_MAX_AGE_SECS`]. An event is never applied as delivered: the Product (and its default
//! Price) is retrieved from Stripe and copied as Stripe has it now, so duplicated and reordered
//! deliveries converge on the same copy, and a newer copy is never overwritten by an older one
//! (Stripe's `updated`).
//!
//! A product is on sale when it is active and its default price is usable: active, one-time, in
//! the shop's currency, with a unit amount; otherwise it is withdrawn (a cart naming it is
//! refused as "no longer available") and why is logged once per product per instance. Shop
//! attributes come from the Product's metadata (see [`METADATA_SHIPPABLE`],
//! [`METADATA_MAX_QUANTITY`], [`METADATA_ORDER`]).

use crate::app::App;
use crate::catalog::{self, Offer, Product};
use crate::clock::now;
use crate::config::CatalogSource;
use crate::store::{CatalogCopy, StoreError};
use crate::stripe::types::{Expandable, List, Price};
use crate::stripe::{EventType, Form, StripeError, types};
use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

/// The metadata key whose value marks a Product as this shop's (`CATALOG_TAG`).
pub const METADATA_TAG: &str = "shop";
/// `true` when the product ships (the cart then collects an address and offers the catalog's
/// shipping rates); `false` or unset: it does not.
pub const METADATA_SHIPPABLE: &str = "shippable";
/// The largest quantity of it in one order, 1..=999; unset: [`DEFAULT_MAX_QUANTITY`].
pub const METADATA_MAX_QUANTITY: &str = "max_quantity";
/// Its place on the page (an integer, smaller first; unset: after the numbered ones, oldest
/// first).
pub const METADATA_ORDER: &str = "order";
/// `max_quantity` of a product whose metadata does not say.
pub const DEFAULT_MAX_QUANTITY: u32 = 10;
/// The reconciliation run refills a copy older than this (seconds).
pub const COPY_MAX_AGE_SECS: i64 = 3600;
/// Products per list page when filling the copy (Stripe's maximum).
pub const FILL_PAGE_SIZE: u32 = 100;

/// After a failed first fill, for this long an instance refuses instead of filling again.
pub const FILL_RETRY_SECS: i64 = 5;

/// Why the products could not be read.
#[derive(Debug)]
pub enum ProductsError {
    /// The copy was never filled and the last fill failed a moment ago (503, retry later).
    NotFilled,
    /// Stripe failed while filling the copy (boxed: large, rare).
    Stripe(Box<StripeError>),
    /// The store failed.
    Store(StoreError),
}

impl fmt::Display for ProductsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProductsError::NotFilled => f.write_str("catalog copy not filled: the last fill failed a moment ago"),
            ProductsError::Stripe(e) => write!(f, "stripe: {e}"),
            ProductsError::Store(e) => write!(f, "store: {e}"),
        }
    }
}

impl From<StoreError> for ProductsError {
    fn from(e: StoreError) -> Self {
        ProductsError::Store(e)
    }
}

impl From<StripeError> for ProductsError {
    fn from(e: StripeError) -> Self {
        ProductsError::Stripe(Box::new(e))
    }
}

/// What the shop sells now: the compiled-in catalog, or the store's copy of the Stripe
/// catalog (filled from Stripe first if it never was).
pub async fn offer(app: &App) -> Result<Arc<Offer>, ProductsError> {
    let tag = match &app.config.catalog_source {
        CatalogSource::File => {
            static FILE: OnceLock<Arc<Offer>> = OnceLock::new();
            return Ok(FILE.get_or_init(|| Arc::new(Offer::file().clone())).clone());
        }
        CatalogSource::Stripe { tag } => tag,
    };
    let mut copy = app.store.catalog_copy(tag).await?;
    if copy.filled_at.is_none() {
        // One fill at a time per instance: the requests that arrive meanwhile wait for it and
        // read its copy; after a failure, requests are refused for a few seconds rather than
        // each listing the whole catalog again (Stripe's rate limit is the owner's).
        let mut last_failure = app.catalog_fill.lock().await;
        copy = app.store.catalog_copy(tag).await?;
        if copy.filled_at.is_none() {
            if last_failure.is_some_and(|at| now() - at < FILL_RETRY_SECS) {
                return Err(ProductsError::NotFilled);
            }
            if let Err(e) = fill(app, tag).await {
                *last_failure = Some(now());
                return Err(e);
            }
            *last_failure = None;
            copy = app.store.catalog_copy(tag).await?;
        }
    }
    Ok(Arc::new(offer_from(&copy, tag, app.config.automatic_tax)))
}

/// Fills the copy from `GET /v1/products` (every page, archived products too, default prices
/// expanded); the products it does not list (deleted) are forgotten. Returns how many products of the shop it copied.
pub async fn fill(app: &App, tag: &str) -> Result<usize, ProductsError> {
    let started = now();
    let mut after: Option<String> = None;
    let mut copied = 0;
    loop {
        let mut q = Form::new();
        q.push("limit", FILL_PAGE_SIZE.to_string()).push("expand[]", "data.default_price");
        if let Some(a) = &after {
            q.push("starting_after", a.as_str());
        }
        let page: List<types::Product> = app.stripe.get("/v1/products", &q).await?;
        for product in &page.data {
            if is_tagged(product, tag) {
                save(app, tag, product.clone()).await?;
                copied += 1;
            }
        }
        match page.data.last() {
            Some(last) if page.has_more => after = Some(last.id.clone()),
            _ => break,
        }
    }
    app.store.catalog_filled(tag, started).await?;
    crate::log::info("catalog copied from Stripe", &[("products", &copied.to_string())]);
    Ok(copied)
}

/// The reconciliation run's part: refills a copy older than [`COPY_MAX_AGE_SECS`] (the Stripe
/// source only; a copy never filled is filled on first use instead).
pub async fn refresh_if_stale(app: &App) -> Result<bool, ProductsError> {
    let CatalogSource::Stripe { tag } = &app.config.catalog_source else {
        return Ok(false);
    };
    let copy = app.store.catalog_copy(tag).await?;
    match copy.filled_at {
        Some(at) if now() - at >= COPY_MAX_AGE_SECS => fill(app, tag).await.map(|_| true),
        _ => Ok(false),
    }
}

/// Acts on a `product.*` or `price.*` event about `object_id`: retrieves the object from Stripe
/// and copies it as it is now (forgetting what Stripe no longer has, or what is no longer
/// tagged for this shop). With the file source the event is not for us: `false`.
pub async fn on_event(app: &App, kind: EventType, object_id: &str) -> Result<bool, ProductsError> {
    let CatalogSource::Stripe { tag } = &app.config.catalog_source else {
        return Ok(false);
    };
    let (product_id, price) = if kind.object_is_price() {
        match app.stripe.get::<Price>(&format!("/v1/prices/{object_id}"), &Form::new()).await {
            Ok(price) => (price.product.clone(), Some(price)),
            Err(e) if e.is_not_found() => {
                app.store.forget_catalog_price(object_id).await?;
                return Ok(true);
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        (object_id.to_string(), None)
    };
    let mut q = Form::new();
    q.push("expand[]", "default_price");
    match app.stripe.get::<types::Product>(&format!("/v1/products/{product_id}"), &q).await {
        Ok(product) if is_tagged(&product, tag) => {
            if let Some(price) = price {
                app.store.save_catalog_price(&price).await?;
            }
            save(app, tag, product).await?;
        }
        Ok(_) => app.store.forget_catalog_product(&product_id).await?,
        Err(e) if e.is_not_found() => app.store.forget_catalog_product(&product_id).await?,
        Err(e) => return Err(e.into()),
    }
    Ok(true)
}

/// Whether a Product carries this shop's tag.
fn is_tagged(product: &types::Product, tag: &str) -> bool {
    product.metadata.get(METADATA_TAG).map(String::as_str) == Some(tag)
}

/// Copies a Product and, when expanded, its default Price.
async fn save(app: &App, tag: &str, mut product: types::Product) -> Result<(), StoreError> {
    if let Some(price) = product.default_price.take() {
        let id = price.id().to_string();
        if let Some(price) = price.into_object() {
            app.store.save_catalog_price(&price).await?;
        }
        product.default_price = Some(Expandable::Id(id));
    }
    app.store.save_catalog_product(tag, &product).await
}

/// The offer a copy makes: each tagged product on sale or withdrawn (why logged once).
pub fn offer_from(copy: &CatalogCopy, tag: &str, automatic_tax: bool) -> Offer {
    let mut listed: Vec<(i64, i64, Product)> = Vec::new();
    let mut withdrawn = Vec::new();
    for (product, price) in copy.products.iter().filter(|(p, _)| is_tagged(p, tag)) {
        match sellable(product, price.as_ref(), automatic_tax) {
            Ok(p) => {
                let order = product.metadata.get(METADATA_ORDER).and_then(|o| o.parse().ok()).unwrap_or(i64::MAX);
                listed.push((order, product.created, p));
            }
            Err(reason) => {
                log_once(&product.id, reason);
                withdrawn.push((product.id.clone(), product.name.clone()));
            }
        }
    }
    listed.sort_by(|a, b| (a.0, a.1, &a.2.id).cmp(&(b.0, b.1, &b.2.id)));
    Offer { on_sale: listed.into_iter().map(|(_, _, p)| p).collect(), withdrawn }
}

/// The product as sold, or why it is not. With automatic tax its Price must carry catalog.json's
/// `tax_behavior` (the one `/api/products` tells the page), or the page's prices would not be
/// what the shopper pays.
fn sellable(product: &types::Product, price: Option<&Price>, automatic_tax: bool) -> Result<Product, &'static str> {
    if !product.active {
        return Err("the product is archived");
    }
    if !catalog::valid_id(&product.id) {
        return Err("the product's id is not 1-64 of [A-Za-z0-9_-]");
    }
    let Some(price) = price else {
        return Err("the product has no default price");
    };
    if !price.active {
        return Err("its default price is archived");
    }
    if price.kind != "one_time" {
        return Err("its default price is recurring");
    }
    if price.currency != catalog::currency() {
        return Err("its default price is in another currency than the shop's");
    }
    if automatic_tax && price.tax_behavior.as_deref() != Some(catalog::catalog().tax.behavior.as_str()) {
        return Err("its default price's tax_behavior is not catalog.json's (automatic tax is on)");
    }
    let unit_amount = match price.unit_amount {
        Some(a) if (1..=catalog::MAX_UNIT_AMOUNT).contains(&a) => a,
        _ => return Err("its default price has no unit amount between 1 and 99999999"),
    };
    let meta = |k: &str| product.metadata.get(k).map(String::as_str);
    let shippable = match meta(METADATA_SHIPPABLE) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err("metadata shippable is neither true nor false"),
    };
    let max_quantity = match meta(METADATA_MAX_QUANTITY) {
        None => DEFAULT_MAX_QUANTITY,
        Some(q) => q
            .parse::<u32>()
            .ok()
            .filter(|q| (1..=catalog::MAX_QUANTITY).contains(q))
            .ok_or("metadata max_quantity is not an integer 1..=999")?,
    };
    if shippable && catalog::catalog().shipping_rates.is_empty() {
        return Err("it ships but catalog.json has no shipping rates");
    }
    let tax_code = match &product.tax_code {
        Some(serde_json::Value::String(c)) => Some(c.clone()),
        Some(o) => o["id"].as_str().map(String::from),
        None => None,
    }
    .filter(|c| catalog::valid_tax_code(c));
    Ok(Product {
        id: product.id.clone(),
        name: product.name.clone(),
        description: product.description.clone().unwrap_or_default(),
        unit_amount,
        currency: price.currency.clone(),
        max_quantity,
        shippable,
        tax_code,
        price: Some(price.id.clone()),
        stock: None,
        images: product.images.clone(),
    })
}

/// Logs why a product is not sold, once per product and reason per instance.
fn log_once(product_id: &str, reason: &'static str) {
    static SEEN: Mutex<Option<HashSet<(String, &'static str)>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen.get_or_insert_with(HashSet::new).insert((product_id.to_string(), reason)) {
        crate::log::warn("product not sold", &[("product_id", product_id), ("reason", reason)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(meta: &[(&str, &str)]) -> types::Product {
        types::Product {
            id: "prod_1".into(),
            active: true,
            name: "Tee".into(),
            description: None,
            images: vec![],
            metadata: meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            tax_code: None,
            default_price: None,
            created: 1,
            updated: 1,
            livemode: false,
        }
    }

    fn price() -> Price {
        Price {
            id: "price_1".into(),
            active: true,
            currency: catalog::currency().into(),
            unit_amount: Some(2500),
            kind: "one_time".into(),
            product: "prod_1".into(),
            lookup_key: None,
            tax_behavior: None,
        }
    }

    #[test]
    fn a_product_is_sold_only_with_a_usable_default_price() {
        let tagged = [("shop", "t")];
        let p = sellable(&product(&tagged), Some(&price()), false).unwrap();
        assert_eq!((p.unit_amount, p.max_quantity, p.shippable), (2500, DEFAULT_MAX_QUANTITY, false));
        assert_eq!(p.price.as_deref(), Some("price_1"));
        let unusable: [(Price, &str); 4] = [
            (Price { active: false, ..price() }, "archived"),
            (Price { kind: "recurring".into(), ..price() }, "recurring"),
            (Price { currency: "xxx".into(), ..price() }, "currency"),
            (Price { unit_amount: None, ..price() }, "unit amount"),
        ];
        for (bad, why) in unusable {
            assert!(sellable(&product(&tagged), Some(&bad), false).unwrap_err().contains(why), "{why}");
        }
        assert!(sellable(&product(&tagged), None, false).is_err());
        assert!(sellable(&types::Product { active: false, ..product(&tagged) }, Some(&price()), false).is_err());
        for meta in [[("max_quantity", "0")], [("max_quantity", "x")], [("shippable", "yes")]] {
            assert!(sellable(&product(&meta), Some(&price()), false).is_err(), "{meta:?}");
        }
        let copy = CatalogCopy {
            filled_at: Some(1),
            products: vec![(product(&tagged), Some(price())), (product(&[("shop", "other")]), Some(price()))],
        };
        assert_eq!(offer_from(&copy, "t", false).on_sale.len(), 1);
        assert_eq!(offer_from(&copy, "nobody", false), Offer::default());
    }

    #[test]
    fn with_automatic_tax_a_price_carries_the_catalogs_tax_behavior() {
        let tagged = [("shop", "t")];
        let ours = catalog::catalog().tax.behavior.as_str();
        let other = if ours == "inclusive" { "exclusive" } else { "inclusive" };
        let with = |b: Option<&str>| Price { tax_behavior: b.map(String::from), ..price() };
        assert!(sellable(&product(&tagged), Some(&with(Some(ours))), true).is_ok());
        for b in [None, Some("unspecified"), Some(other)] {
            let why = sellable(&product(&tagged), Some(&with(b)), true).unwrap_err();
            assert!(why.contains("tax_behavior"), "{b:?}: {why}");
            assert!(sellable(&product(&tagged), Some(&with(b)), false).is_ok(), "no automatic tax: {b:?} is fine");
        }
    }
}
