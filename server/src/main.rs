//! The `countersign` command line: `serve`, and the administration commands that work on the same
//! database (clients, approvers, keys), plus the reference agent and the MCP gate.
use std::{io::IsTerminal, process::ExitCode};

use clap::{Parser, Subcommand};
use server::{
    admin::confirmation::Change,
    agent,
    ciba::{audit, clients, AuthMethod, DeliveryMode},
    clock::{Clock, SystemClock},
    config::{DataConfig, ServeConfig, DEFAULT_DATABASE_URL},
    gate,
    identity::{
        approvers::{self, NewApprover, Role},
        invitations,
    },
    sealing::Kek,
    signing,
    store::Store,
};

/// mimalloc: the request path allocates many small short-lived buffers (HTTP, forms, SQL arguments),
/// which glibc's allocator serves markedly slower under load (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "countersign",
    version,
    about = "Human approval for AI-agent actions, over OpenID Connect CIBA"
)]
struct Cli {
    /// sqlite://PATH (the default, created on first use) or postgres://...
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the agent API and the approval pages.
    Serve(ServeConfig),
    /// Manage agents (OAuth clients).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage approvers.
    #[command(subcommand)]
    Approver(ApproverCommand),
    /// Manage groups of approvers (on-call rotations, teams) that agents may address.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Manage approval policies: which actions need several approvals, by whom.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Manage the server's signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check the decision record.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Act as an agent: the reference CIBA client.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Put approval in front of an MCP server: proxy to it, holding the tool calls the policy gates
    /// until a person approves that exact call.
    Gate(gate::GateArgs),
    /// For development and benchmarks only.
    #[command(subcommand)]
    Dev(DevCommand),
}

#[derive(Subcommand)]
enum DevCommand {
    /// Fill an empty database with a synthetic history: decided requests (no decision records,
    /// so `audit verify` reports them all) from synthetic agents to synthetic approvers.
    Seed {
        #[arg(long, default_value_t = 10_000)]
        decisions: u64,
        #[arg(long, default_value_t = 20)]
        clients: usize,
        #[arg(long, default_value_t = 50)]
        approvers: usize,
        /// How many days back the history reaches.
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
    /// Time the admin history's queries on this database and print their plans.
    BenchHistory {
        #[arg(long, default_value_t = 50)]
        runs: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register an agent; prints its client_id and (once) its secret.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["poll", "ping", "push"]))]
        delivery: String,
        #[arg(long)]
        notify_url: Option<String>,
        /// Scopes beyond openid the client may request (profile, email); repeatable.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long, default_value = "client_secret_basic",
            value_parser = clap::builder::PossibleValuesParser::new(["client_secret_basic", "client_secret_post", "private_key_jwt"]))]
        auth: String,
        /// A file with the client's public JWK set (for private_key_jwt and signed requests).
        #[arg(long)]
        jwks: Option<std::path::PathBuf>,
        /// A resource server (a tool agents call): it may introspect tokens at /introspect.
        #[arg(long)]
        resource_server: bool,
        /// Require DPoP-bound tokens (RFC 9449): token requests without a proof are refused.
        #[arg(long)]
        dpop: bool,
        #[arg(long)]
        json: bool,
        /// The secret is stored keyed under the server's key, so this needs the same key file.
        #[command(flatten)]
        data: DataConfig,
    },
    /// List agents.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop an agent from authenticating.
    Disable { client_id: String },
    /// Issue a new secret; the old one stops working.
    RotateSecret {
        client_id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataConfig,
    },
}

