//! What the kernel programs need to know about the running kernel, read at load time:
//! structure offsets from BTF (Rust eBPF has no CO-RE relocations yet), tracepoint record
//! layouts from tracefs, and the drop-reason enum (its values change between kernels).

use std::{collections::HashMap, mem::offset_of, path::Path, sync::Arc};

use btf_rs::{Btf, Type};
use netspy_common::config::{ABSENT, Config, SockAddrs, SockAddrsV6};

use super::{ProbeError, tracefs::Format};

const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
const REASON_PREFIX: &str = "SKB_DROP_REASON_";

/// Offsets for the kernel programs and names for userspace.
pub struct KernelInfo {
    /// The `.rodata` configuration (without `ignore_tgid` and the `self_*` fields, which the
    /// caller sets).
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
        Self::from_kernel(&btf, tracefs)
    }

    /// What `btf` and the tracepoint formats under `tracefs` say (a kernel's, or a test's
    /// fixtures).
    fn from_kernel(btf: &Btf, tracefs: &Path) -> Result<Self, ProbeError> {
        // Kernels before 5.17 name no drop reasons: drops then carry none.
        let reasons = enum_values(btf, "skb_drop_reason")
            .inspect_err(|e| tracing::warn!("drops carry no reason: {e}"))
            .unwrap_or_default();
        let reason = |name: &str| {
            reasons
                .iter()
                .find(|(_, n)| n == name)
                .map_or(ABSENT, |(v, _)| *v)
        };
        let off = |s: &str, m: &str| member_offset(btf, s, m);
        check_syscall_records(tracefs)?;
        // What only one probe reads: missing, that probe's hooks are refused (specs.rs says
        // which need what), and the others run.
        let [
            state_skaddr,
            state_oldstate,
            state_newstate,
            state_sport,
            state_dport,
            state_family,
            state_protocol,
            state_saddr,
            state_daddr,
            state_saddr_v6,
            state_daddr_v6,
        ] = tracepoint_fields(
            tracefs,
            ("sock", "inet_sock_set_state"),
            [
                ("skaddr", 8, Need::Required),
                ("oldstate", 4, Need::Required),
                ("newstate", 4, Need::Required),
                ("sport", 2, Need::Required),
                ("dport", 2, Need::Required),
                ("family", 2, Need::Required),
                ("protocol", 2, Need::Required),
                ("saddr", 4, Need::Required),
                ("daddr", 4, Need::Required),
                ("saddr_v6", 16, Need::Required),
                ("daddr_v6", 16, Need::Required),
            ],
        );
        let [drop_skbaddr, drop_location, drop_reason, drop_rx_sk] = tracepoint_fields(
            tracefs,
            ("skb", "kfree_skb"),
            [
                ("skbaddr", 8, Need::Required),
                ("location", 8, Need::Required),
                ("reason", 4, Need::Optional),
                ("rx_sk", 8, Need::Optional),
            ],
        );
        let sock_err = optional_offsets(btf, [("sock", "sk_err")], "no TCP results");
        let skb = optional_offsets(
            btf,
            [
                ("sk_buff", "head"),
                ("sk_buff", "network_header"),
                ("sk_buff", "sk"),
                ("sk_buff", "protocol"),
            ],
            "no packet drops",
        );
        // Reading a connected socket's addresses in one go is a refinement: ABSENT leaves
        // connects without a local address, their destination read from the caller.
        let sock_addrs = sock_addresses(btf)
            .inspect_err(|e| tracing::warn!("connects carry no local address: {e}"))
            .ok();
        // Without cgroups (or with another layout) events carry cgroup id 0.
        let cgroup = optional_offsets(
            btf,
            [
                ("task_struct", "cgroups"),
                ("css_set", "dfl_cgrp"),
                ("cgroup", "kn"),
                ("kernfs_node", "id"),
            ],
            "events carry no cgroup id",
        );
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
        // Recognising netspy's own clients by their executable is a refinement: without
        // these offsets they are reported like any other process.
        let executable = optional_offsets(
            btf,
            [
                ("task_struct", "mm"),
                ("mm_struct", "exe_file"),
                ("file", "f_inode"),
                ("inode", "i_ino"),
            ],
            "netspy's own clients are reported too",
        );
        // Telling processes of a reused pid apart (and naming their executable) needs it.
        let start = optional_offsets(
            btf,
            [("task_struct", "start_boottime")],
            "events carry no process start time (no executable paths)",
        );
        // The one-program connect hook needs them; without, enter + exit is used.
        let registers = syscall_argument_registers(btf)
            .inspect_err(|e| tracing::info!("connect arguments come from enter + exit: {e}"))
            .ok();
        let mut config = Config {
            reason_not_dropped: reason("SKB_NOT_DROPPED_YET"),
            reason_consumed: reason("SKB_CONSUMED"),
            task_pid: off("task_struct", "pid")?,
            task_tgid: off("task_struct", "tgid")?,
            task_comm: off("task_struct", "comm")?,
            task_group_leader: off("task_struct", "group_leader")?,
            task_start_boottime: start.map_or(ABSENT, |s| s[0]),
            task_mm: executable.map_or(ABSENT, |e| e[0]),
            mm_exe_file: executable.map_or(ABSENT, |e| e[1]),
            file_inode: executable.map_or(ABSENT, |e| e[2]),
            task_cred: off("task_struct", "cred")?,
            cred_uid: off("cred", "uid")?,
            task_cgroups: cgroup.map_or(ABSENT, |c| c[0]),
            css_set_dfl_cgrp: cgroup.map_or(ABSENT, |c| c[1]),
            cgroup_kn: cgroup.map_or(ABSENT, |c| c[2]),
            kernfs_node_id: cgroup.map_or(ABSENT, |c| c[3]),
            task_files: off("task_struct", "files")?,
            files_fdt: off("files_struct", "fdt")?,
            fdtable_fd: off("fdtable", "fd")?,
            fdtable_max_fds: off("fdtable", "max_fds")?,
            file_private_data: off("file", "private_data")?,
            socket_file: off("socket", "file")?,
            socket_sk: off("socket", "sk")?,
            sock_type: off("sock", "sk_type")?,
            sock_protocol: off("sock", "sk_protocol")?,
            sock_err: sock_err.map_or(ABSENT, |o| o[0]),
            skb_head: skb.map_or(ABSENT, |o| o[0]),
            skb_network_header: skb.map_or(ABSENT, |o| o[1]),
            skb_sk: skb.map_or(ABSENT, |o| o[2]),
            skb_protocol: skb.map_or(ABSENT, |o| o[3]),
            tp_state_skaddr: state_skaddr,
            tp_state_oldstate: state_oldstate,
            tp_state_newstate: state_newstate,
            tp_state_sport: state_sport,
            tp_state_dport: state_dport,
            tp_state_family: state_family,
            tp_state_protocol: state_protocol,
            tp_state_saddr: state_saddr,
            tp_state_daddr: state_daddr,
            tp_state_saddr_v6: state_saddr_v6,
            tp_state_daddr_v6: state_daddr_v6,
            tp_drop_skbaddr: drop_skbaddr,
            tp_drop_location: drop_location,
            tp_drop_reason: drop_reason,
            tp_drop_rx_sk: drop_rx_sk,
            sock_addrs: sock_addrs.map_or(ABSENT, |(v4, _)| v4),
            sock_v6_addrs: sock_addrs.and_then(|(_, v6)| v6).unwrap_or(ABSENT),
            sock_socket: socket_identity.map_or(ABSENT, |(s, _, _)| s),
            socket_inode: socket_identity.map_or(ABSENT, |(_, i, _)| i),
            inode_ino: socket_identity
                .map(|(_, _, n)| n)
                .or(executable.map(|e| e[3]))
                .unwrap_or(ABSENT),
            regs_arg0: registers.map_or(ABSENT, |r| r[0]),
            regs_arg1: registers.map_or(ABSENT, |r| r[1]),
            regs_arg2: registers.map_or(ABSENT, |r| r[2]),
            regs_syscall_nr: syscall_number_register(btf)
                .inspect_err(|e| {
                    tracing::info!("orphaned datagrams are not checked against their sender: {e}")
                })
                .unwrap_or(ABSENT),
            nr_sendto: libc_number(nix::libc::SYS_sendto),
            nr_sendmsg: libc_number(nix::libc::SYS_sendmsg),
            nr_sendmmsg: libc_number(nix::libc::SYS_sendmmsg),
            // The filters are the caller's; what the kinds kept whole read, theirs.
            ..Config::UNKNOWN
        };
        for learn in crate::kinds::KERNEL_FACTS {
            learn(&mut config, btf, tracefs);
        }
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

/// Whether a tracepoint field must be there for the record to be read at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// Without it, no field of the record is used.
    Required,
    /// Newer kernels add it; absent, its offset is [`ABSENT`].
    Optional,
}

