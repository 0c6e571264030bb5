//! The reference agent: what a well-behaved CIBA client does. Discovers the endpoints, asks for approval
//! of one action, then polls the token endpoint honouring `interval` and `slow_down` (CIBA §7.3, §11);
//! or, with `--ping PORT` (a client registered for ping delivery with a notification endpoint on that
//! loopback port), waits for the ping and asks the token endpoint once (CIBA §10.2).
use std::time::Duration;

use clap::Args;
use serde_json::{json, Value};

use crate::ciba::ErrorCode;

#[derive(Args, Debug, Clone)]
pub struct AgentRequest {
    /// The provider's issuer URL (discovery is read from it).
    #[arg(long)]
    pub issuer: String,
    #[arg(long)]
    pub client_id: String,
    /// Better passed in the environment, where other users' `ps` cannot see it. Secrets may start
    /// with "-" (base64url), so the value is never taken for an option.
    #[arg(long, env = "COUNTERSIGN_CLIENT_SECRET", allow_hyphen_values = true)]
    pub client_secret: String,
    /// The approver's email.
    #[arg(long)]
    pub login_hint: String,
    /// What the agent wants to do, e.g. "Refund $120.00".
    #[arg(long, allow_hyphen_values = true)]
    pub action: String,
    /// What it acts on, e.g. "jane@example.com for order #1234".
    #[arg(long, allow_hyphen_values = true)]
    pub target: String,
    /// What follows, e.g. "The money leaves the company account."
    #[arg(long, allow_hyphen_values = true)]
    pub consequence: String,
    #[arg(long)]
    pub amount: Option<String>,
    #[arg(long)]
    pub currency: Option<String>,
    #[arg(long)]
    pub reversible: Option<bool>,
    #[arg(long)]
    pub resource: Option<String>,
    /// A short code shown to the approver and by the agent, to match the two.
    #[arg(long, allow_hyphen_values = true)]
    pub binding_message: Option<String>,
    #[arg(long)]
    pub user_code: Option<String>,
    #[arg(long, default_value = "openid")]
    pub scope: String,
    #[arg(long)]
    pub requested_expiry: Option<u64>,
    /// Ping mode: listen on this loopback port for the notification (the client's registered
    /// notification endpoint must be http://127.0.0.1:PORT/...), instead of polling.
    #[arg(long)]
    pub ping: Option<u16>,
}

/// How the exchange ended when it did not end with tokens.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{endpoint} answered {status}: {body}")]
    Refused {
        endpoint: &'static str,
        status: u16,
        body: Value,
    },
    #[error("HTTP error: {0}")]
    Http(#[from] reqwest::Error),
    #[error("unexpected response: {0}")]
    Protocol(String),
}

impl AgentError {
    /// A failure of the network or of the server (5xx), not an answer: worth asking again.
    pub fn is_transient(&self) -> bool {
        match self {
            AgentError::Http(_) => true,
            AgentError::Refused { status, .. } => *status >= 500,
            AgentError::Protocol(_) => false,
        }
    }

    /// The protocol's error code, when the server sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            AgentError::Refused { body, .. } => body
                .get("error")
                .and_then(Value::as_str)
                .and_then(ErrorCode::parse),
            _ => None,
        }
    }
}

/// A registered client's view of the provider: the endpoints discovery names, and the client's
/// credentials (client_secret_basic). The reference agent and the MCP gate both speak through it.
pub struct CibaClient {
    http: reqwest::Client,
    /// The issuer as discovery states it: tokens must name exactly this `iss`.
    pub issuer: String,
    bc_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    client_id: String,
    client_secret: String,
}

