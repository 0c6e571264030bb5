//! Who approved what, when, and can we prove it: the history of every request for admins, one page at
//! a time, and one request in full with its decision record re-verified the way `audit verify` does.
use std::sync::Arc;

use futures::Stream;

use crate::{
    ciba::{
        audit::{self, Check, RelyingParty},
        auth_request::{AuthRequest, RequestStatus, Stage},
        ids::{page_ref, page_ref_time},
        record::{canonical, request_statement},
        Ciba, CibaError,
    },
    clock::Millis,
    store::{
        decisions::DecisionRow,
        history::{Cursor, HistoryFilter, HistoryRow, HistoryStatus},
        StoreError,
    },
};

/// Lines per page.
pub const PAGE_SIZE: i64 = 50;
/// Rows read at a time by an export.
const EXPORT_BATCH: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{0}")]
    BadFilter(String),
    #[error("no such request")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ciba(#[from] CibaError),
}

/// The filters as given (all text, from a URL).
#[derive(Clone, Debug, Default)]
pub struct Filters<'a> {
    pub status: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub approver: Option<&'a str>,
    pub text: Option<&'a str>,
    /// YYYY-MM-DD, UTC, inclusive.
    pub from: Option<&'a str>,
    pub until: Option<&'a str>,
    pub after: Option<&'a str>,
}

pub struct HistoryPage {
    pub entries: Vec<Entry>,
    /// The cursor after the last entry, if more may follow.
    pub next: Option<String>,
}

/// One request as the history tells it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub approver_name: String,
    pub approver_email: String,
    pub action: String,
    pub target: String,
    /// Where it stood when read.
    pub status: RequestStatus,
    pub asked_at: Millis,
    pub decided_at: Option<Millis>,
    pub delivery: Option<Delivery>,
}

/// How the outcome reached the agent, where there is something to say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Poll mode: the agent collected its tokens.
    Collected(Millis),
    /// Poll mode: approved, the tokens not collected yet.
    NotCollected,
    Delivered {
        by: Channel,
        at: Millis,
    },
    /// Tried and not delivered yet; the last error, if one was recorded.
    Trying {
        by: Channel,
        tries: i64,
        last_error: Option<String>,
    },
}

/// How a ping- or push-mode agent is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Ping,
    Push,
}

impl Entry {
    fn of(row: HistoryRow, now: Millis) -> Entry {
        let status = row.status.status(row.expires_at, now);
        let by = match row.delivery_mode.as_str() {
            "ping" => Some(Channel::Ping),
            "push" => Some(Channel::Push),
            _ => None,
        };
        let delivery = match by {
            None => match (row.status, row.redeemed_at) {
                (_, Some(at)) => Some(Delivery::Collected(at)),
                (Stage::Approved, None) => Some(Delivery::NotCollected),
                _ => None,
            },
            Some(by) => match (row.delivered_at, row.delivery_attempts) {
                (Some(at), _) => Some(Delivery::Delivered { by, at }),
                (None, Some(tries)) => Some(Delivery::Trying {
                    by,
                    tries,
                    last_error: row.delivery_error,
                }),
                (None, None) => None,
            },
        };
        Entry {
            id: row.id,
            client_id: row.client_id,
            client_name: row.client_name,
            approver_name: row.approver_name,
            approver_email: row.approver_email,
            action: row.action_text,
            target: row.target_text,
            status,
            asked_at: row.created_at,
            decided_at: row.decided_at,
            delivery,
        }
    }
}

/// One request in full.
pub struct RequestDetail {
    pub request: AuthRequest,
    pub entry: Entry,
    pub raw_request: String,
    /// Each decision record (one, or one per approver of a quorum) with its checks, oldest first.
    pub records: Vec<(DecisionRow, Vec<Check>)>,
}

pub struct History {
    ciba: Arc<Ciba>,
    rp: RelyingParty,
}

impl History {
    pub fn new(ciba: Arc<Ciba>, rp: RelyingParty) -> History {
        History { ciba, rp }
    }

