//! Products and Prices (`/v1/products`, `/v1/prices`) in Stripe's shapes: create (a product may
//! name its own `id`; a price may take a `lookup_key`, moved from another price with
//! `transfer_lookup_key`), retrieve (`expand[]=default_price`, `expand[]=product`), update,
//! list (newest first, `active`, `ids[]`, `lookup_keys[]`, `product`, `currency`, `type`,
//! cursors) and `DELETE /v1/products/{id}` (only without prices, as Stripe). Each change is a
//! `product.*` / `price.*` event, delivered like the others.

use crate::error::ApiError;
use crate::form::as_list;
use crate::money::CURRENCIES;
use crate::params::{bool_param, expands, metadata_param, paginate, parse_int, str_at};
use crate::state::{Inner, State, now, price_obj, product_obj, rand_id};
use serde_json::{Map, Value, json};

/// What a change did: the object answered and the events it made.
pub(crate) type Changed = (Value, Vec<String>);

/// A list parameter (`ids[]`, `lookup_keys[]`) as strings.
fn str_list<'a>(params: &'a Value, key: &str) -> Result<Option<Vec<&'a str>>, ApiError> {
    match params.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.as_str()])),
        Some(v) => {
            let list = as_list(v).ok_or_else(|| ApiError::invalid(key, "Invalid array"))?;
            Ok(Some(list.into_iter().filter_map(|(_, x)| x.as_str()).collect()))
        }
    }
}

/// Applies `metadata[k]=v` changes (`""` removes a key, `metadata=""` removes all).
fn merge_metadata(obj: &mut Value, params: &Value) -> Result<(), ApiError> {
    match params.get("metadata") {
        None => {}
        Some(Value::String(s)) if s.is_empty() => obj["metadata"] = json!({}),
        Some(_) => {
            let changes = metadata_param(params)?;
            let current = obj["metadata"].as_object_mut().expect("metadata is an object");
            for (k, v) in changes {
                if v == "" {
                    current.remove(&k);
                } else {
                    current.insert(k, v);
                }
            }
        }
    }
    Ok(())
}

/// The product fields create and update share: `name`, `description`, `images`, `shippable`,
/// `tax_code`, `url`, `unit_label`, `statement_descriptor`, `active` (`""` unsets where Stripe
/// allows it).
fn product_fields(p: &mut Value, params: &Value) -> Result<(), ApiError> {
    if let Some(name) = str_at(params, "name", "name")? {
        if name.trim().is_empty() {
            return Err(ApiError::empty("name"));
        }
        p["name"] = json!(name);
    }
    for key in ["description", "tax_code", "url", "unit_label", "statement_descriptor"] {
        if let Some(v) = str_at(params, key, key)? {
            p[key] = if v.is_empty() { Value::Null } else { json!(v) };
        }
    }
    if let Some(v) = params.get("images") {
        let images: Vec<Value> = match v {
            Value::String(s) if s.is_empty() => vec![],
            _ => as_list(v)
                .ok_or_else(|| ApiError::invalid("images", "Invalid array"))?
                .into_iter()
                .map(|(_, x)| x.clone())
                .collect(),
        };
        if images.len() > 8 {
            return Err(ApiError::invalid("images", "You may only specify up to 8 images."));
        }
        p["images"] = Value::Array(images);
    }
    for key in ["shippable", "active"] {
        if let Some(b) = bool_param(params, key)? {
            p[key] = json!(b);
        }
    }
    merge_metadata(p, params)
}

/// `POST /v1/products`: `id` (unique), `name`, the shared fields, `default_price_data`.
pub(crate) fn create_product(inner: &Inner, st: &mut State, params: &Value) -> Result<Changed, ApiError> {
    expands(params, &["default_price"])?;
    let id = match str_at(params, "id", "id")? {
        Some("") => return Err(ApiError::empty("id")),
        Some(id) if st.products.contains_key(id) => {
            return Err(ApiError::coded("resource_already_exists", "id", "Product already exists."));
        }
        Some(id) => id.to_string(),
        None => rand_id("prod_", 14),
    };
    if str_at(params, "name", "name")?.is_none() {
        return Err(ApiError::missing("name"));
    }
    let mut p = product_obj(&json!({ "id": id, "created": now() }));
    product_fields(&mut p, params)?;
    st.products.insert(id.clone(), p.clone());
    let default_price = match params.get("default_price_data") {
        None => None,
        Some(d) => {
            let mut price_params = d.clone();
            price_params["product"] = json!(id);
            match build_price(st, &price_params, "default_price_data") {
                Ok(price) => Some(price),
                Err(e) => {
                    st.products.remove(&id);
                    return Err(e);
                }
            }
        }
    };
    if let Some(price) = &default_price {
        p["default_price"] = price["id"].clone();
        st.products.insert(id.clone(), p.clone());
    }
    st.catalog_order.push(id.clone());
    let mut events = vec![crate::state::new_event(inner, st, "product.created", p)];
    if let Some(price) = default_price {
        events.extend(insert_price(inner, st, price, false)?);
    }
    Ok((render_product(st, &id, &expands(params, &["default_price"])?), events))
}

