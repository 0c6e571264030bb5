//! The plain transaction statement, and text from agents shown so that it cannot disguise the action:
//! always escaped (Leptos renders text, never HTML), invisible and direction-changing characters shown
//! as visible markers, look-alikes (letters of other alphabets, stylised forms, combining marks; the
//! rules are `text::segments`) highlighted, long values truncated with
//! "Show all". Every character is laid out left to right in the order it was sent (CSS
//! `isolate-override`): one right-to-left letter would otherwise let the bidirectional algorithm
//! reorder the digits around it ("DE89 ש 3704 0044" shown as "0044 3704 ש DE89"), so right-to-left
//! letters are marked and named in a warning instead. Runs of spaces are shown as counted markers,
//! never collapsed, and while any text on the page is shortened, Approve waits (see [`Shortened`]).
use leptos::prelude::*;

use crate::{
    model::RequestView,
    text::{segments, Lookalike, Segment},
};

/// How many agent texts on the page are shown shortened. The request page provides it, and Approve
/// waits until it is zero: the approval covers every character, so every character must be shown.
#[derive(Clone, Copy, Debug)]
pub struct Shortened(pub RwSignal<usize>);

fn render(text: &str) -> AnyView {
    segments(text)
        .into_iter()
        .map(|segment| match segment {
            Segment::Plain(t) => view! { <span>{t}</span> }.into_any(),
            Segment::Invisible(c) => {
                let code = format!("U+{:04X}", c as u32);
                view! { <mark class="invisible-char" title=format!("Invisible character {code}")>{format!("[{code}]")}</mark> }
                    .into_any()
            }
            Segment::Lookalike(c, Lookalike::OtherAlphabet) => {
                let code = format!("U+{:04X}", c as u32);
                view! { <mark class="lookalike" title=format!("Letter from another alphabet ({code})")>{c.to_string()}</mark> }
                    .into_any()
            }
            // Shown by code point: a stylised form may have no glyph in the reader's fonts, and a
            // combining mark drawn over its neighbour would be the disguise itself.
            Segment::Lookalike(c, why) => {
                let code = format!("U+{:04X}", c as u32);
                let title = match why {
                    Lookalike::CombiningMark => format!("Combining mark {code}, drawn over the character before it"),
                    _ => format!("Stylised character {c} ({code}) that stands for a plainer one"),
                };
                view! { <mark class="lookalike" title=title>{format!("[{code}]")}</mark> }
                    .into_any()
            }
            Segment::Spaces(run) => {
                view! { <mark class="spaces" title=format!("{run} spaces in a row")>{format!("[{run} spaces]")}</mark> }
                    .into_any()
            }
            Segment::RightToLeft(c) => {
                let code = format!("U+{:04X}", c as u32);
                view! { <mark class="rtl-char" title=format!("Right-to-left letter ({code}), shown in the order sent")>{c.to_string()}</mark> }
                    .into_any()
            }
        })
        .collect_view()
        .into_any()
}

/// Agent-supplied text, made safe to read; longer than `limit` characters it is cut with "Show all".
#[component]
pub fn SafeText(
    text: String,
    #[prop(default = 140)] limit: usize,
    /// Inside a link or list line: no "Show all" button and no warning text, just the marked text.
    #[prop(optional)]
    inline: bool,
) -> impl IntoView {
    let long = text.chars().count() > limit;
    let (expanded, set_expanded) = signal(false);
    let shortened = use_context::<Shortened>().filter(|_| long && !inline);
    if let Some(Shortened(count)) = shortened {
        count.update(|n| *n += 1);
    }
    // Shown in full once, it counts as read, even if folded again.
    let (read, set_read) = signal(false);
    let toggle = move |_| {
        set_expanded.update(|e| *e = !*e);
        if let (Some(Shortened(count)), false) = (shortened, read.get_untracked()) {
            set_read.set(true);
            count.update(|n| *n -= 1);
        }
    };
    let short: String = text.chars().take(limit).collect();
    let full = StoredValue::new(text);
    let short = StoredValue::new(short);
    let (mut warn, mut right_to_left) = (false, false);
    for segment in segments(&full.read_value()) {
        match segment {
            Segment::Plain(_) => {}
            Segment::RightToLeft(_) => right_to_left = true,
            Segment::Invisible(_) | Segment::Lookalike(..) | Segment::Spaces(_) => warn = true,
        }
    }
    view! {
        <span class="safe-text">
            {move || {
                if long && !expanded.get() {
                    view! { {render(&short.read_value())} <span aria-hidden="true">"…"</span> }.into_any()
                } else {
                    render(&full.read_value())
                }
            }}
        </span>
        {(long && !inline).then(|| view! {
            <button type="button" class="link" on:click=toggle>
                {move || if expanded.get() { "Show less" } else { "Show all" }}
            </button>
        })}
        {(warn && !inline).then(|| view! { <span class="warning">" Contains hidden or look-alike characters, or runs of spaces (marked)."</span> })}
        {(right_to_left && !inline).then(|| view! {
            <span class="warning">" Contains right-to-left letters (marked), shown left to right in the order they were sent."</span>
        })}
    }
}

/// "**Refund $120.00** — **jane@example.com for order #1234**. This cannot be undone: the money leaves."
#[component]
pub fn Statement(request: RequestView) -> impl IntoView {
    let irreversible = request.reversible == Some(false);
    view! {
        <p class="statement">
            <strong class="action"><SafeText text=request.action.clone() limit=120/></strong>
            " — "
            <strong class="target"><SafeText text=request.target.clone()/></strong>
        </p>
        <p class="consequence">
            {irreversible.then(|| view! { <strong>"This cannot be undone: "</strong> })}
            <SafeText text=request.consequence.clone() limit=240/>
        </p>
        {request.amount.clone().map(|amount| view! {
            <p class="amount">"Amount: " <strong>{amount} " " {request.currency.clone().unwrap_or_default()}</strong></p>
        })}
        {request.resource.clone().map(|resource| view! {
            <p class="muted small">"On: " <SafeText text=resource limit=80/></p>
        })}
        <ExactCall tool=request.tool.clone() arguments=request.arguments.clone()/>
    }
}

/// The exact tool call behind the statement (from the MCP gate), folded: the statement is what the
/// approver decides on, and the call is there to check it against. Marked like any agent text.
#[component]
pub fn ExactCall(tool: Option<String>, arguments: Vec<String>) -> impl IntoView {
    tool.map(|tool| {
        let arguments = arguments
            .into_iter()
            .map(|line| view! { <li><SafeText text=line limit=usize::MAX inline=true/></li> })
            .collect_view();
        view! {
            <details class="exact-call">
                <summary>"The exact call: " <SafeText text=tool limit=usize::MAX inline=true/></summary>
                <ul>{arguments}</ul>
            </details>
        }
    })
}
