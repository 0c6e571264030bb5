//! Approval of one exact tool call through Countersign, as a registered CIBA client in poll mode:
//! ask (CIBA §7.1), poll within the hold (§7.3, §11), and, right before the call is forwarded, check
//! the token against it: signed by the provider, an access token (`at+jwt`), unexpired, carrying
//! the digest of this very call, and used once.
//!
//! With ping delivery (CIBA §10.2, `--ping-listen`), Countersign says when the decision is made and the
//! gate redeems at once; it still polls, slowly, in case a ping is lost. With push (§10.3,
//! `--push-listen`), the token response itself arrives, and is checked the same way.
//!
//! A request not decided within the hold stays open, keyed by the call's digest: the identical call
//! made again resumes it instead of asking the approver a second time. A call that differs in any
//! argument has another digest, so it can never ride on someone else's approval.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use josekit::{
    jwk::JwkSet,
    jws::ES256,
    jwt::{self},
};
use serde_json::{Map, Value};
use tokio::{
    sync::{Mutex as AsyncMutex, Notify},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use super::{dpop::DpopKey, policy::call_digest};
use crate::{
    agent::{AgentError, CibaClient},
    ciba::{action, action::AgentAction, ids::page_ref, tokens::ACCESS_TOKEN_TYPE, ErrorCode},
    clock::{Clock, SystemClock},
    secrets::{random_token, sha256},
};

/// One exact call: the tool, its arguments, and their digest (see [`call_digest`]).
pub struct Call<'a> {
    pub tool: &'a str,
    pub arguments: &'a Map<String, Value>,
    pub digest: String,
}

impl<'a> Call<'a> {
    pub fn new(tool: &'a str, arguments: &'a Map<String, Value>) -> Call<'a> {
        Call {
            tool,
            arguments,
            digest: call_digest(tool, arguments),
        }
    }
}

/// What to ask, of whom, and how long to wait.
pub struct Ask<'a> {
    pub statement: &'a AgentAction,
    pub approver: &'a str,
    /// How long this call waits before answering "pending".
    pub hold: Duration,
    /// `requested_expiry`, if the policy sets one.
    pub expiry: Option<u64>,
    /// Cancelled when the client gives up on the call (`notifications/cancelled`).
    pub cancelled: CancellationToken,
}

/// How waiting for a decision ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Approved, and the token binds this call: forward it (once) with this access token.
    Approved { access_token: String },
    /// No decision within the hold. The request stays open; `link` is the approver's page for it
    /// (`None` when another identical call was still asking).
    Pending { link: Option<String>, new: bool },
    /// The approver denied the call.
    Denied { reason: Option<String> },
    /// Nobody decided before the request expired.
    Expired,
    /// A token came, but it does not bind this call: it is never forwarded.
    Refused(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("Countersign refused or failed: {0}")]
    Provider(#[from] AgentError),
    #[error("Countersign's token could not be checked: {0}")]
    Token(String),
}

/// An open request for one call.
struct Open {
    auth_req_id: String,
    interval: Duration,
    next_poll: Instant,
    expires_at: Instant,
    /// What Countersign's notification about this request wakes (ping and push delivery).
    notice: Option<Arc<Notice>>,
}

/// How decisions reach the gate (CIBA §5), as its client is registered.
pub enum Delivery {
    /// The gate asks the token endpoint every `interval`.
    Poll,
    /// Countersign pings the gate's listener and the gate redeems at once (§10.2); it also polls,
    /// seldom, in case a ping is lost.
    Ping(Arc<Notices>),
    /// Countersign posts the token response, or the error, to the listener (§10.3).
    Push(Arc<Notices>),
}

/// In ping mode a lost ping costs at most this long: the gate polls this seldom as well.
const POLL_BESIDES_PINGS: Duration = Duration::from_secs(15);

/// How long a notification token is recognised: past any request's expiry (Countersign's longest
/// is 30 minutes), so that a notification delivered again (at least once) is still acknowledged.
const NOTICE_LIFETIME: Duration = Duration::from_secs(3600);

/// The notifications the gate waits for, by the SHA-256 of each request's
/// `client_notification_token`: looked up by hash, so no comparison runs over the secret itself.
pub struct Notices {
    /// Push delivery: bodies carry results. In ping mode a body is never taken for one.
    push: bool,
    waiting: Mutex<HashMap<TokenHash, (Arc<Notice>, Instant)>>,
}

