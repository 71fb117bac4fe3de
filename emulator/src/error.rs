//! The Stripe error answer (`{"error": {"type", "code", "param", "message", ...}}`) and its
//! usual constructors, worded like Stripe's.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// A Stripe error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: u16,
    pub typ: &'static str,
    pub code: Option<&'static str>,
    pub param: Option<String>,
    pub message: String,
}

impl ApiError {
    pub fn new(
        status: u16,
        typ: &'static str,
        code: Option<&'static str>,
        param: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        ApiError { status, typ, code, param: param.map(String::from), message: message.into() }
    }
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", None, Some(param), message)
    }
    pub fn coded(code: &'static str, param: &str, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", Some(code), Some(param), message)
    }
    pub fn missing(param: &str) -> Self {
        Self::coded("parameter_missing", param, format!("Missing required param: {param}."))
    }
    pub fn unknown(param: &str) -> Self {
        Self::coded("parameter_unknown", param, format!("Received unknown parameter: {param}"))
    }
    pub fn empty(param: &str) -> Self {
        Self::coded(
            "parameter_invalid_empty",
            param,
            format!(
                "You passed an empty string for '{param}'. We assume empty values are an attempt to unset a parameter; however '{param}' cannot be unset. You should remove '{param}' from your request or supply a non-empty value."
            ),
        )
    }
    /// Two parameters that may not be given together (`parameters_exclusive`).
    pub fn exclusive(param: &str, a: &str, b: &str) -> Self {
        Self::coded("parameters_exclusive", param, format!("You may only specify one of these parameters: {a}, {b}."))
    }
    pub fn not_integer(param: &str) -> Self {
        Self::coded("parameter_invalid_integer", param, "Invalid integer")
    }
    pub fn no_such(status: u16, param: &str, what: &str, id: &str) -> Self {
        Self::new(
            status,
            "invalid_request_error",
            Some("resource_missing"),
            Some(param),
            format!("No such {what}: '{id}'"),
        )
    }
    pub fn body(&self, request_id: &str) -> Value {
        let mut e = Map::new();
        e.insert("type".into(), json!(self.typ));
        if let Some(c) = self.code {
            e.insert("code".into(), json!(c));
            e.insert("doc_url".into(), json!(format!("https://stripe.com/docs/error-codes/{}", c.replace('_', "-"))));
        }
        if let Some(p) = &self.param {
            e.insert("param".into(), json!(p));
        }
        e.insert("message".into(), json!(self.message));
        e.insert("request_log_url".into(), json!(format!("https://dashboard.stripe.com/test/logs/{request_id}")));
        json!({ "error": e })
    }
    /// The HTTP answer: this error's status and [`ApiError::body`].
    pub fn response(&self, request_id: &str) -> Response {
        (StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST), Json(self.body(request_id)))
            .into_response()
    }
}
