//! Test support: the AWS emulator harness and the fake Atlassian Cloud.

pub mod emulator;
pub mod fake;
