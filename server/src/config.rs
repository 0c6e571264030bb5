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

/// `path` made absolute against the working directory, without touching the file system.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
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
    /// With an https public URL, allow the key file or the checkpoint directory inside the SQLite
    /// database's directory (by default a start refuses: whoever can write the database there could
    /// put back older checkpoints, or take the key with the database).
    #[arg(long, env = "COUNTERSIGN_ALLOW_KEYS_BESIDE_DATABASE", value_parser = clap::builder::FalseyValueParser::new())]
    pub allow_keys_beside_database: bool,
}

impl ServeConfig {
    /// A deployment (an https public URL) keeps the key file and the checkpoints out of the SQLite
    /// database's directory, unless told otherwise: there they share the database's fate (one
    /// backup, one directory someone can write), and the checkpoints exist to be kept apart. The
    /// defaults put them there, which suits `make run` on a laptop.
    pub fn check_placement(&self, database_url: &str) -> Result<(), String> {
        let sqlite = database_url.starts_with("sqlite:");
        if !sqlite || self.public_url.scheme() != "https" || self.allow_keys_beside_database {
            return Ok(());
        }
        let database_dir = absolute(&data_dir(database_url));
        let key_file = match self.data.kek_source(database_url) {
            crate::sealing::KekSource::File(path) => Some(path),
            _ => None,
        };
        let inside = |path: &Path| absolute(path).starts_with(&database_dir);
        for (what, path, setting) in [
            (
                "key file",
                key_file,
                "COUNTERSIGN_KEY_FILE (or COUNTERSIGN_KEY)",
            ),
            (
                "checkpoint directory",
                Some(self.data.checkpoint_dir(database_url)),
                "COUNTERSIGN_CHECKPOINT_DIR",
            ),
        ] {
            if let Some(path) = path.filter(|p| inside(p)) {
                return Err(format!(
                    "the {what} {} is inside the database's directory {}: set {setting} to a place \
                     the database's users cannot write, or COUNTERSIGN_ALLOW_KEYS_BESIDE_DATABASE=1 to keep it there",
                    path.display(),
                    database_dir.display()
                ));
            }
        }
        Ok(())
    }

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

    fn config(args: &[&str]) -> ServeConfig {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: ServeConfig,
        }
        Wrapper::parse_from(std::iter::once("test").chain(args.iter().copied())).config
    }

    #[test]
    fn a_deployment_keeps_its_keys_and_checkpoints_apart_from_the_database() {
        let db = "sqlite:///var/lib/cs/countersign.db?mode=rwc";
        let https = ["--public-url", "https://approve.example.com"];
        // The defaults put both beside the database: fine for http://localhost, refused for https.
        assert!(config(&[]).check_placement(db).is_ok());
        let refused = config(&https).check_placement(db).unwrap_err();
        assert!(
            refused.contains("key file /var/lib/cs/countersign.key"),
            "{refused}"
        );
        let apart = [
            &https[..],
            &[
                "--key-file",
                "/etc/countersign/key",
                "--checkpoint-dir",
                "/srv/checkpoints",
            ],
        ]
        .concat();
        assert!(config(&apart).check_placement(db).is_ok());
        let checkpoints_inside = [
            &https[..],
            &[
                "--key-file",
                "/etc/countersign/key",
                "--checkpoint-dir",
                "/var/lib/cs/cp",
            ],
        ]
        .concat();
        let refused = config(&checkpoints_inside).check_placement(db).unwrap_err();
        assert!(refused.contains("checkpoint directory"), "{refused}");
        let allowed = [&https[..], &["--allow-keys-beside-database"]].concat();
        assert!(config(&allowed).check_placement(db).is_ok());
        // PostgreSQL has no database directory here.
        assert!(config(&https)
            .check_placement("postgres://db/countersign")
            .is_ok());
    }
}
