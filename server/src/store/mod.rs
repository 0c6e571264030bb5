//! Persistence. One `Store` over sqlx's `Any` driver runs the same queries on SQLite (the embedded default)
//! and PostgreSQL (shared by several instances); each backend has its own migrations. Queries use `$n`
//! placeholders, which both drivers accept, and only the types both share: TEXT, 64-bit integers (times are
//! Unix milliseconds, booleans 0/1).
use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::Migrator,
    AnyPool, ConnectOptions, Executor,
};

pub mod abuse;
pub mod admin_log;
pub mod approvers;
pub mod auth_requests;
pub mod checkpoint_log;
pub mod clients;
pub mod decisions;
pub mod delegations;
pub mod groups;
pub mod history;
pub mod insert_queue;
pub mod invitations;
pub mod key_registry;
pub mod outbox;
pub mod passkeys;
pub mod push;
pub mod recoveries;
pub mod request_inserts;
pub mod retention;
pub mod seed;
pub mod sessions;
pub mod signing_keys;
pub mod stats;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("a record with this {0} already exists")]
    Conflict(&'static str),
    #[error("could not create the database directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("a stored row cannot be read: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Maps a unique-constraint violation to `Conflict` so callers can say which value clashed.
    fn on_unique(err: sqlx::Error, what: &'static str) -> StoreError {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
            _ => StoreError::Sqlx(err),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Runs the SQLite migrations on one connection with foreign keys off. A migration that rebuilds a
/// table (SQLite's way of changing a constraint) drops a table others refer to, which SQLite allows
/// only with them off, and the pragma does nothing inside the transaction each migration runs in;
/// so they are off around the run, and every reference is checked before they are on again.
async fn migrate_sqlite(pool: &AnyPool) -> StoreResult<()> {
    let mut conn = pool.acquire().await?;
    conn.execute("PRAGMA foreign_keys = OFF").await?;
    let ran = SQLITE_MIGRATIONS.run(&mut *conn).await;
    let dangling = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&mut *conn)
        .await
        .map(|rows| rows.len());
    conn.execute("PRAGMA foreign_keys = ON").await?;
    ran?;
    match dangling? {
        0 => Ok(()),
        n => Err(StoreError::Corrupt(format!(
            "after the migrations, {n} rows refer to rows that do not exist"
        ))),
    }
}

/// The values of a query whose SQL is put together at run time (its filters vary), in placeholder
/// order. `push` hands out the next `$n`, which both databases accept; `bind`/`bind_as` apply them.
#[derive(Debug, Default)]
pub(crate) struct Binds(Vec<Bound>);

#[derive(Debug)]
enum Bound {
    Int(i64),
    Text(String),
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;
type AnyQueryAs<'q, O> = sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>;

impl Binds {
    /// The placeholder for another integer value.
    pub(crate) fn int(&mut self, value: i64) -> String {
        self.push(Bound::Int(value))
    }

    /// The placeholder for another text value.
    pub(crate) fn text(&mut self, value: impl Into<String>) -> String {
        self.push(Bound::Text(value.into()))
    }

    fn push(&mut self, value: Bound) -> String {
        self.0.push(value);
        format!("${}", self.0.len())
    }

    pub(crate) fn bind(self, mut query: AnyQuery<'_>) -> AnyQuery<'_> {
        for value in self.0 {
            query = match value {
                Bound::Int(v) => query.bind(v),
                Bound::Text(v) => query.bind(v),
            };
        }
        query
    }

    pub(crate) fn bind_as<O>(self, mut query: AnyQueryAs<'_, O>) -> AnyQueryAs<'_, O> {
        for value in self.0 {
            query = match value {
                Bound::Int(v) => query.bind(v),
                Bound::Text(v) => query.bind(v),
            };
        }
        query
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
}

impl Store {
    /// Opens (creating when needed) the database at `url` and brings its schema up to date.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            (Backend::Sqlite, sqlite_url(rest)?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        // Statements are not logged one by one: at thousands per second that is noise and CPU; slow
        // ones still are (sqlx warns past a second).
        let options = AnyConnectOptions::from_str(&url)?.log_statements(log::LevelFilter::Off);
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            // A local SQLite file cannot drop a connection; pinging it before each use is wasted work.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; NORMAL syncs at checkpoints, which in
                        // WAL mode still never loses a committed transaction to an application crash.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA mmap_size = 268435456;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        match backend {
            Backend::Sqlite => migrate_sqlite(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Store { pool, backend, url })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection URL, for components that need their own connection (PostgreSQL LISTEN).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `sqlite://data/x.db` → a URL that creates the file (and its directory) when missing.
fn sqlite_url(rest: &str) -> StoreResult<String> {
    let path_and_query = rest.trim_start_matches("//");
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::UnsupportedUrl(format!("sqlite:{rest}")));
    }
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        crate::private_files::create_dir_all(dir)?;
    }
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    // Made here with mode 0600 rather than by SQLite with the umask's; SQLite gives its -wal and
    // -shm files the database file's mode.
    if query.contains("mode=rwc") {
        crate::private_files::touch(Path::new(path))?;
    }
    Ok(format!("sqlite://{path}?{query}"))
}

/// Integer booleans, the one representation both databases decode alike through `Any`.
pub(crate) fn flag(value: bool) -> i64 {
    i64::from(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.db");
        let url = sqlite_url(&format!("//{}", path.display())).unwrap();
        assert_eq!(url, format!("sqlite://{}?mode=rwc", path.display()));
        assert!(path.parent().unwrap().is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600, "the database is its owner's alone");
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        assert!(sqlite_url("//").is_err());
        assert!(sqlite_url(":memory:").is_err());
    }
}