type TokenHash = [u8; 32];

#[derive(Default)]
pub struct Notice {
    arrived: Notify,
    /// A push's token response or error, until the waiting call takes it.
    pushed: Mutex<Option<Value>>,
}

impl Notices {
    pub fn new(push: bool) -> Notices {
        Notices {
            push,
            waiting: Mutex::default(),
        }
    }

    /// A new notification token and what its notification will wake.
    fn expect(&self) -> (String, Arc<Notice>) {
        let token = random_token(32);
        let notice = Arc::new(Notice::default());
        let now = Instant::now();
        let mut waiting = self.waiting.lock().expect("notices");
        waiting.retain(|_, (_, until)| *until > now);
        waiting.insert(
            sha256(token.as_bytes()),
            (notice.clone(), now + NOTICE_LIFETIME),
        );
        (token, notice)
    }

    /// A notification's `Authorization` header and body; false when it names no request the gate
    /// asked for. A push carries the result; a ping only says there is one.
    pub fn arrived(&self, authorization: &str, body: &[u8]) -> bool {
        let Some(token) = authorization.strip_prefix("Bearer ") else {
            return false;
        };
        let notice = self
            .waiting
            .lock()
            .expect("notices")
            .get(&sha256(token.as_bytes()))
            .map(|(notice, _)| notice.clone());
        let Some(notice) = notice else {
            return false;
        };
        if let (true, Ok(result)) = (self.push, serde_json::from_slice::<Value>(body)) {
            if result.get("access_token").is_some() || result.get("error").is_some() {
                notice.pushed.lock().expect("pushed").get_or_insert(result);
            }
        }
        // A permit is kept if nobody waits right now, so no notification is lost.
        notice.arrived.notify_one();
        true
    }
}

type Slot = Arc<AsyncMutex<Option<Open>>>;

pub struct Approvals {
    client: CibaClient,
    delivery: Delivery,
    /// With `--dpop`: the key tokens are bound to.
    dpop: Option<Arc<DpopKey>>,
    /// The approval page's base: `{issuer}/requests/`.
    pages: String,
    keys: Mutex<JwkSet>,
    /// Open requests by call digest.
    open: Mutex<HashMap<String, Slot>>,
    /// The `jti` of every token already used, with its expiry (Unix seconds).
    used: Mutex<HashMap<String, i64>>,
}

impl Approvals {
    pub async fn new(
        client: CibaClient,
        delivery: Delivery,
        dpop: Option<Arc<DpopKey>>,
    ) -> Result<Approvals, ApprovalError> {
        let keys = fetch_keys(&client).await?;
        Ok(Approvals {
            pages: format!("{}/requests/", client.issuer.trim_end_matches('/')),
            client,
            delivery,
            dpop,
            keys: Mutex::new(keys),
            open: Mutex::new(HashMap::new()),
            used: Mutex::new(HashMap::new()),
        })
    }

