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
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod testing;
pub mod vault;

#[cfg(test)]
mod props;

/// mimalloc for every binary that links this crate (the four functions, `local`, the bench):
/// glibc's malloc took about a quarter of the export's CPU under `perf` (`_int_malloc`,
/// `malloc_consolidate`, `unlink_chunk`: many small JSON and SDK allocations between 8 MiB part
/// buffers), and a Lambda is billed for that CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