/// The offsets of `fields` (name, size in bytes, need) in the record of tracepoint
/// `category/name`. When the tracepoint is missing, or a field is missing or of another
/// size than the programs read (an optional one only when present), every offset is
/// [`ABSENT`] and the reason is logged: the hooks that read the record are then refused.
pub(crate) fn tracepoint_fields<const N: usize>(
    tracefs: &Path,
    (category, name): (&str, &str),
    fields: [(&str, u32, Need); N],
) -> [u32; N] {
    let read = || -> Result<[u32; N], String> {
        let format = Format::read(tracefs, category, name).map_err(|e| e.to_string())?;
        let mut offsets = [ABSENT; N];
        for (offset, (field, size, need)) in offsets.iter_mut().zip(fields) {
            *offset = match need {
                Need::Required => format.offset(field, size)?,
                Need::Optional => format.optional_offset(field, size)?.unwrap_or(ABSENT),
            };
        }
        Ok(offsets)
    };
    read().unwrap_or_else(|e| {
        tracing::warn!("tracepoint {category}/{name} is not used: {e}");
        [ABSENT; N]
    })
}

/// The offsets of a group of members that a refinement needs together, or None (with a
/// warning saying what goes `without` them) when this kernel's BTF lacks any of them.
pub(crate) fn optional_offsets<const N: usize>(
    btf: &Btf,
    members: [(&str, &str); N],
    without: &str,
) -> Option<[u32; N]> {
    let mut offsets = [0; N];
    for (offset, (sname, member)) in offsets.iter_mut().zip(members) {
        match member_offset(btf, sname, member) {
            Ok(found) => *offset = found,
            Err(e) => {
                tracing::warn!("{without}: {e}");
                return None;
            }
        }
    }
    Some(offsets)
}

