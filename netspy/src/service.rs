//! What the daemon tells its service manager through systemd's notify protocol (the unit in
//! `packaging/netspy.service` is `Type=notify`): a `STATUS=` line while the probes load,
//! `READY=1` once they are attached and the API listens (with what is attached and where),
//! `STOPPING=1` on the way out. Outside systemd (no `NOTIFY_SOCKET`) nothing is sent.

use std::net::SocketAddr;

use sd_notify::NotifyState;

use crate::probes::ProbeStatus;

/// Sends `states` (sd-notify sends nothing without NOTIFY_SOCKET); a failure is logged,
/// never fatal (the manager may be gone).
fn tell(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!("telling the service manager how netspy is: {e}");
    }
}

/// The API listens; the probes are loading.
pub fn starting(api: SocketAddr) {
    tell(&[NotifyState::Status(&format!(
        "loading the probes; API on http://{api}"
    ))]);
}

/// The probes are attached (those in `probes` with a hook) and events are collected.
pub fn ready(api: SocketAddr, probes: &[ProbeStatus]) {
    tell(&[
        NotifyState::Ready,
        NotifyState::Status(&ready_status(api, probes)),
    ]);
}

/// The `STATUS=` text once ready: each probe with its hook, and the API's address.
fn ready_status(api: SocketAddr, probes: &[ProbeStatus]) -> String {
    let probes: Vec<String> = probes
        .iter()
        .map(|probe| match &probe.hook {
            Some(hook) => format!("{} ({hook})", probe.name),
            None if probe.disabled() => format!("{} (disabled)", probe.name),
            None => format!("{} (not attached)", probe.name),
        })
        .collect();
    format!("collecting: {}; API on http://{api}", probes.join(", "))
}

/// The probes could not start: the daemon is about to exit with `why`.
pub fn failed(why: &str) {
    tell(&[NotifyState::Status(&format!("failed: {why}"))]);
}

/// Shutting down: the probes are detached, the last requests finish.
pub fn stopping() {
    tell(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::Refusal;

    #[test]
    fn the_ready_status_names_each_probe_its_hook_and_the_api() {
        let probe = |name: &str, hook: Option<&str>| ProbeStatus {
            name: name.into(),
            hook: hook.map(Into::into),
            refused: Vec::<Refusal>::new(),
        };
        let status = ready_status(
            "127.0.0.1:8080".parse().unwrap(),
            &[
                probe("connect", Some("tracepoint/syscalls/sys_exit_connect")),
                probe("packet_drop", None),
            ],
        );
        assert_eq!(
            status,
            "collecting: connect (tracepoint/syscalls/sys_exit_connect), packet_drop (not \
             attached); API on http://127.0.0.1:8080"
        );
    }
}
