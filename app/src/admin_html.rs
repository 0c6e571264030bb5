//! (ssr) The admin console's pages as HTML, rendered on the server only. Admins read them; they need no
//! interactivity beyond links and a GET form, so none of their code is in the bundle every
//! approver's phone downloads (the pages place this HTML, see `pages::admin`). Agent text is shown in
//! full, marked as everywhere else, never shortened.
use leptos::prelude::*;

use crate::{
    components::statement::SafeText,
    model::{Choice, HistoryDetail, HistoryLine, HistoryPage, HistoryQuery, RequestStatus},
    navigation::encode_query,
};

/// Agent text is never cut here: there is no "Show all" without the bundle.
const FULL: usize = usize::MAX;

/// The history page's content: the filters and a page of lines.
pub fn history(query: &HistoryQuery, page: HistoryPage) -> String {
    let query = query.clone();
    view! {
        <h1>"Approval history"</h1>
        <Filters query=query.clone() page=page.clone()/>
        <Lines query page/>
    }
    .to_html()
}

/// One request's content.
pub fn request(detail: HistoryDetail) -> String {
    view! {
        <p><a href="/admin">"← Approval history"</a></p>
        <DetailView detail/>
    }
    .to_html()
}

fn status_label(status: RequestStatus) -> &'static str {
    match status {
        RequestStatus::Approved => "Approved",
        RequestStatus::Redeemed => "Approved",
        RequestStatus::Denied => "Denied",
        RequestStatus::Expired => "Expired",
        RequestStatus::Pending => "Pending",
    }
}

/// The filters: a plain GET form, so the URL holds the view and the browser's back button works.
#[component]
fn Filters(query: HistoryQuery, page: HistoryPage) -> impl IntoView {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let status = value(&query.status);
    // A labelled select of `choices` named `name`, "Any" first, `chosen` selected.
    let choose =
        |label: &'static str, name: &'static str, choices: Vec<Choice>, chosen: Option<String>| {
            let options = choices
                .into_iter()
                .map(|c| {
                    let selected = chosen.as_deref() == Some(c.id.as_str());
                    view! { <option value=c.id selected=selected>{c.label}</option> }
                })
                .collect_view();
            view! {
                <label>
                    {label}
                    <select name=name>
                        <option value="">"Any"</option>
                        {options}
                    </select>
                </label>
            }
        };
    view! {
        <form method="get" action="/admin" class="card filters" role="search" aria-label="Filter the history">
            <label>
                "Status"
                <select name="status">
                    {[("", "Any"), ("pending", "Pending"), ("approved", "Approved"), ("denied", "Denied"), ("expired", "Expired")]
                        .into_iter()
                        .map(|(v, label)| view! { <option value=v selected=status == v>{label}</option> })
                        .collect_view()}
                </select>
            </label>
            {choose("Agent", "agent", page.agents, query.agent.clone())}
            {choose("Approver", "approver", page.approvers, query.approver.clone())}
            <label>
                "Action or target"
                <input type="search" name="q" value=value(&query.q) maxlength="200"/>
            </label>
            <label>"From" <input type="date" name="from" value=value(&query.from)/></label>
            <label>"Until" <input type="date" name="until" value=value(&query.until)/></label>
            <div class="filter-actions">
                <button type="submit">"Filter"</button>
                <a href="/admin">"Clear"</a>
            </div>
        </form>
    }
}

#[component]
fn Lines(query: HistoryQuery, page: HistoryPage) -> impl IntoView {
    let older = page.next.clone().map(|next| {
        let pairs = HistoryQuery {
            after: Some(next),
            ..query.clone()
        }
        .pairs();
        format!("/admin?{}", encode_query(&pairs))
    });
    let newest = query.after.is_some().then(|| {
        let pairs = HistoryQuery {
            after: None,
            ..query.clone()
        }
        .pairs();
        format!("/admin?{}", encode_query(&pairs))
    });
    let export = |format: &str| {
        let mut pairs = HistoryQuery {
            after: None,
            ..query.clone()
        }
        .pairs();
        pairs.insert(0, ("format", format.to_owned()));
        format!("/admin/export?{}", encode_query(&pairs))
    };
    let exports = view! {
        <p class="exports">
            "Export every matching request: "
            <a href=export("csv") download="">"CSV"</a>
            " · "
            <a href=export("jsonl") download="">"JSON lines"</a>
        </p>
    };
    if page.lines.is_empty() {
        return view! { <p class="muted">"No requests match these filters."</p> }.into_any();
    }
    view! {
        <section class="card">
            <div class="table-scroll" tabindex="0" role="region" aria-label="Requests, newest first">
                <table class="history">
                    <thead>
                        <tr>
                            <th scope="col">"Action and target"</th>
                            <th scope="col">"Asked"</th>
                            <th scope="col">"Agent"</th>
                            <th scope="col">"Approver"</th>
                            <th scope="col">"Outcome"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {page.lines.into_iter().map(|line| view! { <Line line/> }).collect_view()}
                    </tbody>
                </table>
            </div>
            {exports}
            <nav class="pager" aria-label="Pages">
                {newest.map(|href| view! { <a href=href>"Newest"</a> })}
                {older.map(|href| view! { <a href=href rel="next">"Older"</a> })}
            </nav>
        </section>
    }
    .into_any()
}

