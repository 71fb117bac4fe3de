//! Reading request parameters the way Stripe does: closed key sets, strings, integers, URLs,
//! `expand[]`, and list pagination (`limit`, `starting_after`, `ending_before`).

use crate::error::ApiError;
use crate::form::as_list;
use crate::state::list_obj;
use serde_json::{Map, Value, json};

/// Refuses a key of `obj` that is not in `allowed` (`{prefix}[key]` names it).
pub(crate) fn check_keys(obj: &Map<String, Value>, allowed: &[&str], prefix: &str) -> Result<(), ApiError> {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::unknown(&format!("{prefix}[{k}]")));
        }
    }
    Ok(())
}

/// Refuses a top-level parameter not in `allowed`.
pub(crate) fn only_params(pairs: &[(String, String)], allowed: &[&str]) -> Result<(), ApiError> {
    for (k, _) in pairs {
        let top = k.split('[').next().unwrap_or("");
        if !allowed.contains(&top) {
            return Err(ApiError::unknown(top));
        }
    }
    Ok(())
}

/// `v[key]` as a string, if present.
pub(crate) fn str_at<'a>(v: &'a Value, key: &str, param: &str) -> Result<Option<&'a str>, ApiError> {
    match v.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(ApiError::invalid(param, format!("Invalid string: {param} must be a string"))),
    }
}

/// A non-negative integer parameter.
pub(crate) fn parse_int(s: &str, param: &str) -> Result<i64, ApiError> {
    if s.is_empty() {
        return Err(ApiError::empty(param));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 15 {
        return Err(ApiError::coded(
            "parameter_invalid_integer",
            param,
            format!("Invalid non-negative integer: '{s}' for {param}"),
        ));
    }
    s.parse().map_err(|_| ApiError::not_integer(param))
}

fn valid_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(r) => {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && s.len() <= 5000 && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// An optional http(s) URL parameter.
pub(crate) fn url_param(params: &Value, key: &str) -> Result<Option<String>, ApiError> {
    match str_at(params, key, key)? {
        None => Ok(None),
        Some("") => Err(ApiError::empty(key)),
        Some(u) if !valid_url(u) => Err(ApiError::coded("url_invalid", key, "Not a valid URL")),
        Some(u) => Ok(Some(u.to_string())),
    }
}

/// An optional boolean parameter (`true` / `false`).
pub(crate) fn bool_param(params: &Value, key: &str) -> Result<Option<bool>, ApiError> {
    match str_at(params, key, key)? {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(v) => Err(ApiError::invalid(key, format!("Invalid boolean: {v}"))),
    }
}

/// Validates `expand[]` against the allowed paths; returns the list.
pub(crate) fn expands(params: &Value, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    let Some(v) = params.get("expand") else {
        return Ok(vec![]);
    };
    let list = match v {
        Value::String(s) => vec![("0".to_string(), s.as_str())],
        _ => as_list(v)
            .ok_or_else(|| ApiError::invalid("expand", "Invalid array"))?
            .into_iter()
            .map(|(i, x)| (i, x.as_str().unwrap_or("")))
            .collect(),
    };
    let mut out = vec![];
    for (i, s) in list {
        if !allowed.contains(&s) {
            return Err(ApiError::invalid(&format!("expand[{i}]"), format!("This property cannot be expanded ({s}).")));
        }
        out.push(s.to_string());
    }
    Ok(out)
}

/// `limit`: 1..=100, default 10.
pub(crate) fn parse_limit(params: &Value) -> Result<usize, ApiError> {
    match params.get("limit").and_then(Value::as_str) {
        None => Ok(10),
        Some(s) => {
            let n: i64 = if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() && s.len() < 10 {
                s.parse().unwrap_or(0)
            } else {
                return Err(ApiError::not_integer("limit"));
            };
            if !(1..=100).contains(&n) {
                return Err(ApiError::invalid("limit", format!("Invalid limit: must be between 1 and 100 (got {n})")));
            }
            Ok(n as usize)
        }
    }
}

/// One page of `items` (newest first) as a list object.
pub(crate) fn paginate(items: Vec<Value>, params: &Value, url: &str) -> Result<Value, ApiError> {
    let limit = parse_limit(params)?;
    let mut items = items;
    let cursor = |key: &str, id: &str, items: &[Value]| {
        items.iter().position(|x| x["id"] == id).ok_or_else(|| ApiError::no_such(400, key, "object", id))
    };
    let after = params.get("starting_after").and_then(Value::as_str);
    let before = params.get("ending_before").and_then(Value::as_str);
    if after.is_some() && before.is_some() {
        return Err(ApiError::invalid(
            "ending_before",
            "You may only specify one of these parameters: ending_before, starting_after.",
        ));
    }
    if let Some(after) = after {
        let pos = cursor("starting_after", after, &items)?;
        items.drain(..=pos);
    }
    if let Some(before) = before {
        // Items are newest first: the page is the `limit` items just newer than `before`.
        let pos = cursor("ending_before", before, &items)?;
        items.truncate(pos);
        let has_more = items.len() > limit;
        let items = items.split_off(items.len().saturating_sub(limit));
        return Ok(list_obj(items, has_more, url));
    }
    let has_more = items.len() > limit;
    items.truncate(limit);
    Ok(list_obj(items, has_more, url))
}

/// `metadata[key]=value` as Stripe takes it: at most 50 keys, keys up to 40 characters, values
/// up to 500; an empty `metadata` is none.
pub(crate) fn metadata_param(params: &Value) -> Result<Map<String, Value>, ApiError> {
    let mut metadata = Map::new();
    match params.get("metadata") {
        None => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::Object(map)) => {
            if map.len() > 50 {
                return Err(ApiError::invalid("metadata", "You can specify up to 50 keys."));
            }
            for (k, v) in map {
                let p = format!("metadata[{k}]");
                let Some(s) = v.as_str() else {
                    return Err(ApiError::invalid(&p, "Metadata values must be strings."));
                };
                if k.chars().count() > 40 {
                    return Err(ApiError::invalid(&p, "Metadata keys can have up to 40 characters."));
                }
                if s.chars().count() > 500 {
                    return Err(ApiError::invalid(&p, "Metadata values can have up to 500 characters."));
                }
                metadata.insert(k.clone(), json!(s));
            }
        }
        Some(_) => return Err(ApiError::invalid("metadata", "Invalid hash")),
    }
    Ok(metadata)
}