impl CibaClient {
    pub async fn discover(
        issuer: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Result<CibaClient, AgentError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery: Value = http
            .get(discovery_url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let field = |name: &str| {
            discovery
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| AgentError::Protocol(format!("discovery lacks {name}")))
        };
        Ok(CibaClient {
            issuer: field("issuer")?,
            bc_endpoint: field("backchannel_authentication_endpoint")?,
            token_endpoint: field("token_endpoint")?,
            jwks_uri: field("jwks_uri")?,
            http,
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
        })
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Asks for approval (CIBA §7.1); the answer is the acknowledgement (§7.3).
    pub async fn start(&self, form: &[(&str, &str)]) -> Result<Value, AgentError> {
        self.post(
            &self.bc_endpoint,
            "backchannel authentication endpoint",
            form,
        )
        .await
    }

    /// One token request for `auth_req_id` (CIBA §10.1).
    pub async fn redeem(&self, auth_req_id: &str) -> Result<Value, AgentError> {
        self.redeem_proved(auth_req_id, |_| None).await.0
    }

    /// [`CibaClient::redeem`] with a DPoP proof made by `prove` for the token endpoint's URL (RFC
    /// 9449 §5); also returns the `DPoP-Nonce` the answer carried (§8).
    pub async fn redeem_proved(
        &self,
        auth_req_id: &str,
        prove: impl FnOnce(&str) -> Option<String>,
    ) -> (Result<Value, AgentError>, Option<String>) {
        let form = [
            ("grant_type", "urn:openid:params:grant-type:ciba"),
            ("auth_req_id", auth_req_id),
        ];
        let mut request = self
            .http
            .post(&self.token_endpoint)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&form);
        if let Some(proof) = prove(&self.token_endpoint) {
            request = request.header("DPoP", proof);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return (Err(e.into()), None),
        };
        let nonce = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (answer(response, "token endpoint").await, nonce)
    }

    /// The provider's published keys.
    pub async fn jwks(&self) -> Result<Value, AgentError> {
        Ok(self
            .http
            .get(&self.jwks_uri)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    async fn post(
        &self,
        url: &str,
        endpoint: &'static str,
        form: &[(&str, &str)],
    ) -> Result<Value, AgentError> {
        let response = self
            .http
            .post(url)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(form)
            .send()
            .await?;
        answer(response, endpoint).await
    }
}

/// A JSON answer: the body if successful, else the OAuth error it states.
async fn answer(response: reqwest::Response, endpoint: &'static str) -> Result<Value, AgentError> {
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| AgentError::Protocol(format!("{endpoint}: {e}")))?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(AgentError::Refused {
            endpoint,
            status: status.as_u16(),
            body,
        })
    }
}

/// Runs the whole exchange and returns the token response.
pub async fn request(args: &AgentRequest) -> Result<Value, AgentError> {
    let client = CibaClient::discover(&args.issuer, &args.client_id, &args.client_secret).await?;
    let mut detail = json!({
        "type": "agent_action",
        "action": args.action,
        "target": args.target,
        "consequence": args.consequence,
    });
    for (key, value) in [
        ("amount", &args.amount),
        ("currency", &args.currency),
        ("resource", &args.resource),
    ] {
        if let Some(value) = value {
            detail[key] = json!(value);
        }
    }
    if let Some(reversible) = args.reversible {
        detail["reversible"] = json!(reversible);
    }
    let details = json!([detail]).to_string();
    let expiry = args.requested_expiry.map(|e| e.to_string());
    // Ping mode: the endpoint listens before the request is made, so no ping can come too early.
    let ping = match args.ping {
        Some(port) => Some(PingListener::bind(port).await?),
        None => None,
    };
    let notification_token = ping.as_ref().map(|p| p.token.clone());
    let mut form: Vec<(&str, &str)> = vec![
        ("scope", &args.scope),
        ("login_hint", &args.login_hint),
        ("authorization_details", &details),
    ];
    for (key, value) in [
        ("binding_message", &args.binding_message),
        ("user_code", &args.user_code),
        ("requested_expiry", &expiry),
        ("client_notification_token", &notification_token),
    ] {
        if let Some(value) = value {
            form.push((key, value));
        }
    }
    let ack = client.start(&form).await?;
    let auth_req_id = ack
        .get("auth_req_id")
        .and_then(Value::as_str)
        .ok_or_else(|| AgentError::Protocol("no auth_req_id".into()))?
        .to_owned();
    if let Some(ping) = ping {
        let expires_in = ack.get("expires_in").and_then(Value::as_u64).unwrap_or(300);
        eprintln!("waiting for the ping (auth_req_id issued, expires in {expires_in}s)");
        ping.wait(&auth_req_id, Duration::from_secs(expires_in + 30))
            .await?;
        return client.redeem(&auth_req_id).await;
    }
    // CIBA §7.3: clients default to 5 seconds when no interval is given.
    let mut interval = ack.get("interval").and_then(Value::as_u64).unwrap_or(5);
    eprintln!(
        "waiting for approval (auth_req_id issued, expires in {}s)",
        ack["expires_in"]
    );
    loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        match client.redeem(&auth_req_id).await {
            Ok(tokens) => return Ok(tokens),
            Err(e) if e.code() == Some(ErrorCode::AuthorizationPending) => {
                eprintln!("authorization_pending; polling again in {interval}s");
            }
            // CIBA §11: slow_down means add five seconds to the interval, for this and later polls.
            Err(e) if e.code() == Some(ErrorCode::SlowDown) => {
                interval += 5;
                eprintln!("slow_down; polling every {interval}s from now on");
            }
            Err(e) => return Err(e),
        }
    }
}

