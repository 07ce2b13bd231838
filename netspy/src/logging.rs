//! Logging: tracing to stderr (stdout carries events and the MCP stdio channel), with every
//! registered secret masked in every line whatever wrote it (netspy, async-openai's retry
//! layer, reqwest, rmcp), and every callsite throttled so that no client can flood the log.

use std::{
    borrow::Cow,
    collections::HashMap,
    io::{self, Write},
    sync::{
        Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tracing::callsite::Identifier;

/// Secrets shorter than this are not masked (they would mask ordinary words).
const MIN_SECRET_LEN: usize = 4;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Masks `secret` (an API key, a bearer token) in every later log line and every text passed
/// to [`redact`].
pub fn register_secret(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let mut secrets = SECRETS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !secrets.iter().any(|s| s == secret) {
        secrets.push(secret.to_owned());
    }
}

/// `text` with every registered secret replaced by `[redacted]`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut text = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if text.contains(secret.as_str()) {
            text = Cow::Owned(text.replace(secret.as_str(), "[redacted]"));
        }
    }
    text
}

/// stderr, through [`redact`]. tracing's formatter hands each event over in one write, so a
/// secret is never split across two calls.
struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr().lock().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Installs the subscriber: stderr, `RUST_LOG` or the default filter, every callsite's
/// lines throttled, secrets masked.
pub fn init(verbose: bool) {
    use tracing_subscriber::{layer::SubscriberExt as _, util::SubscriberInitExt as _};
    let default = if verbose {
        "netspy=debug,info"
    } else {
        "netspy=info,warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::registry()
        .with(filter)
        .with(Throttle::default())
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(|| RedactingStderr)
                .with_target(false)
                .with_ansi(io::IsTerminal::is_terminal(&io::stderr())),
        )
        .init();
}

/// Lines one callsite may write per window, at levels INFO to ERROR.
const LINES_PER_WINDOW: u32 = 10;
/// The window.
const WINDOW: Duration = Duration::from_secs(10);

static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

/// Log lines left out by the throttle since the start.
pub fn suppressed_lines() -> u64 {
    SUPPRESSED.load(Ordering::Relaxed)
}

/// Lets each callsite (a `warn!` in netspy, rmcp or hyper) write at most
/// [`LINES_PER_WINDOW`] lines per [`WINDOW`]: whatever a client makes happen over and over
/// (refused sessions, bad requests, failing tool calls) cannot flood the log. Debug and
/// trace lines, asked for on purpose, are not throttled.
#[derive(Default)]
struct Throttle {
    windows: Mutex<HashMap<Identifier, (Instant, u32)>>,
}

impl Throttle {
    fn allow(&self, callsite: Identifier, now: Instant) -> bool {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (start, count) = windows.entry(callsite).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            (*start, *count) = (now, 0);
        }
        *count += 1;
        let allowed = *count <= LINES_PER_WINDOW;
        if !allowed {
            SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        }
        allowed
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Throttle {
    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        let metadata = event.metadata();
        *metadata.level() > tracing::Level::INFO || self.allow(metadata.callsite(), Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_masked_everywhere_in_a_text() {
        register_secret("sk-test-logging-0123");
        register_secret("abc");
        assert_eq!(
            redact("key sk-test-logging-0123 and again sk-test-logging-0123; abc stays"),
            "key [redacted] and again [redacted]; abc stays"
        );
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn each_callsite_writes_a_bounded_number_of_lines_per_window() {
        // Not zero-sized: two zero-sized statics may share an address, and callsites are
        // told apart by address.
        struct Here(#[expect(dead_code, reason = "gives the static its own address")] u8);
        impl tracing::Callsite for Here {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &tracing::Metadata<'_> {
                unimplemented!()
            }
        }
        struct There(#[expect(dead_code, reason = "gives the static its own address")] u8);
        impl tracing::Callsite for There {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &tracing::Metadata<'_> {
                unimplemented!()
            }
        }
        static HERE: Here = Here(0);
        static THERE: There = There(0);
        let throttle = Throttle::default();
        let start = Instant::now();
        let here = || Identifier(&HERE);
        let allowed = (0..100).filter(|_| throttle.allow(here(), start)).count();
        assert_eq!(allowed, LINES_PER_WINDOW as usize);
        assert!(
            throttle.allow(Identifier(&THERE), start),
            "another callsite has its own"
        );
        assert!(throttle.allow(here(), start + WINDOW), "a new window");
        assert!(suppressed_lines() >= 90);
    }
}