#[derive(Subcommand)]
enum ApproverCommand {
    /// Add an approver, whom agents name by email in login_hint.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin: bool,
        /// A code agents must send as user_code before this approver is asked (CIBA §7.1).
        #[arg(long, env = "COUNTERSIGN_USER_CODE")]
        user_code: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print a one-time enrollment link (valid 24 hours) for an approver or admin.
    Invite {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        admin: bool,
        /// How long the link stays valid, in minutes (at most a day).
        #[arg(long, default_value_t = 1440, value_parser = clap::value_parser!(i64).range(0..=1440))]
        valid_minutes: i64,
        #[command(flatten)]
        link: LinkArgs,
    },
    /// Recover someone who lost every passkey, when no second admin can approve a recovery in the
    /// console: their passkeys and sessions end, and a one-time link (valid an hour) enrolls a new
    /// one. Whoever runs this has the server; the admin log records it.
    Recover {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        link: LinkArgs,
    },
    /// List approvers.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Hand an approver's requests to a colleague while they are away: requests made from --from
    /// (today when left out) to the end of --until (UTC days) go to the delegate, who decides them
    /// on their behalf. Recorded in the admin log.
    Delegate {
        #[arg(long)]
        email: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        until: String,
    },
    /// End every delegation of an approver's requests, running or to come.
    Undelegate {
        #[arg(long)]
        email: String,
    },
    /// Offboard an approver: their sessions end, they can no longer sign in, decide or be asked, their
    /// pending requests are answered access_denied, and their approvals not yet redeemed earn nothing.
    Disable { email: String },
}

/// Group changes made here are the operator's: the admin log records them (in the console, each is
/// confirmed with an admin's passkey).
#[derive(Subcommand)]
enum GroupCommand {
    /// Create a group; agents address it as login_hint=group:NAME once allowed.
    Create { name: String },
    /// Add an approver to a group: requests made to it from now on reach them.
    Add {
        group: String,
        #[arg(long)]
        email: String,
    },
    /// Remove an approver from a group.
    Remove {
        group: String,
        #[arg(long)]
        email: String,
    },
    /// Let an agent address a group.
    Allow {
        group: String,
        #[arg(long)]
        agent: String,
    },
    /// Stop an agent addressing a group.
    Disallow {
        group: String,
        #[arg(long)]
        agent: String,
    },
    /// List the groups, their members and the agents that may address them.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Set a policy: actions it covers need APPROVALS approvals by distinct people. With --id, a new
    /// version of that policy; requests made before keep the version they were made under.
    Set {
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        name: String,
        /// The agent (client_id) it applies to; every agent when left out.
        #[arg(long)]
        agent: Option<String>,
        /// The action's name, or a pattern (`*`, `?`), case-insensitive.
        #[arg(long)]
        action: Option<String>,
        /// The tool's name, or a pattern (gated tool calls).
        #[arg(long)]
        tool: Option<String>,
        /// Only amounts strictly above this decimal.
        #[arg(long)]
        amount_above: Option<String>,
        /// Only actions that say they cannot be undone.
        #[arg(long)]
        irreversible: bool,
        #[arg(long)]
        approvals: i64,
        /// The group whose members approve (the person the agent acts for never counts); without
        /// it, those the request is addressed to.
        #[arg(long)]
        group: Option<String>,
        /// Ask this group's members too when a request is still open after --escalate-after-mins.
        #[arg(long, requires = "escalate_after_mins")]
        escalate_to: Option<String>,
        #[arg(long, requires = "escalate_to")]
        escalate_after_mins: Option<i64>,
    },
    /// Retire a policy: requests made from now on are not held to it.
    Retire { id: String },
    /// List the newest version of every policy.
    List {
        #[arg(long)]
        json: bool,
    },
}

/// What a command that prints an enrollment link needs.
#[derive(clap::Args)]
struct LinkArgs {
    /// The server's public URL, which the link points at.
    #[arg(
        long,
        env = "COUNTERSIGN_PUBLIC_URL",
        default_value = "http://localhost:3000"
    )]
    public_url: url::Url,
    /// Where the server's key-encryption key is: links are stored as digests under it.
    #[command(flatten)]
    data: DataConfig,
}

impl LinkArgs {
    /// The invitations under the server's key: without it, the server would not know the link.
    fn invitations(
        &self,
        command: &str,
        store: &Store,
        database_url: &str,
    ) -> anyhow::Result<invitations::Invitations> {
        let kek = Kek::load_existing(&self.data.kek_source(database_url))?.ok_or_else(|| {
            anyhow::anyhow!(
                "{command} needs the server's key file (COUNTERSIGN_KEY_FILE or COUNTERSIGN_KEY), which was not found"
            )
        })?;
        Ok(invitations::Invitations::new(store.clone(), &kek))
    }

