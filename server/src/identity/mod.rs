//! The people behind decisions: approvers and admins, their passkeys, invitations and sessions.
pub mod accounts;
pub mod approvers;
pub mod assertion;
pub mod ceremonies;
pub mod delegations;
pub mod groups;
pub mod invitations;
pub mod notices;
pub mod passkeys;
pub mod provenance;
pub mod registry;
pub mod sessions;
pub mod verifier;
