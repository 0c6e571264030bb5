//! The token endpoint's CIBA grant (§10.1, §11): answer a poll for `auth_req_id` from `client`.
use super::{
    auth_request::{AuthRequest, RedeemRefusal, RequestStatus},
    pending::PollCheck,
    record, Ciba, CibaError, Client, ErrorCode, TokenResponse,
};
use serde_json::{json, Value};

use crate::{identity::approvers, secrets::random_token, store::auth_requests::IssuedToken};

impl Ciba {
    /// Checks, in order: the id exists and belongs to this client (`invalid_grant`, leaving the rightful
    /// client's state untouched), expiry (`expired_token`), pending (`authorization_pending`/`slow_down`),
    /// denial (`access_denied`), then issues tokens once. A second redemption revokes the first's tokens.
    ///
    /// `dpop_key` is the JWK thumbprint of a verified DPoP proof sent with the poll (RFC 9449 §5): the
    /// tokens are bound to it.
    pub async fn poll(
        &self,
        client: &Client,
        auth_req_id: &str,
        dpop_key: Option<&str>,
    ) -> Result<TokenResponse, CibaError> {
        if client.dpop_bound && dpop_key.is_none() {
            return Err(CibaError::InvalidDpopProof(
                "this client must send a DPoP proof with its token requests (RFC 9449 §5.2)".into(),
            ));
        }
        let now = self.clock.now();
        let mut check = self.pending.check(auth_req_id, &client.id, now);
        if check == PollCheck::Unknown {
            let request = self
                .store
                .auth_request(auth_req_id)
                .await?
                .ok_or_else(unknown_id)?;
            self.pending.insert(&request);
            check = self.pending.check(auth_req_id, &client.id, now);
        }
        match check {
            PollCheck::Unknown | PollCheck::WrongClient => Err(unknown_id()),
            PollCheck::Expired => Err(CibaError::ExpiredToken),
            PollCheck::SlowDown(interval) => Err(CibaError::SlowDown(interval)),
            PollCheck::Pending => Err(CibaError::AuthorizationPending),
            PollCheck::Withdrawn => Err(approver_disabled()),
            PollCheck::Decided => self.answer_decided(client, auth_req_id, dpop_key).await,
        }
    }

    async fn answer_decided(
        &self,
        client: &Client,
        auth_req_id: &str,
        dpop_key: Option<&str>,
    ) -> Result<TokenResponse, CibaError> {
        let request = self
            .store
            .auth_request(auth_req_id)
            .await?
            .ok_or_else(unknown_id)?;
        match request.redeem(&client.id, self.clock.now()) {
            Ok(_) => {
                // RFC 9449 §10: a request bound to a key is redeemed only with a proof by that key
                // (refused without spending the redemption: the rightful holder can still collect).
                if let Some(bound) = &request.dpop_jkt {
                    if dpop_key != Some(bound.as_str()) {
                        return Err(CibaError::InvalidGrant(
                            "this auth_req_id is bound to another DPoP key (dpop_jkt)".into(),
                        ));
                    }
                }
                let key = dpop_key.map(str::to_owned);
                self.issue(client, request, key, false).await
            }
            Err(refusal) => Err(self.refused(&request, refusal).await),
        }
    }

    async fn refused(&self, request: &AuthRequest, refusal: RedeemRefusal) -> CibaError {
        match refusal {
            RedeemRefusal::WrongClient => unknown_id(),
            RedeemRefusal::Expired => CibaError::ExpiredToken,
            RedeemRefusal::Pending => {
                // The cache was told to distrust itself; the store says nothing happened yet.
                self.pending.mark_pending(&request.id);
                CibaError::AuthorizationPending
            }
            RedeemRefusal::Denied => {
                CibaError::AccessDenied("the approver denied the request".into())
            }
            RedeemRefusal::Replayed => self.replayed(request).await,
        }
    }

