//! Stripe's OpenAPI contract, checked both ways: requests to `/v1` are refused the way Stripe
//! refuses them (unknown names, wrong types, enum values, over-long strings) before the
//! emulator reads them, and tests validate its answers against the response schemas.
//!
//! The schemas are a slice of `stripe/openapi` (`spec/spec-slice.json`, see `spec/README.md`),
//! version 2026-07-29.dahlia, adjusted on load to [`crate::API_VERSION`]: Checkout Session
//! creation no longer takes `payment_method_types` (since 2026-09-30.endive), `ui_mode`
//! also names `form`, and a webhook endpoint's `api_version` may be [`crate::API_VERSION`] (the
//! webhook endpoint operations were cut from 2026-09-30.endive's spec). A small validator reads
//! them: `$ref`, `type`, `nullable`, `anyOf`, `enum`, `maxLength`, `required`, `properties`,
//! `additionalProperties`, `items`, and
//! `pattern` when it is a `^prefix`.

use crate::error::ApiError;
use crate::form::{as_list, to_tree};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::OnceLock;

/// The spec slice as shipped (`spec/spec-slice.json`).
pub const SPEC_SLICE: &str = include_str!("../spec/spec-slice.json");

/// The spec, parsed once and adjusted to [`crate::API_VERSION`].
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc: Value = serde_json::from_str(SPEC_SLICE).expect("spec/spec-slice.json is JSON");
        let create = &mut doc["paths"]["/v1/checkout/sessions"]["post"]["requestBody"]["content"]
            ["application/x-www-form-urlencoded"]["schema"]["properties"];
        if let Some(props) = create.as_object_mut() {
            props.remove("payment_method_types");
        }
        if let Some(e) = create["ui_mode"]["enum"].as_array_mut() {
            e.push("form".into());
        }
        // The webhook endpoint operations come from 2026-09-30.endive's spec, whose `api_version`
        // enum ends there; Stripe takes newer versions (`x-stripeBypassValidation`).
        let versions = &mut doc["paths"]["/v1/webhook_endpoints"]["post"]["requestBody"]["content"]
            ["application/x-www-form-urlencoded"]["schema"]["properties"]["api_version"]["enum"];
        if let Some(e) = versions.as_array_mut()
            && !e.iter().any(|v| v == crate::API_VERSION)
        {
            e.push(crate::API_VERSION.into());
        }
        doc
    })
}

/// `#/components/schemas/{name}`.
pub fn schema(name: &str) -> Option<&'static Value> {
    document()["components"]["schemas"].get(name)
}

/// The schema of the 200 answer of `method` (`get`, `post`) on `path` (a template of the
/// spec, e.g. `/v1/checkout/sessions/{session}/line_items`).
pub fn response_schema(method: &str, path: &str) -> Option<&'static Value> {
    document()["paths"][path][method.to_ascii_lowercase()]["responses"]["200"]["content"]["application/json"]
        .get("schema")
}

/// Validates a JSON answer against `schema`; returns every mismatch as `path: problem`
/// (empty when it conforms). Objects with `properties` and no `additionalProperties` are
/// closed: an unknown property is a mismatch. Stubs (`x-slice`) only check their type.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    json_check(schema, value, "$", &mut errors);
    errors
}

