//! netspy: per-process network telemetry for Linux from eBPF.
//!
//! # Layout
//! - [`probes`]: loads and attaches the kernel programs (netspy-ebpf) with per-probe
//!   fallbacks, reads their ring buffers and counts received and lost events.
//! - [`events`]: decodes the kernel's wire structs into domain events, once.
//! - [`cli`]: the `netspy` command line (the only code that writes to stdout).
//!
//! Data flows one way: kernel -> probes -> events -> consumers (today `netspy trace`).

pub mod cli;
pub mod events;
pub mod probes;