    /// Asks for approval of `call`, or resumes the open request for the identical call, and waits
    /// until a decision or the end of the hold.
    pub async fn decide(&self, call: &Call<'_>, ask: &Ask<'_>) -> Result<Outcome, ApprovalError> {
        let deadline = Instant::now() + ask.hold;
        // A concurrent identical call holds the slot while it asks; whoever gets it finds the
        // request open (and resumes it) or, if the other one used or closed it, asks anew.
        let (slot, mut open) = loop {
            let slot = {
                let mut open = self.open.lock().expect("open requests");
                // Requests nobody came back for are forgotten once they expire.
                let now = Instant::now();
                open.retain(|_, slot| {
                    slot.try_lock()
                        .map_or(true, |o| o.as_ref().is_none_or(|o| o.expires_at > now))
                });
                open.entry(call.digest.clone()).or_default().clone()
            };
            let Ok(guard) = tokio::time::timeout_at(deadline, slot.clone().lock_owned()).await
            else {
                return Ok(Outcome::Pending {
                    link: None,
                    new: false,
                });
            };
            if self.is_current(&call.digest, &slot) {
                break (slot, guard);
            }
        };
        let new = open.is_none();
        if new {
            *open = Some(self.ask(ask).await.inspect_err(|_| {
                self.close(&call.digest, &slot);
            })?);
        }
        let request = open.as_mut().expect("opened above");
        let link = Some(format!("{}{}", self.pages, page_ref(&request.auth_req_id)));
        // Push clients may not poll: they only wait for the push.
        let polls = !matches!(self.delivery, Delivery::Push(_));
        loop {
            let notice = request.notice.clone();
            let notified = async {
                match &notice {
                    Some(notice) => notice.arrived.notified().await,
                    None => std::future::pending().await,
                }
            };
            let next_poll = match polls {
                true => request.next_poll,
                false => deadline + ask.hold,
            };
            tokio::select! {
                () = notified => {
                    tracing::info!(call = &call.digest[..16], "notified: the decision is made");
                }
                () = tokio::time::sleep_until(next_poll) => {}
                () = tokio::time::sleep_until(deadline) => {
                    return Ok(Outcome::Pending { link, new });
                }
                // The client gave up on the call: the request stays open for a repeat.
                () = ask.cancelled.cancelled() => {
                    return Ok(Outcome::Pending { link, new });
                }
            }
            let pushed = notice.and_then(|n| n.pushed.lock().expect("pushed").take());
            let answer = match pushed {
                Some(result) => pushed_answer(result, &request.auth_req_id),
                None if polls => self.redeem(&request.auth_req_id).await,
                None => continue,
            };
            request.next_poll = Instant::now() + request.interval;
            let outcome = match answer {
                Ok(tokens) => self.bind(&tokens, call).await,
                Err(e) => match e.code() {
                    Some(ErrorCode::AuthorizationPending) => continue,
                    // CIBA §11: five seconds more, for this and every later poll.
                    Some(ErrorCode::SlowDown) => {
                        request.interval += Duration::from_secs(5);
                        request.next_poll = Instant::now() + request.interval;
                        continue;
                    }
                    Some(ErrorCode::AccessDenied) => Ok(Outcome::Denied {
                        reason: description(&e),
                    }),
                    Some(ErrorCode::ExpiredToken) => Ok(Outcome::Expired),
                    // The network or the server failed, not the request: it stays open.
                    _ if e.is_transient() => {
                        tracing::warn!(call = &call.digest[..16], "asking again later: {e}");
                        continue;
                    }
                    _ => Err(ApprovalError::Provider(e)),
                },
            };
            *open = None;
            self.close(&call.digest, &slot);
            return outcome;
        }
    }

    async fn ask(&self, ask: &Ask<'_>) -> Result<Open, ApprovalError> {
        let details = ask.statement.to_authorization_details().to_string();
        let expiry = ask.expiry.map(|e| e.to_string());
        let mut form = vec![
            ("scope", "openid"),
            ("login_hint", ask.approver),
            ("authorization_details", details.as_str()),
        ];
        if let Some(expiry) = &expiry {
            form.push(("requested_expiry", expiry));
        }
        let (token, notice) = match &self.delivery {
            Delivery::Ping(notices) | Delivery::Push(notices) => {
                let (token, notice) = notices.expect();
                (Some(token), Some(notice))
            }
            Delivery::Poll => (None, None),
        };
        if let Some(token) = &token {
            form.push(("client_notification_token", token));
        }
        // No proof goes with a push, so pushed tokens are bound at the request (RFC 9449 §10).
        if let (Delivery::Push(_), Some(key)) = (&self.delivery, &self.dpop) {
            form.push(("dpop_jkt", &key.jkt));
        }
        let ack = self.client.start(&form).await?;
        let auth_req_id = ack
            .get("auth_req_id")
            .and_then(Value::as_str)
            .ok_or_else(|| AgentError::Protocol("no auth_req_id".into()))?
            .to_owned();
        // CIBA §7.3: a client waits 5 seconds between polls when no interval is given.
        let mut interval =
            Duration::from_secs(ack.get("interval").and_then(Value::as_u64).unwrap_or(5));
        if let Delivery::Ping(_) = self.delivery {
            interval = interval.max(POLL_BESIDES_PINGS);
        }
        let expires_in = ack.get("expires_in").and_then(Value::as_u64).unwrap_or(0);
        Ok(Open {
            auth_req_id,
            interval,
            next_poll: Instant::now() + interval,
            // A moment past the provider's expiry, so a late repeat still hears `expired_token`.
            expires_at: Instant::now() + Duration::from_secs(expires_in + 60),
            notice,
        })
    }