    /// The link of `token`.
    fn link(&self, token: &str) -> String {
        format!(
            "{}{}",
            self.public_url.as_str().trim_end_matches('/'),
            invitations::enrollment_path(token)
        )
    }
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new signing key active; the old one stays published until its tokens expire.
    Rotate(DataConfig),
    /// Once, for a database an earlier version left: seal its plain signing and VAPID keys and its
    /// passkey keys from before the key registry. A start refuses such a database rather than seal
    /// what it holds, which could be keys someone planted.
    SealLegacy(DataConfig),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Re-verify the evidence: every decision record (hash chain, server signatures, requests,
    /// passkey challenges and the passkeys' own signatures), the passkey key registry, that every
    /// decided request and issued token has its record, the signing keys (when the key-encryption
    /// key is at hand), and the chains' heads against the latest checkpoint. Exits 3 on any finding.
    Verify {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        evidence: EvidenceArgs,
    },
    /// Write an evidence bundle (docs/evidence-bundle.md): the decision records, the requests they
    /// decided, the passkey key registry, the server's public keys and the latest checkpoint, for
    /// anyone to check without this server (verify/verify-bundle.mjs). Without a selection it holds
    /// every record.
    Export {
        /// Where to write it (default: standard output).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Only requests made on or after this day (YYYY-MM-DD, UTC).
        #[arg(long)]
        from: Option<String>,
        /// Only requests made on or before this day (YYYY-MM-DD, UTC).
        #[arg(long)]
        until: Option<String>,
        /// Only requests to this approver (e-mail address).
        #[arg(long)]
        approver: Option<String>,
        /// Only requests from this agent (client_id).
        #[arg(long)]
        agent: Option<String>,
        #[command(flatten)]
        evidence: EvidenceArgs,
    },
    /// Print a signed checkpoint of the chains' heads now, for storage outside this machine.
    Checkpoint {
        #[arg(
            long,
            env = "COUNTERSIGN_PUBLIC_URL",
            default_value = "http://localhost:3000"
        )]
        public_url: url::Url,
        #[command(flatten)]
        data: DataConfig,
    },
}

/// What the evidence commands read besides the database.
#[derive(clap::Args)]
struct EvidenceArgs {
    /// The server's public URL: the passkeys' site, which every assertion must name.
    #[arg(
        long,
        env = "COUNTERSIGN_PUBLIC_URL",
        default_value = "http://localhost:3000"
    )]
    public_url: url::Url,
    /// A checkpoint (a file holding its JWS), instead of the latest one in the checkpoint directory.
    #[arg(long)]
    checkpoint: Option<std::path::PathBuf>,
    #[command(flatten)]
    data: DataConfig,
}

