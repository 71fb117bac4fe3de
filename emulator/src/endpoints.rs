//! Webhook endpoints (`/v1/webhook_endpoints`) in Stripe's shapes: create (the only answer with
//! the endpoint's `secret`), list (newest first, cursors), retrieve and update. Each endpoint
//! signs its deliveries with its own secret and receives only its `enabled_events`; the
//! emulator delivers only to endpoints on this machine (`http`, a loopback host), the others are
//! kept and listed as Stripe would but never called (see [`crate::webhook`]).

use crate::error::ApiError;
use crate::form::as_list;
use crate::params::{bool_param, expands, metadata_param, paginate, str_at, url_param};
use crate::state::{Endpoint, State, now, rand_id};
use serde_json::{Map, Value, json};

/// Whether Stripe takes `name` in `enabled_events`: `*`, or a name of the spec's event enum
/// (the create operation's `enabled_events` items); without an enum in the spec, any
/// `word.word[.word...]` name.
pub(crate) fn known_event_type(name: &str) -> bool {
    let names = &crate::spec::document()["paths"]["/v1/webhook_endpoints"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
        ["schema"]["properties"]["enabled_events"]["items"]["enum"];
    match names.as_array() {
        Some(names) => names.iter().any(|n| n == name),
        None => {
            name == "*"
                || (name.split('.').count() >= 2
                    && name.split('.').all(|w| {
                        !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    }))
        }
    }
}

/// `enabled_events[]`: a non-empty list of known event types.
fn enabled_events(params: &Value) -> Result<Option<Vec<Value>>, ApiError> {
    let Some(v) = params.get("enabled_events") else {
        return Ok(None);
    };
    if v.as_str() == Some("") {
        return Err(ApiError::empty("enabled_events"));
    }
    let list = as_list(v).filter(|_| !v.is_string()).ok_or_else(|| {
        ApiError::invalid("enabled_events", "Invalid array: enabled_events must be an array of event types")
    })?;
    let mut out = Vec::with_capacity(list.len());
    for (i, x) in list {
        let param = format!("enabled_events[{i}]");
        let name = x.as_str().ok_or_else(|| ApiError::invalid(&param, "Invalid string"))?;
        if !known_event_type(name) {
            return Err(ApiError::invalid(&param, format!("Invalid {param}: unknown event type '{name}'")));
        }
        if !out.iter().any(|e: &Value| e == name) {
            out.push(json!(name));
        }
    }
    if out.is_empty() {
        return Err(ApiError::invalid("enabled_events", "enabled_events must name at least one event type"));
    }
    Ok(Some(out))
}

/// `description`: a string, `""` unsets it.
fn description(params: &Value) -> Result<Option<Value>, ApiError> {
    Ok(str_at(params, "description", "description")?.map(|d| if d.is_empty() { Value::Null } else { json!(d) }))
}

/// The object as listed and retrieved (without the secret).
fn public(e: &Endpoint) -> Value {
    e.obj.clone()
}

fn find<'a>(st: &'a mut State, id: &str) -> Result<&'a mut Endpoint, ApiError> {
    st.webhook_endpoints
        .iter_mut()
        .find(|e| e.obj["id"] == id)
        .ok_or_else(|| ApiError::no_such(404, "id", "webhook endpoint", id))
}

/// `POST /v1/webhook_endpoints`.
pub(crate) fn create(st: &mut State, params: &Value) -> Result<Value, ApiError> {
    expands(params, &[])?;
    let url = url_param(params, "url")?.ok_or_else(|| ApiError::missing("url"))?;
    let events = enabled_events(params)?.ok_or_else(|| ApiError::missing("enabled_events"))?;
    let api_version = match str_at(params, "api_version", "api_version")? {
        None => Value::Null,
        Some("") => return Err(ApiError::empty("api_version")),
        Some(v) => json!(v),
    };
    bool_param(params, "connect")?;
    let metadata: Map<String, Value> = metadata_param(params)?.into_iter().filter(|(_, v)| v != "").collect();
    let obj = json!({
        "id": rand_id("we_", 24), "object": "webhook_endpoint", "api_version": api_version,
        "application": null, "created": now(), "description": description(params)?.unwrap_or(Value::Null),
        "enabled_events": events, "livemode": false, "metadata": metadata, "status": "enabled", "url": url
    });
    let secret = rand_id("whsec_", 32);
    let local = crate::guard::is_loopback_url(&url);
    let mut answer = obj.clone();
    answer["secret"] = json!(secret);
    st.webhook_endpoints.push(Endpoint { obj, secret, local });
    Ok(answer)
}

/// `GET /v1/webhook_endpoints`: newest first.
pub(crate) fn list(st: &State, params: &Value) -> Result<Value, ApiError> {
    expands(params, &[])?;
    let items: Vec<Value> = st.webhook_endpoints.iter().rev().map(public).collect();
    paginate(items, params, "/v1/webhook_endpoints")
}

/// `GET /v1/webhook_endpoints/{id}`.
pub(crate) fn retrieve(st: &mut State, id: &str, params: &Value) -> Result<Value, ApiError> {
    expands(params, &[])?;
    find(st, id).map(|e| public(e))
}

/// `POST /v1/webhook_endpoints/{id}`: `enabled_events`, `url`, `disabled`, `description`,
/// `metadata` (a key set to `""` is removed, `metadata=""` removes them all). `api_version`
/// cannot change (the spec has no such parameter).
pub(crate) fn update(st: &mut State, id: &str, params: &Value) -> Result<Value, ApiError> {
    expands(params, &[])?;
    let events = enabled_events(params)?;
    let url = url_param(params, "url")?;
    let disabled = bool_param(params, "disabled")?;
    let description = description(params)?;
    let metadata = match params.get("metadata") {
        None => None,
        Some(Value::String(s)) if s.is_empty() => Some(None),
        Some(_) => Some(Some(metadata_param(params)?)),
    };
    let e = find(st, id)?;
    if let Some(events) = events {
        e.obj["enabled_events"] = Value::Array(events);
    }
    if let Some(url) = url {
        e.local = crate::guard::is_loopback_url(&url);
        e.obj["url"] = json!(url);
    }
    if let Some(disabled) = disabled {
        e.obj["status"] = json!(if disabled { "disabled" } else { "enabled" });
    }
    if let Some(d) = description {
        e.obj["description"] = d;
    }
    match metadata {
        None => {}
        Some(None) => e.obj["metadata"] = json!({}),
        Some(Some(changes)) => {
            let current = e.obj["metadata"].as_object_mut().expect("metadata is an object");
            for (k, v) in changes {
                if v == "" {
                    current.remove(&k);
                } else {
                    current.insert(k, v);
                }
            }
        }
    }
    Ok(public(e))
}

/// The endpoints an event of type `typ` goes to: their ids.
pub(crate) fn targets(st: &State, typ: &str) -> Vec<String> {
    st.webhook_endpoints
        .iter()
        .filter(|e| e.receives(typ))
        .filter_map(|e| e.obj["id"].as_str().map(String::from))
        .collect()
}
