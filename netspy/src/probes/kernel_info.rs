//! What the kernel programs need to know about the running kernel, read at load time:
//! structure offsets from BTF (Rust eBPF has no CO-RE relocations yet), tracepoint record
//! layouts from tracefs, and the drop-reason enum (its values change between kernels).

use std::{collections::HashMap, path::Path, sync::Arc};

use btf_rs::{Btf, Type};
use netspy_common::config::{ABSENT, Config};

use super::{ProbeError, tracefs::Format};

const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
const REASON_PREFIX: &str = "SKB_DROP_REASON_";

/// Offsets for the kernel programs and names for userspace.
pub struct KernelInfo {
    /// The `.rodata` configuration (without `ignore_tgid`, which the caller sets).
    pub config: Config,
    /// `enum skb_drop_reason` value -> short name.
    pub drop_reasons: HashMap<u32, Arc<str>>,
}

impl KernelInfo {
    /// Reads BTF and the tracepoint formats under `tracefs`.
    pub fn read(tracefs: &Path) -> Result<Self, ProbeError> {
        let btf = Btf::from_file(VMLINUX_BTF).map_err(|e| {
            ProbeError::Btf(format!(
                "reading {VMLINUX_BTF}: {e} (netspy needs a kernel with CONFIG_DEBUG_INFO_BTF)"
            ))
        })?;
        let reasons = enum_values(&btf, "skb_drop_reason")?;
        let reason = |name: &str| {
            reasons
                .iter()
                .find(|(_, n)| n == name)
                .map(|(v, _)| *v)
                .ok_or_else(|| ProbeError::Btf(format!("enum skb_drop_reason has no {name}")))
        };
        let off = |s: &str, m: &str| member_offset(&btf, s, m);
        let enter = Format::read(tracefs, "syscalls", "sys_enter_connect")?;
        let exit = Format::read(tracefs, "syscalls", "sys_exit_connect")?;
        let state = Format::read(tracefs, "sock", "inet_sock_set_state")?;
        let drop = Format::read(tracefs, "skb", "kfree_skb")?;
        let socket = Format::read_optional(tracefs, "syscalls", "sys_exit_socket")?;
        let bind = Format::read_optional(tracefs, "syscalls", "sys_enter_bind")?;
        let accept = Format::read_optional(tracefs, "syscalls", "sys_exit_accept")?;
        let accept4 = Format::read_optional(tracefs, "syscalls", "sys_exit_accept4")?;
        let tp = |f: &Format, what: &str, field: &str, size| {
            f.offset(field, size)
                .map_err(|e| ProbeError::Tracefs(format!("{what}: {e}")))
        };
        let tp_opt = |f: &Format, what: &str, field: &str, size| {
            f.optional_offset(field, size)
                .map(|o| o.unwrap_or(ABSENT))
                .map_err(|e| ProbeError::Tracefs(format!("{what}: {e}")))
        };
        // The socket_owners probe is optional: a missing tracepoint leaves its offset ABSENT
        // and its hook is refused at attach time, reported like any other.
        let tp_if = |f: &Option<Format>, what: &str, field: &str, size| match f {
            Some(f) => tp(f, what, field, size),
            None => Ok(ABSENT),
        };
        // A connect's local address is a refinement too: ABSENT leaves connects without one.
        let sock_common = |member: &str| {
            (|| Ok::<_, ProbeError>(off("sock", "__sk_common")? + off("sock_common", member)?))()
                .inspect_err(|e| tracing::warn!("connects carry no local address: {e}"))
                .unwrap_or(ABSENT)
        };
        // Telling a reused socket address apart is a refinement: without these offsets the
        // owner map works as before, unchecked.
        let socket_identity = (|| {
            let socket_inode = off("socket_alloc", "vfs_inode")?
                .checked_sub(off("socket_alloc", "socket")?)
                .ok_or_else(|| ProbeError::Btf("socket_alloc.vfs_inode precedes .socket".into()))?;
            Ok::<_, ProbeError>((
                off("sock", "sk_socket")?,
                socket_inode,
                off("inode", "i_ino")?,
            ))
        })()
        .inspect_err(|e| {
            tracing::warn!("socket owners are not checked for reused addresses: {e}");
        })
        .ok();
        let config = Config {
            ignore_tgid: 0,
            reason_not_dropped: reason("SKB_NOT_DROPPED_YET")?,
            reason_consumed: reason("SKB_CONSUMED")?,
            task_files: off("task_struct", "files")?,
            files_fdt: off("files_struct", "fdt")?,
            fdtable_fd: off("fdtable", "fd")?,
            fdtable_max_fds: off("fdtable", "max_fds")?,
            file_private_data: off("file", "private_data")?,
            socket_file: off("socket", "file")?,
            socket_sk: off("socket", "sk")?,
            sock_type: off("sock", "sk_type")?,
            sock_protocol: off("sock", "sk_protocol")?,
            sock_err: off("sock", "sk_err")?,
            skb_head: off("sk_buff", "head")?,
            skb_network_header: off("sk_buff", "network_header")?,
            skb_sk: off("sk_buff", "sk")?,
            skb_protocol: off("sk_buff", "protocol")?,
            tp_connect_fd: tp(&enter, "sys_enter_connect", "fd", 8)?,
            tp_connect_uservaddr: tp(&enter, "sys_enter_connect", "uservaddr", 8)?,
            tp_connect_addrlen: tp(&enter, "sys_enter_connect", "addrlen", 8)?,
            tp_connect_ret: tp(&exit, "sys_exit_connect", "ret", 8)?,
            tp_state_skaddr: tp(&state, "inet_sock_set_state", "skaddr", 8)?,
            tp_state_oldstate: tp(&state, "inet_sock_set_state", "oldstate", 4)?,
            tp_state_newstate: tp(&state, "inet_sock_set_state", "newstate", 4)?,
            tp_state_sport: tp(&state, "inet_sock_set_state", "sport", 2)?,
            tp_state_dport: tp(&state, "inet_sock_set_state", "dport", 2)?,
            tp_state_family: tp(&state, "inet_sock_set_state", "family", 2)?,
            tp_state_protocol: tp(&state, "inet_sock_set_state", "protocol", 2)?,
            tp_state_saddr: tp(&state, "inet_sock_set_state", "saddr", 4)?,
            tp_state_daddr: tp(&state, "inet_sock_set_state", "daddr", 4)?,
            tp_state_saddr_v6: tp(&state, "inet_sock_set_state", "saddr_v6", 16)?,
            tp_state_daddr_v6: tp(&state, "inet_sock_set_state", "daddr_v6", 16)?,
            tp_drop_skbaddr: tp(&drop, "kfree_skb", "skbaddr", 8)?,
            tp_drop_location: tp(&drop, "kfree_skb", "location", 8)?,
            tp_drop_reason: tp_opt(&drop, "kfree_skb", "reason", 4)?,
            tp_drop_rx_sk: tp_opt(&drop, "kfree_skb", "rx_sk", 8)?,
            sock_num: sock_common("skc_num"),
            sock_rcv_saddr: sock_common("skc_rcv_saddr"),
            sock_v6_rcv_saddr: sock_common("skc_v6_rcv_saddr"),
            sock_socket: socket_identity.map_or(ABSENT, |(s, _, _)| s),
            socket_inode: socket_identity.map_or(ABSENT, |(_, i, _)| i),
            inode_ino: socket_identity.map_or(ABSENT, |(_, _, n)| n),
            tp_socket_ret: tp_if(&socket, "sys_exit_socket", "ret", 8)?,
            tp_bind_fd: tp_if(&bind, "sys_enter_bind", "fd", 8)?,
            tp_accept_ret: tp_if(&accept, "sys_exit_accept", "ret", 8)?,
            tp_accept4_ret: tp_if(&accept4, "sys_exit_accept4", "ret", 8)?,
        };
        let drop_reasons = reasons
            .into_iter()
            .map(|(value, name)| {
                let short = name.strip_prefix(REASON_PREFIX).unwrap_or(&name);
                (value, Arc::from(short))
            })
            .collect();
        Ok(Self {
            config,
            drop_reasons,
        })
    }
}

