//! netspy's own executable, so that the kernel programs can leave out the traffic of its
//! CLI and MCP clients (their calls to the daemon would otherwise fill the history).

use std::os::unix::fs::MetadataExt as _;

use netspy_common::{config::Config, task::COMM_LEN};

/// Sets `config`'s `self_*` fields to netspy's executable: the inode number of its file, and
/// this process's name (what the kernel named it after the file it was started as, so a
/// client started the same way has it too). A client started through a link of another name
/// has another name, and is reported.
pub fn recognise(config: &mut Config) {
    let known = std::fs::metadata("/proc/self/exe").and_then(|exe| {
        let name = std::fs::read_to_string("/proc/self/comm")?;
        Ok((exe.ino(), name))
    });
    let (ino, name) = match known {
        Ok(known) => known,
        Err(e) => {
            tracing::warn!("netspy's own clients are reported too: {e}");
            return;
        }
    };
    config.self_comm = comm_words(name.trim_end_matches('\n'));
    config.self_exe_ino_low = ino as u32;
    config.self_exe_ino_high = (ino >> 32) as u32;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_like_comm() {
        let words = comm_words("netspy");
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(&bytes[..7], b"netspy\0");
        let long = comm_words("a-very-long-program-name");
        let bytes: Vec<u8> = long.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(&bytes[..], b"a-very-long-pro\0");
    }
}
