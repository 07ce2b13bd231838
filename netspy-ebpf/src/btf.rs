//! Plain loads through pointers whose BTF type the verifier knows (the current task from
//! `bpf_get_current_task_btf`, and the typed pointers read out of it). The verifier checks
//! each against the kernel's BTF and turns it into a load that cannot fault: a few
//! nanoseconds, where a `bpf_probe_read_kernel` call costs 60-90 ns on the machines measured
//! (ARCHITECTURE.md). Offsets come from `CONFIG`, which the verifier sees as constants.

use aya_ebpf::helpers::generated;

/// A kernel object reached through typed pointers only.
#[derive(Clone, Copy)]
pub struct Typed(*const u8);

impl Typed {
    /// The current task's `struct task_struct` (Linux 5.11+).
    #[inline(always)]
    pub fn current_task() -> Self {
        // SAFETY: no arguments; the result is a trusted, non-NULL task pointer.
        Self(unsafe { generated::bpf_get_current_task_btf() }.cast())
    }

    /// This task's saved user registers, `struct pt_regs` (Linux 5.15+; `self` must be a
    /// task).
    #[inline(always)]
    pub fn user_registers(self) -> Self {
        // SAFETY: takes the trusted task pointer; returns a typed, non-NULL pointer.
        let regs = unsafe { generated::bpf_task_pt_regs(self.0.cast_mut().cast()) };
        Self(regs as *const u8)
    }

    /// A pointer argument of a BTF-typed program (`tp_btf`): the verifier knows its type.
    #[inline(always)]
    pub fn from_argument(pointer: u64) -> Self {
        Self(pointer as *const u8)
    }

    /// The scalar member at `offset` (`T` must be its size).
    #[inline(always)]
    pub fn field<T: Copy>(self, offset: u32) -> T {
        // SAFETY: the verifier checks the load against the pointer's BTF type; a NULL or
        // stale pointer reads as zero instead of faulting.
        unsafe { core::ptr::read(self.0.add(offset as usize).cast::<T>()) }
    }

    /// The pointer member at `offset`, typed as its BTF member type says (NULL when unset).
    #[inline(always)]
    pub fn pointer(self, offset: u32) -> Self {
        Self(self.field::<*const u8>(offset))
    }
}
