//! What every page, batch and item of one invocation reads: fixed for the invocation.

use super::*;

pub(super) struct Run<'a> {
    /// The lease owner this invocation saves progress as.
    pub(super) owner: &'a str,
    /// The connector as the job snapshot says (query and options at the job's start).
    pub(super) connector: &'a Connector,
    pub(super) layout: &'a Layout,
    pub(super) ctx: &'a Ctx<'a>,
    pub(super) session: &'a Session,
    pub(super) deadline: Instant,
    /// Nothing was stored under the connector's root when this, the job's first invocation,
    /// began: every object it writes is new, so it writes without asking S3 first (one
    /// HeadObject per item and per attachment text fewer). Any later invocation (after a
    /// pause, a wait or a crash) may meet what an earlier one wrote, and asks again.
    pub(super) fresh: bool,
}
