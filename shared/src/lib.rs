//! Everything that is not a Lambda entry point. See ARCHITECTURE.md for the module map.

pub mod atlassian;
pub mod aws;
pub mod blob;
pub mod clock;
pub mod config;
pub mod connect;
pub mod erase;
pub mod error;
pub mod events;
pub mod export;
pub mod ids;
mod offload;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod testing;
pub mod vault;

#[cfg(test)]
mod props;

/// jemalloc for every binary that links this crate (the four functions, `local`, the bench, the
/// tests). glibc's malloc took about a quarter of the export's CPU under `perf` (`_int_malloc`,
/// `malloc_consolidate`, `unlink_chunk`: many small JSON and SDK allocations between 8 MiB part
/// buffers), and a Lambda at 1,024 MiB has about 0.6 of a vCPU. `make bench`: the Jira export's
/// CPU per 1,000 issues fell from 2.32 to 1.66 s, and the 2 GiB stream's peak RSS stayed at 49
/// MiB (mimalloc, tried before, raised it to 73 MiB, over the 64 MiB target).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
