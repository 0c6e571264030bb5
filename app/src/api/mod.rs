//! Server functions: thin. Each finds the session and the service, calls it, and returns a view.
pub mod approvals;
pub mod identity;
