//! The anonymous half of a sign-in or an enrollment: the WebAuthn state between the ceremony's start
//! and its finish. It is sealed under the key-encryption key and kept by the browser (a cookie, see
//! `app::api::identity`), never in the database, so calls from signed-out browsers write nothing. The
//! seal names the kind of ceremony (a sign-in's state cannot finish an enrollment), the state carries
//! its expiry and a random nonce, and a finish that succeeds spends the nonce in the database
//! (`Store::first_use`), so each start finishes at most once, at every instance.
use std::sync::Arc;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::{
    clock::Millis,
    sealing::{BearerDigests, Kek},
    secrets::random_token,
    store::{Store, StoreResult},
};

/// How long a started ceremony can be finished: enough to find a passkey and read a prompt.
pub const CEREMONY_TTL_MS: Millis = 5 * 60_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    SignIn,
    Enrollment,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::SignIn => "ceremonies/sign-in",
            Kind::Enrollment => "ceremonies/enrollment",
        }
    }
}

/// Why a presented state does not finish a ceremony; to the person, all mean "start again".
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CeremonyError {
    #[error("no ceremony was started in this browser")]
    Missing,
    #[error("the ceremony's state was not sealed by this server for this kind of ceremony")]
    Forged,
    #[error("the ceremony took too long")]
    Expired,
    #[error("the ceremony was already finished")]
    Spent,
}

#[derive(Serialize, Deserialize)]
struct Sealed<T> {
    nonce: String,
    expires_at: Millis,
    state: T,
}

/// What spends an opened ceremony (`Ceremonies::spend`), once its finish has verified.
#[derive(Debug)]
pub struct Ticket {
    nonce: String,
    expires_at: Millis,
}

#[derive(Clone, Debug)]
pub struct Ceremonies {
    kek: Arc<Kek>,
    digests: BearerDigests,
    store: Store,
}

impl Ceremonies {
    pub fn new(kek: Arc<Kek>, store: Store) -> Ceremonies {
        Ceremonies {
            digests: BearerDigests::new(&kek),
            kek,
            store,
        }
    }

    /// The sealed state the browser keeps until the finish.
    pub fn seal<T: Serialize>(&self, kind: Kind, state: T, now: Millis) -> String {
        let sealed = Sealed {
            nonce: random_token(16),
            expires_at: now.saturating_add(CEREMONY_TTL_MS),
            state,
        };
        let json = serde_json::to_string(&sealed).expect("ceremony states serialise");
        self.kek.seal(kind.label(), &json)
    }

    /// Opens what the browser presented at the finish: sealed by this server, for `kind`, in time.
    pub fn open<T: DeserializeOwned>(
        &self,
        kind: Kind,
        presented: Option<&str>,
        now: Millis,
    ) -> Result<(T, Ticket), CeremonyError> {
        let presented = presented.ok_or(CeremonyError::Missing)?;
        let json = self
            .kek
            .open(kind.label(), presented)
            .map_err(|_| CeremonyError::Forged)?;
        let sealed: Sealed<T> = serde_json::from_str(&json).map_err(|_| CeremonyError::Forged)?;
        if sealed.expires_at <= now {
            return Err(CeremonyError::Expired);
        }
        let ticket = Ticket {
            nonce: sealed.nonce,
            expires_at: sealed.expires_at,
        };
        Ok((sealed.state, ticket))
    }

    /// Records the ceremony as finished; `Spent` if it already was (a replayed state). The record
    /// lasts as long as the state could be presented, then the sweep takes it.
    pub async fn spend(
        &self,
        ticket: Ticket,
        now: Millis,
    ) -> StoreResult<Result<(), CeremonyError>> {
        let key = self.digests.of("ceremony", &ticket.nonce);
        Ok(
            if self.store.first_use(&key, ticket.expires_at, now).await? {
                Ok(())
            } else {
                Err(CeremonyError::Spent)
            },
        )
    }
}
