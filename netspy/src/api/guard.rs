//! DNS-rebinding and cross-origin protection for every route (REST, `/metrics`, MCP): a web
//! page the user visits must not be able to read the daemon, whatever name it rebinds to
//! 127.0.0.1. A request passes when its `Host` is a name the daemon answers to and its
//! `Origin`, if any, is the daemon itself or an allowed origin; anything else, including a
//! header that is not readable text, gets 403 with a JSON error.

use std::{net::IpAddr, sync::Arc};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::error::ApiError;

/// Which `Host` and `Origin` values requests may carry.
#[derive(Clone, Debug, Default)]
pub struct AccessPolicy {
    /// Host names answered besides localhost and IP addresses (lowercase; `*` = any).
    hosts: Vec<String>,
    /// Browser origins allowed besides the daemon's own (`https://app.example.com`).
    origins: Vec<String>,
}

impl AccessPolicy {
    /// The policy: `hosts` are extra names the daemon answers to (`netspy.internal`, or `*`
    /// for any name), `origins` extra browser origins allowed to call it.
    pub fn new(hosts: &[String], origins: &[String]) -> Self {
        Self {
            hosts: hosts
                .iter()
                .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            origins: origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// True for a `Host` value (`name[:port]`) this daemon answers to: localhost names,
    /// IP addresses (a page cannot rebind a literal address), and the configured names.
    pub fn host_allowed(&self, authority: &str) -> bool {
        let Some(host) = host_of(authority) else {
            return false;
        };
        is_loopback_name(&host)
            || host.parse::<IpAddr>().is_ok()
            || self.hosts.iter().any(|h| h == "*" || *h == host)
    }

    /// True for an `Origin` allowed to call: the daemon itself (the request's own, allowed
    /// `host`), a page on a localhost name, or a configured origin. `null` never is.
    pub fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.origins.contains(&origin) {
            return true;
        }
        let Some(("http" | "https", authority)) = origin.split_once("://") else {
            return false;
        };
        host.is_some_and(|h| h.eq_ignore_ascii_case(authority))
            || host_of(authority).is_some_and(|h| is_loopback_name(&h))
    }

    /// Why a request is refused, if it is.
    fn refusal(&self, headers: &HeaderMap, uri: &Uri) -> Option<String> {
        let host = match single(headers, header::HOST) {
            Err(why) => return Some(format!("the Host header {why}")),
            Ok(host) => host,
        };
        // An absolute-form request target names the host too; both must pass.
        for name in host
            .iter()
            .copied()
            .chain(uri.authority().map(|a| a.as_str()))
        {
            if !self.host_allowed(name) {
                return Some(format!(
                    "Host {name:?} is not allowed (DNS-rebinding protection): netspy answers to \
                     localhost, IP addresses and names given with --allow-host"
                ));
            }
        }
        match single(headers, header::ORIGIN) {
            Err(why) => Some(format!("the Origin header {why}")),
            Ok(Some(origin)) if !self.origin_allowed(origin, host) => Some(format!(
                "Origin {origin:?} is not allowed: only pages of netspy itself, of localhost and \
                 of origins given with --allow-origin may call it"
            )),
            Ok(_) => None,
        }
    }
}

/// The one value of a header, or why it cannot be trusted (repeated, or not visible ASCII:
/// a guard that skipped such values would fail open).
fn single(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&str>, &'static str> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("is repeated");
    }
    match value.to_str() {
        Ok(text) if !text.trim().is_empty() => Ok(Some(text.trim())),
        Ok(_) => Err("is empty"),
        Err(_) => Err("is not readable text"),
    }
}

/// The host of `name[:port]` or `[v6]:port`, lowercase, without a trailing dot; None when
/// the value is not an authority.
fn host_of(authority: &str) -> Option<String> {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || valid_port(after.strip_prefix(':')?)) {
            return None;
        }
        inside
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if valid_port(port) => host,
            Some(_) => return None,
            None => authority,
        }
    };
    let host = host.trim_end_matches('.');
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':');
    (!host.is_empty() && host.chars().all(legal)).then(|| host.to_ascii_lowercase())
}

fn valid_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
}

/// `localhost`, its subdomains (RFC 6761: they resolve to loopback), and loopback addresses.
fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The middleware: refused requests get 403 with `{"error": ...}`.
pub async fn guard(State(policy): State<Arc<AccessPolicy>>, req: Request, next: Next) -> Response {
    match policy.refusal(req.headers(), req.uri()) {
        Some(why) => ApiError::new(StatusCode::FORBIDDEN, why).into_response(),
        None => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn refused(policy: &AccessPolicy, host: Option<&[u8]>, origin: Option<&[u8]>) -> bool {
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(header::HOST, HeaderValue::from_bytes(host).unwrap());
        }
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_bytes(origin).unwrap());
        }
        policy
            .refusal(&headers, &Uri::from_static("/api/events"))
            .is_some()
    }

    #[test]
    fn hosts_are_localhost_addresses_or_configured_names() {
        let policy = AccessPolicy::new(&["Netspy.Internal".into()], &[]);
        for ok in [
            "localhost:8080",
            "LOCALHOST",
            "localhost.",
            "app.localhost:3000",
            "127.0.0.1:8080",
            "[::1]:8080",
            "10.1.2.3:8080",
            "[fd00::1]",
            "netspy.internal:8080",
        ] {
            assert!(policy.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "localhost:80x",
            "[::1",
            "",
            "a b",
        ] {
            assert!(!policy.host_allowed(bad), "{bad}");
        }
        assert!(AccessPolicy::new(&["*".into()], &[]).host_allowed("any.example:1"));
    }

    #[test]
    fn origins_are_the_daemon_itself_localhost_pages_or_configured() {
        let policy = AccessPolicy::new(&[], &["https://ok.example/".into()]);
        let host = Some("127.0.0.1:8080");
        assert!(policy.origin_allowed("http://localhost:6274", host));
        assert!(policy.origin_allowed("http://127.0.0.1:8080", host));
        assert!(policy.origin_allowed("https://ok.example", host));
        assert!(!policy.origin_allowed("https://evil.example", host));
        assert!(
            !policy.origin_allowed("http://10.9.9.9", host),
            "a page on another address"
        );
        assert!(!policy.origin_allowed("null", host));
        assert!(!policy.origin_allowed("file://", host));
    }

    #[test]
    fn unreadable_repeated_or_foreign_headers_are_refused() {
        let policy = AccessPolicy::default();
        assert!(!refused(&policy, Some(b"localhost:8080"), None));
        assert!(!refused(&policy, None, None), "HTTP/1.0 without Host");
        assert!(refused(&policy, Some(b"evil.example"), None));
        assert!(refused(&policy, Some(b"localhost\xff"), None));
        assert!(refused(
            &policy,
            Some(b"localhost"),
            Some(b"https://evil.example\xff")
        ));
        assert!(refused(
            &policy,
            Some(b"localhost"),
            Some(b"https://evil.example")
        ));
        let mut twice = HeaderMap::new();
        twice.append(header::HOST, HeaderValue::from_static("localhost"));
        twice.append(header::HOST, HeaderValue::from_static("evil.example"));
        assert!(policy.refusal(&twice, &Uri::from_static("/")).is_some());
        let absolute = Uri::from_static("http://evil.example/api/events");
        assert!(policy.refusal(&HeaderMap::new(), &absolute).is_some());
    }
}
