//! DynamoDB access. One table, string keys `pk`/`sk`; see ARCHITECTURE.md's data model.

pub mod schema;
