//! The table's shape, in one place: the store, the test harness, `make local` and the SAM
//! template test all read these names.

/// Partition key (string).
pub const PK: &str = "pk";
/// Sort key (string).
pub const SK: &str = "sk";
/// TTL attribute: epoch seconds after which DynamoDB deletes the item (PRIVACY.md P9).
pub const TTL: &str = "expires_at";

/// Sparse GSI over connections, keyed by when a refresh is due, so the refresh schedule
/// queries exactly the due connections and never scans the table.
pub const REFRESH_DUE_INDEX: &str = "refresh-due";
/// GSI partition key (string): a fixed bucket name; present only on items that can be due.
pub const REFRESH_BUCKET: &str = "refresh_bucket";
/// GSI sort key (number): epoch seconds at which the connection is due for a refresh.
pub const REFRESH_DUE_AT: &str = "refresh_due_at";

/// Sparse GSI over export jobs that have not ended, keyed by when one must be looked at again
/// (lease expiry while running, resume time while waiting): the sweeper's query.
pub const JOB_DUE_INDEX: &str = "jobs-due";
/// GSI partition key (string): [`JOB_DUE_BUCKET_VALUE`] on live jobs, absent on ended ones.
pub const JOB_DUE_BUCKET: &str = "job_due_bucket";
pub const JOB_DUE_BUCKET_VALUE: &str = "JOB";
/// GSI sort key (number): epoch seconds.
pub const JOB_DUE_AT: &str = "job_due_at";
