//! The socket -> owner map: filled in process context (socket, bind, accept, connect,
//! SYN_SENT), read in softirq
//! (outcomes, drops). A `struct sock` address is reused as soon as the socket is freed, and
//! UDP sockets have no close hook to forget them by, so each entry also remembers the inode
//! number of its socket: an entry whose socket's inode differs is an earlier socket's.
//! Every write also lands in a direct-mapped cache of the last owner written per slot
//! (`LAST_OWNER_WRITES`), so that a connect can tell an unchanged owner without a map lookup.
//! The cache only ever saves a write the map already holds, except after the LRU evicted an
//! entry (the map full with 65536 sockets): that socket's owner is then missing, never wrong.

use netspy_common::{config::ABSENT, task::TaskInfo};

use crate::{
    kernel::{config, read_kernel},
    maps::{LAST_OWNER_WRITES, OWNER_WRITE_SLOTS, OwnerWrite, SOCK_OWNERS, SockOwner},
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
    note_write(sk, socket, &task);
}

/// The slot of `LAST_OWNER_WRITES` that `sk` uses: sockets are slab objects, so the low bits
/// of their addresses say little. (Not for a typed `sk`, such as the drop program's: the
/// verifier forbids arithmetic on it.)
#[inline(always)]
fn slot(sk: u64) -> u32 {
    ((sk >> 6) ^ (sk >> 16)) as u32 & (OWNER_WRITE_SLOTS - 1)
}

/// Records the owner just written for `sk` in its slot of the write cache.
#[inline(always)]
fn note_write(sk: u64, socket: u64, task: &TaskInfo) {
    if let Some(last) = LAST_OWNER_WRITES.get_ptr_mut(slot(sk)) {
        // SAFETY: a slot of a shared array; a torn write from another CPU can only mix two
        // writes of the same moment, either of which the map may hold too.
        unsafe {
            *last = OwnerWrite {
                sk,
                socket,
                tgid: task.tgid,
                pid: task.pid,
                comm: task.comm,
                process: task.process,
            }
        };
    }
}

/// Empties `sk`'s slot of the write cache if it holds `sk`.
#[inline(always)]
fn forget_write(sk: u64) {
    if let Some(last) = LAST_OWNER_WRITES.get_ptr_mut(slot(sk)) {
        // SAFETY: as in note_write.
        unsafe {
            if (*last).sk == sk {
                (*last).sk = 0;
            }
        }
    }
}

/// [`remember`] (without a SYN time), unless the same thread of the same process, with the
/// same names, already owns this `struct socket` at `sk`. The last owner written for `sk` (by any hook, on any
/// CPU) is usually in its slot of the write cache, an array read of a few ns: a socket()
/// then connect(), or repeated connects of one socket, cost no map operation at all. On a
/// miss, the map says (a lookup, ~85 ns here).
#[inline(always)]
pub fn remember_changed(sk: u64, socket: u64, task: TaskInfo) {
    if let Some(last) = LAST_OWNER_WRITES.get(slot(sk))
        && last.sk == sk
        && last.socket == socket
        && last.pid == task.pid
        && last.tgid == task.tgid
        && last.comm == task.comm
        && last.process == task.process
    {
        return;
    }
    // SAFETY: only fields are compared; the reference is not kept.
    if let Some(known) = unsafe { SOCK_OWNERS.get(&sk) }
        && known.socket == socket
        && known.task.pid == task.pid
        && known.task.tgid == task.tgid
        && known.task.comm == task.comm
        && known.task.process == task.process
    {
        note_write(sk, socket, &task);
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
        // The slot of the write cache may keep the earlier owner: a connect of the new socket
        // by that same thread would then skip its write, leaving the owner missing (not
        // wrong). The new socket's own socket()/accept() wrote it already, in practice.
        let _ = SOCK_OWNERS.remove(&sk);
        return None;
    }
    Some(owner)
}

/// Forgets `sk` (its TCP life ended; the address may be reused by someone else's socket).
#[inline(always)]
pub fn forget(sk: u64) {
    let _ = SOCK_OWNERS.remove(&sk);
    forget_write(sk);
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
