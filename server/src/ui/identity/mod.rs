//! The services behind the identity pages' server functions: who is signed in and signing in and out
//! (`sign_in`), enrolling with an invitation (`enrollment`), and the account's passkeys
//! (`passkey_settings`). A signed-out ceremony's state (signing in, enrolling) is sealed into a cookie
//! between its start and its finish (`identity::ceremonies`), so nothing is written for someone who
//! is not signed in; a signed-in one's lives in the (database-backed) session and is taken out on
//! finish. Either way each challenge is used at most once.
use std::sync::Arc;

mod enrollment;
mod passkey_settings;
mod sign_in;

use app::{
    model::Me,
    service::{Session, UiError, UserResult},
};
use serde::{de::DeserializeOwned, Serialize};
use uuid::Uuid;

use crate::{
    clock::{Clock, Millis},
    identity::{accounts::Accounts, ceremonies::Ceremonies},
    identity::{
        approvers::{self, normalise_email, Approver, Role},
        invitations,
        passkeys::{public_key_json, PasskeyError, Passkeys},
    },
    secrets::{base64url, random_id},
};

use crate::identity::{
    sessions::{SignedInUser, SIGNED_IN},
    verifier::WebauthnVerifier,
};

pub struct IdentityApp {
    accounts: Accounts,
    /// Signed-out ceremonies' sealed state.
    ceremonies: Ceremonies,
    clock: Arc<dyn Clock>,
    webauthn: Arc<Passkeys>,
    /// The passkey assertions an addition is confirmed with, as decisions are made with them.
    verifier: Arc<WebauthnVerifier>,
    /// Absolute session lifetime: a session older than this is ended whatever its activity.
    max_session_ms: Millis,
}

/// Logs the detail; the person is told only that something went wrong.
pub(crate) fn internal(e: impl std::fmt::Display) -> UiError {
    tracing::error!(error = %e, "identity service error");
    UiError::Internal
}

pub(crate) async fn take<T: DeserializeOwned>(
    session: &Session,
    key: &str,
) -> UserResult<Option<T>> {
    session.remove::<T>(key).await.map_err(internal)
}

async fn put<T: Serialize>(session: &Session, key: &str, value: T) -> UserResult<()> {
    session.insert(key, value).await.map_err(internal)
}

/// What the person is told when a passkey cannot be used.
pub(crate) fn passkey_refusal(e: PasskeyError) -> UiError {
    match e {
        PasskeyError::NotYours => UiError::Forbidden("This passkey is not one of yours.".into()),
        PasskeyError::Suspended => {
            UiError::Forbidden("This passkey is suspended; use another one.".into())
        }
        PasskeyError::PossibleClone => UiError::Forbidden(
            "This passkey has been suspended: its signature counter went backwards, which can mean it was copied. \
             An admin has been told; use another passkey."
                .into(),
        ),
        PasskeyError::Invalid => UiError::Forbidden(
            "Your passkey could not be verified; nothing was decided. Please try again.".into(),
        ),
        PasskeyError::Unavailable(e) => internal(e),
    }
}

fn disabled() -> UiError {
    UiError::Forbidden("This account is disabled.".into())
}

fn user_uuid(approver_id: &str) -> UserResult<Uuid> {
    Uuid::parse_str(approver_id).map_err(internal)
}

fn me(approver: &Approver) -> Me {
    Me {
        name: approver.name.clone(),
        email: approver.email.clone(),
        admin: approver.role == Role::Admin,
    }
}

fn passkey_label(name: &str) -> UserResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return Err(UiError::Invalid(
            "Give the passkey a name of 1 to 60 characters.".into(),
        ));
    }
    Ok(name.to_owned())
}

impl IdentityApp {
    pub fn new(
        accounts: Accounts,
        ceremonies: Ceremonies,
        clock: Arc<dyn Clock>,
        passkeys: Arc<Passkeys>,
        verifier: Arc<WebauthnVerifier>,
        max_session_ms: Millis,
    ) -> IdentityApp {
        IdentityApp {
            accounts,
            ceremonies,
            clock,
            webauthn: passkeys,
            verifier,
            max_session_ms,
        }
    }

    /// The signed-in approver, if the session still signs them in (`Accounts::session_holder`); a
    /// session that no longer does is ended.
    pub(crate) async fn approver_of(&self, session: &Session) -> UserResult<Option<Approver>> {
        let Some(user) = session
            .get::<SignedInUser>(SIGNED_IN)
            .await
            .map_err(internal)?
        else {
            return Ok(None);
        };
        let holder = self
            .accounts
            .session_holder(&user, self.clock.now(), self.max_session_ms)
            .await
            .map_err(internal)?;
        if holder.is_none() {
            session.flush().await.map_err(internal)?;
        }
        Ok(holder)
    }

    /// The passkey the session was made with, if it was kept.
    pub(crate) async fn session_passkey(&self, session: &Session) -> UserResult<Option<String>> {
        Ok(session
            .get::<SignedInUser>(SIGNED_IN)
            .await
            .map_err(internal)?
            .and_then(|user| user.credential_id))
    }

    /// A new session id at sign-in (no fixation), bound to the approver's current epoch and to the
    /// passkey that signed in.
    async fn begin_session(
        &self,
        session: &Session,
        approver: &Approver,
        credential_id: &str,
    ) -> UserResult<()> {
        let epoch = self
            .accounts
            .session_epoch(&approver.id)
            .await
            .map_err(internal)?
            .ok_or_else(disabled)?;
        session.cycle_id().await.map_err(internal)?;
        put(
            session,
            SIGNED_IN,
            SignedInUser {
                approver_id: approver.id.clone(),
                epoch,
                since: self.clock.now(),
                credential_id: Some(credential_id.to_owned()),
            },
        )
        .await
    }
}
