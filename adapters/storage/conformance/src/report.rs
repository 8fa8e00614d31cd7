//! What a run of the kit found.

use std::fmt;

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The backend kept the rule.
    Passed,
    /// The backend broke the rule; the text says how.
    Failed(String),
    /// Not run: the case needs a backend that can be reopened.
    Skipped,
}

/// One case and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The case's name.
    pub name: &'static str,
    /// What happened.
    pub verdict: Verdict,
}

/// The verdicts of every case against one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The backend's name, as given.
    pub backend: String,
    /// One result per case, in run order.
    pub results: Vec<CaseResult>,
}

impl Report {
    /// The names of the failed cases.
    pub fn failed(&self) -> Vec<&'static str> {
        self.results
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Failed(_)))
            .map(|r| r.name)
            .collect()
    }

    /// How many cases passed.
    pub fn passed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.verdict == Verdict::Passed)
            .count()
    }

    /// Returns the report if every case that ran passed; panics with the failures otherwise.
    #[track_caller]
    pub fn assert_passed(self) -> Self {
        assert!(self.failed().is_empty(), "{self}");
        self
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.failed();
        let skipped = self
            .results
            .iter()
            .filter(|r| r.verdict == Verdict::Skipped)
            .count();
        writeln!(
            f,
            "conformance of {}: {} passed, {} failed, {} skipped",
            self.backend,
            self.passed(),
            failed.len(),
            skipped
        )?;
        for result in &self.results {
            if let Verdict::Failed(why) = &result.verdict {
                writeln!(f, "  FAILED {}: {why}", result.name)?;
            }
        }
        Ok(())
    }
}
