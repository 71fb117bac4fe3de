//! `POST /api/order-action`: the owner acts on one order — refund, ship, deliver, cancel, note.
//!
//! Parse: POST; `ADMIN_TOKEN` unset ⇒ 404; the per-IP limit `RATE_LIMIT_ORDER_ACTIONS`, counted
//! before the token is checked (429); `Authorization: Bearer <ADMIN_TOKEN>` in constant time
//! (401); same-site only (403); `application/json` only (415); an `Idempotency-Key` header of
//! 1..=255 printable ASCII characters (400 without); a body of at most 16 KiB naming the order
//! and the action with its fields, nothing else ([`ActionRequest`]; 400 for an unknown field, a
//! bad amount, a tracking URL that is not https, a note too long or with control characters).
//!
//! Decide: the key is claimed in the store before anything is done
//! ([`owner_actions::claim`]): the same key with the same request answers the first answer
//! again (a double click, a retry; a concurrent duplicate waits for it, or is told 409 that the
//! action is in progress), with another request 409. Then [`owner_actions::act`]: 404 for an
//! unknown order number; 409 for an unpaid order, an open dispute, more than is still
//! refundable, a refusal by Stripe, or a delivery that cannot move so (cancelled, digital,
//! shipped with another number, not shipped yet) — each with a message that says why. A 4xx
//! answer is kept with the key like a success; on a 5xx the key is let go, so a retry acts again
//! (Stripe's own idempotency key, derived from this one, keeps the refund single).
//!
//! Answer: 200, `no-store`, the order as `/api/orders` shows it ([`OrderRow`]: money state,
//! shipping state, tracking, note, history, actions) and, for a refund or a cancel that
//! refunded, the refund Stripe answered (`refund`: id, amount, status, reason). A replay carries
//! `Idempotent-Replayed: true`. Never Stripe's error text, a secret or an internal reason.

use super::orders::OrderRow;
use crate::app::App;
use crate::http::{self, ApiError, BoxError, Response, StatusCode, header};
use crate::order::ShipmentMove;
use crate::owner_actions::{self, Acted, Action, RefundReason};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The longest idempotency key (as Stripe's).
pub const MAX_KEY_LEN: usize = 255;
/// The longest private note, in characters.
pub const MAX_NOTE_CHARS: usize = 500;
/// The longest carrier name or tracking number, in characters.
pub const MAX_TRACKING_CHARS: usize = 100;
/// The longest tracking URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// The largest refund amount accepted (Stripe's eight digits of minor units).
pub const MAX_AMOUNT: i64 = 99_999_999;

/// The body: the order's number, the action, and its fields (unknown fields refused).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionRequest {
    /// Refund `amount` minor units (default: all that is left) for `reason`.
    Refund {
        /// The order number (`RR-XXXX-XX`), or the Checkout Session id (`cs_...`).
        order: String,
        /// Minor units, 1..=what is still refundable.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount: Option<i64>,
        /// `duplicate`, `fraudulent` or `requested_by_customer`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<RefundReason>,
    },
    /// Handed to a carrier.
    Ship {
        /// The order number.
        order: String,
        /// Carrier name (1..=100 characters).
        carrier: String,
        /// Tracking number (1..=100 characters).
        tracking_number: String,
        /// Tracking page, https only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tracking_url: Option<String>,
    },
    /// Arrived.
    Deliver {
        /// The order number.
        order: String,
    },
    /// Refund what is left and cancel (a paid, unshipped order).
    Cancel {
        /// The order number.
        order: String,
    },
    /// Sets the private note (empty clears it).
    Note {
        /// The order number.
        order: String,
        /// At most 500 characters, trimmed, no control characters.
        text: String,
    },
}

