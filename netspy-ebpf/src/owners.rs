//! The socket -> owner map: filled in process context (socket, bind, accept, connect,
//! SYN_SENT), read in softirq
//! (outcomes, drops). A `struct sock` address is reused as soon as the socket is freed, and
//! UDP sockets have no close hook to forget them by, so each entry also remembers the inode
//! number of its socket: an entry whose socket's inode differs is an earlier socket's.

use netspy_common::{config::ABSENT, task::TaskInfo};

use crate::{
    kernel::{config, read_kernel},
    maps::{SOCK_OWNERS, SockOwner},
};

/// Remembers `task` as the owner of `sk`, whose `struct socket` is `socket` (0 when not known
/// yet: it is then read from `sk`). Best effort: a full LRU evicts the oldest owner.
#[inline(always)]
pub fn remember(sk: u64, socket: u64, task: TaskInfo, syn_sent_ns: u64) {
    let socket = if socket != 0 { socket } else { socket_of(sk) };
    let owner = SockOwner {
        task,
        syn_sent_ns,
        socket_ino: inode_of(socket),
        socket,
    };
    let _ = SOCK_OWNERS.insert(&sk, &owner, 0);
}

/// [`remember`] (without a SYN time), unless the same thread of the same process already
/// owns this `struct socket` at `sk`: repeated connects of one socket cost a lookup, not
/// a map update and an inode read.
#[inline(always)]
pub fn remember_changed(sk: u64, socket: u64, task: TaskInfo) {
    // SAFETY: only fields are compared; the reference is not kept.
    if let Some(known) = unsafe { SOCK_OWNERS.get(&sk) }
        && known.socket == socket
        && known.task.pid == task.pid
        && known.task.tgid == task.tgid
        && known.task.comm == task.comm
    {
        return;
    }
    remember(sk, socket, task, 0);
}

/// The owner of `sk`, unless the entry was left by an earlier socket at the same address
/// (then it is removed). A socket being torn down has no `struct socket` left to compare:
/// its entry is trusted, since only a socket still open can be a newer one.
#[inline(always)]
pub fn owner_of(sk: u64) -> Option<SockOwner> {
    // SAFETY: the value is copied out at once.
    let owner = unsafe { SOCK_OWNERS.get(&sk) }.copied()?;
    let current = inode_of(socket_of(sk));
    if owner.socket_ino != 0 && current != 0 && current != owner.socket_ino {
        let _ = SOCK_OWNERS.remove(&sk);
        return None;
    }
    Some(owner)
}

/// Forgets `sk` (its TCP life ended; the address may be reused by someone else's socket).
#[inline(always)]
pub fn forget(sk: u64) {
    let _ = SOCK_OWNERS.remove(&sk);
}

/// `sk->sk_socket`, 0 for an orphaned socket (or when this kernel's BTF lacked the offsets).
#[inline(always)]
fn socket_of(sk: u64) -> u64 {
    let offset = config(|c| &c.sock_socket);
    if offset == ABSENT {
        return 0;
    }
    read_kernel(sk + offset as u64).unwrap_or(0)
}

/// The inode number of a `struct socket` (its `socket_alloc`'s `vfs_inode.i_ino`), 0 when
/// unknown.
#[inline(always)]
fn inode_of(socket: u64) -> u64 {
    let offset = config(|c| &c.socket_inode);
    if socket == 0 || offset == ABSENT {
        return 0;
    }
    let inode = socket + offset as u64;
    read_kernel(inode + config(|c| &c.inode_ino) as u64).unwrap_or(0)
}