/// `POST /v1/products/{id}`: the shared fields and `default_price` (an active price of this
/// product).
pub(crate) fn update_product(inner: &Inner, st: &mut State, id: &str, params: &Value) -> Result<Changed, ApiError> {
    let expand = expands(params, &["default_price"])?;
    let mut p = st.products.get(id).cloned().ok_or_else(|| ApiError::no_such(404, "id", "product", id))?;
    product_fields(&mut p, params)?;
    if let Some(price) = str_at(params, "default_price", "default_price")? {
        let found = st.prices.get(price).filter(|x| x["product"] == id);
        match found {
            None => return Err(ApiError::no_such(400, "default_price", "price", price)),
            Some(x) if x["active"] != true => {
                return Err(ApiError::invalid("default_price", "The default price must be active."));
            }
            Some(_) => p["default_price"] = json!(price),
        }
    }
    p["updated"] = json!(now());
    st.products.insert(id.to_string(), p.clone());
    let ev = crate::state::new_event(inner, st, "product.updated", p);
    Ok((render_product(st, id, &expand), vec![ev]))
}

/// `DELETE /v1/products/{id}`: only a product without prices, as Stripe.
pub(crate) fn delete_product(inner: &Inner, st: &mut State, id: &str) -> Result<Changed, ApiError> {
    let p = st.products.get(id).cloned().ok_or_else(|| ApiError::no_such(404, "id", "product", id))?;
    if st.prices.values().any(|x| x["product"] == id) {
        return Err(ApiError::invalid(
            "id",
            "This product cannot be deleted because it has one or more user-created prices.",
        ));
    }
    st.products.remove(id);
    st.catalog_order.retain(|x| x != id);
    let ev = crate::state::new_event(inner, st, "product.deleted", p);
    Ok((json!({ "id": id, "object": "product", "deleted": true }), vec![ev]))
}

/// A product as answered, with `default_price` expanded when asked.
fn render_product(st: &State, id: &str, expand: &[String]) -> Value {
    let mut p = st.products.get(id).cloned().unwrap_or(Value::Null);
    if expand.iter().any(|e| e == "default_price")
        && let Some(price) = p["default_price"].as_str().and_then(|x| st.prices.get(x))
    {
        p["default_price"] = price.clone();
    }
    p
}

/// `GET /v1/products/{id}`.
pub(crate) fn retrieve_product(st: &State, id: &str, params: &Value) -> Result<Value, ApiError> {
    let expand = expands(params, &["default_price"])?;
    if !st.products.contains_key(id) {
        return Err(ApiError::no_such(404, "id", "product", id));
    }
    Ok(render_product(st, id, &expand))
}

/// `GET /v1/products`: newest first; `active`, `ids[]`, `shippable`; cursors.
pub(crate) fn list_products(st: &State, params: &Value) -> Result<Value, ApiError> {
    let expand = expands(params, &["data.default_price"])?;
    let active = bool_param(params, "active")?;
    let shippable = bool_param(params, "shippable")?;
    let ids = str_list(params, "ids")?;
    let keep = |p: &Value| {
        active.is_none_or(|a| p["active"] == a)
            && shippable.is_none_or(|s| p["shippable"] == s)
            && ids.as_ref().is_none_or(|ids| ids.iter().any(|i| p["id"] == *i))
    };
    let inner_expand: Vec<String> = expand.iter().map(|e| e.trim_start_matches("data.").to_string()).collect();
    let items: Vec<Value> = st
        .catalog_order
        .iter()
        .rev()
        .filter(|id| st.products.get(*id).is_some_and(keep))
        .map(|id| render_product(st, id, &inner_expand))
        .collect();
    paginate(items, params, "/v1/products")
}

