//! netspy's own executable, so that the kernel programs can leave out the traffic of its
//! CLI and MCP clients (their calls to the daemon would otherwise fill the history).

use std::os::unix::fs::MetadataExt as _;

use netspy_common::{config::Config, task::COMM_LEN};

/// Sets `config`'s `self_*` fields to netspy's executable: its file's device and inode, and
/// the name the kernel gives a process started from it (the file name, cut to 15 bytes).
/// A process started through a link of another name keeps that name, and is reported.
pub fn recognise(config: &mut Config) {
    let exe = match std::fs::metadata("/proc/self/exe") {
        Ok(exe) => exe,
        Err(e) => {
            tracing::warn!("netspy's own clients are reported too: /proc/self/exe: {e}");
            return;
        }
    };
    let Some(name) = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    else {
        return;
    };
    config.self_comm = comm_words(&name);
    config.self_exe_dev = kernel_dev(exe.dev());
    config.self_exe_ino_low = exe.ino() as u32;
    config.self_exe_ino_high = (exe.ino() >> 32) as u32;
}

/// A name as the kernel keeps it in `comm`: at most 15 bytes, NUL-padded, read as four
/// native-endian words.
fn comm_words(name: &str) -> [u32; 4] {
    let mut comm = [0u8; COMM_LEN];
    let bytes = name.as_bytes();
    let len = bytes.len().min(COMM_LEN - 1);
    comm[..len].copy_from_slice(&bytes[..len]);
    let mut words = [0u32; 4];
    for (word, bytes) in words.iter_mut().zip(comm.chunks_exact(4)) {
        *word = u32::from_ne_bytes(bytes.try_into().unwrap_or_default());
    }
    words
}

/// A device number as `stat(2)` encodes it, re-encoded as the kernel keeps it in
/// `super_block.s_dev` (`MKDEV`: major in the top 12 bits, minor in the low 20).
fn kernel_dev(dev: u64) -> u32 {
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    ((major << 20) | (minor & 0xf_ffff)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_like_comm_and_devices_re_encoded() {
        let words = comm_words("netspy");
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(&bytes[..7], b"netspy\0");
        let long = comm_words("a-very-long-program-name");
        let bytes: Vec<u8> = long.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(&bytes[..], b"a-very-long-pro\0");
        // stat's encoding of 259:3 (an NVMe partition) and 8:1.
        assert_eq!(kernel_dev(nix::sys::stat::makedev(259, 3)), (259 << 20) | 3);
        assert_eq!(kernel_dev(nix::sys::stat::makedev(8, 1)), (8 << 20) | 1);
    }
}