impl EvidenceArgs {
    /// The key-encryption key if there is one, the checkpoint to use, and the directory it came from
    /// (None for a file given with --checkpoint).
    #[allow(clippy::type_complexity)]
    fn load(
        &self,
        database_url: &str,
    ) -> anyhow::Result<(Option<Kek>, Option<String>, Option<std::path::PathBuf>)> {
        let kek = Kek::load_existing(&self.data.kek_source(database_url))?;
        Ok(match &self.checkpoint {
            Some(file) => (
                kek,
                Some(std::fs::read_to_string(file)?.trim().to_owned()),
                None,
            ),
            None => {
                let dir = self.data.checkpoint_dir(database_url);
                let latest = server::ciba::checkpoint::latest(&dir)?;
                (kek, latest, Some(dir))
            }
        })
    }
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Ask for approval of one action and wait for the decision.
    Request(agent::AgentRequest),
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal: logs read by programs and files stay plain.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Agent(AgentCommand::Request(args)) = &cli.command {
        return Ok(match agent::request(args).await {
            Ok(tokens) => {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
                ExitCode::SUCCESS
            }
            Err(agent::AgentError::Refused { body, .. }) => {
                println!("{}", serde_json::to_string_pretty(&body)?);
                ExitCode::from(2)
            }
            Err(e) => return Err(e.into()),
        });
    }
    if let Command::Gate(args) = cli.command {
        gate::run(args).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let store = Store::connect(&cli.database_url).await?;
    let now = SystemClock.now();
    match cli.command {
        Command::Serve(config) => server::serve(config, store).await?,
        Command::Client(command) => client_command(&store, command, &cli.database_url, now).await?,
        Command::Approver(ApproverCommand::Add {
            email,
            name,
            admin,
            user_code,
            json,
        }) => {
            let role = if admin { Role::Admin } else { Role::Approver };
            let approver = approvers::add(
                &store,
                NewApprover {
                    email,
                    name,
                    role,
                    user_code,
                },
                now,
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string(&approver)?);
            } else {
                println!(
                    "added {} <{}> as {}",
                    approver.name,
                    approver.email,
                    approver.role.as_str()
                );
            }
        }
        Command::Approver(ApproverCommand::Invite {
            email,
            name,
            admin,
            valid_minutes,
            link,
        }) => {
            let role = if admin { Role::Admin } else { Role::Approver };
            let token = link
                .invitations("approver invite", &store, &cli.database_url)?
                .invite(
                    &email,
                    name.as_deref(),
                    role,
                    None,
                    now,
                    valid_minutes * 60_000,
                )
                .await?
                .map_err(anyhow::Error::msg)?;
            println!("{}", link.link(&token));
        }
        Command::Approver(ApproverCommand::Recover { email, link }) => {
            let invitations = link.invitations("approver recover", &store, &cli.database_url)?;
            let token =
                server::admin::approvers::recover_as_operator(&store, &invitations, &email, now)
                    .await?
                    .map_err(anyhow::Error::msg)?;
            eprintln!("{email}'s passkeys and sessions have ended. Give them this link in person or over a channel you trust; it works once, within an hour:");
            println!("{}", link.link(&token));
        }
        Command::Approver(ApproverCommand::Delegate {
            email,
            to,
            from,
            until,
        }) => {
            let day = |d: &str| {
                server::admin::history::day_start(d)
                    .ok_or_else(|| anyhow::anyhow!("{d:?} is not a day (YYYY-MM-DD)"))
            };
            let starts_at = match from {
                Some(d) => day(&d)?,
                None => now,
            };
            let change = Change::Delegate {
                approver: approver_id(&store, &email).await?,
                delegate: approver_id(&store, &to).await?,
                starts_at,
                ends_at: day(&until)? + 24 * 60 * 60 * 1000,
            };
            operator_change(&store, change, now).await?;
        }
        Command::Approver(ApproverCommand::Undelegate { email }) => {
            let id = approver_id(&store, &email).await?;
            let mine: Vec<_> = store
                .current_delegations(now)
                .await?
                .into_iter()
                .filter(|d| d.approver_id == id)
                .collect();
            if mine.is_empty() {
                anyhow::bail!("{email} hands their requests to nobody");
            }
            for d in mine {
                operator_change(&store, Change::EndDelegation { delegation: d.id }, now).await?;
            }
        }
        Command::Group(command) => group_command(&store, command, now).await?,
        Command::Policy(command) => policy_command(&store, command, now).await?,
        Command::Approver(ApproverCommand::List { json }) => {
            let all = approvers::list(&store).await?;
            if json {
                println!("{}", serde_json::to_string(&all)?);
            } else {
                for a in all {
                    println!(
                        "{}\t{}\t{}\t{}",
                        a.email,
                        a.name,
                        a.role.as_str(),
                        if a.disabled { "disabled" } else { "active" }
                    );
                }
            }
        }
        Command::Approver(ApproverCommand::Disable { email }) => {
            match approvers::disable(&store, &email, now).await? {
                Some(pending) => println!(
                    "{email} is disabled; {pending} pending requests will be answered access_denied"
                ),
                None => anyhow::bail!("no approver {email:?}"),
            }
        }
        Command::Keys(KeysCommand::Rotate(data)) => {
            let kek = Kek::load(&data.kek_source(&cli.database_url))?;
            let kid = signing::rotate(&store, &kek, now).await?;
            println!("new signing key {kid} is active; the previous key stays published until its tokens expire");
        }
        Command::Keys(KeysCommand::SealLegacy(data)) => {
            let kek = Kek::load(&data.kek_source(&cli.database_url))?;
            let sealed = server::legacy::seal_legacy(&store, std::sync::Arc::new(kek), now).await?;
            println!(
                "sealed {} signing keys, {} VAPID key, {} passkey keys into the key registry; keyed {} client secrets",
                sealed.signing_keys,
                if sealed.vapid_key { "the" } else { "no" },
                sealed.passkey_keys,
                sealed.client_secrets
            );
        }
        Command::Audit(AuditCommand::Verify { json, evidence }) => {
            let (kek, checkpoint, checkpoint_dir) = evidence.load(&cli.database_url)?;
            let inputs = audit::AuditInputs {
                kek: kek.as_ref(),
                checkpoint,
                checkpoint_dir,
            };
            let rp = audit::RelyingParty::of(&evidence.public_url);
            let report = audit::verify(&store, &rp, inputs).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_report(&report);
            }
            if !report.is_clean() {
                return Ok(ExitCode::from(3));
            }
        }
        Command::Audit(AuditCommand::Export {
            out,
            from,
            until,
            approver,
            agent,
            evidence,
        }) => {
            let day = |text: Option<String>, what: &str| {
                text.map(|t| {
                    server::admin::history::day_start(&t)
                        .ok_or_else(|| anyhow::anyhow!("--{what} must be a day such as 2026-11-30"))
                })
                .transpose()
            };
            let approver_id = match approver {
                None => None,
                Some(email) => Some(
                    approvers::by_email(&store, &email)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("no approver has the address {email}"))?
                        .id,
                ),
            };
            let selection = server::store::decisions::Selection {
                from: day(from, "from")?,
                until: day(until, "until")?.map(|start| start + 86_400_000),
                approver_id,
                client_id: agent,
            };
            let (kek, checkpoint, _) = evidence.load(&cli.database_url)?;
            let bundle = server::ciba::bundle::export(
                &store,
                kek.as_ref(),
                &audit::RelyingParty::of(&evidence.public_url),
                checkpoint,
                &selection,
                now,
            )
            .await?;
            match out {
                Some(path) => {
                    let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
                    serde_json::to_writer(file, &bundle)?;
                    let records = bundle["records"].as_array().map_or(0, Vec::len);
                    eprintln!("wrote {records} decision records to {}", path.display());
                }
                None => println!("{}", serde_json::to_string(&bundle)?),
            }
        }
        Command::Audit(AuditCommand::Checkpoint { public_url, data }) => {
            let kek = Kek::load(&data.kek_source(&cli.database_url))?;
            let keys =
                signing::KeyRing::load(store.clone(), std::sync::Arc::new(kek), 0, now).await?;
            let issuer = server::oauth::Endpoints::new(&public_url).issuer;
            println!(
                "{}",
                server::ciba::checkpoint::make(&store, &keys, &issuer, now).await?
            );
        }
        Command::Dev(DevCommand::Seed {
            decisions,
            clients,
            approvers,
            days,
        }) => {
            let plan = server::seed::SeedPlan {
                decisions,
                clients,
                approvers,
                days,
            };
            let started = std::time::Instant::now();
            let seeded = server::seed::seed(&store, &plan, now, |n| {
                if n % 100_000 == 0 || n == decisions {
                    eprintln!("{n} requests written");
                }
            })
            .await?;
            eprintln!(
                "seeded {} requests from {} agents to {} approvers in {:.1} s",
                seeded.requests,
                seeded.client_ids.len(),
                seeded.approver_ids.len(),
                started.elapsed().as_secs_f64()
            );
        }
        Command::Dev(DevCommand::BenchHistory { runs, json }) => {
            let timings = server::seed::bench_history(&store, runs.max(1), now).await?;
            if json {
                let list: Vec<_> = timings
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "query": t.name, "median_ms": t.median_ms, "p99_ms": t.p99_ms,
                            "rows": t.rows, "plan": t.plan,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for t in &timings {
                    println!(
                        "{:<32} median {:>7.2} ms   p99 {:>7.2} ms   ({} rows)",
                        t.name, t.median_ms, t.p99_ms, t.rows
                    );
                    for step in &t.plan {
                        println!("    {step}");
                    }
                }
            }
        }
        Command::Agent(_) | Command::Gate(_) => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn client_command(
    store: &Store,
    command: ClientCommand,
    database_url: &str,
    now: i64,
) -> anyhow::Result<()> {
    // The key client secrets are stored under: the server's own (made here if this comes first).
    let secrets = |data: &DataConfig| -> anyhow::Result<clients::ClientSecrets> {
        Ok(clients::ClientSecrets::new(&Kek::load(
            &data.kek_source(database_url),
        )?))
    };
    match command {
        ClientCommand::Create {
            name,
            delivery,
            notify_url,
            scopes,
            auth,
            jwks,
            resource_server,
            dpop,
            json,
            data,
        } => {
            let jwks = jwks.map(std::fs::read_to_string).transpose()?;
            let new = clients::NewClient {
                name,
                delivery_mode: delivery
                    .parse::<DeliveryMode>()
                    .map_err(anyhow::Error::msg)?,
                notify_url,
                scopes,
                auth_method: auth.parse::<AuthMethod>().map_err(anyhow::Error::msg)?,
                jwks,
                resource_server,
                dpop_bound: dpop,
            };
            let policy = clients::endpoint::EndpointPolicy::from_env();
            let credentials = clients::register(store, &secrets(&data)?, new, policy, now).await?;
            print_credentials(&credentials, json)?;
        }
        ClientCommand::List { json } => {
            let rows = store.clients().await?;
            if json {
                let list: Vec<_> = rows
                    .iter()
                    .map(|r| serde_json::json!({
                        "client_id": r.id, "name": r.name, "delivery_mode": r.delivery_mode,
                        "notify_url": r.notify_url, "scope": r.scopes, "auth_method": r.auth_method,
                        "disabled": r.disabled != 0, "resource_server": r.resource_server != 0, "dpop": r.dpop_bound != 0,
                    }))
                    .collect();
                println!("{}", serde_json::to_string(&list)?);
            } else {
                for r in rows {
                    let state = if r.disabled != 0 {
                        "disabled"
                    } else {
                        "active"
                    };
                    println!(
                        "{}\t{}\t{}\t{}\t{state}",
                        r.id, r.name, r.delivery_mode, r.auth_method
                    );
                }
            }
        }
        ClientCommand::Disable { client_id } => {
            if !store.set_client_disabled(&client_id, true, now).await? {
                anyhow::bail!("no client {client_id:?}");
            }
            println!("client {client_id} is disabled; its requests made until now are withdrawn for good");
        }
        ClientCommand::RotateSecret {
            client_id,
            json,
            data,
        } => {
            let credentials =
                clients::rotate_secret(store, &secrets(&data)?, &client_id, now).await?;
            print_credentials(&credentials, json)?;
        }
    }
    Ok(())
}

