//! netspy's kernel programs: tracepoints, so they work where kprobes and fentry are locked
//! down, and uprobes in the C library for host-name lookups (`dns.rs`). Each program is a thin entry point around a `try_` function; failures are
//! counted in `COUNTERS`, never silently ignored.
#![no_std]
#![no_main]
#![expect(
    clippy::needless_borrows_for_generic_args,
    reason = "map keys and values go by reference: large events must not be copied on the 512-byte BPF stack"
)]

mod btf;
mod connect;
mod dns;
mod drop;
mod kernel;
mod maps;
mod owner_hooks;
mod owners;
mod retransmit;
mod sampling;
mod sender;
mod socket;
mod tcp;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable in a verified program: the verifier rejects any path that gets here.
    loop {}
}

/// `bpf_probe_read_kernel` and friends need a GPL-compatible license.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
