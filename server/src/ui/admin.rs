//! The admin console's service: the history use-case (`admin::history`) for admins only, its answers
//! as views. The admin check is here, on the server, for every call.
use std::{collections::HashMap, sync::Arc};

use app::{
    model::{CheckView, Choice, HistoryDetail, HistoryLine, HistoryPage, HistoryQuery},
    service::{AdminService, SignedIn, UiError, UserResult},
};
use async_trait::async_trait;
use axum::{
    body::Body,
    extract::Query,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use tower_sessions::Session;

use super::{
    approvals::statement_view,
    identity::{internal, IdentityApp},
};
use crate::{
    admin::history::{status_of, Filters, History, HistoryError},
    ciba::{bundle::record_json, ids::page_ref, Ciba},
    clock::Millis,
    identity::approvers::{self, Role},
    store::history::HistoryRow,
};

pub struct AdminPages {
    history: History,
    ciba: Arc<Ciba>,
}

impl AdminPages {
    pub fn new(history: History, ciba: Arc<Ciba>) -> AdminPages {
        AdminPages { history, ciba }
    }
}

fn admins_only(user: &SignedIn) -> UserResult<()> {
    if user.me.admin {
        Ok(())
    } else {
        Err(UiError::Forbidden("This is for admins only.".into()))
    }
}

fn refusal(e: HistoryError) -> UiError {
    match e {
        HistoryError::BadFilter(why) => UiError::Invalid(why),
        HistoryError::NotFound => UiError::NotFound("There is no such request.".into()),
        HistoryError::Store(e) => internal(e),
        HistoryError::Ciba(e) => internal(e),
    }
}

/// A moment as admins read it: UTC to the minute.
fn utc(ms: Millis) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// How the outcome reached the agent, if there is anything to say.
fn delivery(row: &HistoryRow) -> Option<String> {
    let how = match row.delivery_mode.as_str() {
        "ping" => "Ping",
        "push" => "Push",
        _ => {
            return match (row.status.as_str(), row.redeemed_at) {
                (_, Some(at)) => Some(format!("Tokens collected {}", utc(at))),
                ("approved", None) => Some("Tokens not collected yet".into()),
                _ => None,
            }
        }
    };
    match (row.delivered_at, row.delivery_attempts) {
        (Some(at), _) => Some(format!("{how} delivered {}", utc(at))),
        (None, Some(tries)) => Some(match &row.delivery_error {
            Some(error) => format!("{how} not delivered yet ({tries} tries; last: {error})"),
            None => format!("{how} being delivered"),
        }),
        (None, None) => None,
    }
}

fn line(row: HistoryRow, now: Millis) -> HistoryLine {
    HistoryLine {
        id: page_ref(&row.id),
        status: status_of(&row, now),
        asked: utc(row.created_at),
        decided: row.decided_at.map(|at| format!("Decided {}", utc(at))),
        delivery: delivery(&row),
        action: row.action_text,
        target: row.target_text,
        client_name: row.client_name,
        approver_name: row.approver_name,
    }
}

#[async_trait]
impl AdminService for AdminPages {
    async fn history(&self, user: &SignedIn, query: HistoryQuery) -> UserResult<HistoryPage> {
        admins_only(user)?;
        let filters = Filters {
            status: query.status.as_deref(),
            agent: query.agent.as_deref(),
            approver: query.approver.as_deref(),
            text: query.q.as_deref(),
            from: query.from.as_deref(),
            until: query.until.as_deref(),
            after: query.after.as_deref(),
        };
        let page = self.history.page(&filters).await.map_err(refusal)?;
        let now = self.ciba.now();
        let agents = self
            .ciba
            .store()
            .clients()
            .await
            .map_err(internal)?
            .into_iter()
            .map(|c| Choice {
                id: c.id,
                label: c.name,
            })
            .collect();
        let approvers = approvers::list(self.ciba.store())
            .await
            .map_err(internal)?
            .into_iter()
            .map(|a| Choice {
                label: format!("{} ({})", a.name, a.email),
                id: a.id,
            })
            .collect();
        Ok(HistoryPage {
            lines: page.rows.into_iter().map(|r| line(r, now)).collect(),
            next: page.next,
            agents,
            approvers,
        })
    }

    async fn history_detail(&self, user: &SignedIn, id: &str) -> UserResult<HistoryDetail> {
        admins_only(user)?;
        let detail = self.history.detail(id).await.map_err(refusal)?;
        let now = self.ciba.now();
        let row = &detail.row;
        Ok(HistoryDetail {
            request: statement_view(&detail.request, row.client_name.clone(), now),
            approver_name: row.approver_name.clone(),
            approver_email: row.approver_email.clone(),
            asked: utc(row.created_at),
            decided: row.decided_at.map(utc),
            raw_request: detail.raw_request,
            record: detail
                .record
                .as_ref()
                .map(|r| serde_json::to_string_pretty(&record_json(r)).unwrap_or_default()),
            checks: detail
                .checks
                .into_iter()
                .map(|c| CheckView {
                    name: c.name.to_owned(),
                    passed: c.problems.is_empty(),
                    detail: if c.problems.is_empty() {
                        c.note.map(str::to_owned)
                    } else {
                        Some(c.problems.join("; "))
                    },
                })
                .collect(),
            delivery: delivery(row),
        })
    }
}

/// `GET /admin/export?format=csv|jsonl&…filters`: the filtered history (every page), streamed as it
/// is read; admins only.
pub async fn export(
    pages: Arc<AdminPages>,
    identity: Arc<IdentityApp>,
    session: Session,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let refuse = |status: StatusCode, why: &str| (status, why.to_owned()).into_response();
    match identity.approver_of(&session).await {
        Ok(Some(approver)) if approver.role == Role::Admin => {}
        Ok(Some(_)) => return refuse(StatusCode::FORBIDDEN, "This is for admins only."),
        Ok(None) => return refuse(StatusCode::UNAUTHORIZED, "Please sign in."),
        Err(_) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "Please try again."),
    }
    let csv = match params.get("format").map(String::as_str) {
        Some("csv") => true,
        Some("jsonl") => false,
        _ => return refuse(StatusCode::BAD_REQUEST, "format must be csv or jsonl"),
    };
    let param = |name: &str| params.get(name).map(String::as_str);
    let filters = Filters {
        status: param("status"),
        agent: param("agent"),
        approver: param("approver"),
        text: param("q"),
        from: param("from"),
        until: param("until"),
        after: None,
    };
    let rows = match pages.history.export(&filters) {
        Ok(rows) => rows,
        Err(HistoryError::BadFilter(why)) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, &why),
        Err(_) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "Please try again."),
    };
    let now = pages.ciba.now();
    let lines = rows.map(move |row| match row {
        Ok(row) => Ok(if csv {
            csv_line(&row, now)
        } else {
            json_line(&row, now)
        }),
        Err(e) => {
            // The status line has gone out: a cut-off body is the only way left to say it failed.
            tracing::error!(error = %e, "the history export failed part way");
            Err(std::io::Error::other("the history export failed"))
        }
    });
    let (content_type, name, head) = if csv {
        (
            "text/csv; charset=utf-8",
            "countersign-history.csv",
            csv_header(),
        )
    } else {
        ("application/jsonl", "countersign-history.jsonl", Vec::new())
    };
    let body = futures::stream::once(async move { Ok(head) }).chain(lines);
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

