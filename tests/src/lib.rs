//! Test support: the AWS emulator harness, the fake Atlassian Cloud, the HTTP functions on a
//! loopback server, and headless Chromium for the browser test.

pub mod chromium;
pub mod emulator;
pub mod fake;
pub mod http_functions;
pub mod leak;
pub mod scripted;