    /// Verifies the approval and mints its tokens, bound to the DPoP key `dpop_key` if given: the one
    /// redemption, or (`again`, push mode only) a new issue after a delivery that failed, which
    /// revokes what that delivery carried.
    async fn issue(
        &self,
        client: &Client,
        row: AuthRequest,
        dpop_key: Option<String>,
        again: bool,
    ) -> Result<TokenResponse, CibaError> {
        let now = self.clock.now();
        // Disabling an agent withdraws what it asked for until then, for good: nothing by push while
        // it is disabled (polling, it cannot even authenticate), nothing once it is enabled again.
        if client.disabled
            || client
                .last_disabled_at
                .is_some_and(|at| row.created_at <= at)
        {
            return Err(CibaError::AccessDenied(
                "the agent was disabled after this request was made, which withdrew it".into(),
            ));
        }
        // No token without consent: the status alone proves nothing (one UPDATE sets it), the sealed
        // decision records of this very request do: as many approvals by distinct addressees as
        // its rule asks for, and no denial.
        let stored = self.store.decisions_for(&row.id).await?;
        // Any key this server ever had: the record may predate a rotation whose old key has since
        // left the published set (requests wait up to 30 minutes, keys stay published 5).
        let verify = |jws: &str| self.keys.verify_record(jws);
        let decisions = match record::check_approvals(&row, stored, verify) {
            Ok(decisions) => decisions,
            Err(problem) => return Err(self.unverified(&row, problem).await),
        };
        for decision in &decisions {
            self.check_approver(&row, decision).await?;
        }
        // The subject is the person the agent acts for, or else whoever completed the approval.
        let last = decisions
            .last()
            .expect("check_approvals returns at least one");
        let subject = row.approver_id.as_deref().unwrap_or(&last.approver_id);
        let approver = approvers::by_id(&self.store, subject)
            .await?
            .ok_or_else(|| CibaError::InvalidGrant("the approver no longer exists".into()))?;
        if approver.disabled {
            return Err(approver_disabled());
        }
        let jti = random_token(16);
        // Mint first, then claim the redemption: only the caller whose conditional update wins gets the
        // tokens out, so concurrent polls produce exactly one token response.
        let tokens =
            self.mint_tokens(&row, &approver, &decisions, &jti, dpop_key.as_deref(), now)?;
        let issued = IssuedToken {
            jti: &jti,
            issued_at: now,
            expires_at: now + self.policy.access_token_ttl_secs * 1000,
        };
        let issued_now = if again {
            self.store
                .reissue_auth_request_tokens(&row.id, &client.id, &issued)
                .await?
        } else {
            self.store
                .redeem_auth_request(&row.id, &client.id, &issued)
                .await?
        };
        if issued_now {
            tracing::info!(client_id = %client.id, "tokens issued for an approved request");
            return Ok(tokens);
        }
        // Lost a race: the request as it is now says why.
        let latest = self
            .store
            .auth_request(&row.id)
            .await?
            .ok_or_else(unknown_id)?;
        Err(match latest.redeem(&client.id, self.clock.now()) {
            Err(refusal) => self.refused(&latest, refusal).await,
            // Still approved, yet the update found tokens already issued for it.
            Ok(_) => self.replayed(&latest).await,
        })
    }

    /// What makes one approval record count now: its approver is still enabled (offboarding
    /// withdraws consent not yet used), its passkey's key is the sealed registry's for that approver
    /// (a passkey planted in the database has no sealed entry), and the passkey has not since been
    /// revoked (it may be lost or copied) or suspended (its counter went backwards). Its record
    /// still verifies either way.
    async fn check_approver(
        &self,
        row: &AuthRequest,
        decision: &crate::store::decisions::DecisionRow,
    ) -> Result<(), CibaError> {
        let approver = approvers::by_id(&self.store, &decision.approver_id)
            .await?
            .ok_or_else(|| CibaError::InvalidGrant("the approver no longer exists".into()))?;
        if approver.disabled {
            return Err(approver_disabled());
        }
        let registered = match &decision.credential_public_key {
            Some(key) => {
                self.registry
                    .is_registered(&decision.credential_id, &decision.approver_id, key)
                    .await?
            }
            None => false,
        };
        if !registered {
            let problem = "the passkey that approved has no sealed key registry entry";
            return Err(self.unverified(row, problem).await);
        }
        let passkey = self.store.passkey(&decision.credential_id).await?;
        if !passkey.is_some_and(|p| p.signs_for(&decision.approver_id)) {
            return Err(CibaError::AccessDenied(
                "the passkey that approved has since been revoked or suspended".into(),
            ));
        }
        Ok(())
    }

