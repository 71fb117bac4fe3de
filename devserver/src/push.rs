//! `cargo run -p dev -- catalog-push [--live]`: copies `src/catalog.json`'s products to the
//! owner's Stripe account as Products and Prices, for `CATALOG_SOURCE=stripe`.
//!
//! Each product becomes the Product whose `id` is the catalog's id (carts, stock and orders keep
//! their ids across sources), with `metadata[shop]` = `CATALOG_TAG` and the shop's attributes in
//! metadata (see `checkout::products`); its price is the Price with `lookup_key`
//! `shop:<id>`. Idempotent: run again, it changes nothing that is already as the file says. A
//! changed amount is a new Price that takes the lookup key (`transfer_lookup_key`), becomes the
//! product's `default_price`, and the old Price is archived (a Price's amount never changes).
//! The key is read as `stripe-setup` reads it (a live key needs `--live`).

use crate::setup::{Account, account};
use checkout::catalog::{Catalog, Product};
use checkout::products::{METADATA_MAX_QUANTITY, METADATA_ORDER, METADATA_SHIPPABLE, METADATA_TAG};
use checkout::stripe::Form;
use serde_json::{Value, json};
use std::collections::HashMap;

const USAGE: &str =
    "usage: cargo run -p dev -- catalog-push [--live]  (copies src/catalog.json to your Stripe account)";

/// A catalog product as it should be in Stripe.
pub struct Wanted {
    /// The Product's id (the catalog's).
    pub id: String,
    /// `name`, `description` (`None`: empty), `tax_code`.
    pub name: String,
    /// The description, unset when empty.
    pub description: Option<String>,
    /// The Stripe Tax code.
    pub tax_code: Option<String>,
    /// The metadata the shop reads: tag, shippable, max_quantity, order.
    pub metadata: Vec<(&'static str, String)>,
    /// The Price's `lookup_key`.
    pub lookup_key: String,
    /// The Price's amount and currency.
    pub unit_amount: i64,
    /// Lowercase currency.
    pub currency: String,
    /// The Price's `tax_behavior` (the catalog's tax setting).
    pub tax_behavior: &'static str,
}

/// The lookup key of a product's price.
pub fn lookup_key(product_id: &str) -> String {
    format!("shop:{product_id}")
}

/// What the catalog wants in Stripe, in display order.
pub fn wanted(catalog: &Catalog, tag: &str) -> Vec<Wanted> {
    catalog
        .products
        .iter()
        .enumerate()
        .map(|(i, p): (usize, &Product)| Wanted {
            id: p.id.clone(),
            name: p.name.clone(),
            description: Some(p.description.clone()).filter(|d| !d.is_empty()),
            tax_code: p.tax_code.clone(),
            metadata: vec![
                (METADATA_TAG, tag.to_string()),
                (METADATA_SHIPPABLE, p.shippable.to_string()),
                (METADATA_MAX_QUANTITY, p.max_quantity.to_string()),
                (METADATA_ORDER, i.to_string()),
            ],
            lookup_key: lookup_key(&p.id),
            unit_amount: p.unit_amount,
            currency: p.currency.clone(),
            tax_behavior: catalog.tax.behavior.as_str(),
        })
        .collect()
}

/// The emulator's products-and-prices fixture for the catalog: what a push would make, with
/// the price ids `price_shop_<id>` (so `CATALOG_SOURCE=stripe` works offline).
pub fn emulator_fixture(catalog: &Catalog, tag: &str) -> String {
    let wanted = wanted(catalog, tag);
    let products: Vec<Value> = wanted
        .iter()
        .map(|w| {
            let metadata: serde_json::Map<String, Value> =
                w.metadata.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
            json!({
                "id": w.id, "name": w.name, "description": w.description, "tax_code": w.tax_code,
                "metadata": metadata, "default_price": format!("price_shop_{}", w.id)
            })
        })
        .collect();
    let prices: Vec<Value> = wanted
        .iter()
        .map(|w| {
            json!({
                "id": format!("price_shop_{}", w.id), "product": w.id, "currency": w.currency,
                "unit_amount": w.unit_amount, "lookup_key": w.lookup_key, "tax_behavior": w.tax_behavior
            })
        })
        .collect();
    json!({ "products": products, "prices": prices }).to_string()
}

/// Runs the command (arguments after `catalog-push`); the exit status.
pub async fn main(args: &[String], vars: &HashMap<String, String>) -> i32 {
    match run(args, vars).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("catalog-push: {e}");
            1
        }
    }
}

