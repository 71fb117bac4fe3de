//! The `/v1` routes: one request, already authenticated, past idempotency and faults (see
//! [`crate::pipeline`]), is checked against Stripe's spec and answered from the state.

use crate::error::ApiError;
use crate::form::to_tree;
use crate::params::only_params;
use crate::pipeline::{Call, Events};
use crate::state::{Inner, State};
use axum::Json;
use axum::extract::{Extension, State as AxState};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// The innermost handler of every `/v1` request.
pub(crate) async fn handle(
    AxState(inner): AxState<Arc<Inner>>,
    Extension(call): Extension<Call>,
    method: Method,
    uri: Uri,
) -> Response {
    let mut events = vec![];
    let result = {
        let mut st = inner.st.lock().unwrap();
        // Sessions past their `expires_at` expire before the request sees them (no request
        // caused their events).
        let due = crate::lifecycle::expire_due(&inner, &mut st);
        let result = route(&inner, &mut st, &method, uri.path(), &call.pairs, &mut events);
        for ev in &events {
            if let Some(e) = st.events.iter_mut().find(|e| e["id"] == ev.as_str()) {
                e["request"] = json!({"id": call.rid, "idempotency_key": call.idempotency_key});
            }
        }
        events.splice(0..0, due);
        result
    };
    let mut resp = match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.response(&call.rid),
    };
    resp.extensions_mut().insert(Events(events));
    resp
}

/// The object of a change, its events kept for delivery.
fn changed(events: &mut Vec<String>, result: Result<crate::products::Changed, ApiError>) -> Result<Value, ApiError> {
    let (obj, made) = result?;
    events.extend(made);
    Ok(obj)
}

fn route(
    inner: &Inner,
    st: &mut State,
    method: &Method,
    path: &str,
    pairs: &[(String, String)],
    events: &mut Vec<String>,
) -> Result<Value, ApiError> {
    crate::spec::check_request(method.as_str(), path, pairs)?;
    let params = to_tree(pairs).map_err(|k| ApiError::invalid(&k, format!("Invalid parameter structure for '{k}'")))?;
    let segs: Vec<&str> = path.trim_start_matches("/v1/").trim_end_matches('/').split('/').collect();
    let m = method.as_str();
    if m == "GET"
        && let Some(found) = crate::payments::get(st, &segs, pairs, &params)
    {
        return found;
    }
    match (m, segs.as_slice()) {
        ("POST", ["checkout", "sessions"]) => crate::sessions::create(inner, st, pairs, &params),
        ("GET", ["checkout", "sessions"]) => crate::sessions::list(st, pairs, &params),
        ("GET", ["checkout", "sessions", id]) => crate::sessions::retrieve(st, id, pairs, &params),
        ("GET", ["checkout", "sessions", id, "line_items"]) => crate::sessions::line_items(st, id, pairs, &params),
        ("POST", ["checkout", "sessions", id, "expire"]) => {
            let (obj, ev) = crate::lifecycle::expire(inner, st, id, pairs)?;
            events.push(ev);
            Ok(obj)
        }
        ("POST", ["refunds"]) => {
            let (obj, ev) = crate::payments::create_refund(inner, st, pairs, &params)?;
            events.extend(ev);
            Ok(obj)
        }
        ("POST", ["webhook_endpoints"]) => crate::endpoints::create(st, &params),
        ("GET", ["webhook_endpoints"]) => crate::endpoints::list(st, &params),
        ("GET", ["webhook_endpoints", id]) => crate::endpoints::retrieve(st, id, &params),
        ("POST", ["webhook_endpoints", id]) => crate::endpoints::update(st, id, &params),
        ("GET", ["promotion_codes"]) => crate::promotions::list(st, pairs, &params),
        ("GET", ["promotion_codes", id]) => crate::promotions::retrieve(st, id, pairs, &params),
        ("GET", ["coupons", id]) => {
            only_params(pairs, &["expand"])?;
            st.coupons.get(*id).cloned().ok_or_else(|| ApiError::no_such(404, "id", "coupon", id))
        }
        ("GET", ["products"]) => crate::products::list_products(st, &params),
        ("GET", ["products", id]) => crate::products::retrieve_product(st, id, &params),
        ("POST", ["products"]) => changed(events, crate::products::create_product(inner, st, &params)),
        ("POST", ["products", id]) => changed(events, crate::products::update_product(inner, st, id, &params)),
        ("DELETE", ["products", id]) => changed(events, crate::products::delete_product(inner, st, id)),
        ("GET", ["prices"]) => crate::products::list_prices(st, &params),
        ("GET", ["prices", id]) => crate::products::retrieve_price(st, id, &params),
        ("POST", ["prices"]) => changed(events, crate::products::create_price(inner, st, &params)),
        ("POST", ["prices", id]) => changed(events, crate::products::update_price(inner, st, id, &params)),
        ("GET", ["events"]) => {
            only_params(
                pairs,
                &["type", "types", "limit", "starting_after", "ending_before", "created", "delivery_success", "expand"],
            )?;
            crate::events::list(st, &params)
        }
        ("GET", ["events", id]) => {
            only_params(pairs, &["expand"])?;
            st.events.iter().find(|e| e["id"] == *id).cloned().ok_or_else(|| ApiError::no_such(404, "id", "event", id))
        }
        _ => Err(ApiError::new(
            404,
            "invalid_request_error",
            None,
            None,
            format!(
                "Unrecognized request URL ({m}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
            ),
        )),
    }
}