    /// A page of the history, newest first.
    pub async fn page(&self, filters: &Filters<'_>) -> Result<HistoryPage, HistoryError> {
        let filter = parse(filters)?;
        let after = match filters.after.map(str::trim).filter(|a| !a.is_empty()) {
            None => None,
            Some(reference) => {
                let id = self.resolve(reference).await?.ok_or_else(|| {
                    HistoryError::BadFilter(
                        "That page link is not valid; start from the first page.".into(),
                    )
                })?;
                Some(Cursor {
                    created_at: page_ref_time(reference).unwrap_or_default(),
                    id,
                })
            }
        };
        let now = self.ciba.now();
        // One more than a page says whether another page follows.
        let mut rows = self
            .ciba
            .store()
            .history(&filter, after.as_ref(), PAGE_SIZE + 1, now)
            .await?;
        let next = if rows.len() as i64 > PAGE_SIZE {
            rows.truncate(PAGE_SIZE as usize);
            // The page reference, never the auth_req_id: URLs end up in logs and browser history.
            rows.last().map(|r| page_ref(&r.id))
        } else {
            None
        };
        let entries = rows.into_iter().map(|r| Entry::of(r, now)).collect();
        Ok(HistoryPage { entries, next })
    }

    /// Every request matching `filters` (a page cursor in them is ignored), newest first, read a
    /// batch at a time along the keyset cursor: an export of any size holds one batch in memory.
    pub fn export(
        &self,
        filters: &Filters<'_>,
    ) -> Result<impl Stream<Item = Result<Entry, HistoryError>> + Send + 'static, HistoryError>
    {
        let filter = parse(filters)?;
        let ciba = self.ciba.clone();
        let start = (filter, None::<Cursor>, Vec::<Entry>::new(), false);
        Ok(futures::stream::unfold(
            start,
            move |(filter, after, mut batch, done)| {
                let ciba = ciba.clone();
                async move {
                    if batch.is_empty() && !done {
                        let now = ciba.now();
                        match ciba
                            .store()
                            .history(&filter, after.as_ref(), EXPORT_BATCH, now)
                            .await
                        {
                            Ok(rows) => {
                                let done = (rows.len() as i64) < EXPORT_BATCH;
                                let after = rows.last().map(|r| Cursor {
                                    created_at: r.created_at,
                                    id: r.id.clone(),
                                });
                                batch = rows.into_iter().map(|r| Entry::of(r, now)).collect();
                                batch.reverse();
                                let next = batch.pop()?;
                                return Some((Ok(next), (filter, after, batch, done)));
                            }
                            Err(e) => return Some((Err(e.into()), (filter, after, batch, true))),
                        }
                    }
                    let next = batch.pop()?;
                    Some((Ok(next), (filter, after, batch, done)))
                }
            },
        ))
    }

    /// The auth_req_id a page reference names.
    async fn resolve(&self, reference: &str) -> Result<Option<String>, HistoryError> {
        let Some(at) = page_ref_time(reference) else {
            return Ok(None);
        };
        let ids = self.ciba.store().request_ids_at(at).await?;
        Ok(ids.into_iter().find(|id| page_ref(id) == reference))
    }

    /// One request, named by its page reference, with its decision record verified.
    pub async fn detail(&self, reference: &str) -> Result<RequestDetail, HistoryError> {
        let store = self.ciba.store();
        let id = self
            .resolve(reference)
            .await?
            .ok_or(HistoryError::NotFound)?;
        let id = id.as_str();
        let request = store
            .auth_request(id)
            .await?
            .ok_or(HistoryError::NotFound)?;
        let row = store.history_row(id).await?.ok_or(HistoryError::NotFound)?;
        let entry = Entry::of(row, self.ciba.now());
        let raw_request = canonical(&request_statement(&request));
        let mut records = Vec::new();
        for record in store.decisions_for(id).await? {
            let checks = audit::check_one(store, &self.rp, &record, &request, |jws| {
                self.ciba.keys().verify_record(jws)
            })
            .await?;
            records.push((record, checks));
        }
        Ok(RequestDetail {
            request,
            entry,
            raw_request,
            records,
        })
    }
}

