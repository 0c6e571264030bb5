//! `countersign gate`: an MCP server in front of one upstream MCP server that holds the tool calls
//! its policy gates until a person approves that exact call through Countersign. The agent needs no
//! code for it: its MCP client talks to the gate (stdio or streamable HTTP) as to any server.
//!
//! - `policy`: what passes, what waits for whom, what the approver reads, the digest of a call;
//! - `approvals`: asking Countersign, holding, resuming, and checking the token against the call;
//! - `proxy`: the MCP server that puts the two in the dispatch path.
pub mod approvals;
pub mod dpop;
pub mod policy;
pub mod proxy;

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context;
use axum::{
    body::Bytes,
    http::{header, HeaderMap, StatusCode},
};
use clap::Args;
use rmcp::{
    model::Tool,
    transport::{
        streamable_http_server::{session::local::LocalSessionManager, StreamableHttpService},
        StreamableHttpClientTransport, StreamableHttpServerConfig, TokioChildProcess,
    },
    ServiceExt,
};

use self::{
    approvals::{Approvals, Delivery, Notices},
    dpop::DpopKey,
    policy::{Policy, UpstreamTool},
    proxy::{Gate, Upstream},
};
use crate::agent::CibaClient;

#[derive(Args, Debug, Clone)]
pub struct GateArgs {
    /// The policy file (TOML): which tools pass, need approval or are refused.
    #[arg(long, env = "COUNTERSIGN_GATE_POLICY")]
    pub policy: PathBuf,
    /// Countersign's issuer URL.
    #[arg(long, env = "COUNTERSIGN_ISSUER")]
    pub issuer: String,
    /// The gate's client id (a client registered for poll delivery).
    #[arg(long, env = "COUNTERSIGN_CLIENT_ID")]
    pub client_id: String,
    /// Better passed in the environment, where other users' `ps` cannot see it.
    #[arg(long, env = "COUNTERSIGN_CLIENT_SECRET", allow_hyphen_values = true)]
    pub client_secret: String,
    /// Serve MCP over streamable HTTP at http://ADDRESS/mcp instead of stdio.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Ping delivery (CIBA §10.2): listen here for Countersign's pings. The gate's client must be
    /// registered for ping delivery with a notification endpoint that reaches this address.
    #[arg(long, conflicts_with = "push_listen")]
    pub ping_listen: Option<SocketAddr>,
    /// Push delivery (CIBA §10.3): listen here for the pushed token responses. The gate's client
    /// must be registered for push delivery with a notification endpoint that reaches this address.
    #[arg(long)]
    pub push_listen: Option<SocketAddr>,
    /// Bind tokens to a key of the gate's (DPoP, RFC 9449): the client must be registered with
    /// `--dpop`, and an HTTP upstream receives `Authorization: DPoP` with a proof per request.
    #[arg(long)]
    pub dpop: bool,
    /// The upstream MCP server's streamable HTTP URL (instead of a command).
    #[arg(long, conflicts_with = "command")]
    pub upstream_url: Option<String>,
    /// The upstream MCP server's command and arguments, after `--`.
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// What the gate knows of a tool from `tools/list`: its annotations and argument names.
pub fn upstream_tool(tool: &Tool) -> UpstreamTool {
    let annotations = tool.annotations.as_ref();
    UpstreamTool {
        name: tool.name.to_string(),
        read_only_hint: annotations.and_then(|a| a.read_only_hint),
        destructive_hint: annotations.and_then(|a| a.destructive_hint),
        arguments: tool
            .input_schema
            .get("properties")
            .and_then(|p| p.as_object())
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default(),
    }
}

/// Starts the upstream, checks the policy against its tools, and serves until the client leaves.
pub async fn run(args: GateArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.policy)
        .with_context(|| format!("cannot read the policy {}", args.policy.display()))?;
    let policy = Policy::parse(&text)?;
    let upstream = match (&args.upstream_url, args.command.split_first()) {
        (Some(url), _) => {
            let transport = StreamableHttpClientTransport::from_uri(url.as_str());
            Upstream::Http {
                service: ().serve(transport).await.context("cannot reach the upstream")?,
                url: url.clone(),
            }
        }
        (None, Some((program, rest))) => {
            let mut command = tokio::process::Command::new(program);
            command.args(rest);
            let transport = TokioChildProcess::new(command)
                .with_context(|| format!("cannot start the upstream {program}"))?;
            Upstream::Process(
                ().serve(transport)
                    .await
                    .context("the upstream did not start")?,
            )
        }
        (None, None) => {
            anyhow::bail!("name the upstream server: a command after --, or --upstream-url")
        }
    };
    let tools: Vec<UpstreamTool> = upstream
        .peer()
        .list_all_tools()
        .await
        .context("the upstream did not list its tools")?
        .iter()
        .map(upstream_tool)
        .collect();
    policy.check(&tools)?;
    let client = CibaClient::discover(&args.issuer, &args.client_id, &args.client_secret)
        .await
        .context("cannot reach Countersign")?;
    let delivery = match (args.ping_listen, args.push_listen) {
        (Some(address), _) => Delivery::Ping(listen_for_notifications(address, false).await?),
        (None, Some(address)) => Delivery::Push(listen_for_notifications(address, true).await?),
        (None, None) => Delivery::Poll,
    };
    let dpop = match args.dpop {
        true => Some(Arc::new(DpopKey::generate()?)),
        false => None,
    };
    let approvals = Approvals::new(client, delivery, dpop).await?;
    tracing::info!(
        tools = tools.len(),
        mode = ?policy.mode,
        "the gate is in front of the upstream"
    );
    let gate = Gate::new(upstream, tools, policy, approvals);
    match args.listen {
        None => {
            let service = gate.serve(rmcp::transport::stdio()).await?;
            service.waiting().await?;
        }
        Some(address) => {
            let service = StreamableHttpService::new(
                move || Ok(gate.clone()),
                LocalSessionManager::default().into(),
                StreamableHttpServerConfig::default(),
            );
            let app = axum::Router::new().nest_service("/mcp", service);
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address}"))?;
            tracing::info!("serving MCP at http://{}/mcp", listener.local_addr()?);
            axum::serve(listener, app).await?;
        }
    }
    Ok(())
}

/// The gate's notification endpoint: any path; a POST whose bearer token is one the gate gave with a
/// request wakes that request's wait (204), anything else is 401.
async fn listen_for_notifications(address: SocketAddr, push: bool) -> anyhow::Result<Arc<Notices>> {
    let notices = Arc::new(Notices::new(push));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen for notifications on {address}"))?;
    tracing::info!(
        "listening for Countersign's notifications at http://{}",
        listener.local_addr()?
    );
    let waiting = notices.clone();
    let app = axum::Router::new().fallback(axum::routing::post(
        move |headers: HeaderMap, body: Bytes| {
            let known = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| waiting.arrived(v, &body));
            async move {
                if known {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }
        },
    ));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the notification listener stopped: {e}");
        }
    });
    Ok(notices)
}
