//! The kernel socket behind a file descriptor of the current task.

use aya_ebpf::helpers::bpf_get_current_task;

use crate::kernel::{config, read_kernel};

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

/// The `struct sock` behind `fd` of the current task, with its real type and protocol:
/// current->files->fdt->fd[fd]->private_data (a `struct socket` whose `file` points back).
#[inline(always)]
pub fn socket_of_fd(fd: u64) -> Option<SocketInfo> {
    // SAFETY: no arguments; the pointer is only used through bpf_probe_read_kernel.
    let task = unsafe { bpf_get_current_task() };
    let files: u64 = read_kernel(task + config(|c| &c.task_files) as u64).ok()?;
    let fdt: u64 = read_kernel(files + config(|c| &c.files_fdt) as u64).ok()?;
    let max_fds: u32 = read_kernel(fdt + config(|c| &c.fdtable_max_fds) as u64).ok()?;
    if fd >= max_fds as u64 {
        return None;
    }
    let fds: u64 = read_kernel(fdt + config(|c| &c.fdtable_fd) as u64).ok()?;
    let file: u64 = read_kernel(fds + fd * 8).ok()?;
    if file == 0 {
        return None;
    }
    let socket: u64 = read_kernel(file + config(|c| &c.file_private_data) as u64).ok()?;
    // Not every file is a socket: a socket's `file` points back at its file.
    let back: u64 = read_kernel(socket + config(|c| &c.socket_file) as u64).ok()?;
    if socket == 0 || back != file {
        return None;
    }
    let sk: u64 = read_kernel(socket + config(|c| &c.socket_sk) as u64).ok()?;
    Some(SocketInfo {
        socket,
        sk,
        sock_type: read_kernel(sk + config(|c| &c.sock_type) as u64).ok()?,
        protocol: read_kernel(sk + config(|c| &c.sock_protocol) as u64).ok()?,
    })
}
