//! (ssr) What the server functions call. The server crate implements this trait and provides it as
//! Leptos context, so the UI crate never touches the database or WebAuthn verification itself.
use std::sync::Arc;

use async_trait::async_trait;
pub use tower_sessions::Session;
use webauthn_rs_proto::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

pub use crate::error::UiError;
use crate::model::{
    AdminLogView, AgentView, AgentsView, ApproversView, Choice, GroupsView, HistoryDetail,
    HistoryPage, HistoryQuery, InboxView, InvitationView, Me, OverviewView, PasskeyView,
    PendingChangeView, PushDevicesView, RequestView,
};

/// Errors are sentences for the person at the screen with an HTTP status; details stay in the
/// server's log.
pub type UserResult<T> = Result<T, UiError>;

/// The signed-in person, resolved once per call (session, its epoch and lifetime, the account) before
/// any service method that needs one runs. The session rides along for ceremony state.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub approver_id: String,
    pub me: Me,
    /// Their policy asks for their user_code before approving.
    pub requires_user_code: bool,
    pub session: Session,
}

/// The sealed state of a sign-in or an enrollment between its start and its finish. The browser keeps
/// it (a cookie), so nobody signed out has anything written to the database for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CeremonyState(pub String);

/// Whether cookies are marked `Secure` (the public URL is `https`); provided as context by the server.
#[derive(Clone, Copy, Debug)]
pub struct SecureCookies(pub bool);

/// Who is signed in, resolved at most once per HTTP request (the server provides one per request as
/// context). A page's resources are fetched side by side, and validating one session several times
/// at once raced: one call ended an invalid session while another was still using it, and the
/// response failed with a 500.
#[derive(Clone, Default)]
pub struct SignInMemo(Arc<tokio::sync::OnceCell<UserResult<Option<SignedIn>>>>);

impl SignInMemo {
    pub async fn resolve(
        &self,
        resolve: impl std::future::Future<Output = UserResult<Option<SignedIn>>>,
    ) -> UserResult<Option<SignedIn>> {
        self.0.get_or_init(|| resolve).await.clone()
    }
}

/// Who is signed in, and signing in and out.
#[async_trait]
pub trait IdentityService: Send + Sync + 'static {
    /// Who is signed in on this session, if anyone still validly is.
    async fn signed_in(&self, session: &Session) -> UserResult<Option<SignedIn>>;
    async fn start_sign_in(
        &self,
        autofill: bool,
    ) -> UserResult<(RequestChallengeResponse, CeremonyState)>;
    /// Signs in on `session` with the state `start_sign_in` gave, if the browser presented it.
    async fn finish_sign_in(
        &self,
        session: &Session,
        state: Option<CeremonyState>,
        credential: PublicKeyCredential,
    ) -> UserResult<Me>;
    async fn sign_out(&self, session: &Session, everywhere: bool) -> UserResult<()>;
}

/// Enrolling with an invitation link: the first passkey, and the account with it.
#[async_trait]
pub trait EnrollmentService: Send + Sync + 'static {
    async fn invitation(&self, token: &str) -> UserResult<InvitationView>;
    async fn start_enrollment(
        &self,
        token: &str,
        name: Option<String>,
        email: Option<String>,
    ) -> UserResult<(CreationChallengeResponse, CeremonyState)>;
    async fn finish_enrollment(
        &self,
        session: &Session,
        state: Option<CeremonyState>,
        credential: RegisterPublicKeyCredential,
        passkey_name: String,
    ) -> UserResult<Me>;
}

/// The signed-in person's passkeys: listing, adding, renaming, removing.
#[async_trait]
pub trait PasskeyService: Send + Sync + 'static {
    async fn passkeys(&self, user: &SignedIn) -> UserResult<Vec<PasskeyView>>;
    async fn start_add_passkey(&self, user: &SignedIn) -> UserResult<CreationChallengeResponse>;
    /// Registers the new passkey and keeps it in the session until one the account already has
    /// confirms it (`start_confirm_add_passkey`, `confirm_add_passkey`); nothing is added before.
    async fn finish_add_passkey(
        &self,
        user: &SignedIn,
        credential: RegisterPublicKeyCredential,
        name: String,
    ) -> UserResult<()>;
    async fn start_confirm_add_passkey(
        &self,
        user: &SignedIn,
    ) -> UserResult<RequestChallengeResponse>;
    async fn confirm_add_passkey(
        &self,
        user: &SignedIn,
        assertion: PublicKeyCredential,
    ) -> UserResult<()>;
    async fn rename_passkey(&self, user: &SignedIn, id: String, name: String) -> UserResult<()>;
    async fn remove_passkey(&self, user: &SignedIn, id: String) -> UserResult<()>;
}