fn parse(f: &Filters<'_>) -> Result<HistoryFilter, HistoryError> {
    let bad = |what: &str| HistoryError::BadFilter(what.to_owned());
    let status = match given(f.status) {
        None => None,
        Some("pending") => Some(HistoryStatus::Pending),
        Some("approved") => Some(HistoryStatus::Approved),
        Some("denied") => Some(HistoryStatus::Denied),
        Some("expired") => Some(HistoryStatus::Expired),
        Some(_) => {
            return Err(bad(
                "The status must be pending, approved, denied or expired.",
            ))
        }
    };
    let text = given(f.text).map(str::to_owned);
    if text.as_ref().is_some_and(|t| t.chars().count() > 200) {
        return Err(bad("Search for at most 200 characters."));
    }
    let day = |v: Option<&str>, what: &str| -> Result<Option<Millis>, HistoryError> {
        given(v)
            .map(|d| {
                day_start(d).ok_or_else(|| {
                    bad(&format!(
                        "The {what} date must be a day such as 2026-11-30."
                    ))
                })
            })
            .transpose()
    };
    let from = day(f.from, "first")?;
    // The last day is included: the range ends where the next day starts.
    let until = day(f.until, "last")?.map(|start| start + 86_400_000);
    Ok(HistoryFilter {
        status,
        client_id: given(f.agent).map(str::to_owned),
        approver_id: given(f.approver).map(str::to_owned),
        text,
        from,
        until,
    })
}

/// A filter's value, if one was given (blank counts as none).
fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// The Unix ms at which day `YYYY-MM-DD` (UTC) starts.
pub fn day_start(text: &str) -> Option<Millis> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(mode: &str, status: &str) -> HistoryRow {
        let status = Stage::parse(status).unwrap();
        HistoryRow {
            id: "r".into(),
            client_id: "c".into(),
            client_name: "Bot".into(),
            delivery_mode: mode.into(),
            approver_id: "a".into(),
            approver_name: "Jane".into(),
            approver_email: "jane@example.com".into(),
            action_text: "refund".into(),
            target_text: "order 1".into(),
            status,
            created_at: 1_000,
            expires_at: 2_000,
            decided_at: None,
            redeemed_at: None,
            delivered_at: None,
            delivery_attempts: None,
            delivery_error: None,
        }
    }

    #[test]
    fn an_entry_says_how_the_outcome_reached_the_agent() {
        let delivery = |row: HistoryRow| Entry::of(row, 1_500).delivery;
        assert_eq!(delivery(row("poll", "pending")), None);
        assert_eq!(
            delivery(row("poll", "approved")),
            Some(Delivery::NotCollected)
        );
        let collected = HistoryRow {
            redeemed_at: Some(1_200),
            ..row("poll", "redeemed")
        };
        assert_eq!(delivery(collected), Some(Delivery::Collected(1_200)));
        assert_eq!(delivery(row("ping", "approved")), None);
        let failing = HistoryRow {
            delivery_attempts: Some(3),
            delivery_error: Some("timed out".into()),
            ..row("push", "approved")
        };
        assert_eq!(
            delivery(failing),
            Some(Delivery::Trying {
                by: Channel::Push,
                tries: 3,
                last_error: Some("timed out".into())
            })
        );
        let delivered = HistoryRow {
            delivered_at: Some(1_300),
            delivery_attempts: Some(1),
            ..row("ping", "denied")
        };
        assert_eq!(
            delivery(delivered),
            Some(Delivery::Delivered {
                by: Channel::Ping,
                at: 1_300
            })
        );
        // Only a pending request expires.
        assert_eq!(
            Entry::of(row("poll", "pending"), 2_000).status,
            RequestStatus::Expired
        );
    }

    #[test]
    fn filters_are_read_or_refused_with_a_sentence() {
        let filter = parse(&Filters {
            status: Some("denied"),
            from: Some("2026-11-30"),
            until: Some("2026-11-30"),
            text: Some("  refund "),
            ..Filters::default()
        })
        .unwrap();
        assert_eq!(filter.status, Some(HistoryStatus::Denied));
        assert_eq!(filter.from, Some(1_795_996_800_000));
        assert_eq!(filter.until, Some(1_795_996_800_000 + 86_400_000));
        assert_eq!(filter.text.as_deref(), Some("refund"));
        for bad in [
            Filters {
                status: Some("won"),
                ..Filters::default()
            },
            Filters {
                from: Some("30/11/2026"),
                ..Filters::default()
            },
            Filters {
                text: Some(&"x".repeat(201)),
                ..Filters::default()
            },
        ] {
            assert!(matches!(parse(&bad), Err(HistoryError::BadFilter(_))));
        }
    }
}
