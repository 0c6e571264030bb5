//! Configuration: one struct per concern, each knob a flag, an environment variable and a default
//! (all listed in the README).
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use clap::Args;
use url::Url;

use crate::ciba::Policy;

/// Where the data lives; shared by every subcommand.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/countersign.db";

/// What lives outside the database: the key that seals the server's private keys, and the signed
/// checkpoints of the decision record. Both default to the data directory: the SQLite database's
/// directory, or `./data` with PostgreSQL.
#[derive(Args, Debug, Clone, Default)]
pub struct DataConfig {
    /// The key-encryption key's file, created (mode 0600) on first start. `COUNTERSIGN_KEY` (the key
    /// itself, base64url) takes precedence. Instances sharing a database must share this key.
    #[arg(long, env = "COUNTERSIGN_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Where signed checkpoints of the decision record's head are written: somewhere the database's
    /// users cannot write.
    #[arg(long, env = "COUNTERSIGN_CHECKPOINT_DIR")]
    pub checkpoint_dir: Option<PathBuf>,
}

impl DataConfig {
    pub fn kek_source(&self, database_url: &str) -> crate::sealing::KekSource {
        crate::sealing::KekSource::from_env_or(
            self.key_file
                .clone()
                .unwrap_or_else(|| data_dir(database_url).join("countersign.key")),
        )
    }

    pub fn checkpoint_dir(&self, database_url: &str) -> PathBuf {
        self.checkpoint_dir
            .clone()
            .unwrap_or_else(|| data_dir(database_url).join("checkpoints"))
    }
}

/// The directory of a SQLite database file; `data` otherwise.
pub fn data_dir(database_url: &str) -> PathBuf {
    let file = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or_default())
        .filter(|path| !path.is_empty() && !path.starts_with(':'));
    match file.and_then(|f| Path::new(f).parent()) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        Some(_) => PathBuf::from("."),
        None => PathBuf::from("data"),
    }
}

#[derive(Args, Debug, Clone)]
pub struct ServeConfig {
    #[command(flatten)]
    pub data: DataConfig,
    /// Address to listen on (the Leptos convention's variable).
    #[arg(
        long = "addr",
        env = "LEPTOS_SITE_ADDR",
        default_value = "127.0.0.1:3000"
    )]
    pub addr: SocketAddr,
    /// The public URL: the OpenID issuer and the passkey origin.
    #[arg(
        long,
        env = "COUNTERSIGN_PUBLIC_URL",
        default_value = "http://localhost:3000"
    )]
    pub public_url: Url,
    /// Directory with the built site (wasm bundle, CSS, public assets).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: String,
    /// `expires_in` of a backchannel request when the agent asks for none, in seconds.
    #[arg(long, env = "COUNTERSIGN_REQUEST_EXPIRY", default_value_t = 300)]
    pub request_expiry: i64,
    /// The longest `requested_expiry` honoured, in seconds.
    #[arg(long, env = "COUNTERSIGN_MAX_REQUEST_EXPIRY", default_value_t = 1800)]
    pub max_request_expiry: i64,
    /// Minimum seconds between polls (`interval`).
    #[arg(long, env = "COUNTERSIGN_POLL_INTERVAL", default_value_t = 5)]
    pub poll_interval: i64,
    /// Access token lifetime, in seconds.
    #[arg(long, env = "COUNTERSIGN_ACCESS_TOKEN_TTL", default_value_t = 300)]
    pub access_token_ttl: i64,
    /// ID token lifetime, in seconds.
    #[arg(long, env = "COUNTERSIGN_ID_TOKEN_TTL", default_value_t = 300)]
    pub id_token_ttl: i64,
    /// Pending requests one client may hold for one approver (0: no limit).
    #[arg(
        long,
        env = "COUNTERSIGN_MAX_PENDING_PER_APPROVER",
        default_value_t = 5
    )]
    pub max_pending_per_approver: i64,
    /// New requests per client per minute (0: no limit).
    #[arg(
        long,
        env = "COUNTERSIGN_MAX_REQUESTS_PER_MINUTE",
        default_value_t = 60
    )]
    pub max_requests_per_minute: i64,
    /// Sign-in and enrollment calls per client address per minute (0: no limit).
    #[arg(long, env = "COUNTERSIGN_CEREMONIES_PER_MINUTE", default_value_t = 30)]
    pub ceremonies_per_minute: u32,
    /// Refused `/bc-authorize` requests per client address per minute before its requests are
    /// refused unread (0: no limit).
    #[arg(long, env = "COUNTERSIGN_FAILURES_PER_MINUTE", default_value_t = 60)]
    pub failures_per_minute: u32,
    /// Behind a reverse proxy: take the client's address from the last `X-Forwarded-For` entry.
    #[arg(long, env = "COUNTERSIGN_TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,
    /// A browser session ends after this many minutes without activity.
    #[arg(long, env = "COUNTERSIGN_SESSION_IDLE_MINUTES", default_value_t = 30)]
    pub session_idle_minutes: i64,
    /// A browser session ends this many hours after sign-in, active or not.
    #[arg(long, env = "COUNTERSIGN_SESSION_MAX_HOURS", default_value_t = 12)]
    pub session_max_hours: i64,
    /// SMTP server for notification e-mails, e.g. smtp://localhost:25 or smtps://user:pass@mail.example
    /// (unset: no e-mail).
    #[arg(long, env = "COUNTERSIGN_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// The sender of notification e-mails.
    #[arg(
        long,
        env = "COUNTERSIGN_SMTP_FROM",
        default_value = "Countersign <countersign@localhost>"
    )]
    pub smtp_from: String,
    /// How push services can reach the operator: the VAPID `sub` claim, a mailto: or https: URL
    /// (RFC 8292 §2.1). Unset: the public URL when it is https, else mailto:countersign@localhost.
    #[arg(long, env = "COUNTERSIGN_PUSH_CONTACT")]
    pub push_contact: Option<String>,
    /// Hosts of the push services browsers may subscribe with (each with its subdomains), comma
    /// separated. Endpoints elsewhere are refused; plain http only for loopback hosts.
    #[arg(
        long,
        env = "COUNTERSIGN_PUSH_SERVICES",
        default_value = crate::notify::push::DEFAULT_PUSH_SERVICES
    )]
    pub push_services: String,
    /// Allow ping notification endpoints on this machine (http, or https with a self-signed
    /// certificate): for development and tests only. Otherwise endpoints must be https on public
    /// addresses.
    #[arg(long, env = "COUNTERSIGN_ALLOW_LOOPBACK_NOTIFY", value_parser = clap::builder::FalseyValueParser::new())]
    pub allow_loopback_notify: bool,
}

