//! Bearer-token check for every route, when a token is configured.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// The configured token, kept as its SHA-256 digest: comparing digests of equal length in
/// constant time tells an attacker neither how much of a guess was right nor how long the
/// token is.
#[derive(Clone)]
pub struct Token(Arc<[u8]>);

impl Token {
    /// The token to require.
    pub fn new(token: &str) -> Self {
        Self(Arc::from(digest(token)))
    }

    /// True when `given` is the token.
    pub fn matches(&self, given: &str) -> bool {
        bool::from(digest(given).as_slice().ct_eq(&self.0))
    }
}

fn digest(text: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .to_vec()
}

/// The credentials of `Authorization: Bearer <token>`; the scheme is case-insensitive
/// (RFC 9110 section 11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
}

/// Lets the request through only with `Authorization: Bearer <token>`.
pub async fn require_token(State(token): State<Token>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    match given {
        Some(given) if token.matches(given) => next.run(req).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "wrong bearer token").into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing bearer token (Authorization: Bearer <token>)",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_case_of_the_scheme_and_only_the_exact_token() {
        assert_eq!(bearer("Bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer("bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer("BEARER  s3cret "), Some("s3cret"));
        assert_eq!(bearer("Basic czNjcmV0"), None);
        assert_eq!(bearer("Bearers3cret"), None);
        let token = Token::new("s3cret");
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cre"));
        assert!(!token.matches("s3cret-and-more"));
        assert!(!token.matches(""));
        // Whatever its length, the token is compared as 32 bytes.
        assert_eq!(token.0.len(), 32);
        assert_eq!(Token::new(&"x".repeat(500)).0.len(), 32);
    }
}