#[component]
fn Line(line: HistoryLine) -> impl IntoView {
    let href = format!("/admin/requests/{}", line.id);
    view! {
        <tr>
            <td class="what">
                <a href=href>
                    <strong><SafeText text=line.action limit=FULL inline=true/></strong>
                    " — "
                    <SafeText text=line.target limit=FULL inline=true/>
                </a>
            </td>
            // On a phone each line is a card; the labels stand in for the column headings.
            <td class="nowrap" data-label="Asked">{line.asked}</td>
            <td data-label="Agent"><SafeText text=line.client_name limit=FULL inline=true/></td>
            <td data-label="Approver">{line.approver_name}</td>
            <td data-label="Outcome">
                <span class=format!("badge {}", line.status.name())>{status_label(line.status)}</span>
                {line.decided.map(|d| view! { <br/><span class="muted small">{d}</span> })}
                {line.delivery.map(|d| view! { <br/><span class="muted small">{d}</span> })}
            </td>
        </tr>
    }
}

#[component]
fn DetailView(detail: HistoryDetail) -> impl IntoView {
    let verdict = if detail.record.is_none() {
        "No decision record: this request was never decided."
    } else if detail.checks.iter().all(|c| c.passed) {
        "The decision record verifies."
    } else {
        "The decision record does NOT verify. Run countersign audit verify."
    };
    let all_passed = detail.checks.iter().all(|c| c.passed);
    let status = detail.request.status;
    view! {
        <section class="card request">
            <h1>"Request"</h1>
            <p class="muted small">"As the approver saw it:"</p>
            <p class="statement">
                <strong class="action"><SafeText text=detail.request.action.clone() limit=FULL/></strong>
                " — "
                <strong class="target"><SafeText text=detail.request.target.clone() limit=FULL/></strong>
            </p>
            <p class="consequence">
                {(detail.request.reversible == Some(false)).then(|| view! { <strong>"This cannot be undone: "</strong> })}
                <SafeText text=detail.request.consequence.clone() limit=FULL/>
            </p>
            {detail.request.amount.clone().map(|amount| view! {
                <p class="amount">"Amount: " <strong>{amount} " " {detail.request.currency.clone().unwrap_or_default()}</strong></p>
            })}
            {detail.request.binding_message.clone().map(|m| view! {
                <p>"Binding message: " <span class="binding"><SafeText text=m limit=FULL inline=true/></span></p>
            })}
            <dl class="facts">
                <dt>"Agent"</dt> <dd><SafeText text=detail.request.client_name.clone() limit=FULL/></dd>
                <dt>"Approver"</dt> <dd>{detail.approver_name} " (" {detail.approver_email} ")"</dd>
                <dt>"Asked"</dt> <dd>{detail.asked}</dd>
                <dt>"Outcome"</dt>
                <dd>
                    <span class=format!("badge {}", status.name())>{status_label(status)}</span>
                    {detail.decided.map(|d| view! { " " {d} })}
                </dd>
                {detail.request.deny_reason.clone().map(|r| view! { <dt>"Reason"</dt> <dd><SafeText text=r limit=FULL/></dd> })}
                {detail.delivery.map(|d| view! { <dt>"Delivery"</dt> <dd>{d}</dd> })}
            </dl>
        </section>
        <section class="card" aria-labelledby="verification-heading">
            <h2 id="verification-heading">"Verification"</h2>
            <p class=if all_passed { "verdict passed" } else { "verdict failed" } role="status">{verdict}</p>
            <ul class="checks">
                {detail.checks.into_iter().map(|check| {
                    let mark = if check.passed { "✓ " } else { "✗ " };
                    view! {
                        <li class=if check.passed { "check passed" } else { "check failed" }>
                            <span aria-hidden="true">{mark}</span>
                            <span class="sr-only">{if check.passed { "Passed: " } else { "Failed: " }}</span>
                            {check.name}
                            {check.detail.map(|d| view! { <span class="muted small">" — " {d}</span> })}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
        <section class="card" aria-labelledby="raw-heading">
            <h2 id="raw-heading">"The request as stored"</h2>
            <p class="muted small">"Canonical JSON (RFC 8785); the decision record holds its SHA-256."</p>
            <pre class="raw" tabindex="0">{detail.raw_request}</pre>
            {detail.record.map(|record| view! {
                <h2>"The decision record"</h2>
                <pre class="raw" tabindex="0">{record}</pre>
            })}
        </section>
    }
}
