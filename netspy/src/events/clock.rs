//! Kernel time stamps (`bpf_ktime_get_boot_ns`, CLOCK_BOOTTIME) to wall-clock time.

use chrono::{DateTime, Utc};
use nix::time::{ClockId, clock_gettime};

/// The offset between CLOCK_REALTIME and CLOCK_BOOTTIME, taken once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootClock {
    /// Wall-clock nanoseconds since the epoch at boot.
    boot_epoch_ns: i128,
}

impl BootClock {
    /// Reads both clocks now. Falls back to "boot = epoch" if a clock is unreadable, which
    /// only skews the displayed times.
    pub fn now() -> Self {
        let ns = |id| {
            clock_gettime(id).map(|t| t.tv_sec() as i128 * 1_000_000_000 + t.tv_nsec() as i128)
        };
        match (ns(ClockId::CLOCK_REALTIME), ns(ClockId::CLOCK_BOOTTIME)) {
            (Ok(real), Ok(boot)) => Self {
                boot_epoch_ns: real - boot,
            },
            _ => Self::default(),
        }
    }

    /// A clock whose boot happened `boot_epoch_ns` after the epoch (for tests).
    pub fn from_boot_epoch_ns(boot_epoch_ns: i128) -> Self {
        Self { boot_epoch_ns }
    }

    /// Wall-clock time of a kernel boot-time stamp.
    pub fn wall(&self, boot_ns: u64) -> DateTime<Utc> {
        let ns = self.boot_epoch_ns + boot_ns as i128;
        let ns = i64::try_from(ns).unwrap_or(i64::MAX);
        DateTime::from_timestamp_nanos(ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_adds_boot_offset() {
        let clock = BootClock::from_boot_epoch_ns(1_700_000_000_000_000_000);
        let t = clock.wall(5_000_000_123);
        assert_eq!(
            t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "2023-11-14T22:13:25.000000123Z"
        );
    }

    #[test]
    fn now_is_close_to_the_system_clock() {
        let clock = BootClock::now();
        let boot = clock_gettime(ClockId::CLOCK_BOOTTIME).unwrap();
        let boot_ns = boot.tv_sec() as u64 * 1_000_000_000 + boot.tv_nsec() as u64;
        let skew = (clock.wall(boot_ns) - Utc::now()).num_milliseconds().abs();
        assert!(skew < 1000, "skew {skew} ms");
    }
}