pub type SharedIdentity = Arc<dyn IdentityService>;
pub type SharedEnrollment = Arc<dyn EnrollmentService>;
pub type SharedPasskeys = Arc<dyn PasskeyService>;

/// Reading requests and deciding them. Every decision needs a fresh passkey assertion whose challenge
/// the server binds to that decision on that request.
#[async_trait]
pub trait ApprovalService: Send + Sync + 'static {
    async fn inbox(&self, user: &SignedIn) -> UserResult<InboxView>;
    async fn request(&self, user: &SignedIn, id: &str) -> UserResult<RequestView>;
    /// `user_code`: needed to approve when the approver's policy asks for it; checked before the
    /// passkey prompt, and wrong entries are counted per request. The passkey's challenge covers the
    /// choice, a denial's reason included.
    async fn start_decision(
        &self,
        user: &SignedIn,
        id: &str,
        choice: Choice,
        user_code: Option<String>,
    ) -> UserResult<RequestChallengeResponse>;
    async fn finish_decision(
        &self,
        user: &SignedIn,
        id: &str,
        choice: Choice,
        credential: PublicKeyCredential,
    ) -> UserResult<RequestView>;
}

pub type SharedApprovals = Arc<dyn ApprovalService>;

/// Push notifications: the browsers a person opted in. `this_endpoint` is the subscription of the
/// browser asking (if any), so the page can say which entry is "this device".
#[async_trait]
pub trait NotificationService: Send + Sync + 'static {
    async fn push_devices(
        &self,
        user: &SignedIn,
        this_endpoint: Option<String>,
    ) -> UserResult<PushDevicesView>;
    /// `subscription`: the browser's `PushSubscription.toJSON()`; `user_agent` names the device.
    async fn subscribe_push(
        &self,
        user: &SignedIn,
        subscription: String,
        user_agent: Option<String>,
    ) -> UserResult<()>;
    /// Removes a device by id, or (with `endpoint`) the browser asking.
    async fn unsubscribe_push(
        &self,
        user: &SignedIn,
        id: Option<String>,
        endpoint: Option<String>,
    ) -> UserResult<()>;
    /// Sends a test notification to every device; returns how many accepted it.
    async fn test_push(&self, user: &SignedIn) -> UserResult<usize>;
}

pub type SharedNotifications = Arc<dyn NotificationService>;

/// The admin console. Every method refuses anyone but an admin (403): the check is made here, on
/// the server, whatever the pages show.
#[async_trait]
pub trait AdminService: Send + Sync + 'static {
    /// A page of the history of every request, newest first.
    async fn history(&self, user: &SignedIn, query: HistoryQuery) -> UserResult<HistoryPage>;
    /// One request (by its page reference) with its decision record and that record's checks.
    async fn history_detail(&self, user: &SignedIn, id: &str) -> UserResult<HistoryDetail>;
    /// The last 30 days at a glance.
    async fn overview(&self, user: &SignedIn) -> UserResult<OverviewView>;
    /// Every agent with its last 30 days.
    async fn agents(&self, user: &SignedIn) -> UserResult<AgentsView>;
    /// One agent; a secret issued to it just now is shown (once).
    async fn agent(&self, user: &SignedIn, id: &str) -> UserResult<AgentView>;
    /// What admins did, newest first.
    async fn admin_log(&self, user: &SignedIn) -> UserResult<AdminLogView>;
    /// Every approver; an enrollment link made just now is shown (once).
    async fn approvers(&self, user: &SignedIn) -> UserResult<ApproversView>;
    /// Groups of approvers, the agents allowed each, and the approval policies.
    async fn groups(&self, user: &SignedIn) -> UserResult<GroupsView>;
    /// The change to who can approve that this session asked for, waiting for the admin's passkey.
    async fn pending_change(&self, user: &SignedIn) -> UserResult<PendingChangeView>;
    /// Assertion options whose challenge commits to the pending change.
    async fn start_change(&self, user: &SignedIn) -> UserResult<RequestChallengeResponse>;
    /// Makes the pending change with the admin's assertion; the console page to return to, where
    /// the outcome is said.
    async fn confirm_change(
        &self,
        user: &SignedIn,
        assertion: PublicKeyCredential,
    ) -> UserResult<String>;
}

pub type SharedAdmin = Arc<dyn AdminService>;
