//! API errors: a status code and `{"error": "..."}`. Internal details are logged, never sent.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::query::QueryError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// Seconds for a `Retry-After` header (load shedding).
    retry_after: Option<u64>,
}

/// The body of every error answer.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
}

impl ApiError {
    /// An error with a status and a message safe to show.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The status answered.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::BadRequest(m) => Self::new(StatusCode::BAD_REQUEST, m),
            QueryError::Unavailable(m) => Self::new(StatusCode::SERVICE_UNAVAILABLE, m),
            QueryError::Overloaded(m) => Self {
                retry_after: Some(crate::query::RETRY_AFTER_SECONDS),
                ..Self::new(StatusCode::SERVICE_UNAVAILABLE, m)
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Gives every error response a JSON body, including the ones axum, tower and rmcp make
/// themselves (405 with its `Allow` header, 413, 406, ...), keeping their headers and their
/// words.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let message = match (status, text) {
        (StatusCode::METHOD_NOT_ALLOWED, _) => {
            "method not allowed here; the Allow header lists the ones that are".to_owned()
        }
        (StatusCode::PAYLOAD_TOO_LARGE, _) => "request body too large".to_owned(),
        (_, Some(text)) => text,
        (other, None) => other.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = Json(ErrorBody { error: message }).into_response();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, body.into_body())
}