/// A new price from create parameters (`param` prefixes error names), not stored yet.
fn build_price(st: &State, params: &Value, prefix: &str) -> Result<Value, ApiError> {
    let name = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}[{k}]") };
    let currency = match str_at(params, "currency", &name("currency"))? {
        None => return Err(ApiError::missing(&name("currency"))),
        Some(c) if !CURRENCIES.iter().any(|x| x.0 == c) => {
            return Err(ApiError::invalid(&name("currency"), format!("Invalid currency: {c}")));
        }
        Some(c) => c,
    };
    let product = match (params.get("product"), params.get("product_data")) {
        (Some(_), Some(_)) => return Err(ApiError::exclusive("product", "product", "product_data")),
        (None, None) => return Err(ApiError::missing("product")),
        (Some(p), None) => {
            let id = p.as_str().unwrap_or_default();
            if !st.products.contains_key(id) {
                return Err(ApiError::no_such(400, "product", "product", id));
            }
            id.to_string()
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid("product_data", "The Stripe emulator needs an existing `product`."));
        }
    };
    let unit = match str_at(params, "unit_amount", &name("unit_amount"))? {
        None => return Err(ApiError::missing(&name("unit_amount"))),
        Some(s) => parse_int(s, &name("unit_amount"))?,
    };
    let mut price = price_obj(&rand_id("price_", 24), &product, currency, unit, true);
    price["created"] = json!(now());
    if let Some(b) = bool_param(params, "active")? {
        price["active"] = json!(b);
    }
    for key in ["lookup_key", "nickname", "tax_behavior"] {
        if let Some(v) = str_at(params, key, &name(key))? {
            price[key] = if v.is_empty() { Value::Null } else { json!(v) };
        }
    }
    if let Some(r) = params.get("recurring") {
        let interval = str_at(r, "interval", &name("recurring[interval]"))?
            .ok_or_else(|| ApiError::missing(&name("recurring[interval]")))?;
        let count = match str_at(r, "interval_count", &name("recurring[interval_count]"))? {
            Some(c) => parse_int(c, &name("recurring[interval_count]"))?,
            None => 1,
        };
        price["type"] = json!("recurring");
        price["recurring"] = json!({
            "interval": interval, "interval_count": count, "meter": null, "usage_type": "licensed"
        });
    }
    let mut metadata = Map::new();
    for (k, v) in metadata_param(params)? {
        if v != "" {
            metadata.insert(k, v);
        }
    }
    price["metadata"] = Value::Object(metadata);
    Ok(price)
}

/// Gives lookup key `key` to price `to`: refused while another price holds it unless
/// `transfer` (then that price loses it: its `price.updated` event is returned).
fn claim_lookup_key(
    inner: &Inner,
    st: &mut State,
    key: &str,
    to: &str,
    transfer: bool,
) -> Result<Vec<String>, ApiError> {
    let holder = st.prices.values().find(|x| x["lookup_key"] == key && x["id"] != to).map(|x| x["id"].clone());
    let Some(holder) = holder.and_then(|h| h.as_str().map(String::from)) else {
        return Ok(vec![]);
    };
    if !transfer {
        return Err(ApiError::invalid(
            "lookup_key",
            format!(
                "A price (`{holder}`) already uses that lookup key. Use `transfer_lookup_key` to move it to this price."
            ),
        ));
    }
    let old = st.prices.get_mut(&holder).expect("holder exists");
    old["lookup_key"] = Value::Null;
    let old = old.clone();
    Ok(vec![crate::state::new_event(inner, st, "price.updated", old)])
}

/// Stores a new price (its lookup key claimed, see [`claim_lookup_key`]); returns the events.
fn insert_price(inner: &Inner, st: &mut State, price: Value, transfer: bool) -> Result<Vec<String>, ApiError> {
    let id = price["id"].as_str().unwrap_or_default().to_string();
    let mut events = match price["lookup_key"].as_str() {
        Some(key) => claim_lookup_key(inner, st, key, &id, transfer)?,
        None => vec![],
    };
    st.prices.insert(id.clone(), price.clone());
    st.catalog_order.push(id);
    events.push(crate::state::new_event(inner, st, "price.created", price));
    Ok(events)
}

