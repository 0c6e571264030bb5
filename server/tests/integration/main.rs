//! Integration tests of the agent-facing CIBA provider, each run on SQLite and on PostgreSQL.
mod approvals;
mod backchannel;
mod cli;
mod common;
mod consent;
mod decisions;
mod discovery;
mod identity;
mod inbox;
mod jwt_clients;
mod limits;
mod notify;
mod push;
mod retention;
mod schema;
mod token;
mod web;
