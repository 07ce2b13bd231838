//! Whether this process may load eBPF programs, checked before trying so that the user gets
//! a sentence instead of a raw EPERM.

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// What the user must do when loading is not allowed.
pub const NEEDS: &str =
    "netspy needs root or CAP_BPF + CAP_PERFMON to load its eBPF programs (run it with sudo)";

/// True when the effective capabilities allow loading tracing programs.
pub fn can_load_bpf() -> bool {
    match std::fs::read_to_string("/proc/self/status") {
        Ok(status) => effective_caps(&status).is_none_or(allows_bpf),
        // Unknown: let the kernel decide, and map its EPERM later.
        Err(_) => true,
    }
}

fn effective_caps(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

fn allows_bpf(caps: u64) -> bool {
    let has = |cap: u32| caps & (1 << cap) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_effective_capabilities() {
        let status = "Name:\tcat\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(effective_caps(status), Some(0x1ff_ffff_ffff));
    }

    #[test]
    fn needs_sys_admin_or_bpf_and_perfmon() {
        assert!(allows_bpf(1 << CAP_SYS_ADMIN));
        assert!(allows_bpf((1 << CAP_BPF) | (1 << CAP_PERFMON)));
        assert!(!allows_bpf(1 << CAP_BPF));
        assert!(!allows_bpf(0));
    }
}