fn print_report(report: &audit::AuditReport) {
    for finding in &report.findings {
        println!("{}: {}", finding.about, finding.problem);
    }
    if !report.signing_keys_checked {
        println!(
            "note: the key-encryption key is not at hand, so the signing keys were taken as stored"
        );
    }
    match &report.checkpoint {
        Some(checkpoint) => println!(
            "compared with the checkpoint made at {} (decision {}, key registry entry {}, admin log entry {})",
            checkpoint.made_at,
            checkpoint.heads.decisions.seq,
            checkpoint.heads.key_registry.seq,
            checkpoint.heads.admin_log.seq
        ),
        None => println!("note: no checkpoint to compare with, so a deleted tail would go unseen"),
    }
    if !report.keys_without_provenance.is_empty() {
        println!(
            "note: {} key registry entries record no provenance (sealed before it was kept): entries {}",
            report.keys_without_provenance.len(),
            report
                .keys_without_provenance
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "{} decision records, {} passkey signatures verified ({} older records kept no key), {} key registry entries, {} problems",
        report.records,
        report.signatures_verified,
        report.signatures_unchecked,
        report.key_registry_entries,
        report.findings.len()
    );
}

fn print_credentials(credentials: &clients::ClientCredentials, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(credentials)?);
    } else {
        println!("client_id: {}", credentials.client_id);
        if let Some(secret) = &credentials.client_secret {
            println!("client_secret: {secret}\n(shown once: store it now)");
        }
    }
    Ok(())
}