/// Where `struct sock` keeps the blocks the programs read in one go ([`SockAddrs`], and
/// [`SockAddrsV6`] when the kernel has IPv6), checked member by member against BTF.
fn sock_addresses(btf: &Btf) -> Result<(u32, Option<u32>), ProbeError> {
    let common = member_offset(btf, "sock", "__sk_common")?;
    let at = |member: &str| member_offset(btf, "sock_common", member).map(|o| common + o);
    let base = at("skc_daddr")?;
    let expected = [
        ("skc_rcv_saddr", offset_of!(SockAddrs, rcv_saddr)),
        ("skc_dport", offset_of!(SockAddrs, dport)),
        ("skc_num", offset_of!(SockAddrs, num)),
        ("skc_family", offset_of!(SockAddrs, family)),
        ("skc_state", offset_of!(SockAddrs, state)),
    ];
    for (member, relative) in expected {
        let found = at(member)?;
        if found != base + relative as u32 {
            return Err(ProbeError::Btf(format!(
                "sock_common.{member} is at {found}, not at {} like the kernels netspy knows",
                base + relative as u32
            )));
        }
    }
    let v6 = (|| {
        let daddr = at("skc_v6_daddr")?;
        let saddr = at("skc_v6_rcv_saddr")?;
        (saddr == daddr + offset_of!(SockAddrsV6, rcv_saddr) as u32)
            .then_some(daddr)
            .ok_or_else(|| ProbeError::Btf("skc_v6_rcv_saddr does not follow skc_v6_daddr".into()))
    })()
    .inspect_err(|e| tracing::warn!("IPv6 connects carry no local address: {e}"))
    .ok();
    Ok((base, v6))
}