impl ServeConfig {
    /// The VAPID `sub` claim.
    pub fn push_contact(&self) -> String {
        match &self.push_contact {
            Some(contact) => contact.clone(),
            None if self.public_url.scheme() == "https" => self.public_url.to_string(),
            None => "mailto:countersign@localhost".into(),
        }
    }

    pub fn endpoint_policy(&self) -> crate::ciba::clients::endpoint::EndpointPolicy {
        crate::ciba::clients::endpoint::EndpointPolicy {
            allow_loopback: self.allow_loopback_notify,
        }
    }

    pub fn policy(&self) -> Policy {
        Policy {
            default_expiry_secs: self.request_expiry.max(1),
            max_expiry_secs: self.max_request_expiry.max(1),
            poll_interval_secs: self.poll_interval.max(0),
            access_token_ttl_secs: self.access_token_ttl.max(1),
            id_token_ttl_secs: self.id_token_ttl.max(1),
            max_pending_per_approver: self.max_pending_per_approver.max(0),
            max_requests_per_minute: self.max_requests_per_minute.max(0),
        }
    }

    /// The limits per client address (see `limits`).
    pub fn address_quotas(&self) -> crate::limits::AddressQuotas {
        crate::limits::AddressQuotas {
            ceremonies_per_minute: self.ceremonies_per_minute,
            failures_per_minute: self.failures_per_minute,
            trust_forwarded_for: self.trust_forwarded_for,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_directory_is_the_databases() {
        assert_eq!(data_dir(DEFAULT_DATABASE_URL), PathBuf::from("data"));
        assert_eq!(
            data_dir("sqlite:///var/lib/cs/db.sqlite?mode=rwc"),
            PathBuf::from("/var/lib/cs")
        );
        assert_eq!(data_dir("sqlite://cs.db"), PathBuf::from("."));
        assert_eq!(data_dir("sqlite::memory:"), PathBuf::from("data"));
        assert_eq!(data_dir("postgres://db/countersign"), PathBuf::from("data"));
    }
}
