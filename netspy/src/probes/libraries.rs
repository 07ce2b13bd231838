//! The C libraries that processes on this system actually map, found in `/proc/*/maps`:
//! glibc (`libc.so.6`) and musl (`ld-musl-*.so.1`, `libc.musl-*.so.1`), in the host's
//! filesystem and in containers'. Each file is listed once (by device and inode: a uprobe
//! is set on a file, not a path), through `/proc/PID/root` so that a container's library is
//! reached in its own mount namespace.

use std::{collections::HashSet, io::Read as _, os::unix::fs::MetadataExt, path::PathBuf};

/// At most this many libraries get the probes (each costs a pair of uprobes); more distinct
/// C library files than this on one host would be a sign of something odd.
const MAX_LIBRARIES: usize = 64;

/// One C library file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CLibrary {
    /// A path that reaches the file from here (`/proc/PID/root/...` for a process in
    /// another mount namespace).
    pub path: PathBuf,
    /// The path as the process that maps it sees it, for messages.
    pub shown: String,
}

/// Every distinct C library mapped by a running process, this one's first.
pub fn mapped() -> Vec<CLibrary> {
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    let own = std::process::id().to_string();
    let pids = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()) && *name != own);
    for pid in std::iter::once(own.clone()).chain(pids) {
        // A process that exited meanwhile, or a kernel thread, has nothing to read.
        let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
            continue;
        };
        for shown in c_libraries_in(&maps) {
            let path = match pid == own {
                true => PathBuf::from(shown),
                false => PathBuf::from(format!("/proc/{pid}/root{shown}")),
            };
            // A regular file only: a process of its own mount namespace could put a FIFO
            // there, on which opening it would block.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() || !seen.insert((meta.dev(), meta.ino())) {
                continue;
            }
            if !native_elf(&path) {
                tracing::debug!(
                    library = shown,
                    "not a library of this machine's ABI: skipped"
                );
                continue;
            }
            if found.len() == MAX_LIBRARIES {
                tracing::warn!(
                    library = shown,
                    "more than {MAX_LIBRARIES} C libraries: skipped"
                );
                continue;
            }
            found.push(CLibrary {
                path,
                shown: shown.to_owned(),
            });
        }
    }
    found
}

/// True when `path` is an ELF file of this process's class and machine: the probes read
/// 64-bit registers and `struct addrinfo` as this ABI lays them out (a 32-bit libc.so.6 in
/// /usr/lib32 is not probed).
fn native_elf(path: &std::path::Path) -> bool {
    let mut header = [0u8; 20];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header));
    // e_ident: magic, class (2: 64-bit), data (1: little-endian); e_machine at 18.
    let machine = u16::from_le_bytes([header[18], header[19]]);
    read.is_ok()
        && header[..4] == *b"\x7fELF"
        && header[4] == 2
        && header[5] == 1
        && machine == NATIVE_MACHINE
}

/// `e_machine` of this build's target.
const NATIVE_MACHINE: u16 = if cfg!(target_arch = "x86_64") {
    62 // EM_X86_64
} else if cfg!(target_arch = "aarch64") {
    183 // EM_AARCH64
} else {
    0 // no other target has the probes' register layout
};

/// The C library paths in one `/proc/PID/maps` text, each once.
fn c_libraries_in(maps: &str) -> Vec<&str> {
    let mut paths: Vec<&str> = Vec::new();
    for line in maps.lines() {
        // address perms offset dev inode path: the path is the sixth field and may hold
        // spaces; a file deleted since it was mapped says so at its end.
        let Some(path) = line.splitn(6, ' ').nth(5).map(str::trim_start) else {
            continue;
        };
        if path.starts_with('/')
            && !path.ends_with(" (deleted)")
            && is_c_library(path)
            && !paths.contains(&path)
        {
            paths.push(path);
        }
    }
    paths
}

/// True for glibc's and musl's shared C library file names.
fn is_c_library(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "libc.so.6"
        || (name.starts_with("libc-") && name.ends_with(".so")) // glibc before 2.34 (libc-2.31.so)
        || (name.starts_with("ld-musl-") && name.ends_with(".so.1"))
        || (name.starts_with("libc.musl-") && name.ends_with(".so.1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_and_musl_are_found_once_each_and_nothing_else() {
        let maps = "\
7f0000000000-7f0000028000 r--p 00000000 fd:01 1234  /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000028000-7f00001bd000 r-xp 00028000 fd:01 1234  /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000300000-7f0000301000 r-xp 00000000 fd:01 99    /lib/ld-musl-x86_64.so.1
7f0000400000-7f0000401000 r-xp 00000000 fd:01 98    /usr/lib/libcrypto.so.3
7f0000500000-7f0000501000 r-xp 00000000 fd:01 97    /opt/old/libc-2.31.so
7f0000600000-7f0000601000 r-xp 00000000 fd:01 96    /tmp/libc.so.6 (deleted)
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0     [stack]
7f0000700000-7f0000701000 rw-p 00000000 00:00 0 
";
        assert_eq!(
            c_libraries_in(maps),
            [
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/ld-musl-x86_64.so.1",
                "/opt/old/libc-2.31.so"
            ]
        );
    }

    #[test]
    fn only_native_elf_files_are_probed() {
        let own = mapped();
        assert!(native_elf(&own[0].path), "{own:?}");
        assert!(!native_elf(std::path::Path::new("/proc/self/status")));
        assert!(!native_elf(std::path::Path::new("/nonexistent")));
    }

    #[test]
    fn this_process_s_own_c_library_comes_first() {
        let found = mapped();
        let own = std::fs::read_to_string("/proc/self/maps").unwrap();
        assert_eq!(found[0].shown, c_libraries_in(&own)[0], "{found:?}");
    }
}
