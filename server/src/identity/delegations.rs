//! Delegation: an approver who is away hands their requests to a colleague for a period. A request
//! made while it runs goes to the delegate, who decides it "on behalf of" the approver; the page
//! and the decision record say so. One hop only: a delegate's own delegation is not followed, so
//! requests cannot wander. A delegate never gains a second say: someone already deciding the request
//! in their own right, or the person the agent acts for, is not made anyone's delegate on it.
use std::sync::{Arc, RwLock};

use crate::{
    clock::Millis,
    store::{delegations::DelegationRow, Store, StoreError},
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delegation {
    pub id: String,
    pub approver_id: String,
    pub delegate_id: String,
    pub starts_at: Millis,
    pub ends_at: Millis,
}

impl Delegation {
    fn from_row(row: DelegationRow) -> Delegation {
        Delegation {
            id: row.id,
            approver_id: row.approver_id,
            delegate_id: row.delegate_id,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
        }
    }

    pub fn runs_at(&self, now: Millis) -> bool {
        self.starts_at <= now && now < self.ends_at
    }
}

/// Who decides a request once delegations are applied: its addressees, and for each delegate the
/// approver they stand in for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deciders {
    pub addressees: Vec<String>,
    /// (delegate, on behalf of).
    pub on_behalf: Vec<(String, String)>,
}

/// `addressees` with each one away at `now` replaced by their delegate (unless the delegate is
/// already among them, or is `requester`: then the away person is simply not asked).
pub fn apply(
    delegations: &[Delegation],
    addressees: Vec<String>,
    requester: Option<&str>,
    now: Millis,
) -> Deciders {
    let mut deciders = Deciders::default();
    for person in &addressees {
        let away = delegations
            .iter()
            .find(|d| d.approver_id == *person && d.runs_at(now));
        match away {
            None => {
                if !deciders.addressees.contains(person) {
                    deciders.addressees.push(person.clone());
                }
            }
            Some(d) => {
                let taken = addressees.contains(&d.delegate_id)
                    || deciders.addressees.contains(&d.delegate_id)
                    || requester == Some(d.delegate_id.as_str());
                if !taken {
                    deciders.addressees.push(d.delegate_id.clone());
                    deciders
                        .on_behalf
                        .push((d.delegate_id.clone(), person.clone()));
                }
            }
        }
    }
    deciders
}

/// The delegations not over yet, in memory: read at start, every second (`Ciba::refresh`) and at
/// once after a change here, so `/bc-authorize` reads no table for them.
#[derive(Default)]
pub struct Delegations {
    current: RwLock<Arc<Vec<Delegation>>>,
}

impl Delegations {
    pub async fn refresh(&self, store: &Store, now: Millis) -> Result<(), StoreError> {
        let fresh: Vec<Delegation> = store
            .current_delegations(now)
            .await?
            .into_iter()
            .map(Delegation::from_row)
            .collect();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        Ok(())
    }

    pub fn current(&self) -> Arc<Vec<Delegation>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn away(who: &str, to: &str) -> Delegation {
        Delegation {
            id: format!("{who}-{to}"),
            approver_id: who.into(),
            delegate_id: to.into(),
            starts_at: 100,
            ends_at: 200,
        }
    }

    fn people(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_running_delegation_hands_the_request_over_and_says_for_whom() {
        let d = [away("jane", "dan")];
        let during = apply(&d, people(&["jane"]), Some("jane"), 150);
        assert_eq!(during.addressees, people(&["dan"]));
        assert_eq!(during.on_behalf, vec![("dan".into(), "jane".into())]);
        for outside in [99, 200] {
            assert_eq!(
                apply(&d, people(&["jane"]), Some("jane"), outside).addressees,
                people(&["jane"])
            );
        }
    }

    #[test]
    fn a_delegate_never_gets_a_second_say_and_delegation_is_one_hop() {
        // Ann hands to Bob, who is asked anyway: that adds nothing (Bob counts once). Bob, away
        // himself, hands to Cy; Ann's hand-over is not followed on to Cy.
        let d = [away("ann", "bob"), away("bob", "cy")];
        let both = apply(&d, people(&["ann", "bob", "dee"]), None, 150);
        assert_eq!(both.addressees, people(&["cy", "dee"]));
        assert_eq!(both.on_behalf, vec![("cy".into(), "bob".into())]);
        // Nobody is made the delegate on their own request.
        let own = apply(
            &[away("ann", "jane")],
            people(&["ann", "bob"]),
            Some("jane"),
            150,
        );
        assert_eq!(own.addressees, people(&["bob"]));
        assert!(own.on_behalf.is_empty());
    }
}
