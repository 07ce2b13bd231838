//! Attaching each probe through a chain of hooks: the first that loads and attaches wins;
//! every refusal is recorded with the kernel's reason, and a probe with no working hook is
//! reported while the others keep working.

use std::cell::OnceCell;

use aya::{
    Ebpf,
    programs::{
        BtfTracePoint, ProgramError, RawTracePoint, TracePoint, UProbe, uprobe::UProbeScope,
    },
};
use serde::Serialize;

use netspy_common::config::Config;

use super::specs::PROBES;

use super::libraries::{self, CLibrary};
use crate::error_chain::error_chain;

/// One way to attach one program.
#[derive(Clone, Copy, Debug)]
pub enum Attachment {
    /// A classic tracepoint `category/name`.
    Classic {
        /// The eBPF program's name.
        program: &'static str,
        /// The tracepoint's category (`syscalls`, `tcp`).
        category: &'static str,
        /// The tracepoint's name.
        name: &'static str,
    },
    /// A raw tracepoint.
    Raw {
        /// The eBPF program's name.
        program: &'static str,
        /// The tracepoint's name.
        name: &'static str,
    },
    /// A BTF-typed tracepoint (`tp_btf`): typed arguments, plain loads.
    Btf {
        /// The eBPF program's name.
        program: &'static str,
        /// The tracepoint's name.
        name: &'static str,
    },
    /// A uprobe (or, with `ret`, a uretprobe) on a function of the C library, set in
    /// every C library that processes map ([`libraries::mapped`]).
    CLibrary {
        /// The eBPF program's name.
        program: &'static str,
        /// The function.
        symbol: &'static str,
        /// On its return rather than its entry.
        ret: bool,
    },
}

impl Attachment {
    /// How the attachment is named in `/health` and `--disable-hook`: the tracepoint, and the
    /// program when it is not named after it (two hooks use `sys_exit_connect`).
    fn describe(&self) -> String {
        match self {
            Self::Classic {
                category,
                name,
                program,
            } if program == name => format!("tracepoint:{category}/{name}"),
            Self::Classic {
                category,
                name,
                program,
            } => format!("tracepoint:{category}/{name}:{program}"),
            Self::Raw { name, .. } => format!("raw_tracepoint:{name}"),
            Self::Btf { name, .. } => format!("tp_btf:{name}"),
            Self::CLibrary { symbol, ret, .. } => {
                format!(
                    "{}:libc:{symbol}",
                    if *ret { "uretprobe" } else { "uprobe" }
                )
            }
        }
    }

    /// Attaches; `libraries` is the C libraries found, looked for once when first needed.
    fn attach(&self, ebpf: &mut Ebpf, libraries: &OnceCell<Vec<CLibrary>>) -> Result<(), String> {
        let (program, result) = match *self {
            Self::Classic {
                program,
                category,
                name,
            } => (program, attach_tracepoint(ebpf, program, category, name)),
            Self::Raw { program, name } => (program, attach_raw(ebpf, program, name)),
            Self::Btf { program, name } => (program, attach_btf(ebpf, program, name)),
            Self::CLibrary {
                program, symbol, ..
            } => {
                let libraries = libraries.get_or_init(libraries::mapped);
                return attach_c_library(ebpf, program, symbol, libraries);
            }
        };
        result.map_err(|e| format!("{program}: {}", error_chain(&e)))
    }
}

/// Sets the uprobe `program` on `symbol` in each C library. Succeeds when it is set in at
/// least one; the libraries that refused are logged (a library of a container that has
/// gone since it was found, a stripped or foreign one).
fn attach_c_library(
    ebpf: &mut Ebpf,
    program: &str,
    symbol: &str,
    libraries: &[CLibrary],
) -> Result<(), String> {
    let prog: &mut UProbe = program_mut(ebpf, program)
        .and_then(|p| p.try_into())
        .map_err(|e| format!("{program}: {}", error_chain(&e)))?;
    prog.load()
        .map_err(|e| format!("{program}: {}", error_chain(&e)))?;
    let mut refused = Vec::new();
    let mut set = 0;
    for library in libraries {
        match prog.attach(symbol, &library.path, UProbeScope::AllProcesses) {
            Ok(_) => {
                set += 1;
                tracing::debug!(program, library = %library.shown, "set");
            }
            Err(e) => {
                let why = format!("{}: {}", library.shown, error_chain(&e));
                tracing::warn!(program, "{why}");
                refused.push(why);
            }
        }
    }
    match (set, libraries.is_empty()) {
        (0, true) => Err(format!(
            "{program}: no process maps a C library (glibc or musl)"
        )),
        (0, false) => Err(format!("{program}: {}", refused.join("; "))),
        _ => Ok(()),
    }
}

fn attach_tracepoint(
    ebpf: &mut Ebpf,
    program: &str,
    category: &str,
    name: &str,
) -> Result<(), ProgramError> {
    let prog: &mut TracePoint = program_mut(ebpf, program)?.try_into()?;
    prog.load()?;
    prog.attach(category, name).map(drop)
}

fn attach_raw(ebpf: &mut Ebpf, program: &str, name: &str) -> Result<(), ProgramError> {
    let prog: &mut RawTracePoint = program_mut(ebpf, program)?.try_into()?;
    prog.load()?;
    prog.attach(name).map(drop)
}

