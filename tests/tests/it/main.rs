//! The integration tests: one binary, one module per area. Real sockets only: the moto
//! emulator for AWS and the fake Atlassian Cloud over HTTP.

mod emulator;
