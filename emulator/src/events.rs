//! `GET /v1/events`: every event the emulator created, newest first, with Stripe's filters
//! (`type`, `types[]`, `created[gt|gte|lt|lte]`, `delivery_success`) and cursors
//! (`starting_after`, `ending_before`, `limit`). A cursor is placed by its position among
//! all events, so it stays valid whatever the filters keep.

use crate::error::ApiError;
use crate::state::{State, list_obj};
use serde_json::Value;

/// Answers one list request.
pub(crate) fn list(st: &State, params: &Value) -> Result<Value, ApiError> {
    let limit = crate::params::parse_limit(params)?;
    let typ = params.get("type").and_then(Value::as_str);
    let types: Vec<&str> = match params.get("types") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(Value::Object(o)) => o.values().filter_map(Value::as_str).collect(),
        Some(_) => return Err(ApiError::invalid("types", "Invalid array")),
    };
    if typ.is_some() && !types.is_empty() {
        return Err(ApiError::invalid("types", "You may only specify one of these parameters: type, types."));
    }
    let created = created_filter(params.get("created"))?;
    let delivered = match params.get("delivery_success").and_then(Value::as_str) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(x) => return Err(ApiError::invalid("delivery_success", format!("Invalid boolean: {x}"))),
    };
    // All events, newest first, each with its position.
    let all: Vec<&Value> = st.events.iter().rev().collect();
    let position = |key: &str, id: &str| {
        all.iter().position(|e| e["id"] == id).ok_or_else(|| ApiError::no_such(400, key, "event", id))
    };
    let after = params.get("starting_after").and_then(Value::as_str);
    let before = params.get("ending_before").and_then(Value::as_str);
    let range = match (after, before) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "ending_before",
                "You may only specify one of these parameters: ending_before, starting_after.",
            ));
        }
        (Some(a), None) => position("starting_after", a)? + 1..all.len(),
        (None, Some(b)) => 0..position("ending_before", b)?,
        (None, None) => 0..all.len(),
    };
    let keep = |e: &&Value| {
        let t = e["type"].as_str().unwrap_or("");
        typ.is_none_or(|x| x == t)
            && (types.is_empty() || types.contains(&t))
            && created.matches(e["created"].as_i64().unwrap_or(0))
            && delivered.is_none_or(|want| delivery_success(st, e) == want)
    };
    let mut page: Vec<Value> = all[range].iter().copied().filter(keep).cloned().collect();
    let has_more = page.len() > limit;
    if before.is_some() {
        // The page just newer than the cursor (still newest first).
        page = page.split_off(page.len().saturating_sub(limit));
    } else {
        page.truncate(limit);
    }
    Ok(list_obj(page, has_more, "/v1/events"))
}

/// Whether some delivery of the event was answered 2xx.
fn delivery_success(st: &State, event: &Value) -> bool {
    st.deliveries.iter().any(|d| event["id"] == d.event_id.as_str() && d.ok())
}

/// `created` as an exact time or a range.
#[derive(Default)]
struct Created {
    gt: Option<i64>,
    gte: Option<i64>,
    lt: Option<i64>,
    lte: Option<i64>,
}

impl Created {
    fn matches(&self, t: i64) -> bool {
        self.gt.is_none_or(|x| t > x)
            && self.gte.is_none_or(|x| t >= x)
            && self.lt.is_none_or(|x| t < x)
            && self.lte.is_none_or(|x| t <= x)
    }
}

fn created_filter(v: Option<&Value>) -> Result<Created, ApiError> {
    let int = |param: &str, v: &Value| {
        v.as_str().and_then(|s| s.parse::<i64>().ok()).ok_or_else(|| ApiError::not_integer(param))
    };
    match v {
        None => Ok(Created::default()),
        Some(Value::Object(o)) => {
            let mut c = Created::default();
            for (k, v) in o {
                let slot = match k.as_str() {
                    "gt" => &mut c.gt,
                    "gte" => &mut c.gte,
                    "lt" => &mut c.lt,
                    "lte" => &mut c.lte,
                    _ => return Err(ApiError::unknown(&format!("created[{k}]"))),
                };
                *slot = Some(int(&format!("created[{k}]"), v)?);
            }
            Ok(c)
        }
        Some(v) => {
            let t = int("created", v)?;
            Ok(Created { gte: Some(t), lte: Some(t), ..Created::default() })
        }
    }
}
