//! The kernel socket behind a file descriptor of the current task, and the addresses a
//! connected socket holds.

use netspy_common::config::{ABSENT, SockAddrs, SockAddrsV6};

use crate::{
    btf::Typed,
    kernel::{config, read_kernel},
};

/// A socket found behind a file descriptor.
pub struct SocketInfo {
    /// The `struct socket`.
    pub socket: u64,
    /// Its `struct sock`.
    pub sk: u64,
    /// `sk_type` (`SOCK_STREAM`, `SOCK_DGRAM`, ...).
    pub sock_type: u16,
    /// `sk_protocol` (`IPPROTO_*`; 0 for UNIX sockets).
    pub protocol: u16,
}

/// The `struct sock` behind `fd` of `task`, with its real type and protocol:
/// task->files->fdt->fd[fd]->private_data (a `struct socket` whose `file` points back).
/// The typed part of the walk is plain loads; from the `struct file **` array on (BTF types
/// no pointer to a pointer) each step is one `bpf_probe_read_kernel`, with adjacent fields
/// read together: four calls in all.
#[inline(always)]
pub fn socket_of_fd(task: Typed, fd: u64) -> Option<SocketInfo> {
    let fdt = task
        .pointer(config(|c| &c.task_files))
        .pointer(config(|c| &c.files_fdt));
    let max_fds: u32 = fdt.field(config(|c| &c.fdtable_max_fds));
    if fd >= max_fds as u64 {
        return None;
    }
    let fds: u64 = fdt.field(config(|c| &c.fdtable_fd));
    let file: u64 = read_kernel(fds + fd * 8).ok()?;
    if file == 0 {
        return None;
    }
    let socket: u64 = read_kernel(file + config(|c| &c.file_private_data) as u64).ok()?;
    if socket == 0 {
        return None;
    }
    let [back, sk] = read_two::<u64>(socket, config(|c| &c.socket_file), config(|c| &c.socket_sk))?;
    // Not every file is a socket: a socket's `file` points back at its file.
    if back != file || sk == 0 {
        return None;
    }
    let [sock_type, protocol] =
        read_two::<u16>(sk, config(|c| &c.sock_type), config(|c| &c.sock_protocol))?;
    Some(SocketInfo {
        socket,
        sk,
        sock_type,
        protocol,
    })
}

/// The members of type `T` at offsets `a` and `b` of the object at `base`: one read when
/// they are adjacent (known at load time, so the verifier keeps only one of the branches).
#[inline(always)]
fn read_two<T: Copy + Default>(base: u64, a: u32, b: u32) -> Option<[T; 2]> {
    let size = size_of::<T>() as u32;
    if b == a + size {
        read_kernel::<[T; 2]>(base + a as u64).ok()
    } else if a == b + size {
        let [second, first] = read_kernel::<[T; 2]>(base + b as u64).ok()?;
        Some([first, second])
    } else {
        Some([
            read_kernel(base + a as u64).ok()?,
            read_kernel(base + b as u64).ok()?,
        ])
    }
}

/// The addresses and ports in `sk`'s `sock_common` (one read), when this kernel's layout is
/// the known one.
#[inline(always)]
pub fn addresses(sk: u64) -> Option<SockAddrs> {
    read_block(sk, config(|c| &c.sock_addrs))
}

/// `sk`'s IPv6 addresses (one read).
#[inline(always)]
pub fn addresses_v6(sk: u64) -> Option<SockAddrsV6> {
    read_block(sk, config(|c| &c.sock_v6_addrs))
}

/// The `T` at `offset` of `sk`, None when the offset is [`ABSENT`] or unreadable.
#[inline(always)]
fn read_block<T>(sk: u64, offset: u32) -> Option<T> {
    if offset == ABSENT {
        return None;
    }
    read_kernel(sk + offset as u64).ok()
}
