//! Pieces several pages share.
pub mod layout;
pub mod passkey;
