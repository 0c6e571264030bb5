//! The gate as an MCP server: everything passes to the one upstream server unchanged, except tool
//! calls, which the policy lets through, refuses, or holds for a person's approval of that exact
//! call. Denied tools are also left out of `tools/list`, so a model is not offered what it may not do.
use std::{collections::HashMap, sync::Arc, time::Duration};

use rmcp::{
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams,
        CompleteResult, ContentBlock, GetPromptRequestParams, GetPromptResponse, Implementation,
        ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
        PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerConfig,
    },
    service::{RequestContext, RunningService, ServiceError},
    transport::{
        streamable_http_client::StreamableHttpClientTransportConfig, StreamableHttpClientTransport,
    },
    ErrorData as McpError, Peer, RoleClient, RoleServer, ServerHandler, ServiceExt,
};
use serde_json::Map;

use super::{
    approvals::{Approvals, Ask, Call, Outcome},
    dpop::DpopHttp,
    policy::{Decision, Mode, Policy, UpstreamTool},
};

/// The upstream server: a child process, or a streamable HTTP endpoint.
pub enum Upstream {
    Process(RunningService<RoleClient, ()>),
    /// Approved calls go over a connection of their own that carries the access token, so the
    /// tool server can check the approval itself.
    Http {
        service: RunningService<RoleClient, ()>,
        url: String,
    },
}

impl Upstream {
    pub fn peer(&self) -> &Peer<RoleClient> {
        match self {
            Upstream::Process(service) | Upstream::Http { service, .. } => service.peer(),
        }
    }
}

struct Inner {
    upstream: Upstream,
    info: ServerConfig,
    tools: HashMap<String, UpstreamTool>,
    policy: Policy,
    approvals: Approvals,
}

/// One gate; cheap to clone (each HTTP session gets a clone).
#[derive(Clone)]
pub struct Gate(Arc<Inner>);

impl Gate {
    pub fn new(
        upstream: Upstream,
        tools: Vec<UpstreamTool>,
        policy: Policy,
        approvals: Approvals,
    ) -> Gate {
        let upstream_info = upstream.peer().peer_info();
        let mut info = ServerConfig::new(
            upstream_info
                .as_ref()
                .map(|i| i.capabilities.clone())
                .unwrap_or_default(),
        );
        info.server_info = Implementation::new("countersign-gate", env!("CARGO_PKG_VERSION"));
        info.instructions = upstream_info.and_then(|i| i.instructions.clone());
        // Notifications from upstream are not relayed, so the gate promises none.
        if let Some(tools) = &mut info.capabilities.tools {
            tools.list_changed = None;
        }
        if let Some(resources) = &mut info.capabilities.resources {
            resources.subscribe = None;
            resources.list_changed = None;
        }
        if let Some(prompts) = &mut info.capabilities.prompts {
            prompts.list_changed = None;
        }
        info.capabilities.logging = None;
        info.capabilities.experimental = None;
        info.capabilities.extensions = None;
        let tools = tools.into_iter().map(|t| (t.name.clone(), t)).collect();
        Gate(Arc::new(Inner {
            upstream,
            info,
            tools,
            policy,
            approvals,
        }))
    }

    async fn forward(
        &self,
        request: CallToolRequestParams,
        access_token: Option<String>,
    ) -> Result<CallToolResponse, McpError> {
        match (&self.0.upstream, access_token) {
            (Upstream::Http { url, .. }, Some(token)) => {
                let config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                let service = match self.0.approvals.dpop() {
                    Some(key) => {
                        let client = DpopHttp::new(key.clone(), &token);
                        ().serve(StreamableHttpClientTransport::with_client(client, config))
                            .await
                    }
                    None => {
                        let config = config.auth_header(token);
                        ().serve(StreamableHttpClientTransport::from_config(config))
                            .await
                    }
                }
                .map_err(|e| {
                    McpError::internal_error(format!("cannot reach the upstream server: {e}"), None)
                })?;
                let result = service.peer().call_tool_once(request).await;
                let _ = service.cancel().await;
                result.map_err(upstream_error)
            }
            (upstream, _) => upstream
                .peer()
                .call_tool_once(request)
                .await
                .map_err(upstream_error),
        }
    }