/// The agent's notification endpoint in ping mode: any path on a loopback port, accepting only POSTs
/// that carry its own bearer token.
struct PingListener {
    token: String,
    pings: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl PingListener {
    async fn bind(port: u16) -> Result<PingListener, AgentError> {
        use axum::{
            http::{HeaderMap, StatusCode},
            Json,
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| AgentError::Protocol(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
        let token = crate::secrets::random_token(32);
        let (tx, pings) = tokio::sync::mpsc::unbounded_channel();
        let expected = format!("Bearer {token}");
        let app = axum::Router::new().fallback(axum::routing::post(
            move |headers: HeaderMap, Json(body): Json<Value>| {
                let tx = tx.clone();
                let authorized = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| {
                        crate::secrets::secret_matches(
                            v,
                            &crate::secrets::sha256(expected.as_bytes()),
                        )
                    });
                async move {
                    if !authorized {
                        return StatusCode::UNAUTHORIZED;
                    }
                    if let Some(id) = body.get("auth_req_id").and_then(Value::as_str) {
                        let _ = tx.send(id.to_owned());
                    }
                    StatusCode::NO_CONTENT
                }
            },
        ));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(PingListener { token, pings })
    }

    /// Waits for the ping about `auth_req_id`.
    async fn wait(mut self, auth_req_id: &str, within: Duration) -> Result<(), AgentError> {
        let wait = async {
            while let Some(id) = self.pings.recv().await {
                if id == auth_req_id {
                    return true;
                }
            }
            false
        };
        match tokio::time::timeout(within, wait).await {
            Ok(true) => Ok(()),
            _ => Err(AgentError::Protocol(
                "no ping came before the request expired".into(),
            )),
        }
    }
}

#[cfg(test)]
mod argument_tests {
    use clap::Parser;

    use super::AgentRequest;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        request: AgentRequest,
    }

    /// One secret in 64 starts with "-" (base64url): it must never be read as an option.
    #[test]
    fn secrets_and_texts_may_start_with_a_dash() {
        let cli = Cli::try_parse_from([
            "agent",
            "--issuer",
            "http://localhost:3000",
            "--client-id",
            "c1",
            "--client-secret",
            "-vX_secret",
            "--login-hint",
            "jane@example.com",
            "--action",
            "-5 replicas",
            "--target",
            "the web tier",
            "--consequence",
            "-capacity",
        ])
        .unwrap();
        assert_eq!(cli.request.client_secret, "-vX_secret");
        assert_eq!(cli.request.action, "-5 replicas");
        assert_eq!(cli.request.consequence, "-capacity");
    }
}
