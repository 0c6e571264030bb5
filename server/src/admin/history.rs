//! Who approved what, when, and can we prove it: the history of every request for admins, one page at
//! a time, and one request in full with its decision record re-verified the way `audit verify` does.
use std::sync::Arc;

use futures::Stream;

use crate::{
    ciba::{
        audit::{self, Check, RelyingParty},
        auth_request::{AuthRequest, RequestStatus},
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
    pub rows: Vec<HistoryRow>,
    /// The cursor after the last row, if more may follow.
    pub next: Option<String>,
}

/// One request in full.
pub struct RequestDetail {
    pub request: AuthRequest,
    pub row: HistoryRow,
    pub raw_request: String,
    pub record: Option<DecisionRow>,
    pub checks: Vec<Check>,
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
        Ok(HistoryPage { rows, next })
    }

    /// Every request matching `filters` (a page cursor in them is ignored), newest first, read a
    /// batch at a time along the keyset cursor: an export of any size holds one batch in memory.
    pub fn export(
        &self,
        filters: &Filters<'_>,
    ) -> Result<impl Stream<Item = Result<HistoryRow, HistoryError>> + Send + 'static, HistoryError>
    {
        let filter = parse(filters)?;
        let ciba = self.ciba.clone();
        let start = (filter, None::<Cursor>, Vec::<HistoryRow>::new(), false);
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
                                batch = rows;
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
        let raw_request = canonical(&request_statement(&request));
        let record = store.decision_for(id).await?;
        let checks = match &record {
            Some(record) => {
                audit::check_one(store, &self.rp, record, &request, |jws| {
                    self.ciba.keys().verify_record(jws)
                })
                .await?
            }
            None => Vec::new(),
        };
        Ok(RequestDetail {
            request,
            row,
            raw_request,
            record,
            checks,
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

/// Where a history row stands at `now`, by the rule `AuthRequest::status` applies: only a pending
/// request expires.
pub fn status_of(row: &HistoryRow, now: Millis) -> RequestStatus {
    match row.status.as_str() {
        "pending" if now >= row.expires_at => RequestStatus::Expired,
        "pending" => RequestStatus::Pending,
        "approved" => RequestStatus::Approved,
        "denied" => RequestStatus::Denied,
        _ => RequestStatus::Redeemed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
