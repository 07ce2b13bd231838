//! TLS for outgoing HTTPS (AI endpoints, daemons behind a TLS proxy): rustls with the ring
//! provider, installed once before any HTTP client is built (reqwest panics otherwise).

/// Installs ring as rustls' process-wide provider, unless one is installed already.
pub fn install_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