    /// The key approved calls are forwarded with, if tokens are DPoP-bound.
    pub fn dpop(&self) -> Option<&Arc<DpopKey>> {
        self.dpop.as_ref()
    }

    /// One token request, with a DPoP proof when the gate has a key; a server that asks for a
    /// nonce (RFC 9449 §8) gets the request once more, proved with it.
    async fn redeem(&self, auth_req_id: &str) -> Result<Value, AgentError> {
        let Some(key) = &self.dpop else {
            return self.client.redeem(auth_req_id).await;
        };
        let mut tries = 0;
        loop {
            tries += 1;
            let prove = |url: &str| Some(key.proof("POST", url, None));
            let (answer, nonce) = self.client.redeem_proved(auth_req_id, prove).await;
            if let Some(nonce) = &nonce {
                key.remember_nonce(nonce);
            }
            match answer {
                Err(e)
                    if tries == 1
                        && nonce.is_some()
                        && e.code() == Some(ErrorCode::UseDpopNonce) => {}
                other => return other,
            }
        }
    }

    /// Checks that the token response is for `call`, right before it is forwarded.
    async fn bind(&self, tokens: &Value, call: &Call<'_>) -> Result<Outcome, ApprovalError> {
        let token = tokens
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| ApprovalError::Token("the token response has no access_token".into()))?;
        let claims = self.verify(token).await?;
        let now = crate::clock::secs(SystemClock.now());
        if claims.get("iss").and_then(Value::as_str) != Some(self.client.issuer.as_str()) {
            return Ok(Outcome::Refused("the token is from another issuer".into()));
        }
        if let Some(key) = &self.dpop {
            let jkt = claims
                .get("cnf")
                .and_then(|c| c.get("jkt"))
                .and_then(Value::as_str);
            if jkt != Some(key.jkt.as_str()) {
                return Ok(Outcome::Refused(
                    "the token is not bound to the gate's DPoP key".into(),
                ));
            }
        }
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        if exp <= now {
            return Ok(Outcome::Refused("the approval's token has expired".into()));
        }
        // The token must name this client: a token another client got for the same call is not ours.
        if claims.get("client_id").and_then(Value::as_str) != Some(self.client.client_id()) {
            return Ok(Outcome::Refused(
                "the token was issued to another client".into(),
            ));
        }
        Ok(match binds(&claims, call) {
            true => {
                let jti = claims
                    .get("jti")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let mut used = self.used.lock().expect("used tokens");
                used.retain(|_, expires| *expires > now);
                if jti.is_empty() || used.insert(jti.to_owned(), exp).is_some() {
                    Outcome::Refused("this approval was already used for a call".into())
                } else {
                    Outcome::Approved {
                        access_token: token.to_owned(),
                    }
                }
            }
            false => Outcome::Refused(
                "the approval covers a different call than the one being made".into(),
            ),
        })
    }

    /// The claims of an access token the provider signed; keys are fetched again for a new `kid`.
    async fn verify(&self, token: &str) -> Result<Map<String, Value>, ApprovalError> {
        let header = jwt::decode_header(token).map_err(|e| ApprovalError::Token(e.to_string()))?;
        if header.claim("typ").and_then(Value::as_str) != Some(ACCESS_TOKEN_TYPE) {
            return Err(ApprovalError::Token(format!(
                "the token is not of type {ACCESS_TOKEN_TYPE}"
            )));
        }
        let kid = header
            .claim("kid")
            .and_then(Value::as_str)
            .ok_or_else(|| ApprovalError::Token("the token names no key".into()))?
            .to_owned();
        let known = |keys: &JwkSet| keys.get(&kid).first().map(|jwk| (*jwk).clone());
        let cached = known(&self.keys.lock().expect("keys"));
        let jwk = match cached {
            Some(jwk) => jwk,
            None => {
                let keys = fetch_keys(&self.client).await?;
                let jwk = known(&keys);
                *self.keys.lock().expect("keys") = keys;
                jwk.ok_or_else(|| ApprovalError::Token(format!("no published key {kid}")))?
            }
        };
        let verifier = ES256
            .verifier_from_jwk(&jwk)
            .map_err(|e| ApprovalError::Token(e.to_string()))?;
        let (payload, _) = jwt::decode_with_verifier(token, &verifier)
            .map_err(|e| ApprovalError::Token(e.to_string()))?;
        Ok(payload.claims_set().clone())
    }

    fn is_current(&self, digest: &str, slot: &Slot) -> bool {
        self.open
            .lock()
            .expect("open requests")
            .get(digest)
            .is_some_and(|s| Arc::ptr_eq(s, slot))
    }

    fn close(&self, digest: &str, slot: &Slot) {
        let mut open = self.open.lock().expect("open requests");
        if open.get(digest).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            open.remove(digest);
        }
    }
}

