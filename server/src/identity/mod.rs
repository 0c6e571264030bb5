//! The people behind decisions: approvers and admins. (Passkeys and sessions join them in their own issue.)
pub mod approvers;