fn resolve(s: &Value) -> &Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/components/schemas/")
            .and_then(schema)
            .unwrap_or_else(|| panic!("unresolved reference {r} in the spec slice")),
        None => s,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn json_check(s: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let s = resolve(s);
    if v.is_null() {
        if s["nullable"] != true {
            errors.push(format!("{at}: null where the schema is not nullable"));
        }
        return;
    }
    if let Some(branches) = s["anyOf"].as_array() {
        let mut best: Option<Vec<String>> = None;
        for b in branches {
            let mut e = Vec::new();
            json_check(b, v, at, &mut e);
            if e.is_empty() {
                return;
            }
            if best.as_ref().is_none_or(|x| e.len() < x.len()) {
                best = Some(e);
            }
        }
        errors.push(format!("{at}: matches no anyOf branch"));
        errors.extend(best.unwrap_or_default());
        return;
    }
    if let Some(t) = s["type"].as_str() {
        let got = type_name(v);
        if got != t && !(t == "number" && got == "integer") {
            errors.push(format!("{at}: {got} where the schema wants {t}"));
            return;
        }
    }
    if let Some(e) = s["enum"].as_array()
        && !e.contains(v)
    {
        errors.push(format!("{at}: {v} is not one of {}", Value::Array(e.clone())));
    }
    if let (Some(max), Some(x)) = (s["maxLength"].as_u64(), v.as_str())
        && x.chars().count() as u64 > max
    {
        errors.push(format!("{at}: longer than {max} characters"));
    }
    if let (Some(p), Some(x)) = (s["pattern"].as_str(), v.as_str())
        && let Some(prefix) = p.strip_prefix('^')
        && !x.starts_with(prefix)
    {
        errors.push(format!("{at}: {x:?} does not match {p}"));
    }
    if let (Some(items), Some(a)) = (s.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            json_check(items, x, &format!("{at}[{i}]"), errors);
        }
    }
    let Some(o) = v.as_object() else {
        return;
    };
    if s.get("x-slice").is_some() {
        return;
    }
    for r in s["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !o.contains_key(r) {
            errors.push(format!("{at}: missing required property {r}"));
        }
    }
    let props = s["properties"].as_object();
    for (k, x) in o {
        match (props.and_then(|p| p.get(k)), s.get("additionalProperties")) {
            (Some(ps), _) => json_check(ps, x, &format!("{at}.{k}"), errors),
            (None, Some(Value::Bool(true))) => {}
            (None, Some(extra @ Value::Object(_))) => json_check(extra, x, &format!("{at}.{k}"), errors),
            (None, _) if props.is_some() || s["additionalProperties"] == false => {
                errors.push(format!("{at}: unknown property {k}"));
            }
            (None, _) => {}
        }
    }
}

/// The request schema of an operation: the form body of a POST, or the query parameters of a
/// GET as one closed object. `None` when the spec slice does not describe the route.
fn request_schema(method: &str, path: &str) -> Option<Cow<'static, Value>> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let (_, op) = document()["paths"].as_object()?.iter().find_map(|(template, ops)| {
        let t: Vec<&str> = template.split('/').collect();
        let fits = t.len() == segs.len()
            && t.iter().zip(&segs).all(|(a, b)| a == b || (a.starts_with('{') && a.ends_with('}')));
        let op = ops.get(method.to_ascii_lowercase())?;
        fits.then_some((template, op))
    })?;
    if method == "POST" {
        return op["requestBody"]["content"]["application/x-www-form-urlencoded"].get("schema").map(Cow::Borrowed);
    }
    let mut props = Map::new();
    for p in op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "query") {
        props.insert(p["name"].as_str()?.to_string(), p["schema"].clone());
    }
    Some(Cow::Owned(serde_json::json!({ "type": "object", "properties": props, "additionalProperties": false })))
}

/// Whether Stripe's spec accepts these form (or query) parameters for `method` on `path` —
/// the same check every `/v1` request to the emulator passes; `Err` names the refused
/// parameter and why. For integrations' tests: the exact form they send, checked by name,
/// type, enum, length and required fields.
pub fn check_form(method: &str, path: &str, pairs: &[(String, String)]) -> Result<(), String> {
    check_request(method, path, pairs).map_err(|e| format!("{}: {}", e.param.unwrap_or_default(), e.message))
}

/// Refuses a `/v1` request whose parameters Stripe's spec refuses, with Stripe's error:
/// `parameter_unknown`, `parameter_missing`, `parameter_invalid_integer`, or a plain
/// `invalid_request_error` for a wrong enum value, boolean, type or length. An empty value is
/// Stripe's "unset" and is left to the route. Routes the slice does not describe pass.
pub(crate) fn check_request(method: &str, path: &str, pairs: &[(String, String)]) -> Result<(), ApiError> {
    let Some(schema) = request_schema(method, path) else {
        return Ok(());
    };
    let Ok(tree) = to_tree(pairs) else {
        return Ok(()); // a structural conflict: the route names it
    };
    let Value::Object(top) = &tree else {
        return Ok(());
    };
    form_object(&schema, top, None)
}