/// Values of `enum name` as (value, NAME).
fn enum_values(btf: &Btf, name: &str) -> Result<Vec<(u32, String)>, ProbeError> {
    let types = btf
        .resolve_types_by_name(name)
        .map_err(|e| ProbeError::Btf(format!("enum {name}: {e}")))?;
    let Some(Type::Enum(e)) = types.into_iter().find(|t| matches!(t, Type::Enum(_))) else {
        return Err(ProbeError::Btf(format!("enum {name} is not in BTF")));
    };
    e.members
        .iter()
        .map(|m| {
            let n = btf
                .resolve_name(m)
                .map_err(|e| ProbeError::Btf(format!("enum {name}: {e}")))?;
            Ok((m.val(), n))
        })
        .collect()
}

/// Byte offset of `member` in `struct sname`, looking inside anonymous structs and unions
/// (sk_buff keeps most fields in `struct_group`s).
fn member_offset(btf: &Btf, sname: &str, member: &str) -> Result<u32, ProbeError> {
    let types = btf
        .resolve_types_by_name(sname)
        .map_err(|e| ProbeError::Btf(format!("struct {sname}: {e}")))?;
    let Some(Type::Struct(s)) = types.into_iter().find(|t| matches!(t, Type::Struct(_))) else {
        return Err(ProbeError::Btf(format!("struct {sname} is not in BTF")));
    };
    let bits = find_member(btf, &s, member)
        .ok_or_else(|| ProbeError::Btf(format!("struct {sname} has no member {member}")))?;
    if bits % 8 != 0 {
        return Err(ProbeError::Btf(format!("{sname}.{member} is a bitfield")));
    }
    Ok(bits / 8)
}

fn find_member(btf: &Btf, s: &btf_rs::Struct, member: &str) -> Option<u32> {
    s.members.iter().find_map(|m| {
        let name = btf.resolve_name(m).ok()?;
        if name == member {
            return Some(m.bit_offset());
        }
        if !name.is_empty() {
            return None;
        }
        match btf.resolve_chained_type(m).ok()? {
            Type::Struct(inner) | Type::Union(inner) => {
                find_member(btf, &inner, member).map(|b| m.bit_offset() + b)
            }
            _ => None,
        }
    })
}
