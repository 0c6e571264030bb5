//! The admin history: every request with its client, approver and delivery, newest first, filtered,
//! a page at a time. Pages follow a keyset cursor (the last row's `created_at` and `id`), so a deep
//! page costs what the first does: no OFFSET scan. A search that matches few requests finds them
//! through a trigram index (migration 0017) instead of reading every row.
use sqlx::FromRow;

use super::{Binds, Store, StoreResult};
use crate::{ciba::auth_request::Stage, clock::Millis};

/// Where a request stands, as the history filters it. Expiry is derived from the clock, as
/// everywhere else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryStatus {
    Pending,
    /// Approved, whether or not the tokens were collected yet.
    Approved,
    Denied,
    Expired,
}

#[derive(Clone, Debug, Default)]
pub struct HistoryFilter {
    pub status: Option<HistoryStatus>,
    pub client_id: Option<String>,
    pub approver_id: Option<String>,
    /// Case-insensitive substring of the action or the target.
    pub text: Option<String>,
    /// Created at or after (Unix ms).
    pub from: Option<Millis>,
    /// Created before (Unix ms).
    pub until: Option<Millis>,
}

/// The last row of the previous page: the next page starts after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: Millis,
    pub id: String,
}

#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct HistoryRow {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub delivery_mode: String,
    pub approver_id: String,
    pub approver_name: String,
    pub approver_email: String,
    pub action_text: String,
    pub target_text: String,
    #[sqlx(try_from = "String")]
    pub status: Stage,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub redeemed_at: Option<i64>,
    /// The ping or push delivery to the client, if one was queued.
    pub delivered_at: Option<i64>,
    pub delivery_attempts: Option<i64>,
    pub delivery_error: Option<String>,
}

// A request addressed to a group is listed under the group's name (its deciders are on its page).
const SELECT: &str = "SELECT r.id, r.client_id, c.name AS client_name, c.delivery_mode, \
    COALESCE(r.approver_id, r.group_id) AS approver_id, \
    COALESCE(a.name, 'group ' || g.name) AS approver_name, COALESCE(a.email, '') AS approver_email, \
    r.action_text, r.target_text, \
    r.status, r.created_at, r.expires_at, r.decided_at, r.redeemed_at, o.done_at AS delivered_at, \
    o.attempts AS delivery_attempts, o.last_error AS delivery_error \
    FROM auth_requests r \
    JOIN clients c ON c.id = r.client_id \
    LEFT JOIN approvers a ON a.id = r.approver_id \
    LEFT JOIN approver_groups g ON g.id = r.group_id \
    LEFT JOIN notification_outbox o ON o.auth_req_id = r.id AND o.channel = 'client'";

/// A search matching at most this many requests lists them from the trigram index; one matching
/// more is answered by walking the history newest first, where a page of matches comes soon.
const FEW_MATCHES: usize = 2000;

/// The shortest search the trigram indexes can answer.
const MIN_INDEXED_CHARS: usize = 3;

impl Store {
    /// Up to `limit` requests matching `filter`, newest first, after `after` if given.
    pub async fn history(
        &self,
        filter: &HistoryFilter,
        after: Option<&Cursor>,
        limit: i64,
        now: Millis,
    ) -> StoreResult<Vec<HistoryRow>> {
        let (sql, binds) = self.history_query(filter, after, limit, now).await?;
        Ok(binds
            .bind_as(sqlx::query_as::<_, HistoryRow>(&sql))
            .fetch_all(self.pool())
            .await?)
    }

    /// The history query: a search first asks the trigram index whether its matches are few.
    async fn history_query(
        &self,
        filter: &HistoryFilter,
        after: Option<&Cursor>,
        limit: i64,
        now: Millis,
    ) -> StoreResult<(String, Binds)> {
        let few = match &filter.text {
            Some(text) => self.few_matches(text).await?,
            None => None,
        };
        Ok(history_query(
            self.backend(),
            filter,
            few.as_deref(),
            after,
            limit,
            now,
        ))
    }

    /// The ids of the requests whose action or target contain `text`, from the trigram index, if
    /// there are at most [`FEW_MATCHES`] of them (None if more, or if `text` is too short to index).
    /// On SQLite the index folds case beyond ASCII, so it may name a few more requests than the
    /// search's LIKE keeps; the history query applies that condition too.
    async fn few_matches(&self, text: &str) -> StoreResult<Option<Vec<String>>> {
        if text.chars().count() < MIN_INDEXED_CHARS {
            return Ok(None);
        }
        let enough = FEW_MATCHES as i64 + 1;
        let ids: Vec<String> = match self.backend() {
            super::Backend::Sqlite => {
                // One FTS5 phrase: with the trigram tokenizer, a substring match.
                let phrase = format!("\"{}\"", text.replace('"', "\"\""));
                sqlx::query_scalar(
                    "SELECT id FROM request_search WHERE request_search MATCH $1 LIMIT $2",
                )
                .bind(phrase)
                .bind(enough)
                .fetch_all(self.pool())
                .await?
            }
            super::Backend::Postgres => {
                let sql = format!(
                    "SELECT id FROM auth_requests r WHERE {} LIMIT $2",
                    text_matches("$1", "$1")
                );
                sqlx::query_scalar(&sql)
                    .bind(like_pattern(text))
                    .bind(enough)
                    .fetch_all(self.pool())
                    .await?
            }
        };
        Ok((ids.len() <= FEW_MATCHES).then_some(ids))
    }

