//! Escalation: a policy may name a group whose members are asked too when a request it governs is
//! still open a while after it was made (the rule, with its time and group, is in the signed
//! statement). The upkeep loop asks the store every second which escalations are due by the clock;
//! each happens once (a conditional update), and the new addressees are told as a new request's
//! are. Nothing sleeps: a test moves the clock and calls [`Ciba::escalate_due`].
use super::{Ciba, CibaError};
use crate::identity::delegations;

impl Ciba {
    /// Escalates every open request whose escalation is due now; how many were escalated.
    pub async fn escalate_due(&self) -> Result<usize, CibaError> {
        let now = self.clock.now();
        let mut escalated = 0;
        for request in self.store.escalations_due(now).await? {
            let Some(escalation) = request.rule.as_ref().and_then(|r| r.escalation.clone()) else {
                continue;
            };
            let requester = request.approver_id.as_deref();
            // The same rules as when the request was made: nobody approves their own request,
            // nobody gets a second say, an away member's delegate stands in.
            let members: Vec<String> = self
                .store
                .enabled_members(&escalation.group)
                .await?
                .into_iter()
                .filter(|m| Some(m.as_str()) != requester && !request.is_addressed_to(m))
                .collect();
            let deciders = delegations::apply(&self.delegations.current(), members, requester, now);
            let added: Vec<(String, Option<String>)> = deciders
                .addressees
                .iter()
                .filter(|a| !request.is_addressed_to(a))
                .map(|a| {
                    let on_behalf = deciders
                        .on_behalf
                        .iter()
                        .find(|(d, _)| d == a)
                        .map(|(_, p)| p.clone());
                    (a.clone(), on_behalf)
                })
                .collect();
            if !self.store.escalate(&request.id, &added, now).await? {
                continue;
            }
            escalated += 1;
            tracing::info!(added = added.len(), "a request was escalated");
            let mut told = request.clone();
            told.addressees = added.iter().map(|(a, _)| a.clone()).collect();
            if self.events.receiver_count() > 0 {
                if let Ok(Some(client)) = self.clients().get(&request.client_id).await {
                    for event in self.announcements(&told, &client, None).await? {
                        let _ = self.events.send(event);
                    }
                }
            }
            for addressee in &told.addressees {
                self.inbox_changed(addressee);
            }
        }
        Ok(escalated)
    }
}
