//! One module per page.
pub mod account;
pub mod admin;
pub mod enroll;
pub mod home;
pub mod inbox;
pub mod not_found;
pub mod request;
pub mod sign_in;