impl ActionRequest {
    /// The order number and the checked action (400 with the field's name otherwise).
    pub fn validate(&self) -> Result<(String, Action), ApiError> {
        let (order, action) = match self {
            ActionRequest::Refund { order, amount, reason } => {
                if amount.is_some_and(|a| !(1..=MAX_AMOUNT).contains(&a)) {
                    return Err(ApiError::bad_request("amount: a positive whole number of minor units"));
                }
                (order, Action::Refund { amount: *amount, reason: *reason })
            }
            ActionRequest::Ship { order, carrier, tracking_number, tracking_url } => {
                let carrier = text("carrier", carrier, MAX_TRACKING_CHARS)?;
                let tracking_number = text("tracking_number", tracking_number, MAX_TRACKING_CHARS)?;
                let tracking_url = tracking_url.as_deref().map(https_url).transpose()?;
                (order, Action::Shipment(ShipmentMove::Ship { carrier, tracking_number, tracking_url }))
            }
            ActionRequest::Deliver { order } => (order, Action::Shipment(ShipmentMove::Deliver)),
            ActionRequest::Cancel { order } => (order, Action::Cancel),
            ActionRequest::Note { order, text: note } => {
                let note = note.trim();
                if note.chars().count() > MAX_NOTE_CHARS {
                    return Err(ApiError::bad_request("text: at most 500 characters"));
                }
                if note.chars().any(char::is_control) {
                    return Err(ApiError::bad_request("text: control characters are not allowed"));
                }
                let note = Some(note.to_string()).filter(|n| !n.is_empty());
                (order, Action::Shipment(ShipmentMove::Note(note)))
            }
        };
        Ok((super::order_reference(order)?, action))
    }
}

/// A required short text field: trimmed, 1..=`max` characters, no control characters.
fn text(name: &'static str, value: &str, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!("{name}: 1 to {max} characters, no control characters")));
    }
    Ok(v.to_string())
}

/// A tracking URL: an absolute `https` URL with a host and no credentials.
fn https_url(value: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request("tracking_url: must be an https URL");
    let v = value.trim();
    if v.len() > MAX_URL_LEN || v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad());
    }
    let url = url::Url::parse(v).map_err(|_| bad())?;
    if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) || !url.username().is_empty() {
        return Err(bad());
    }
    if url.password().is_some() {
        return Err(bad());
    }
    Ok(url.to_string())
}

/// The `Idempotency-Key` header: required, 1..=255 printable ASCII characters.
pub fn idempotency_key(headers: &header::HeaderMap) -> Result<String, ApiError> {
    let value = headers
        .get("idempotency-key")
        .ok_or_else(|| ApiError::bad_request("Idempotency-Key: required (a fresh one per action, reused on retry)"))?;
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN || !bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(ApiError::bad_request("Idempotency-Key: 1 to 255 printable ASCII characters"));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// A refund an action made, as Stripe answered it.
#[derive(Debug, Serialize)]
pub struct RefundLine {
    /// `re_...`.
    pub id: String,
    /// Minor units.
    pub amount: i64,
    /// `pending`, `succeeded`, ... (a pending refund already counts as refunded).
    pub status: String,
    /// Stripe's reason.
    pub reason: Option<String>,
}

/// The answer: the order as the owner's list shows it, and the refund made, if any.
#[derive(Debug, Serialize)]
pub struct ActionAnswer {
    /// The order after the action.
    #[serde(flatten)]
    pub order: OrderRow,
    /// The refund this action made (refund, cancel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundLine>,
}

impl From<Acted> for ActionAnswer {
    fn from(a: Acted) -> Self {
        ActionAnswer {
            refund: a.refund.map(|r| RefundLine { id: r.id, amount: r.amount, status: r.status, reason: r.reason }),
            order: OrderRow::new(a.order, a.log),
        }
    }
}

/// Handles one owner action (see the module doc for the contract).
pub async fn handle<B>(app: &App, req: http::Request<B>) -> Result<Response, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let super::OwnerPost { key, body } = super::read_owner_post(app, req).await?;
    let request: ActionRequest = http::parse_json(&body)?;
    let (number, action) = request.validate()?;
    let canonical = serde_json::to_string(&request).map_err(|e| ApiError::internal(format!("order action: {e}")))?;
    super::idempotent(app, &key, &canonical, async || {
        let acted = match owner_actions::find(app, &number).await {
            Ok(Some(order)) => owner_actions::act(app, &order, &key, &action).await?,
            Ok(None) => return Err(ApiError::new(StatusCode::NOT_FOUND, "no such order")),
            Err(e) => return Err(e.into()),
        };
        Ok(serde_json::to_value(ActionAnswer::from(acted)).unwrap_or_default())
    })
    .await
}
