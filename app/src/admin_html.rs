//! (ssr) The admin console's pages as HTML, rendered on the server only. Admins read them; they need no
//! interactivity beyond links and a GET form, so none of their code is in the bundle every
//! approver's phone downloads (the pages place this HTML, see `pages::admin`). Agent text is shown in
//! full, marked as everywhere else, never shortened.
use leptos::prelude::*;

use crate::{
    components::statement::{ExactCall, SafeText},
    model::{
        AdminLogView, AgentLine, AgentView, AgentsView, ApproversView, DayView, DelegationLine,
        FilterOption, GroupLine, GroupsView, HistoryDetail, HistoryLine, HistoryPage, HistoryQuery,
        OverviewView, PasskeyLine, PendingChangeView, RecoveryLine, RequestStatus, TimingView,
    },
    navigation::encode_query,
};

/// Agent text is never cut here: there is no "Show all" without the bundle.
const FULL: usize = usize::MAX;

/// The history page's content: the filters and a page of lines.
pub fn history(query: &HistoryQuery, page: HistoryPage) -> String {
    let query = query.clone();
    view! {
        <AdminNav/>
        <h1>"Approval history"</h1>
        <Filters query=query.clone() page=page.clone()/>
        <Lines query page/>
    }
    .to_html()
}

/// One request's content.
pub fn request(detail: HistoryDetail) -> String {
    view! {
        <AdminNav/>
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
    let choose = |label: &'static str,
                  name: &'static str,
                  choices: Vec<FilterOption>,
                  chosen: Option<String>| {
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
            <DataTable label="Requests, newest first" headings=&["Action and target", "Asked", "Agent", "Approver", "Outcome"]>{page.lines.into_iter().map(|line| view! { <Line line/> }).collect_view()}</DataTable>
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
    let verdict = if detail.records.is_empty() {
        "No decision record: this request was never decided."
    } else if detail.checks.iter().all(|c| c.passed) && detail.records.len() > 1 {
        "Every decision record verifies."
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
            <ExactCall tool=detail.request.tool.clone() arguments=detail.request.arguments.clone()/>
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
            {(!detail.records.is_empty()).then(|| view! {
                <h2>{if detail.records.len() > 1 { "The decision records" } else { "The decision record" }}</h2>
            })}
            {detail.records.into_iter().map(|record| view! {
                <pre class="raw" tabindex="0">{record}</pre>
            }).collect_view()}
        </section>
    }
}

/// The overview's content: requests per day as stacked bars, and decision times per agent and per
/// approver. Pictures are SVG written here; every figure is also in a table for screen readers.
pub fn overview(view: OverviewView) -> String {
    view! {
        <AdminNav/>
        <h1>"The last 30 days"</h1>
        <section class="card" aria-labelledby="per-day-heading">
            <h2 id="per-day-heading">"Requests per day"</h2>
            <PerDay days=view.days/>
        </section>
        <section class="card" aria-labelledby="agents-heading">
            <h2 id="agents-heading">"Time to decision, per agent"</h2>
            <Timings rows=view.agents who="Agent"/>
        </section>
        <section class="card" aria-labelledby="approvers-heading">
            <h2 id="approvers-heading">"Time to decision, per approver"</h2>
            <Timings rows=view.approvers who="Approver"/>
        </section>
    }
    .to_html()
}

/// "0.4 s", "42 s", "3.5 min", "2.0 h".
fn duration(ms: i64) -> String {
    let secs = ms as f64 / 1000.0;
    if secs < 10.0 {
        format!("{secs:.1} s")
    } else if secs < 90.0 {
        format!("{secs:.0} s")
    } else if secs < 5400.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

const CHART_W: f64 = 720.0;
const CHART_H: f64 = 180.0;

#[component]
fn PerDay(days: Vec<DayView>) -> impl IntoView {
    let total: i64 = days.iter().map(|d| d.requests).sum();
    let top = days.iter().map(|d| d.requests).max().unwrap_or(0).max(1);
    let slot = CHART_W / days.len().max(1) as f64;
    let scale = CHART_H / top as f64;
    let first = days.first().map(|d| d.date.clone()).unwrap_or_default();
    let last = days.last().map(|d| d.date.clone()).unwrap_or_default();
    let summary = format!(
        "{total} requests from {first} to {last}; the busiest day had {top}. The table below has every figure."
    );
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let x = i as f64 * slot + slot * 0.15;
            let w = slot * 0.7;
            let pending = (d.requests - d.approved - d.denied - d.expired).max(0);
            // Stacked from the baseline: approved, denied, expired, pending.
            let mut y = CHART_H;
            let parts = [
                ("bar-approved", d.approved),
                ("bar-denied", d.denied),
                ("bar-expired", d.expired),
                ("bar-pending", pending),
            ]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(class, n)| {
                let h = n as f64 * scale;
                y -= h;
                view! { <rect class=class x=format!("{x:.1}") y=format!("{y:.1}") width=format!("{w:.1}") height=format!("{h:.1}")/> }
            })
            .collect_view();
            let tip = format!(
                "{}: {} requests, {} approved, {} denied, {} expired",
                d.date, d.requests, d.approved, d.denied, d.expired
            );
            view! { <g><title>{tip}</title>{parts}</g> }
        })
        .collect_view();
    let rows = days
        .into_iter()
        .rev()
        .map(|d| {
            view! {
                <tr>
                    <th scope="row">{d.date}</th>
                    <td>{d.requests}</td>
                    <td>{d.approved}</td>
                    <td>{d.denied}</td>
                    <td>{d.expired}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {CHART_W} {}", CHART_H + 20.0) role="img" aria-label=summary.clone() class="per-day">
                <line class="axis" x1="0" y1=CHART_H x2=CHART_W y2=CHART_H/>
                {bars}
                <text class="tick" x="0" y=CHART_H + 16.0>{first.clone()}</text>
                <text class="tick" x=CHART_W y=CHART_H + 16.0 text-anchor="end">{last.clone()}</text>
                <text class="tick" x="2" y="12">{format!("{top} a day")}</text>
            </svg>
            <figcaption class="legend">
                <span class="key bar-approved"></span>"approved "
                <span class="key bar-denied"></span>"denied "
                <span class="key bar-expired"></span>"expired "
                <span class="key bar-pending"></span>"pending"
            </figcaption>
        </figure>
        <details>
            <summary>"Every day's figures"</summary>
            <table class="figures">
                <thead><tr><th scope="col">"Day"</th><th scope="col">"Requests"</th><th scope="col">"Approved"</th><th scope="col">"Denied"</th><th scope="col">"Expired"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </details>
    }
}

#[component]
fn Timings(rows: Vec<TimingView>, who: &'static str) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted">"Nothing was decided in these 30 days."</p> }.into_any();
    }
    let longest = rows.iter().map(|r| r.p90_ms).max().unwrap_or(0).max(1) as f64;
    let lines = rows
        .into_iter()
        .map(|r| {
            let rate = (r.approved * 100).checked_div(r.decided).unwrap_or(0);
            let median_w = r.median_ms as f64 / longest * 200.0;
            let p90_w = r.p90_ms as f64 / longest * 200.0;
            view! {
                <tr>
                    <th scope="row"><SafeText text=r.name limit=FULL inline=true/></th>
                    <td>{r.decided}</td>
                    <td>{format!("{rate} %")}</td>
                    <td>{duration(r.median_ms)}</td>
                    <td>{duration(r.p90_ms)}</td>
                    <td class="bar-cell">
                        <svg viewBox="0 0 200 14" width="200" height="14" aria-hidden="true">
                            <rect class="bar-p90" x="0" y="3" width=format!("{p90_w:.1}") height="8"/>
                            <rect class="bar-median" x="0" y="3" width=format!("{median_w:.1}") height="8"/>
                        </svg>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-scroll" tabindex="0" role="region" aria-label=format!("Time to decision per {}", who.to_lowercase())>
            <table class="figures timings">
                <thead>
                    <tr>
                        <th scope="col">{who}</th>
                        <th scope="col">"Decided"</th>
                        <th scope="col">"Approved"</th>
                        <th scope="col">"Median"</th>
                        <th scope="col">"90th percentile"</th>
                        <th scope="col"><span class="sr-only">"As bars"</span></th>
                    </tr>
                </thead>
                <tbody>{lines}</tbody>
            </table>
        </div>
        <p class="muted small">"Dark: median; light: 90th percentile. Slowest first."</p>
    }
    .into_any()
}

/// The admin console's sections, on every admin page.
#[component]
fn AdminNav() -> impl IntoView {
    view! {
        <nav class="admin-nav" aria-label="Admin">
            <a href="/admin">"History"</a>
            <a href="/admin/overview">"At a glance"</a>
            <a href="/admin/agents">"Agents"</a>
            <a href="/admin/approvers">"Approvers"</a>
            <a href="/admin/groups">"Groups and policies"</a>
            <a href="/admin/log">"Admin log"</a>
        </nav>
    }
}

fn approval_rate(agent: &AgentLine) -> String {
    match agent.approved + agent.denied {
        0 => "–".to_owned(),
        decided => format!("{} %", agent.approved * 100 / decided),
    }
}

/// The agents page: every agent with its last 30 days, and the form to register one.
pub fn agents(view: AgentsView) -> String {
    let lines = view
        .agents
        .into_iter()
        .map(|a| {
            let href = format!("/admin/agents/{}", a.id);
            let rate = approval_rate(&a);
            let state = if a.disabled { "Disabled" } else { "Active" };
            view! {
                <tr>
                    <th scope="row"><a href=href><SafeText text=a.name limit=FULL inline=true/></a></th>
                    <td data-label="Delivery">{a.delivery}</td>
                    <td data-label="State">{state}</td>
                    <td data-label="Requests (30 days)">{a.requests}</td>
                    <td data-label="Approved">{rate}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <AdminNav/>
        <h1>"Agents"</h1>
        <section class="card">
            <DataTable label="Agents" headings=&["Agent", "Delivery", "State", "Requests (30 days)", "Approved"]>{lines}</DataTable>
        </section>
        <section class="card" aria-labelledby="register-heading">
            <h2 id="register-heading">"Register an agent"</h2>
            {view.error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <form method="post" action="/admin/agents/register" class="filters">
                <label>"Name" <input type="text" name="name" required maxlength="100"/></label>
                <DeliveryFields delivery="poll".into() notify_url=None scopes=String::new()/>
                <fieldset class="checks-row">
                    <legend>"Options"</legend>
                    <label class="inline"><input type="checkbox" name="dpop" value="on"/>" require DPoP-bound tokens"</label>
                    <label class="inline"><input type="checkbox" name="resource_server" value="on"/>" a tool (resource server) that may introspect tokens"</label>
                </fieldset>
                <div class="filter-actions"><button type="submit" class="primary">"Register"</button></div>
            </form>
            <p class="muted small">"The secret is shown once, on the agent's page. Agents that sign with private_key_jwt are registered with countersign client create --jwks."</p>
        </section>
    }
    .to_html()
}

/// How an agent is told of decisions and the scopes it may ask for, as form fields set to what it
/// has now (registering and changing an agent).
#[component]
fn DeliveryFields(delivery: String, notify_url: Option<String>, scopes: String) -> impl IntoView {
    let modes = ["poll", "ping", "push"].map(|mode| {
        view! { <option value=mode selected=delivery == mode>{mode}</option> }
    });
    let scope_boxes = ["profile", "email"].map(|scope| {
        let checked = scopes.split(' ').any(|s| s == scope);
        view! {
            <label class="inline"><input type="checkbox" name="scope" value=scope checked=checked/>" "{scope}</label>
        }
    });
    view! {
        <label>"Delivery" <select name="delivery">{modes}</select></label>
        <label>
            "Notification URL (ping and push)"
            <input type="url" name="notify_url" placeholder="https://" value=notify_url/>
        </label>
        <fieldset class="checks-row">
            <legend>"Scopes beyond openid"</legend>
            {scope_boxes}
        </fieldset>
    }
}

/// One agent's page.
pub fn agent(view: AgentView) -> String {
    let a = view.agent;
    let rate = approval_rate(&a);
    let history = format!("/admin?agent={}", a.id);
    let rotate = format!("/admin/agents/{}/rotate", a.id);
    let toggle = format!(
        "/admin/agents/{}/{}",
        a.id,
        if a.disabled { "enable" } else { "disable" }
    );
    let secret_based = view.auth_method != "private_key_jwt";
    let settings = format!("/admin/agents/{}/settings", a.id);
    view! {
        <AdminNav/>
        <h1><SafeText text=a.name.clone() limit=FULL inline=true/></h1>
        {view.new_secret.map(|secret| view! {
            <section class="card secret" role="status">
                <h2>"The client secret"</h2>
                <p>"Copy it now: it is shown this once, and only its hash is kept."</p>
                <p><code class="secret-value">{secret}</code></p>
            </section>
        })}
        {view.message.map(|m| view! { <p class="ok" role="status">{m}</p> })}
        {view.error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
        <section class="card">
            <dl class="facts">
                <dt>"client_id"</dt> <dd><code>{a.id.clone()}</code></dd>
                <dt>"State"</dt> <dd>{if a.disabled { "Disabled: it cannot authenticate" } else { "Active" }}</dd>
                <dt>"Delivery"</dt> <dd>{a.delivery.clone()}</dd>
                {view.notify_url.clone().map(|u| view! { <dt>"Notification URL"</dt> <dd><code>{u}</code></dd> })}
                <dt>"Authentication"</dt> <dd>{view.auth_method.clone()}</dd>
                <dt>"Scopes"</dt> <dd>{a.scopes.clone()}</dd>
                <dt>"DPoP"</dt> <dd>{if a.dpop { "required" } else { "optional" }}</dd>
                <dt>"Resource server"</dt> <dd>{if a.resource_server { "yes: may introspect tokens" } else { "no" }}</dd>
                <dt>"Registered"</dt> <dd>{view.registered}</dd>
                <dt>"Last 30 days"</dt>
                <dd>{format!("{} requests, {} approved, {} denied (approved: {rate})", a.requests, a.approved, a.denied)}</dd>
            </dl>
            <p><a href=history>"This agent's requests in the history"</a></p>
        </section>
        <section class="card" aria-labelledby="actions-heading">
            <h2 id="actions-heading">"Change"</h2>
            <div class="row">
                {secret_based.then(|| view! {
                    <form method="post" action=rotate>
                        <button type="submit">"Rotate the secret"</button>
                    </form>
                })}
                <form method="post" action=toggle>
                    <button type="submit" class=if a.disabled { "" } else { "danger" }>
                        {if a.disabled { "Enable the agent" } else { "Disable the agent" }}
                    </button>
                </form>
            </div>
            <p class="muted small">"A rotated secret, or a disabled agent, takes effect on every server within a second. Each change goes into the admin log."</p>
        </section>
        <section class="card" aria-labelledby="settings-heading">
            <h2 id="settings-heading">"Delivery and scopes"</h2>
            <form method="post" action=settings class="filters">
                <DeliveryFields delivery=a.delivery.clone() notify_url=view.notify_url.clone() scopes=a.scopes.clone()/>
                <div class="filter-actions"><button type="submit" class="primary">"Save"</button></div>
            </form>
            <p class="muted small">"Requests already made keep the notification token they were made with: those made in poll mode stay with polling."</p>
        </section>
    }
    .to_html()
}

/// The admin log page.
pub fn admin_log(view: AdminLogView) -> String {
    let lines = view
        .entries
        .into_iter()
        .map(|e| {
            view! {
                <tr>
                    <td class="nowrap" data-label="When">{e.when}</td>
                    <td data-label="Admin">{e.admin}</td>
                    <td data-label="Did">{e.action}</td>
                    <td data-label="Subject"><code>{e.subject}</code></td>
                    <td data-label="Detail"><SafeText text=e.detail.unwrap_or_default() limit=FULL inline=true/></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <AdminNav/>
        <h1>"Admin log"</h1>
        <p class="muted">"What admins did in this console, newest first. The database keeps it append-only."</p>
        <section class="card">
            <DataTable label="Admin log" headings=&["When", "Admin", "Did", "Subject", "Detail"]>{lines}</DataTable>
        </section>
    }
    .to_html()
}

/// The approvers page: everyone who can approve, inviting someone, and changing roles or offboarding.
pub fn approvers(view: ApproversView) -> String {
    let lines = view
        .approvers
        .into_iter()
        .map(|a| {
            let change = |what: &str| format!("/admin/approvers/{}/{what}", a.id);
            let (role_action, role_label) = if a.admin {
                (change("demote"), "Make approver only")
            } else {
                (change("promote"), "Make admin")
            };
            let state = if a.disabled { "Disabled" } else { "Active" };
            let recover_label = format!("Recover {}", a.name);
            let actions = (!a.disabled).then(|| {
                view! {
                    <form method="post" action=role_action class="inline-form">
                        <button type="submit">{role_label}</button>
                    </form>
                    <form method="post" action=change("recover") class="inline-form">
                        <button type="submit" aria-label=recover_label>"Recover"</button>
                    </form>
                    <form method="post" action=change("disable") class="inline-form">
                        <button type="submit" class="danger">"Disable"</button>
                    </form>
                }
            });
            let passkeys = passkeys_cell(a.id.clone(), a.name.clone(), a.passkeys);
            view! {
                <tr>
                    <th scope="row">{a.name}</th>
                    <td data-label="E-mail">{a.email}</td>
                    <td class="nowrap" data-label="Role">{if a.admin { "Admin" } else { "Approver" }}</td>
                    <td class="nowrap" data-label="State">{state}</td>
                    <td data-label="Passkeys">{passkeys}</td>
                    <td data-label="Change">{actions}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <AdminNav/>
        <h1>"Approvers"</h1>
        {view.message.map(|m| view! { <p class="ok" role="status">{m}</p> })}
        {view.error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
        {view.invite.map(|invite| view! {
            <section class="card secret" aria-labelledby="invite-heading">
                <h2 id="invite-heading">{format!("{} link for {}", if invite.recovery { "Recovery" } else { "Enrollment" }, invite.email)}</h2>
                <p>{if invite.recovery {
                    "Give it to them in person or over a channel you trust: it enrolls a new passkey into their account. It works once, within an hour, and is shown only now."
                } else {
                    "Send it to them, or let them scan it with their phone. It works once, within 24 hours, and is shown only now."
                }}</p>
                <p><code class="secret-value">{invite.link}</code></p>
                <div class="qr" role="img" aria-label="The enrollment link as a QR code" inner_html=invite.qr_svg></div>
            </section>
        })}
        {(!view.recoveries.is_empty()).then(|| recoveries(view.recoveries))}
        <section class="card">
            <DataTable label="Approvers" headings=&["Name", "E-mail", "Role", "State", "Passkeys", "Change"]>{lines}</DataTable>
            <p class="muted small">"Disabling ends their sessions at once; their pending requests and unredeemed approvals are answered access_denied. The last active admin cannot be demoted or disabled. A revoked passkey ends the sessions made with it; someone left with none is recovered (one admin starts it, a second approves it), not invited again. Decisions it signed still verify. Each change here is confirmed with your passkey."</p>
        </section>
        <section class="card" aria-labelledby="invite-form-heading">
            <h2 id="invite-form-heading">"Invite an approver"</h2>
            <form method="post" action="/admin/approvers/invite" class="filters">
                <label>"E-mail" <input type="email" name="email" required maxlength="254"/></label>
                <label>"Name" <input type="text" name="name" maxlength="100"/></label>
                <fieldset class="checks-row">
                    <legend>"Role"</legend>
                    <label class="inline"><input type="checkbox" name="admin" value="on"/>" an admin, who can use this console"</label>
                </fieldset>
                <div class="filter-actions"><button type="submit" class="primary">"Make an enrollment link"</button></div>
            </form>
        </section>
    }
    .to_html()
}

/// Recoveries waiting for a second admin, each with its approve button (the server refuses the
/// admin who started it) and its cancel button (any admin).
fn recoveries(lines: Vec<RecoveryLine>) -> impl IntoView {
    let rows = lines
        .into_iter()
        .map(|r| {
            let action = format!("/admin/recoveries/{}/approve", r.id);
            let label = format!("Approve recovering {}", r.approver);
            let cancel = format!("/admin/recoveries/{}/cancel", r.id);
            let cancel_label = format!("Cancel recovering {}", r.approver);
            view! {
                <tr>
                    <th scope="row">{r.approver}</th>
                    <td data-label="Started by">{r.started_by}</td>
                    <td class="nowrap" data-label="Started">{r.started}</td>
                    <td data-label="Decide">
                        <form method="post" action=action class="inline-form">
                            <button type="submit" class="primary" aria-label=label>"Approve"</button>
                        </form>
                        <form method="post" action=cancel class="inline-form">
                            <button type="submit" class="danger" aria-label=cancel_label>"Cancel"</button>
                        </form>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="recoveries-heading">
            <h2 id="recoveries-heading">"Recoveries waiting for a second admin"</h2>
            <DataTable label="Recoveries" headings=&["Recovers", "Started by", "Started", "Decide"]>{rows}</DataTable>
        </section>
    }
}

/// An approver's passkeys, folded under their count, each with its revoke button.
fn passkeys_cell(
    approver_id: String,
    approver: String,
    passkeys: Vec<PasskeyLine>,
) -> impl IntoView {
    let suspended = passkeys.iter().filter(|p| p.suspended.is_some()).count();
    let summary = match (passkeys.len(), suspended) {
        (0, _) => "None".to_owned(),
        (1, 0) => "1 passkey".to_owned(),
        (n, 0) => format!("{n} passkeys"),
        (n, s) => format!("{n} passkeys, {s} suspended"),
    };
    let items = passkeys
        .into_iter()
        .map(|p| {
            let revoke = format!(
                "/admin/approvers/{approver_id}/passkeys/{}/revoke",
                p.credential_id
            );
            let label = format!("Revoke {}'s passkey {}", approver, p.name);
            let used = match p.last_used {
                Some(at) => format!("added {}, last used {at}", p.added),
                None => format!("added {}, never used", p.added),
            };
            view! {
                <li>
                    <SafeText text=p.name limit=FULL inline=true/>
                    " "
                    <span class="muted small">{used}</span>
                    {p.suspended.map(|why| view! { <span class="badge denied">"Suspended: "{why}</span> })}
                    <form method="post" action=revoke class="inline-form">
                        <button type="submit" class="danger" aria-label=label>"Revoke"</button>
                    </form>
                </li>
            }
        })
        .collect_view();
    view! {
        <details class="admin-passkeys">
            <summary>{summary}</summary>
            <ul>{items}</ul>
        </details>
    }
}

/// A table of lines under `headings`, in a region that scrolls sideways when it must (on a phone the
/// lines become cards, see the stylesheet).
#[component]
fn DataTable(
    label: &'static str,
    headings: &'static [&'static str],
    children: Children,
) -> impl IntoView {
    view! {
        <div class="table-scroll" tabindex="0" role="region" aria-label=label>
            <table class="history">
                <thead>
                    <tr>{headings.iter().map(|h| view! { <th scope="col">{*h}</th> }).collect_view()}</tr>
                </thead>
                <tbody>{children()}</tbody>
            </table>
        </div>
    }
}

/// The confirmation page's content: the change waiting for the admin's passkey (the buttons that
/// confirm or cancel it are the page's own, `pages::admin`).
pub fn confirm(view: PendingChangeView) -> String {
    view! {
        <AdminNav/>
        <h1>"Confirm this change"</h1>
        <section class="card" aria-labelledby="change-heading">
            <h2 id="change-heading">{view.description}</h2>
            <p>"Changes to who can approve take your passkey, so a session alone cannot make them. The admin log keeps your confirmation."</p>
        </section>
    }
    .to_html()
}

/// A select of `options` named `name`, labelled `label`; an option with an empty id means "none".
fn choose(label: &'static str, name: &'static str, options: &[FilterOption]) -> impl IntoView {
    let options = options
        .iter()
        .map(|o| view! { <option value=o.id.clone()>{o.label.clone()}</option> })
        .collect_view();
    view! { <label>{label} <select name=name>{options}</select></label> }
}

/// The groups and policies page: who is in each group, which agents may address it, and which
/// actions need more than one approval.
pub fn groups(view: GroupsView) -> String {
    let approvers = view.approvers.clone();
    let agents = view.agents.clone();
    let groups = view
        .groups
        .iter()
        .cloned()
        .map(|g| group_card(g, &approvers, &agents))
        .collect_view();
    let group_options: Vec<FilterOption> = view
        .groups
        .iter()
        .map(|g| FilterOption {
            id: g.id.clone(),
            label: g.name.clone(),
        })
        .collect();
    let policies = view
        .policies
        .into_iter()
        .map(|p| {
            let retire = format!("/admin/policies/{}/retire", p.id);
            let label = format!("Retire {}", p.name);
            view! {
                <tr>
                    <th scope="row">{p.name} <span class="muted small">{format!(" v{}", p.version)}</span></th>
                    <td data-label="Agent">{p.agent}</td>
                    <td data-label="Covers">{p.covers}</td>
                    <td class="nowrap" data-label="Approvals">{p.approvals}</td>
                    <td data-label="By">{p.approvers}</td>
                    <td data-label="State">
                        {if p.active { "In force" } else { "Retired" }}
                        {p.active.then(|| view! {
                            <form method="post" action=retire class="inline-form">
                                <button type="submit" aria-label=label class="danger">"Retire"</button>
                            </form>
                        })}
                    </td>
                </tr>
            }
        })
        .collect_view();
    let delegations = delegations(view.delegations, &approvers);
    let mut any_agent = vec![FilterOption {
        id: String::new(),
        label: "Any agent".into(),
    }];
    any_agent.extend(agents.iter().cloned());
    let mut addressed = vec![FilterOption {
        id: String::new(),
        label: "Those the request is addressed to".into(),
    }];
    addressed.extend(group_options);
    view! {
        <AdminNav/>
        <h1>"Groups and policies"</h1>
        {view.message.map(|m| view! { <p class="ok" role="status">{m}</p> })}
        {view.error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
        <p class="muted">"An agent addresses a group with login_hint=group:<name>, once you let it. The request reaches every member; the first to decide settles it, unless a policy asks for more approvals. Each change here is confirmed with your passkey."</p>
        {groups}
        <section class="card" aria-labelledby="new-group-heading">
            <h2 id="new-group-heading">"New group"</h2>
            <form method="post" action="/admin/groups" class="filters">
                <label>"Name" <input type="text" name="name" required maxlength="64" pattern="[a-z0-9][a-z0-9._-]*" placeholder="payments-oncall"/></label>
                <div class="filter-actions"><button type="submit" class="primary">"Create the group"</button></div>
            </form>
        </section>
        {delegations}
        <section class="card" aria-labelledby="policies-heading">
            <h2 id="policies-heading">"Approval policies"</h2>
            <p class="muted small">"A request whose action a policy covers needs that many approvals by distinct people (one person counts once, whatever passkey they use; the person an agent acts for never counts). Any denial denies. The strictest policy that covers an action governs it, and its version is part of what every approver signs."</p>
            <DataTable label="Approval policies" headings=&["Policy", "Agent", "Covers", "Approvals", "By", "State"]>{policies}</DataTable>
            <h3>"New policy"</h3>
            <form method="post" action="/admin/policies" class="filters">
                <label>"Name" <input type="text" name="name" required maxlength="100" placeholder="Payments over 1,000"/></label>
                {choose("Agent", "agent", &any_agent)}
                <label>"Action (pattern)" <input type="text" name="action" maxlength="200" placeholder="refund*"/></label>
                <label>"Tool (pattern)" <input type="text" name="tool" maxlength="128"/></label>
                <label>"Amount above" <input type="text" name="amount_above" inputmode="decimal" maxlength="20" placeholder="1000"/></label>
                <fieldset class="checks-row">
                    <legend>"Only"</legend>
                    <label class="inline"><input type="checkbox" name="irreversible" value="on"/>" actions that cannot be undone"</label>
                </fieldset>
                <label>"Approvals" <input type="number" name="approvals" required min="1" max="10" value="2"/></label>
                {choose("Approved by", "group", &addressed)}
                <label>"Escalate after (minutes open)" <input type="number" name="escalate_after_mins" min="1" max="10080"/></label>
                {choose("Escalate to", "escalation_group", &addressed)}
                <div class="filter-actions"><button type="submit" class="primary">"Set the policy"</button></div>
            </form>
        </section>
    }
    .to_html()
}

/// Who hands their requests to whom, and a form to set one.
fn delegations(lines: Vec<DelegationLine>, approvers: &[FilterOption]) -> impl IntoView {
    let rows = lines
        .into_iter()
        .map(|d| {
            let end = format!("/admin/delegations/{}/end", d.id);
            let label = format!("End the delegation of {}", d.approver);
            view! {
                <tr>
                    <th scope="row">{d.approver}</th>
                    <td data-label="Delegate">{d.delegate}</td>
                    <td data-label="When">{d.period}</td>
                    <td data-label="State">
                        {if d.running { "Running" } else { "To come" }}
                        <form method="post" action=end class="inline-form">
                            <button type="submit" aria-label=label>"End"</button>
                        </form>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="delegations-heading">
            <h2 id="delegations-heading">"Delegations"</h2>
            <p class="muted small">"While a delegation runs, requests made to the approver (alone, in a group or under a policy) go to the delegate, who decides them on their behalf; the page and the record say so. Someone already asked in their own right gets no second say."</p>
            <DataTable label="Delegations" headings=&["Approver", "Delegate", "When", "State"]>{rows}</DataTable>
            <form method="post" action="/admin/delegations" class="filters">
                {choose("Approver who is away", "approver", approvers)}
                {choose("Delegate", "delegate", approvers)}
                <label>"From (UTC day; today if empty)" <input type="date" name="from"/></label>
                <label>"Until (UTC day, included)" <input type="date" name="until" required/></label>
                <div class="filter-actions"><button type="submit" class="primary">"Hand the requests over"</button></div>
            </form>
        </section>
    }
}

fn group_card(g: GroupLine, approvers: &[FilterOption], agents: &[FilterOption]) -> impl IntoView {
    let heading = format!("group-{}", g.id);
    let labelled_by = heading.clone();
    let members = g
        .members
        .iter()
        .map(|m| {
            let remove = format!("/admin/groups/{}/members/{}/remove", g.id, m.id);
            let label = format!("Remove {} from {}", m.label, g.name);
            view! {
                <li>
                    {m.label.clone()}
                    <form method="post" action=remove class="inline-form">
                        <button type="submit" aria-label=label>"Remove"</button>
                    </form>
                </li>
            }
        })
        .collect_view();
    let allowed = g
        .agents
        .iter()
        .map(|a| {
            let remove = format!("/admin/groups/{}/agents/{}/remove", g.id, a.id);
            let label = format!("Stop {} addressing {}", a.label, g.name);
            view! {
                <li>
                    {a.label.clone()}
                    <form method="post" action=remove class="inline-form">
                        <button type="submit" aria-label=label>"Stop"</button>
                    </form>
                </li>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby=labelled_by>
            <h2 id=heading>{g.name.clone()}</h2>
            <h3>"Members"</h3>
            {if g.members.is_empty() { Some(view! { <p class="muted">"No members yet."</p> }) } else { None }}
            <ul class="members">{members}</ul>
            <form method="post" action=format!("/admin/groups/{}/members", g.id) class="filters">
                {choose("Approver", "approver", approvers)}
                <div class="filter-actions"><button type="submit">"Add to the group"</button></div>
            </form>
            <h3>"Agents that may address it"</h3>
            {if g.agents.is_empty() { Some(view! { <p class="muted">"None yet."</p> }) } else { None }}
            <ul class="members">{allowed}</ul>
            <form method="post" action=format!("/admin/groups/{}/agents", g.id) class="filters">
                {choose("Agent", "agent", agents)}
                <div class="filter-actions"><button type="submit">"Let it address the group"</button></div>
            </form>
        </section>
    }
}
