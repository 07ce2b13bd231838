//! The request extractor every data endpoint uses: parameters from the query string, or from
//! a JSON body (whatever its content type: `curl -d '{...}'` sends form encoding), never both.
//! An empty body means the query string; any other body must be a JSON object.

use axum::{
    body::{Body, Bytes},
    extract::{FromRequest, Query, Request},
    http::StatusCode,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Request parameters of type `T`.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let uri = req.uri().clone();
        let body = read_body(req.into_body(), MAX_BODY_BYTES).await?;
        // No body at all: the parameters are in the query string. A body must be JSON.
        if body.is_empty() {
            return Query::<T>::try_from_uri(&uri)
                .map(|Query(v)| Self(v))
                .map_err(|e| {
                    ApiError::bad_request(format!("invalid query parameters: {}", e.body_text()))
                });
        }
        if uri.query().is_some_and(|q| !q.is_empty()) {
            return Err(ApiError::bad_request(
                "give parameters in the query string or in a JSON body, not both",
            ));
        }
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
        // serde would also take an array for a struct; the API takes objects only.
        if !value.is_object() {
            return Err(ApiError::bad_request(
                "the JSON body must be an object of parameters",
            ));
        }
        serde_json::from_value(integral(value))
            .map(Self)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// A whole request body of at most `limit` bytes: 413 when larger, 408 when it does not
/// arrive in time (the router's body deadline), 400 when the connection breaks.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let inner = e.into_inner();
        let chain =
            || std::iter::successors(Some(&*inner as &dyn std::error::Error), |e| e.source());
        if chain().any(|e| e.is::<http_body_util::LengthLimitError>()) {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body too large (over {limit} bytes)"),
            )
        } else if chain().any(|e| e.is::<tower_http::timeout::TimeoutError>()) {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            )
        } else {
            ApiError::bad_request(format!("reading the request body: {inner}"))
        }
    })
}

/// JSON has one number type: `60.0` is a valid integer to JSON Schema, so it is one here.
fn integral(value: Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(integral).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, integral(v))).collect())
        }
        other => other,
    }
}