/// Checks that the syscall tracepoints keep their fields where the programs load them
/// (`syscall_record`: the layout every syscall tracepoint shares). Tracepoints this kernel
/// lacks are skipped: their hooks are refused at attach time, and reported.
fn check_syscall_records(tracefs: &Path) -> Result<(), ProbeError> {
    use netspy_common::syscall_record::{ARGS, RET};
    const FIELDS: [(&str, &str, u32); 8] = [
        ("sys_enter_connect", "fd", ARGS),
        ("sys_enter_connect", "uservaddr", ARGS + 8),
        ("sys_enter_connect", "addrlen", ARGS + 16),
        ("sys_exit_connect", "ret", RET),
        ("sys_exit_socket", "ret", RET),
        ("sys_enter_bind", "fd", ARGS),
        ("sys_exit_accept4", "ret", RET),
        ("sys_exit_accept", "ret", RET),
    ];
    for (name, field, expected) in FIELDS {
        let Some(format) = Format::read_optional(tracefs, "syscalls", name)? else {
            continue;
        };
        let offset = format
            .offset(field, 8)
            .map_err(|e| ProbeError::Tracefs(format!("{name}: {e}")))?;
        if offset != expected {
            return Err(ProbeError::Tracefs(format!(
                "{name}: `{field}` is at byte {offset}, not at {expected} like every syscall \
                 tracepoint netspy knows"
            )));
        }
    }
    Ok(())
}

/// Where `struct pt_regs` keeps the number of the syscall being run, from BTF.
fn syscall_number_register(btf: &Btf) -> Result<u32, ProbeError> {
    if cfg!(target_arch = "x86_64") {
        member_offset(btf, "pt_regs", "orig_ax")
    } else if cfg!(target_arch = "aarch64") {
        member_offset(btf, "pt_regs", "syscallno")
    } else {
        Err(ProbeError::Btf(format!(
            "the syscall number register of {} is not known",
            std::env::consts::ARCH
        )))
    }
}

/// A syscall number as the programs compare it.
fn libc_number(nr: nix::libc::c_long) -> u32 {
    u32::try_from(nr).unwrap_or(ABSENT)
}