    /// An approval that does not verify earns no tokens: the request is flagged (once) and the
    /// operator alerted, and the agent is told its grant is not valid.
    async fn unverified(&self, row: &AuthRequest, problem: &'static str) -> CibaError {
        match self
            .store
            .alert_consent(&row.id, problem, self.clock.now())
            .await
        {
            Ok(true) => tracing::error!(
                client_id = %row.client_id,
                problem,
                "ALERT: an approved request failed verification against its decision record; no tokens issued"
            ),
            Ok(false) => {}
            Err(e) => return e.into(),
        }
        CibaError::InvalidGrant("the approval of this request cannot be verified".into())
    }

    /// RFC 6749 §4.1.2 and §10.5 applied to auth_req_id: a used grant is refused and its tokens revoked.
    async fn replayed(&self, row: &AuthRequest) -> CibaError {
        if let Err(e) = self
            .store
            .revoke_auth_request_tokens(&row.id, self.clock.now())
            .await
        {
            return e.into();
        }
        tracing::warn!(client_id = %row.client_id, "auth_req_id redeemed twice; its tokens are revoked");
        CibaError::InvalidGrant(
            "the auth_req_id has already been used; the tokens issued for it are revoked".into(),
        )
    }
}

fn unknown_id() -> CibaError {
    CibaError::InvalidGrant("unknown auth_req_id".into())
}

impl Ciba {
    /// CIBA §10.3: what a push client is sent about `auth_req_id`, its one redemption: the token
    /// response, or the error (`access_denied`, `expired_token`, `transaction_failed`), each with the
    /// `auth_req_id`. A second call (the first delivery failed) mints anew and revokes what the first
    /// carried. Errors are the store's, to try again.
    pub async fn push_result(&self, auth_req_id: &str) -> Result<Value, CibaError> {
        let request = self
            .store
            .auth_request(auth_req_id)
            .await?
            .ok_or_else(unknown_id)?;
        let client = self
            .clients
            .get(&request.client_id)
            .await?
            .ok_or_else(unknown_id)?;
        let outcome = match request.status(self.clock.now()) {
            // Pushed tokens are bound to the key the client named at /bc-authorize, if any.
            RequestStatus::Approved => {
                let key = request.dpop_jkt.clone();
                self.issue(&client, request, key, false).await
            }
            RequestStatus::Redeemed => {
                let key = request.dpop_jkt.clone();
                self.issue(&client, request, key, true).await
            }
            RequestStatus::Denied => Err(CibaError::AccessDenied(
                "the approver denied the request".into(),
            )),
            RequestStatus::Expired => Err(CibaError::ExpiredToken),
            RequestStatus::Pending => return Err(CibaError::AuthorizationPending),
        };
        Ok(match outcome {
            Ok(tokens) => {
                let mut body = serde_json::to_value(tokens).expect("token responses serialise");
                body["auth_req_id"] = json!(auth_req_id);
                body
            }
            Err(CibaError::Store(e)) => return Err(CibaError::Store(e)),
            Err(e) => {
                // CIBA §10.3.1: a push carries one of these three.
                let code = match e.code() {
                    code @ (ErrorCode::AccessDenied | ErrorCode::ExpiredToken) => code,
                    _ => ErrorCode::TransactionFailed,
                };
                json!({ "auth_req_id": auth_req_id, "error": code.as_str(), "error_description": e.to_string() })
            }
        })
    }
}

fn approver_disabled() -> CibaError {
    CibaError::AccessDenied("the approver's account has been disabled".into())
}