/// A group's id by name, or an error naming it.
async fn group_id(store: &Store, name: &str) -> anyhow::Result<String> {
    Ok(server::identity::groups::by_name(store, name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("there is no group {name:?}"))?
        .id)
}

/// An approver's id by e-mail, or an error naming them.
async fn approver_id(store: &Store, email: &str) -> anyhow::Result<String> {
    Ok(approvers::by_email(store, email)
        .await?
        .ok_or_else(|| anyhow::anyhow!("there is no approver {email:?}"))?
        .id)
}

/// Makes a group or policy change as the operator, saying what it did.
async fn operator_change(store: &Store, change: Change, now: i64) -> anyhow::Result<()> {
    let done = server::admin::groups::change_as_operator(store, &change, now)
        .await?
        .map_err(anyhow::Error::msg)?;
    eprintln!("done: {done}");
    Ok(())
}

async fn group_command(store: &Store, command: GroupCommand, now: i64) -> anyhow::Result<()> {
    let change = match command {
        GroupCommand::Create { name } => Change::CreateGroup { name },
        GroupCommand::Add { group, email } => Change::AddToGroup {
            group: group_id(store, &group).await?,
            approver: approver_id(store, &email).await?,
        },
        GroupCommand::Remove { group, email } => Change::RemoveFromGroup {
            group: group_id(store, &group).await?,
            approver: approver_id(store, &email).await?,
        },
        GroupCommand::Allow { group, agent } => Change::AllowGroup {
            group: group_id(store, &group).await?,
            agent,
        },
        GroupCommand::Disallow { group, agent } => Change::DisallowGroup {
            group: group_id(store, &group).await?,
            agent,
        },
        GroupCommand::List { json } => {
            let members = store.group_members().await?;
            let allowed = store.client_groups().await?;
            let mut listed = Vec::new();
            for g in store.groups().await? {
                let emails: Vec<&str> = members
                    .iter()
                    .filter(|m| m.group_id == g.id)
                    .map(|m| m.email.as_str())
                    .collect();
                let agents: Vec<&str> = allowed
                    .iter()
                    .filter(|(_, group)| *group == g.id)
                    .map(|(agent, _)| agent.as_str())
                    .collect();
                if !json {
                    println!(
                        "{}\t{}\tagents: {}",
                        g.name,
                        emails.join(", "),
                        agents.join(", ")
                    );
                }
                listed.push(serde_json::json!({
                    "id": g.id, "name": g.name, "members": emails, "agents": agents,
                }));
            }
            if json {
                println!("{}", serde_json::Value::from(listed));
            }
            return Ok(());
        }
    };
    operator_change(store, change, now).await
}

