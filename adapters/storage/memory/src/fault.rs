//! Faults a [`Memory`](crate::Memory) injects in place of a command's normal execution.

/// A fault, injected by [`Memory::inject`](crate::Memory::inject) into the next command it
/// applies to (writes for the write faults, reads for [`Fault::FailRead`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The next write is refused; nothing is written.
    Reject,
    /// The next write fails with an unknown outcome, and did not write.
    FailBeforeWrite,
    /// The next write is executed, then reported failed with an unknown outcome.
    FailAfterWrite,
    /// Another writer appends one foreign event to the stream just before the next write runs.
    Conflict,
    /// The next read (snapshot load or event read) fails.
    FailRead,
    /// The next write fails with an unknown outcome, without writing, and fences the store:
    /// every command fails until [`Store::reopen`](persevere_core::Store::reopen) (as a file
    /// store does after a failed log write or fsync). See
    /// [`Memory::fail_reopens`](crate::Memory::fail_reopens).
    Fence,
}

impl Fault {
    /// Whether the fault applies to write commands (else to reads).
    pub fn targets_writes(self) -> bool {
        !matches!(self, Fault::FailRead)
    }
}