    /// A gated call: ask for (or resume) approval of exactly this call and act on the outcome.
    async fn gated(
        &self,
        request: CallToolRequestParams,
        arguments: &Map<String, serde_json::Value>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let policy = &self.0.policy;
        let name = request.name.to_string();
        let (Some(mut statement), Some(approver)) = (
            policy.statement(&name, arguments),
            policy.approver_of(&name),
        ) else {
            return Ok(refusal(format!(
                "The gate has no statement or approver for {name}; the call was not made."
            )));
        };
        // The tool server is the token's audience (RFC 9396 §2 `resource` becomes `aud`).
        if let Upstream::Http { url, .. } = &self.0.upstream {
            statement.resource = Some(url.clone());
        }
        let call = Call::new(&name, arguments);
        let ask = Ask {
            statement: &statement,
            approver,
            hold: Duration::from_secs(policy.hold_seconds),
            expiry: policy.request_expiry_seconds,
            cancelled: context.ct.clone(),
        };
        let outcome = self.0.approvals.decide(&call, &ask).await;
        let digest = &call.digest[..16];
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(tool = %name, call = digest, "approval could not be asked: {e}");
                return Ok(refusal(format!(
                    "The gate could not ask for approval ({e}); the call was not made."
                )));
            }
        };
        tracing::info!(tool = %name, call = digest, outcome = outcome_name(&outcome), "gated call");
        Ok(match outcome {
            Outcome::Approved { access_token } => {
                // A call its client gave up on is not made behind its back.
                if context.ct.is_cancelled() {
                    tracing::warn!(tool = %name, call = digest, "approved, but the client cancelled the call: not forwarded");
                    return Ok(refusal("The call was cancelled; it was not made.".into()));
                }
                return self.forward(request, Some(access_token)).await;
            }
            Outcome::Pending { link, new } => {
                if let (true, Some(link)) = (new, &link) {
                    offer_link(context.peer.clone(), link.clone(), &statement.action);
                }
                CallToolResult::success(vec![ContentBlock::text(format!(
                    "Approval pending: {approver} has been asked in Countersign to approve \
                     \"{}\". Nothing has been done yet. Make exactly the same call again later \
                     (same tool, same arguments) to continue; it runs once approved. A call with \
                     any other arguments needs its own approval.",
                    statement.action
                ))])
                .into()
            }
            Outcome::Denied { reason } => {
                refusal(format!(
                "{approver} denied this call in Countersign{}. It was not made. Do not repeat it \
                 unchanged.",
                reason.map(|r| format!(" (reason: {r})")).unwrap_or_default()
            ))
            }
            Outcome::Expired => refusal(
                "Nobody approved this call before its approval request expired. It was not made; \
                 make the call again to ask again."
                    .to_owned(),
            ),
            Outcome::Refused(why) => refusal(format!(
                "The gate refused to forward this call: {why}. It was not made."
            )),
        })
    }
}

fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Approved { .. } => "approved",
        Outcome::Pending { .. } => "pending",
        Outcome::Denied { .. } => "denied",
        Outcome::Expired => "expired",
        Outcome::Refused(_) => "refused",
    }
}

/// A tool error the model can read and act on.
fn refusal(text: String) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(text)]).into()
}

fn upstream_error(e: ServiceError) -> McpError {
    match e {
        ServiceError::McpError(e) => e,
        other => McpError::internal_error(format!("upstream server: {other}"), None),
    }
}

/// Where the client can show a link (URL-mode elicitation), it is sent the approval page, so the
/// person at the agent can open it. Their answer changes nothing: only the approval does.
fn offer_link(peer: Peer<RoleServer>, link: String, action: &str) {
    let Ok(url) = url::Url::parse(&link) else {
        return;
    };
    let message = format!("Approve or deny \"{action}\" in Countersign (a passkey is needed).");
    let id = link.rsplit('/').next().unwrap_or_default().to_owned();
    tokio::spawn(async move {
        if let Err(e) = peer.elicit_url(message, url, id).await {
            tracing::debug!("the client takes no approval link: {e}");
        }
    });
}

impl ServerHandler for Gate {
    fn get_info(&self) -> ServerConfig {
        self.0.info.clone()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let mut list = self
            .0
            .upstream
            .peer()
            .list_tools(request)
            .await
            .map_err(upstream_error)?;
        if self.0.policy.mode == Mode::Enforce {
            list.tools.retain(|tool| {
                self.0
                    .tools
                    .get(tool.name.as_ref())
                    .is_some_and(|t| self.0.policy.decide(t) != Decision::Deny)
            });
        }
        Ok(list)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let policy = &self.0.policy;
        let name = request.name.to_string();
        // A tool the upstream did not list at start is not in the policy's reach: never forwarded.
        let Some(tool) = self.0.tools.get(&name) else {
            return Ok(refusal(format!(
                "The gate does not know the tool {name}; the call was not made."
            )));
        };
        let decision = policy.decide(tool);
        if policy.mode == Mode::ObserveOnly {
            if decision != Decision::Allow {
                let approver = policy.approver_of(&name).unwrap_or("nobody");
                let arguments = request.arguments.clone().unwrap_or_default();
                tracing::info!(
                    tool = %name,
                    call = &Call::new(&name, &arguments).digest[..16],
                    would = ?decision,
                    approver,
                    "observe-only: forwarded a call the policy would not let through unasked"
                );
            }
            return self.forward(request, None).await;
        }
        match decision {
            Decision::Allow => self.forward(request, None).await,
            Decision::Deny => Ok(refusal(format!(
                "The gate's policy does not allow {name}; the call was not made."
            ))),
            Decision::Approve => {
                // Only the name and the arguments are shown and bound; nothing else may ride along.
                if request.input_responses.is_some() || request.request_state.is_some() {
                    return Ok(refusal(format!(
                        "The gate passes no input responses or request state with a call of {name} \
                         that needs approval; the call was not made."
                    )));
                }
                let mut request = request;
                request.meta = None;
                let arguments = request.arguments.clone().unwrap_or_default();
                self.gated(request, &arguments, &context).await
            }
        }
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let peer = self.0.upstream.peer();
        peer.list_resources(request).await.map_err(upstream_error)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let peer = self.0.upstream.peer();
        peer.list_resource_templates(request)
            .await
            .map_err(upstream_error)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let peer = self.0.upstream.peer();
        peer.read_resource_once(request)
            .await
            .map_err(upstream_error)
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let peer = self.0.upstream.peer();
        peer.list_prompts(request).await.map_err(upstream_error)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let peer = self.0.upstream.peer();
        peer.get_prompt_once(request).await.map_err(upstream_error)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let peer = self.0.upstream.peer();
        peer.complete(request).await.map_err(upstream_error)
    }
}