async fn policy_command(store: &Store, command: PolicyCommand, now: i64) -> anyhow::Result<()> {
    let change = match command {
        PolicyCommand::Set {
            id,
            name,
            agent,
            action,
            tool,
            amount_above,
            irreversible,
            approvals,
            group,
            escalate_to,
            escalate_after_mins,
        } => Change::SetPolicy {
            policy: id,
            name,
            agent,
            action,
            tool,
            amount_above,
            irreversible,
            approvals,
            group: match group {
                Some(name) => Some(group_id(store, &name).await?),
                None => None,
            },
            escalate_after_mins,
            escalation_group: match escalate_to {
                Some(name) => Some(group_id(store, &name).await?),
                None => None,
            },
        },
        PolicyCommand::Retire { id } => Change::RetirePolicy { policy: id },
        PolicyCommand::List { json } => {
            let mut listed = Vec::new();
            for p in store.newest_policies().await? {
                if !json {
                    println!(
                        "{}\tv{}\t{}\t{} approvals\t{}",
                        p.id,
                        p.version,
                        p.name,
                        p.approvals,
                        if p.active != 0 { "in force" } else { "retired" }
                    );
                }
                listed.push(serde_json::json!({
                    "id": p.id, "version": p.version, "name": p.name, "agent": p.client_id,
                    "action": p.match_action, "tool": p.match_tool, "amount_above": p.amount_above,
                    "irreversible": p.irreversible_only != 0, "approvals": p.approvals,
                    "group": p.group_id, "active": p.active != 0,
                    "escalate_after_secs": p.escalate_after_secs,
                    "escalation_group": p.escalation_group_id,
                }));
            }
            if json {
                println!("{}", serde_json::Value::from(listed));
            }
            return Ok(());
        }
    };
    operator_change(store, change, now).await
}
