//! Pieces several pages share.
pub mod countdown;
pub mod layout;
pub mod passkey;
pub mod push;
pub mod statement;
