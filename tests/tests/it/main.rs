//! The integration tests: one binary, one module per area. Real sockets only: the moto
//! emulator for AWS and the fake Atlassian Cloud over HTTP.

mod api;
mod blob;
mod browser;
mod connect;
mod emulator;
mod erase_later;
mod erase_races;
mod export_confluence;
mod export_confluence_bulk;
mod export_departed;
mod export_documents;
mod export_harness;
mod export_heads;
mod export_healing;
mod export_jira;
mod export_token_life;
mod export_waits;
mod fake_site;
mod fake_site_comments;
mod fake_site_grants;
mod grant_life;
mod grants;
mod http_layer;
mod leak_edges;
mod make_local;
mod refresh;
mod runner_scripted;
mod s3_hold;
mod support;
