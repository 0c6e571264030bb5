//! What admins do: read the history of every request and verify its evidence. The use-cases here
//! own the rules; `ui::admin` shows them, and refuses anyone but an admin.
pub mod agents;
pub mod history;
pub mod overview;