    /// The database's plan for [`Store::history`] with these arguments, one line per step.
    pub async fn history_plan(
        &self,
        filter: &HistoryFilter,
        after: Option<&Cursor>,
        limit: i64,
        now: Millis,
    ) -> StoreResult<Vec<String>> {
        let (sql, binds) = self.history_query(filter, after, limit, now).await?;
        let explain = match self.backend() {
            super::Backend::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
            super::Backend::Postgres => format!("EXPLAIN {sql}"),
        };
        let rows = binds
            .bind(sqlx::query(&explain))
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                use sqlx::Row;
                // SQLite: (id, parent, notused, detail); PostgreSQL: one text column.
                let last = row.len() - 1;
                row.try_get::<String, _>(last).unwrap_or_default()
            })
            .collect())
    }
}

/// The SQL of the history query and its values, in placeholder order. `few` lists every request the
/// search can match, when the trigram index found them few.
fn history_query(
    backend: super::Backend,
    filter: &HistoryFilter,
    few: Option<&[String]>,
    after: Option<&Cursor>,
    limit: i64,
    now: Millis,
) -> (String, Binds) {
    let mut conditions: Vec<String> = Vec::new();
    let mut binds = Binds::default();
    match filter.status {
        None => {}
        Some(HistoryStatus::Pending) => conditions.push(format!(
            "r.status IN ('pending', 'partly_approved') AND r.expires_at > {}",
            binds.int(now)
        )),
        Some(HistoryStatus::Expired) => conditions.push(format!(
            "r.status IN ('pending', 'partly_approved') AND r.expires_at <= {}",
            binds.int(now)
        )),
        Some(HistoryStatus::Approved) => {
            conditions.push("r.status IN ('approved', 'redeemed')".into());
        }
        Some(HistoryStatus::Denied) => conditions.push("r.status = 'denied'".into()),
    }
    if let Some(client_id) = &filter.client_id {
        conditions.push(format!("r.client_id = {}", binds.text(client_id)));
    }
    if let Some(approver_id) = &filter.approver_id {
        conditions.push(format!("r.approver_id = {}", binds.text(approver_id)));
    }
    if let Some(ids) = few {
        let ids = binds.text(serde_json::Value::from(ids).to_string());
        // Looked up by primary key, then sorted: a few thousand rows at most.
        conditions.push(match backend {
            super::Backend::Sqlite => format!("r.id IN (SELECT value FROM json_each({ids}))"),
            super::Backend::Postgres => {
                format!("r.id IN (SELECT jsonb_array_elements_text({ids}::jsonb))")
            }
        });
    }
    if let Some(text) = &filter.text {
        let pattern = like_pattern(text);
        let (a, t) = (binds.text(pattern.clone()), binds.text(pattern));
        conditions.push(text_matches(&a, &t));
    }
    if let Some(from) = filter.from {
        conditions.push(format!("r.created_at >= {}", binds.int(from)));
    }
    if let Some(until) = filter.until {
        conditions.push(format!("r.created_at < {}", binds.int(until)));
    }
    if let Some(cursor) = after {
        let (at, id) = (binds.int(cursor.created_at), binds.text(&cursor.id));
        // A row value: both databases seek the (created_at, id) index to the cursor, where the
        // equivalent OR would scan every newer row first.
        conditions.push(format!("(r.created_at, r.id) < ({at}, {id})"));
    }
    let limit = binds.int(limit);
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!("{SELECT} {filter} ORDER BY r.created_at DESC, r.id DESC LIMIT {limit}");
    (sql, binds)
}

impl Store {
    /// One request as the history lists it.
    pub async fn history_row(&self, id: &str) -> StoreResult<Option<HistoryRow>> {
        Ok(sqlx::query_as(&format!("{SELECT} WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// The ids of the requests made in millisecond `at` (page references name one of them).
    pub async fn request_ids_at(&self, at: Millis) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM auth_requests WHERE created_at = $1")
                .bind(at)
                .fetch_all(self.pool())
                .await?,
        )
    }
}

/// The search's condition on a request `r`: its action matches the LIKE pattern at placeholder `a`, or
/// its target the one at `t`. One text for the page and for the candidates it is checked against, in
/// the form the `pg_trgm` indexes serve (`LOWER` of each column).
fn text_matches(a: &str, t: &str) -> String {
    format!(
        "(LOWER(r.action_text) LIKE {a} ESCAPE '\\' OR LOWER(r.target_text) LIKE {t} ESCAPE '\\')"
    )
}

/// The LIKE pattern (escaped with `\`) of a case-insensitive search for `text` anywhere.
fn like_pattern(text: &str) -> String {
    format!("%{}%", escape_like(&text.to_lowercase()))
}

/// `text` matched literally inside a LIKE pattern escaped with `\`.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