fn attach_btf(ebpf: &mut Ebpf, program: &str, name: &str) -> Result<(), ProgramError> {
    let btf = aya::Btf::from_sys_fs()
        .map_err(|e| ProgramError::IOError(std::io::Error::other(format!("kernel BTF: {e}"))))?;
    let prog: &mut BtfTracePoint = program_mut(ebpf, program)?.try_into()?;
    prog.load(name, &btf)?;
    prog.attach().map(drop)
}

fn program_mut<'a>(
    ebpf: &'a mut Ebpf,
    name: &str,
) -> Result<&'a mut aya::programs::Program, ProgramError> {
    ebpf.program_mut(name).ok_or_else(|| {
        ProgramError::IOError(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("program {name} is not in the object"),
        ))
    })
}

/// A hook: one or more attachments that only work together (connect needs enter and exit).
#[derive(Clone, Copy, Debug)]
pub struct Hook {
    /// Attached in this order.
    pub attachments: &'static [Attachment],
    /// Why the running kernel cannot use this hook (a kernel fact it needs is missing).
    pub unusable: fn(&Config) -> Option<&'static str>,
}

/// A hook that needs nothing beyond what every probe needs.
pub fn always(_: &Config) -> Option<&'static str> {
    None
}

impl Hook {
    fn describe(&self) -> String {
        self.attachments
            .iter()
            .map(Attachment::describe)
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

/// Every hook netspy can attach (`tracepoint:skb/kfree_skb`), for `--disable-hook`.
pub fn known_hooks() -> Vec<String> {
    PROBES
        .iter()
        .flat_map(|p| {
            p.hooks
                .iter()
                .flat_map(|h| h.attachments.iter().map(Attachment::describe))
        })
        .fold(Vec::new(), |mut hooks, hook| {
            if !hooks.contains(&hook) {
                hooks.push(hook); // a fallback hook may repeat an attachment
            }
            hooks
        })
}

/// The reason of a hook skipped because `--disable-hook` named one of its attachments.
pub const DISABLED: &str = "disabled by configuration";

/// A hook that was tried and refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Refusal {
    /// The hook (`tracepoint:skb/kfree_skb`).
    pub hook: String,
    /// Why: the kernel's or aya's words, or "disabled by configuration".
    pub reason: String,
}

/// How one probe is attached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ProbeStatus {
    /// Probe name: `connect`, `tcp_outcome`, `packet_drop`, `dns`, `retransmit`, `socket_owners`.
    pub name: String,
    /// The hook in use, None when every hook was refused.
    pub hook: Option<String>,
    /// Hooks tried before (or instead of) the one in use.
    pub refused: Vec<Refusal>,
}

impl ProbeStatus {
    /// True when the probe is delivering events.
    pub fn attached(&self) -> bool {
        self.hook.is_some()
    }

    /// True when the probe is off because every hook of it was disabled by configuration
    /// (`--disable-hook`): what was asked for, not a degradation.
    pub fn disabled(&self) -> bool {
        self.hook.is_none()
            && !self.refused.is_empty()
            && self.refused.iter().all(|r| r.reason == DISABLED)
    }
}

/// Attaches every probe, each through its chain. A hook with an attachment named in
/// `disabled` is skipped. An attachment that a refused hook already attached is not attached
/// twice by a later hook of the chain.
pub fn attach_all(ebpf: &mut Ebpf, config: &Config, disabled: &[String]) -> Vec<ProbeStatus> {
    let mut attached: Vec<String> = Vec::new();
    let libraries = OnceCell::new();
    PROBES
        .iter()
        .map(|probe| {
            let mut status = ProbeStatus { name: probe.name.to_owned(), hook: None, refused: Vec::new() };
            for hook in probe.hooks {
                let hook_name = hook.describe();
                if hook.attachments.iter().any(|a| disabled.contains(&a.describe())) {
                    status.refused.push(Refusal { hook: hook_name, reason: DISABLED.into() });
                    continue;
                }
                if let Some(why) = (hook.unusable)(config) {
                    status.refused.push(Refusal { hook: hook_name, reason: why.into() });
                    continue;
                }
                // Links of a partly attached hook stay until the Ebpf is dropped; they only
                // feed maps nobody reads for this hook, which is harmless.
                let result = hook.attachments.iter().try_for_each(|a| {
                    let name = a.describe();
                    if !attached.contains(&name) {
                        a.attach(ebpf, &libraries)?;
                        attached.push(name);
                    }
                    Ok::<_, String>(())
                });
                match result {
                    Ok(()) => {
                        tracing::info!(probe = probe.name, hook = %hook_name, "attached");
                        status.hook = Some(hook_name);
                        break;
                    }
                    Err(reason) => {
                        tracing::warn!(probe = probe.name, hook = %hook_name, %reason, "hook refused");
                        status.refused.push(Refusal { hook: hook_name, reason });
                    }
                }
            }
            if status.hook.is_none() {
                tracing::error!(probe = probe.name, "no hook works: this probe reports nothing");
            }
            status
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_probe_has_a_hook_and_names_are_unique() {
        let hooks = known_hooks();
        let mut unique = hooks.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(hooks.len(), unique.len());
        assert!(hooks.contains(&"tracepoint:syscalls/sys_exit_connect".to_owned()));
        assert!(hooks.contains(&"raw_tracepoint:kfree_skb".to_owned()));
        assert!(PROBES.iter().all(|p| !p.hooks.is_empty()));
    }
}