/// `POST /v1/prices`: `currency`, `product`, `unit_amount`, `active`, `lookup_key` (+
/// `transfer_lookup_key`), `nickname`, `tax_behavior`, `recurring`, `metadata`.
pub(crate) fn create_price(inner: &Inner, st: &mut State, params: &Value) -> Result<Changed, ApiError> {
    let expand = expands(params, &["product"])?;
    let price = build_price(st, params, "")?;
    let transfer = bool_param(params, "transfer_lookup_key")?.unwrap_or(false);
    let id = price["id"].as_str().unwrap_or_default().to_string();
    let events = insert_price(inner, st, price, transfer)?;
    Ok((render_price(st, &id, &expand), events))
}

/// `POST /v1/prices/{price}`: `active`, `lookup_key` (+ `transfer_lookup_key`), `nickname`,
/// `tax_behavior`, `metadata`. The amount of a price never changes.
pub(crate) fn update_price(inner: &Inner, st: &mut State, id: &str, params: &Value) -> Result<Changed, ApiError> {
    let expand = expands(params, &["product"])?;
    let mut price = st.prices.get(id).cloned().ok_or_else(|| ApiError::no_such(404, "price", "price", id))?;
    if let Some(b) = bool_param(params, "active")? {
        price["active"] = json!(b);
    }
    for key in ["nickname", "tax_behavior"] {
        if let Some(v) = str_at(params, key, key)? {
            price[key] = if v.is_empty() { Value::Null } else { json!(v) };
        }
    }
    merge_metadata(&mut price, params)?;
    let mut events = vec![];
    if let Some(key) = str_at(params, "lookup_key", "lookup_key")? {
        if !key.is_empty() {
            let transfer = bool_param(params, "transfer_lookup_key")?.unwrap_or(false);
            events = claim_lookup_key(inner, st, key, id, transfer)?;
        }
        price["lookup_key"] = if key.is_empty() { Value::Null } else { json!(key) };
    }
    st.prices.insert(id.to_string(), price.clone());
    events.push(crate::state::new_event(inner, st, "price.updated", price));
    Ok((render_price(st, id, &expand), events))
}

/// A price as answered, with `product` expanded when asked.
fn render_price(st: &State, id: &str, expand: &[String]) -> Value {
    let mut price = st.prices.get(id).cloned().unwrap_or(Value::Null);
    if expand.iter().any(|e| e == "product")
        && let Some(p) = price["product"].as_str().and_then(|x| st.products.get(x))
    {
        price["product"] = p.clone();
    }
    price
}

/// `GET /v1/prices/{price}`.
pub(crate) fn retrieve_price(st: &State, id: &str, params: &Value) -> Result<Value, ApiError> {
    let expand = expands(params, &["product"])?;
    if !st.prices.contains_key(id) {
        return Err(ApiError::no_such(404, "id", "price", id));
    }
    Ok(render_price(st, id, &expand))
}

/// `GET /v1/prices`: newest first; `active` (as Stripe, active prices unless `active=false`),
/// `currency`, `lookup_keys[]` (up to 10), `product`, `type`; cursors.
pub(crate) fn list_prices(st: &State, params: &Value) -> Result<Value, ApiError> {
    let expand = expands(params, &["data.product"])?;
    let active = Some(bool_param(params, "active")?.unwrap_or(true));
    let currency = str_at(params, "currency", "currency")?;
    let product = str_at(params, "product", "product")?;
    let typ = str_at(params, "type", "type")?;
    let keys = str_list(params, "lookup_keys")?;
    if keys.as_ref().is_some_and(|k| k.len() > 10) {
        return Err(ApiError::invalid("lookup_keys", "You can specify up to 10 lookup_keys."));
    }
    let keep = |x: &Value| {
        active.is_none_or(|a| x["active"] == a)
            && currency.is_none_or(|c| x["currency"] == c)
            && product.is_none_or(|p| x["product"] == p)
            && typ.is_none_or(|t| x["type"] == t)
            && keys.as_ref().is_none_or(|k| k.iter().any(|k| x["lookup_key"] == *k))
    };
    let inner_expand: Vec<String> = expand.iter().map(|e| e.trim_start_matches("data.").to_string()).collect();
    let items: Vec<Value> = st
        .catalog_order
        .iter()
        .rev()
        .filter(|id| st.prices.get(*id).is_some_and(keep))
        .map(|id| render_price(st, id, &inner_expand))
        .collect();
    paginate(items, params, "/v1/prices")
}