fn child(parent: Option<&str>, key: &str) -> String {
    match parent {
        None => key.to_string(),
        Some(p) => format!("{p}[{key}]"),
    }
}

fn form_object(s: &Value, o: &Map<String, Value>, at: Option<&str>) -> Result<(), ApiError> {
    let props = s["properties"].as_object();
    for (k, v) in o {
        let param = child(at, k);
        match (props.and_then(|p| p.get(k)), s.get("additionalProperties")) {
            (Some(ps), _) => form_check(ps, v, &param)?,
            (None, Some(extra @ Value::Object(_))) => form_check(extra, v, &param)?,
            (None, Some(Value::Bool(true))) => {}
            (None, _) if props.is_some() || s["additionalProperties"] == false => {
                return Err(ApiError::unknown(&param));
            }
            (None, _) => {}
        }
    }
    for r in s["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !o.contains_key(r) {
            return Err(ApiError::missing(&child(at, r)));
        }
    }
    Ok(())
}

/// One form value (strings at the leaves) against its schema.
fn form_check(s: &Value, v: &Value, param: &str) -> Result<(), ApiError> {
    let s = resolve(s);
    if v.as_str() == Some("") {
        return Ok(());
    }
    if let Some(branches) = s["anyOf"].as_array() {
        let mut first = None;
        for b in branches {
            match form_check(b, v, param) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        return first.map_or(Ok(()), Err);
    }
    match (s["type"].as_str(), v) {
        (Some("object"), Value::Object(o)) => form_object(s, o, Some(param)),
        (Some("object"), _) => Err(ApiError::invalid(param, format!("Invalid hash: {param} must be an object"))),
        (Some("array"), _) => {
            let Some(list) = as_list(v).filter(|_| !v.is_string()) else {
                return Err(ApiError::invalid(param, format!("Invalid array: {param} must be an array")));
            };
            list.into_iter().try_for_each(|(i, x)| form_check(&s["items"], x, &format!("{param}[{i}]")))
        }
        (_, Value::String(x)) => form_scalar(s, x, param),
        (Some(t), _) => Err(ApiError::invalid(param, format!("Invalid {t}: {param} must be a {t}, not a hash"))),
        (None, _) => Ok(()),
    }
}

fn form_scalar(s: &Value, x: &str, param: &str) -> Result<(), ApiError> {
    match s["type"].as_str() {
        Some("integer") if x.parse::<i64>().is_err() => {
            return Err(ApiError::coded("parameter_invalid_integer", param, format!("Invalid integer: {x}")));
        }
        Some("number") if x.parse::<f64>().is_err() => {
            return Err(ApiError::invalid(param, format!("Invalid decimal: {x}")));
        }
        Some("boolean") if x != "true" && x != "false" => {
            return Err(ApiError::invalid(param, format!("Invalid boolean: {x}")));
        }
        _ => {}
    }
    if let Some(e) = s["enum"].as_array()
        && !e.iter().any(|a| a == x)
    {
        let names: Vec<&str> = e.iter().filter_map(Value::as_str).filter(|a| !a.is_empty()).collect();
        let listed = match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{}, or {last}", rest.join(", ")),
            _ => names.join(""),
        };
        return Err(ApiError::invalid(param, format!("Invalid {param}: must be one of {listed}")));
    }
    if let Some(max) = s["maxLength"].as_u64()
        && x.chars().count() as u64 > max
    {
        let shown: String = x.chars().take(20).collect();
        return Err(ApiError::invalid(param, format!("Invalid string: {shown}...; must be at most {max} characters")));
    }
    Ok(())
}
