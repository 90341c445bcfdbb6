//! Integration tests of `zero-engine` and the `zero-producer` binary.

mod cli;
mod oracle;
mod parallel;
mod replay;
