//! The people behind decisions: approvers and admins, their passkeys, invitations and sessions.
pub mod accounts;
pub mod approvers;
pub mod invitations;
pub mod passkeys;
pub mod registry;
pub mod sessions;