/// Where `struct pt_regs` keeps a syscall's first three arguments on this architecture (the
/// syscall ABI), from BTF.
fn syscall_argument_registers(btf: &Btf) -> Result<[u32; 3], ProbeError> {
    if cfg!(target_arch = "x86_64") {
        Ok([
            member_offset(btf, "pt_regs", "di")?,
            member_offset(btf, "pt_regs", "si")?,
            member_offset(btf, "pt_regs", "dx")?,
        ])
    } else if cfg!(target_arch = "aarch64") {
        let regs = member_offset(btf, "pt_regs", "regs")?;
        Ok([regs, regs + 8, regs + 16])
    } else {
        Err(ProbeError::Btf(format!(
            "no syscall argument registers known for {}",
            std::env::consts::ARCH
        )))
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
    let (bits, bitfield) = find_member(btf, &s, member)
        .ok_or_else(|| ProbeError::Btf(format!("struct {sname} has no member {member}")))?;
    // A bit field is no whole member to load, even when it starts on a byte.
    if bitfield || bits % 8 != 0 {
        return Err(ProbeError::Btf(format!("{sname}.{member} is a bit field")));
    }
    Ok(bits / 8)
}

/// The bit offset of `member` in `s`, and whether it is a bit field.
fn find_member(btf: &Btf, s: &btf_rs::Struct, member: &str) -> Option<(u32, bool)> {
    s.members.iter().find_map(|m| {
        let name = btf.resolve_name(m).ok()?;
        if name == member {
            return Some((m.bit_offset(), m.bitfield_size().is_some_and(|n| n != 0)));
        }
        if !name.is_empty() {
            return None;
        }
        match btf.resolve_chained_type(m).ok()? {
            Type::Struct(inner) | Type::Union(inner) => find_member(btf, &inner, member)
                .map(|(bits, bitfield)| (m.bit_offset() + bits, bitfield)),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    //! The BTF walk and the tracepoint checks on checked-in fixtures
    //! (`tests/fixtures/kernel`: `btf.c` says what each BTF file holds; the tracefs trees are
    //! this 6.18 kernel's formats, a 5.10-like one, and one with a syscall record moved).
    use std::path::PathBuf;

    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/kernel")
            .join(name)
    }

    fn btf(name: &str) -> Btf {
        let bytes = std::fs::read(fixture(name)).expect("the fixture is checked in");
        Btf::from_bytes(&bytes).expect("the fixture is BTF")
    }

    fn read(btf_name: &str, tracefs: &str) -> Result<KernelInfo, ProbeError> {
        KernelInfo::from_kernel(&btf(btf_name), &fixture(tracefs))
    }

    #[test]
    fn a_modern_kernel_gives_every_offset_including_those_inside_anonymous_members() {
        let info = read("modern.btf", "tracefs-6.18").expect("everything is there");
        let c = info.config;
        // Nothing is left unknown: every fact is learnt, the kinds' included.
        // SAFETY: `Config` is repr(C) of u32s only, its size asserted in netspy-common.
        let words: [u32; size_of::<Config>() / 4] = unsafe { std::mem::transmute(c) };
        let unknown: Vec<usize> = (0..words.len()).filter(|&i| words[i] == ABSENT).collect();
        assert_eq!(unknown, Vec::<usize>::new(), "word indexes left ABSENT");
        let task = (
            c.task_pid,
            c.task_tgid,
            c.task_comm,
            c.task_group_leader,
            c.task_cred,
        );
        assert_eq!(task, (2568, 2572, 2680, 2576, 2672));
        assert_eq!(
            (c.task_start_boottime, c.task_mm, c.task_files),
            (2664, 2400, 2696)
        );
        let cgroup = (
            c.task_cgroups,
            c.css_set_dfl_cgrp,
            c.cgroup_kn,
            c.kernfs_node_id,
        );
        assert_eq!(cgroup, (2704, 128, 296, 72));
        assert_eq!((c.files_fdt, c.fdtable_fd, c.fdtable_max_fds), (32, 8, 0));
        assert_eq!(
            (c.file_private_data, c.file_inode, c.mm_exe_file),
            (200, 16, 904)
        );
        assert_eq!(
            (c.socket_file, c.socket_sk, c.socket_inode, c.inode_ino),
            (24, 32, 56, 64)
        );
        assert_eq!(
            (c.sock_type, c.sock_protocol, c.sock_err, c.sock_socket),
            (416, 418, 420, 408)
        );
        // sk_buff keeps these in anonymous unions and structs (struct_group).
        let skb = (c.skb_sk, c.skb_protocol, c.skb_network_header, c.skb_head);
        assert_eq!(skb, (24, 146, 150, 200));
        // A TCP buffer's segment count: its control block, then tcp_skb_cb's union.
        assert_eq!(c.skb_tcp_gso_segs, 152 + 8);
        // sock_common's address pair, hash and port pair, in one block.
        assert_eq!((c.sock_addrs, c.sock_v6_addrs), (0, 56));
        if cfg!(target_arch = "x86_64") {
            let regs = (c.regs_arg0, c.regs_arg1, c.regs_arg2, c.regs_syscall_nr);
            assert_eq!(regs, (112, 104, 96, 120));
        }
        assert_eq!((c.reason_not_dropped, c.reason_consumed), (0, 1));
        assert_eq!(info.drop_reasons[&3].as_ref(), "NO_SOCKET");
        assert_eq!(info.drop_reasons[&77].as_ref(), "TCP_INVALID_SEQUENCE");
        // This kernel's tracepoint records.
        let drop = (
            c.tp_drop_skbaddr,
            c.tp_drop_location,
            c.tp_drop_rx_sk,
            c.tp_drop_reason,
        );
        assert_eq!(drop, (8, 16, 24, 36));
        assert_eq!(
            (c.tp_state_skaddr, c.tp_state_newstate, c.tp_state_saddr_v6),
            (8, 20, 40)
        );
        assert_eq!((c.tp_retransmit_skaddr, c.tp_retransmit_err), (16, 76));
    }

    #[test]
    fn what_an_older_kernel_lacks_degrades_only_what_reads_it() {
        let info = read("sparse.btf", "tracefs-5.10").expect("the probes still load");
        let c = info.config;
        // No drop reasons: drops carry none, and nothing is mistaken for "not dropped".
        assert!(info.drop_reasons.is_empty());
        assert_eq!((c.reason_not_dropped, c.reason_consumed), (ABSENT, ABSENT));
        assert_eq!((c.tp_drop_reason, c.tp_drop_rx_sk), (ABSENT, ABSENT));
        assert_eq!((c.tp_drop_skbaddr, c.tp_drop_location), (8, 16));
        // No tcp_retransmit_skb tracepoint: only the retransmit probe's classic hook goes.
        assert_eq!(
            (c.tp_retransmit_skaddr, c.tp_retransmit_err),
            (ABSENT, ABSENT)
        );
        assert_eq!(
            c.skb_tcp_gso_segs, ABSENT,
            "retransmissions carry no segment count"
        );
        // sk_buff.sk missing: the whole group the drop probe reads goes, not one offset.
        let skb = [c.skb_sk, c.skb_protocol, c.skb_network_header, c.skb_head];
        assert_eq!(skb, [ABSENT; 4]);
        // A bit field is no offset to load (sk_err:16 starts on a byte all the same).
        assert_eq!(c.sock_err, ABSENT);
        assert_eq!(
            (c.task_start_boottime, c.task_cgroups, c.kernfs_node_id),
            (ABSENT, ABSENT, ABSENT)
        );
        assert_eq!(
            (c.sock_addrs, c.sock_v6_addrs),
            (0, ABSENT),
            "IPv4 addresses still read"
        );
        // What every probe needs is still found.
        assert_eq!((c.task_pid, c.socket_sk, c.sock_type), (2568, 32, 384));
        assert_eq!((c.tp_state_skaddr, c.tp_state_newstate), (8, 20));
    }

    #[test]
    fn what_every_probe_needs_missing_is_an_error_naming_it() {
        let Err(ProbeError::Btf(why)) = read("broken.btf", "tracefs-6.18") else {
            panic!("task_struct.files is required");
        };
        assert_eq!(why, "struct task_struct has no member files");
        let Err(ProbeError::Tracefs(why)) = read("modern.btf", "tracefs-moved-ret") else {
            panic!("a syscall record laid out otherwise is refused");
        };
        assert!(
            why.contains("sys_exit_connect: `ret` is at byte 24, not at 16"),
            "{why}"
        );
    }

    #[test]
    fn member_lookups_say_what_is_wrong() {
        let btf = btf("sparse.btf");
        let err = |s: &str, m: &str| member_offset(&btf, s, m).unwrap_err().to_string();
        assert!(err("sock", "sk_err").ends_with("sock.sk_err is a bit field"));
        assert!(err("sock", "nope").ends_with("struct sock has no member nope"));
        assert!(err("no_such_struct", "x").contains("no_such_struct"));
        assert!(enum_values(&btf, "skb_drop_reason").is_err());
    }
}
