//! Integration tests of `zero-engine` and the `zero-producer` binary.

mod cli;
mod conformance;
mod oracle;
mod parallel;
mod replay;
