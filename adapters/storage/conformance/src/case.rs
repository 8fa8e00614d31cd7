//! A named rule of the storage contract.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::kit::{Kit, Opener};
use crate::report::Verdict;

/// What a case returns: `Err` says how the backend broke the rule.
pub(crate) type Outcome = Result<(), String>;

/// The context a case runs in: it opens stores.
pub(crate) struct Ctx<'a> {
    opener: &'a mut dyn Opener,
}

impl Ctx<'_> {
    /// A new, empty store.
    pub(crate) fn fresh(&mut self) -> Kit {
        Kit::new(self.opener.fresh())
    }

    /// The location of the last fresh store, opened again (drop the previous store first).
    pub(crate) fn reopen(&mut self) -> Result<Kit, String> {
        self.opener
            .reopen()
            .map(Kit::new)
            .ok_or_else(|| "the backend cannot be reopened".to_owned())
    }
}

/// One rule of the storage contract, checked against a backend.
#[derive(Clone, Copy)]
pub struct Case {
    /// The case's name.
    pub name: &'static str,
    /// Whether the case needs a backend that can be reopened (durability cases).
    pub needs_reopen: bool,
    pub(crate) check: fn(&mut Ctx<'_>) -> Outcome,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("name", &self.name)
            .field("needs_reopen", &self.needs_reopen)
            .finish()
    }
}

impl Case {
    pub(crate) fn run(&self, opener: &mut dyn Opener) -> Verdict {
        if self.needs_reopen && !opener.can_reopen() {
            return Verdict::Skipped;
        }
        let mut ctx = Ctx { opener };
        match catch_unwind(AssertUnwindSafe(|| (self.check)(&mut ctx))) {
            Ok(Ok(())) => Verdict::Passed,
            Ok(Err(why)) => Verdict::Failed(why),
            Err(panic) => Verdict::Failed(format!(
                "panicked: {}",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)")
            )),
        }
    }
}

/// Fails the case with a message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Fails the case unless `left == right`.
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($msg:tt)+) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(format!("{}: got {:?}, expected {:?}", format!($($msg)+), left, right));
        }
    }};
}

pub(crate) use {ensure, ensure_eq};
