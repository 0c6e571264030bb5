//! `countersign gate` (being built): an MCP server in front of one upstream MCP server that stops the
//! tool calls its policy gates until a person approves that exact call through Countersign. This
//! first part is the policy: what passes, what waits for whom, what the approver reads, and the
//! digest that binds an approval to one call.
pub mod policy;