const CSV_COLUMNS: [&str; 10] = [
    "request",
    "asked_at",
    "agent",
    "approver",
    "action",
    "target",
    "status",
    "decided_at",
    "delivery",
    "agent_id",
];

fn csv_header() -> Vec<u8> {
    csv_record(CSV_COLUMNS.map(str::to_owned).to_vec())
}

fn csv_record(cells: Vec<String>) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = writer.write_record(&cells);
    writer.into_inner().unwrap_or_default()
}

/// A cell a spreadsheet would read as a formula (agent text can start with anything) is kept as
/// text with a leading apostrophe (OWASP's advice on CSV injection).
fn inert(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

fn rfc3339(ms: Millis) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn csv_line(row: &HistoryRow, now: Millis) -> Vec<u8> {
    csv_record(
        [
            page_ref(&row.id),
            rfc3339(row.created_at),
            row.client_name.clone(),
            row.approver_email.clone(),
            row.action_text.clone(),
            row.target_text.clone(),
            status_of(row, now).name().to_owned(),
            row.decided_at.map(rfc3339).unwrap_or_default(),
            delivery(row).unwrap_or_default(),
            row.client_id.clone(),
        ]
        .into_iter()
        .map(inert)
        .collect(),
    )
}

fn json_line(row: &HistoryRow, now: Millis) -> Vec<u8> {
    let mut line = serde_json::json!({
        "request": page_ref(&row.id),
        "asked_at": rfc3339(row.created_at),
        "agent": row.client_name,
        "agent_id": row.client_id,
        "approver": row.approver_email,
        "action": row.action_text,
        "target": row.target_text,
        "status": status_of(row, now).name(),
        "decided_at": row.decided_at.map(rfc3339),
        "delivery": delivery(row),
    })
    .to_string()
    .into_bytes();
    line.push(b'\n');
    line
}
