//! The admin console's server function. It checks, on the server, that the signed-in person is an
//! admin (the service refuses anyone else with 403), and answers with the page's content rendered as
//! HTML (`admin_html`): one function with plain text arguments keeps the admin console out of the
//! browser bundle every approver's phone downloads.
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use webauthn_rs_proto::{PublicKeyCredential, RequestChallengeResponse};

use crate::error::UiError;

/// The content of the admin page at `path` (with its URL `query`, which holds the filters).
// A fixed endpoint (no per-build hash), so tests can call it as any client could.
#[server(input = Json, endpoint = "admin")]
pub async fn admin_content(path: String, query: String) -> Result<String, UiError> {
    super::Call::<crate::service::SharedAdmin>::new()
        .await
        .signed_in(|service, user| async move {
            let query = query.trim_start_matches('?');
            match path.trim_end_matches('/').strip_prefix("/admin") {
                Some("") => {
                    let filters: crate::model::HistoryQuery = serde_urlencoded::from_str(query)
                        .map_err(|_| UiError::Invalid("Those filters cannot be read.".into()))?;
                    let page = service.history(&user, filters.clone()).await?;
                    Ok(crate::admin_html::history(&filters, page))
                }
                Some("/overview") => {
                    let overview = service.overview(&user).await?;
                    Ok(crate::admin_html::overview(overview))
                }
                Some("/agents") => Ok(crate::admin_html::agents(service.agents(&user).await?)),
                Some("/log") => Ok(crate::admin_html::admin_log(
                    service.admin_log(&user).await?,
                )),
                Some("/approvers") => Ok(crate::admin_html::approvers(
                    service.approvers(&user).await?,
                )),
                Some("/groups") => Ok(crate::admin_html::groups(service.groups(&user).await?)),
                Some("/confirm") => Ok(crate::admin_html::confirm(
                    service.pending_change(&user).await?,
                )),
                Some(rest) => {
                    if let Some(id) = rest
                        .strip_prefix("/requests/")
                        .filter(|id| !id.contains('/'))
                    {
                        let detail = service.history_detail(&user, id).await?;
                        Ok(crate::admin_html::request(detail))
                    } else if let Some(id) =
                        rest.strip_prefix("/agents/").filter(|id| !id.contains('/'))
                    {
                        Ok(crate::admin_html::agent(service.agent(&user, id).await?))
                    } else {
                        Err(UiError::NotFound("There is no such admin page.".into()))
                    }
                }
                None => Err(UiError::NotFound("There is no such admin page.".into())),
            }
        })
        .await
}

/// Assertion options for confirming the change waiting on `/admin/confirm`.
#[server(input = Json)]
pub async fn start_admin_change() -> Result<RequestChallengeResponse, UiError> {
    super::Call::<crate::service::SharedAdmin>::new()
        .await
        .signed_in(|service, user| async move { service.start_change(&user).await })
        .await
}

/// Confirms the waiting change with `assertion`; the console page to go back to.
#[server(input = Json)]
pub async fn confirm_admin_change(assertion: PublicKeyCredential) -> Result<String, UiError> {
    super::Call::<crate::service::SharedAdmin>::new()
        .await
        .signed_in(|service, user| async move { service.confirm_change(&user, assertion).await })
        .await
}
