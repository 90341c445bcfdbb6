//! What a suite run reports: counts, the first difference of every failing test, every skip with
//! its reason.

use serde::Serialize;

/// Which ethereum/tests suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// `BlockchainTests`.
    Blockchain,
    /// `GeneralStateTests`.
    State,
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Suite::Blockchain => "blockchain",
            Suite::State => "state",
        })
    }
}

/// The verdict on one test (a blockchain test, or one vector of a state test).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every check passed.
    Passed,
    /// A check failed: the first difference found.
    Failed(String),
    /// Not run: why.
    Skipped(String),
}

/// A failing test and the first difference found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TestFailure {
    /// The test (`name` for a blockchain test, `name/fork/dDgGvV` for a state vector, the file
    /// path for a file that does not load).
    pub name: String,
    /// The first difference, as a sentence.
    pub difference: String,
}

/// A skipped test and why it was skipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TestSkip {
    /// The test, named as in [`TestFailure::name`].
    pub name: String,
    /// Why it was not run.
    pub reason: String,
}

/// The outcome of a suite run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SuiteReport {
    /// The suite.
    pub suite: Suite,
    /// Tests counted: passed + failed + skipped.
    pub total: usize,
    /// Tests that passed every check.
    pub passed: usize,
    /// Tests that failed a check (each is in `failures`).
    pub failed: usize,
    /// Tests not run (each is in `skips`).
    pub skipped: usize,
    /// The failures, in file and test order.
    pub failures: Vec<TestFailure>,
    /// The skips, in file and test order.
    pub skips: Vec<TestSkip>,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
}

/// The summary line of a run: `{suite, total, passed, failed, skipped}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SuiteSummary {
    /// The suite.
    pub suite: Suite,
    /// Tests counted.
    pub total: usize,
    /// Tests passed.
    pub passed: usize,
    /// Tests failed.
    pub failed: usize,
    /// Tests skipped.
    pub skipped: usize,
}

impl SuiteReport {
    /// An empty report for `suite`.
    pub fn new(suite: Suite) -> Self {
        Self {
            suite,
            total: 0,
            passed: 0,
            failed: 0,
            skipped: 0,
            failures: Vec::new(),
            skips: Vec::new(),
            seconds: 0.0,
        }
    }

    /// Counts one test.
    pub fn record(&mut self, name: String, verdict: Verdict) {
        self.total += 1;
        match verdict {
            Verdict::Passed => self.passed += 1,
            Verdict::Failed(difference) => {
                self.failed += 1;
                self.failures.push(TestFailure { name, difference });
            }
            Verdict::Skipped(reason) => {
                self.skipped += 1;
                self.skips.push(TestSkip { name, reason });
            }
        }
    }

    /// The counts alone.
    pub fn summary(&self) -> SuiteSummary {
        SuiteSummary {
            suite: self.suite,
            total: self.total,
            passed: self.passed,
            failed: self.failed,
            skipped: self.skipped,
        }
    }

    /// Share of all counted tests that passed (1.0 for an empty run).
    pub fn pass_rate(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.passed as f64 / self.total as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_counted_and_listed() {
        let mut report = SuiteReport::new(Suite::State);
        report.record("a".into(), Verdict::Passed);
        report.record("b".into(), Verdict::Failed("state root differs".into()));
        report.record("c".into(), Verdict::Skipped("fork not supported".into()));
        assert_eq!((report.total, report.passed, report.failed, report.skipped), (3, 1, 1, 1));
        assert_eq!(report.failures[0].name, "b");
        assert_eq!(report.skips[0].reason, "fork not supported");
        let line = serde_json::to_string(&report.summary()).unwrap();
        assert_eq!(line, r#"{"suite":"state","total":3,"passed":1,"failed":1,"skipped":1}"#);
    }
}