/// The digest of the call a token's `authorization_details` approve, if they name one.
/// Whether a token's `authorization_details` approve exactly `call`: the same digest, and the same
/// tool and arguments value for value (RFC 8785 reads every number as a double, so 2^53 and 2^53 + 1
/// share a digest; the values themselves do not).
fn binds(claims: &Map<String, Value>, call: &Call<'_>) -> bool {
    let Some(details) = claims.get("authorization_details") else {
        return false;
    };
    let Ok(approved) = action::parse_value(details.clone()) else {
        return false;
    };
    let (Some(tool), arguments) = (approved.tool, approved.arguments.unwrap_or_default()) else {
        return false;
    };
    call_digest(&tool, &arguments) == call.digest
        && tool == call.tool
        && arguments == *call.arguments
}

/// A push (CIBA §10.3.1): the token response, or the error, for `auth_req_id`.
fn pushed_answer(result: Value, auth_req_id: &str) -> Result<Value, AgentError> {
    if result.get("auth_req_id").and_then(Value::as_str) != Some(auth_req_id) {
        return Err(AgentError::Protocol("a push for another request".into()));
    }
    match result.get("error") {
        Some(_) => Err(AgentError::Refused {
            endpoint: "push",
            status: 200,
            body: result,
        }),
        None => Ok(result),
    }
}

fn description(e: &AgentError) -> Option<String> {
    match e {
        AgentError::Refused { body, .. } => body
            .get("error_description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

async fn fetch_keys(client: &CibaClient) -> Result<JwkSet, ApprovalError> {
    let jwks = client.jwks().await?;
    let map = match jwks {
        Value::Object(map) => map,
        _ => return Err(ApprovalError::Token("the JWKS is not a JSON object".into())),
    };
    JwkSet::from_map(map).map_err(|e| ApprovalError::Token(e.to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_token_binds_only_the_call_it_names() {
        let arguments =
            json!({"path": "/srv/a.txt", "content": "hello", "size": 9007199254740993u64});
        let arguments = arguments.as_object().unwrap();
        let call = Call::new("write_file", arguments);
        let claims = |tool: &str, args: Value| {
            json!({"authorization_details": [{
                "type": "agent_action", "action": "Write", "target": "/srv/a.txt",
                "consequence": "c", "tool": tool, "arguments": args,
            }]})
            .as_object()
            .unwrap()
            .clone()
        };
        let same = claims(
            "write_file",
            json!({"content": "hello", "size": 9007199254740993u64, "path": "/srv/a.txt"}),
        );
        assert!(binds(&same, &call));
        let changed = claims(
            "write_file",
            json!({"path": "/srv/a.txt", "content": "HELLO", "size": 9007199254740993u64}),
        );
        assert!(!binds(&changed, &call));
        let other_tool = claims("move_file", Value::Object(arguments.clone()));
        assert!(!binds(&other_tool, &call));
        // Same digest (doubles cannot tell these apart), different call: refused.
        let near = claims(
            "write_file",
            json!({"path": "/srv/a.txt", "content": "hello", "size": 9007199254740992u64}),
        );
        let near_call = Call::new(
            "write_file",
            near["authorization_details"][0]["arguments"]
                .as_object()
                .unwrap(),
        );
        assert_eq!(near_call.digest, call.digest);
        assert!(!binds(&near, &call));
        let no_call = json!({"authorization_details": [{
            "type": "agent_action", "action": "Write", "target": "t", "consequence": "c",
        }]});
        assert!(!binds(no_call.as_object().unwrap(), &call));
    }
}