async fn run(args: &[String], vars: &HashMap<String, String>) -> Result<(), String> {
    let mut live = false;
    for a in args {
        match a.as_str() {
            "--live" => live = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let Account { api, base, live: key_is_live } = account(vars, live)?;
    let tag = vars
        .get("CATALOG_TAG")
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| checkout::config::DEFAULT_CATALOG_TAG.to_string());
    let mode = if key_is_live { "LIVE" } else { "test" };
    println!("Stripe ({mode} mode, {base}): pushing src/catalog.json, metadata[shop]={tag}");
    let mut changes = 0;
    for w in wanted(checkout::catalog::catalog(), &tag) {
        let (product, price) = push_one(&api, &w).await?;
        if product != "unchanged" || price != "unchanged" {
            changes += 1;
        }
        println!("  {}: product {product}, price {price}", w.id);
    }
    println!("{changes} product(s) changed. Set CATALOG_SOURCE=stripe (and CATALOG_TAG={tag}) to sell them.");
    Ok(())
}

/// Makes one product and its price as wanted; says what it did to each.
async fn push_one(api: &crate::setup::Api, w: &Wanted) -> Result<(&'static str, &'static str), String> {
    let path = format!("/v1/products/{}", w.id);
    let mut fields = Form::new();
    fields.push("name", w.name.as_str()).push("description", w.description.as_deref().unwrap_or(""));
    if let Some(code) = &w.tax_code {
        fields.push("tax_code", code.as_str());
    }
    for (k, v) in &w.metadata {
        fields.push(format!("metadata[{k}]"), v.as_str());
    }
    let existing = api.find(&path, &Form::new()).await?;
    let product_did = match &existing {
        None => {
            let mut create = Form::new();
            create.push("id", w.id.as_str()).push("name", w.name.as_str());
            if let Some(d) = &w.description {
                create.push("description", d.as_str());
            }
            if let Some(code) = &w.tax_code {
                create.push("tax_code", code.as_str());
            }
            for (k, v) in &w.metadata {
                create.push(format!("metadata[{k}]"), v.as_str());
            }
            api.post("/v1/products", &create).await?;
            "created"
        }
        Some(p) if differs(p, w) => {
            fields.push("active", "true");
            api.post(&path, &fields).await?;
            "updated"
        }
        Some(_) => "unchanged",
    };
    let mut q = Form::new();
    q.push("lookup_keys[]", w.lookup_key.as_str());
    let found = api.get("/v1/prices", &q).await?;
    let current = found["data"].as_array().and_then(|d| d.first()).cloned();
    let fits = |p: &Value| {
        p["unit_amount"].as_i64() == Some(w.unit_amount) && p["currency"] == w.currency.as_str() && p["active"] == true
    };
    let (price_id, price_did) = match &current {
        Some(p) if fits(p) => (p["id"].as_str().unwrap_or_default().to_string(), "unchanged"),
        _ => {
            let mut create = Form::new();
            create
                .push("product", w.id.as_str())
                .push("currency", w.currency.as_str())
                .push("unit_amount", w.unit_amount.to_string())
                .push("lookup_key", w.lookup_key.as_str())
                .push("tax_behavior", w.tax_behavior);
            if current.is_some() {
                create.push("transfer_lookup_key", "true");
            }
            let made = api.post("/v1/prices", &create).await?;
            let id = made["id"].as_str().ok_or("Stripe answered a price without an id")?.to_string();
            (id, if current.is_some() { "replaced (new amount)" } else { "created" })
        }
    };
    let default_now = existing.as_ref().and_then(|p| p["default_price"].as_str()).map(String::from);
    if default_now.as_deref() != Some(price_id.as_str()) {
        let mut f = Form::new();
        f.push("default_price", price_id.as_str());
        api.post(&path, &f).await?;
    }
    if let Some(old) = current.as_ref().and_then(|p| p["id"].as_str()).filter(|old| *old != price_id) {
        let mut f = Form::new();
        f.push("active", "false");
        api.post(&format!("/v1/prices/{old}"), &f).await?;
    }
    let product_did = if product_did == "unchanged" && default_now.as_deref() != Some(price_id.as_str()) {
        "updated"
    } else {
        product_did
    };
    Ok((product_did, price_did))
}

/// Whether the Product in Stripe differs from what the catalog wants (archived, another name,
/// description, tax code, or a metadata value the shop reads).
fn differs(p: &Value, w: &Wanted) -> bool {
    p["active"] != true
        || p["name"] != w.name.as_str()
        || p["description"].as_str() != w.description.as_deref()
        || (w.tax_code.is_some() && p["tax_code"].as_str() != w.tax_code.as_deref())
        || w.metadata.iter().any(|(k, v)| p["metadata"][*k] != v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offline, `CATALOG_SOURCE=stripe` sells exactly catalog.json: the emulator seeded with
    /// [`emulator_fixture`] and copied by the shop gives the file's products, in its order, each
    /// priced by its `price_shop_<id>`.
    #[tokio::test]
    async fn the_seeded_emulator_sells_the_file_catalog() {
        let catalog = checkout::catalog::catalog();
        let emu = stripe_emulator::Emulator::start(stripe_emulator::Options {
            catalog_json: Some(emulator_fixture(catalog, "seed-test")),
            ..Default::default()
        })
        .await
        .unwrap();
        let db = std::env::temp_dir().join(format!("push-seed-{}.sqlite3", checkout::http::random_hex(8)));
        let vars: HashMap<&str, String> = HashMap::from([
            ("STRIPE_SECRET_KEY", "sk_test_fake_seed_key".to_string()),
            ("STRIPE_API_BASE", emu.base_url()),
            ("DATABASE_URL", format!("sqlite://{}", db.display())),
            ("SITE_URL", "http://localhost:3000".to_string()),
            ("CATALOG_SOURCE", "stripe".to_string()),
            ("CATALOG_TAG", "seed-test".to_string()),
        ]);
        let config = checkout::Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
        let app = checkout::App::new(config).unwrap();
        let offer = checkout::products::offer(&app).await.unwrap();
        let want: Vec<Product> = catalog
            .products
            .iter()
            .map(|p| Product { price: Some(format!("price_shop_{}", p.id)), ..p.clone() })
            .collect();
        assert_eq!(offer.on_sale, want);
        assert!(offer.withdrawn.is_empty());
        let _ = std::fs::remove_file(&db);
    }
}
