//! Re-verifying the evidence (`countersign audit verify`). The decision records: the hash chain, the
//! server's JWS on each, that each request is still the one decided on, that each passkey assertion's
//! challenge commits to exactly that decision, and that the approver's passkey really signed it with
//! the key the sealed key registry holds for that passkey. The key registry: its own chain and JWSs.
//! Coverage: every decided request and every issued token has its record. The server's signing keys:
//! with the key-encryption key at hand, only keys whose sealed private half matches are trusted. And
//! the chains' heads against the latest signed checkpoint kept outside the database, which shows a
//! deleted tail or an emptied table. The admin log's own hash chain is checked too.
use std::collections::{HashMap, HashSet};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::Serialize;
use serde_json::Value;

use super::{
    auth_request::{AuthRequest, Stage},
    checkpoint::{self, Checkpoint},
    record::{decision_challenge, decision_challenge_v1, request_digest, seal_problems},
    Choice,
};
pub use crate::identity::assertion::RelyingParty;
use crate::{
    admin::confirmation::{change_challenge, Change, Confirmation},
    identity::{
        assertion::KeptAssertion,
        provenance::{authorisation_problem, recovery_problem, Provenance, Vouched},
        registry,
    },
    sealing::Kek,
    secrets::{base64url, hex},
    signing::ArchiveVerifier,
    store::{
        admin_log::AdminLogRow,
        decisions::{Covered, DecisionRow, GENESIS_HASH},
        key_registry::KeyEntryRow,
        Store, StoreError,
    },
};

/// What a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    /// A decision record.
    Record { seq: i64, auth_req_id: String },
    /// A request or token that lacks its record, or whose approval was refused at redemption.
    Request { auth_req_id: String },
    /// An entry of the passkey key registry.
    KeyEntry { seq: i64, credential_id: String },
    /// One of the server's signing keys.
    SigningKey { kid: String },
    /// An entry of the admin log.
    AdminLogEntry { seq: i64 },
    /// The checkpoint the chains were compared with.
    Checkpoint,
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Record { seq, auth_req_id } => write!(f, "record {seq} ({auth_req_id})"),
            Subject::Request { auth_req_id } => write!(f, "request {auth_req_id}"),
            Subject::KeyEntry { seq, credential_id } => {
                write!(f, "key registry entry {seq} ({credential_id})")
            }
            Subject::SigningKey { kid } => write!(f, "signing key {kid}"),
            Subject::AdminLogEntry { seq } => write!(f, "admin log entry {seq}"),
            Subject::Checkpoint => f.write_str("checkpoint"),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Finding {
    pub about: Subject,
    pub problem: String,
}

impl Finding {
    /// The request the finding concerns, if it concerns one.
    pub fn auth_req_id(&self) -> Option<&str> {
        match &self.about {
            Subject::Record { auth_req_id, .. } | Subject::Request { auth_req_id } => {
                Some(auth_req_id)
            }
            _ => None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub records: usize,
    /// Records whose passkey signature was checked against the recorded public key.
    pub signatures_verified: usize,
    /// Older records that kept no public key: their signature could not be checked.
    pub signatures_unchecked: usize,
    pub key_registry_entries: usize,
    /// The registry entries (by seq) that record no provenance: keys sealed before it was kept, which
    /// the registry holds but nothing shows how they arrived.
    pub keys_without_provenance: Vec<i64>,
    /// Whether the signing keys were checked against the key-encryption key.
    pub signing_keys_checked: bool,
    /// The checkpoint compared with, if one was found.
    pub checkpoint: Option<Checkpoint>,
    pub findings: Vec<Finding>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// What the audit is given besides the database.
#[derive(Default)]
pub struct AuditInputs<'a> {
    /// The key-encryption key, when at hand.
    pub kek: Option<&'a Kek>,
    /// The checkpoint to compare the chains with (a JWS), when there is one.
    pub checkpoint: Option<String>,
    /// The checkpoint directory `checkpoint` was read from (None for a file given on its own): its
    /// latest must be the last checkpoint the database recorded it was given.
    pub checkpoint_dir: Option<std::path::PathBuf>,
}

pub async fn verify(
    store: &Store,
    rp: &RelyingParty,
    inputs: AuditInputs<'_>,
) -> Result<AuditReport, StoreError> {
    let verifier = ArchiveVerifier::load(store, inputs.kek).await?;
    let mut findings: Vec<Finding> = verifier
        .refused
        .iter()
        .map(|(kid, why)| Finding {
            about: Subject::SigningKey { kid: kid.clone() },
            problem: format!("not trusted: {why}"),
        })
        .collect();
    let entries = store.key_registry().await?;
    let (registry, keys_without_provenance) =
        verify_registry(&entries, &verifier, rp, &mut findings);
    let rows = store.decisions().await?;
    let (signatures_verified, signatures_unchecked) =
        verify_records(store, rp, &rows, &registry, &verifier, &mut findings).await?;
    findings.extend(uncovered(store).await?);
    let admin_log = store.admin_log_chain().await?;
    findings.extend(unapproved_recoveries(&entries, &admin_log, &registry, rp));
    findings.extend(
        crate::admin::log::chain_problems(&admin_log)
            .into_iter()
            .chain(
                admin_log
                    .iter()
                    .filter_map(|e| Some((e.seq, confirmation_problem(e, &registry, rp)?))),
            )
            .map(|(seq, problem)| Finding {
                about: Subject::AdminLogEntry { seq },
                problem: problem.into(),
            }),
    );
    if let Some(dir) = &inputs.checkpoint_dir {
        let read = inputs.checkpoint.as_ref().and_then(|jws| {
            checkpoint::read(jws, |jws| verifier.verify(jws))
                .ok()
                .map(|c| (c, jws.clone()))
        });
        let latest = read.as_ref().map(|(c, jws)| (c, jws.as_str()));
        match checkpoint::rollback_problem(store, dir, latest).await {
            Ok(Some(problem)) => findings.push(Finding {
                about: Subject::Checkpoint,
                problem,
            }),
            Ok(None) => {}
            Err(e) => findings.push(Finding {
                about: Subject::Checkpoint,
                problem: format!("the checkpoint directory cannot be read: {e}"),
            }),
        }
    }
    let checkpoint = match &inputs.checkpoint {
        None => None,
        Some(jws) => match checkpoint::read(jws, |jws| verifier.verify(jws)) {
            Ok(checkpoint) => {
                let chains = Chains {
                    records: &rows,
                    keys: &entries,
                    admin_log: &admin_log,
                };
                compare_heads(&checkpoint, &chains, &mut findings);
                Some(checkpoint)
            }
            Err(e) => {
                findings.push(Finding {
                    about: Subject::Checkpoint,
                    problem: format!("{e} (its signature does not verify with any trusted key)"),
                });
                None
            }
        },
    };
    Ok(AuditReport {
        records: rows.len(),
        signatures_verified,
        signatures_unchecked,
        key_registry_entries: entries.len(),
        keys_without_provenance,
        signing_keys_checked: verifier.keys_checked,
        checkpoint,
        findings,
    })
}

/// The key registry's chain, each entry's hash and JWS, and its provenance: an addition's
/// authorisation must be an earlier sound entry's assertion over this very key. Returns the entries
/// that hold, by credential id (approver id, public key), and the entries that record no provenance.
fn verify_registry(
    entries: &[KeyEntryRow],
    verifier: &ArchiveVerifier,
    rp: &RelyingParty,
    findings: &mut Vec<Finding>,
) -> (HashMap<String, (String, String)>, Vec<i64>) {
    let mut trusted: HashMap<String, (String, String)> = HashMap::new();
    let mut unvouched = Vec::new();
    let mut prev = GENESIS_HASH;
    for entry in entries {
        let mut problem = |text: &str| {
            findings.push(Finding {
                about: Subject::KeyEntry {
                    seq: entry.seq,
                    credential_id: entry.credential_id.clone(),
                },
                problem: text.to_owned(),
            });
        };
        let mut sound = true;
        if entry.prev_hash != prev {
            problem("the chain is broken: prev_hash is not the previous entry's hash");
            sound = false;
        }
        if let Some(why) = registry::entry_problems(entry, |jws| verifier.verify(jws)) {
            problem(why);
            sound = false;
        }
        match (&entry.provenance, registry::provenance(entry)) {
            (None, _) => unvouched.push(entry.seq),
            (Some(_), None) => {
                problem("the key's provenance is unreadable, so nothing vouches for it");
                sound = false;
            }
            (Some(_), Some(provenance)) => {
                let authoriser = match &provenance {
                    Provenance::Addition { authorised_by, .. } => trusted
                        .get(authorised_by)
                        .map(|(owner, key)| (owner.as_str(), key.as_str())),
                    Provenance::Invitation { .. } | Provenance::Recovery { .. } => None,
                };
                let key = Vouched {
                    approver_id: &entry.approver_id,
                    credential_id: &entry.credential_id,
                    public_key: &entry.public_key,
                };
                if let Some(why) = authorisation_problem(&provenance, &key, authoriser, rp)
                    .or_else(|| recovery_problem(&provenance))
                {
                    problem(why);
                    sound = false;
                }
            }
        }
        if sound {
            trusted.insert(
                entry.credential_id.clone(),
                (entry.approver_id.clone(), entry.public_key.clone()),
            );
        }
        prev = &entry.entry_hash;
    }
    (trusted, unvouched)
}

async fn verify_records(
    store: &Store,
    rp: &RelyingParty,
    rows: &[DecisionRow],
    registry: &HashMap<String, (String, String)>,
    verifier: &ArchiveVerifier,
    findings: &mut Vec<Finding>,
) -> Result<(usize, usize), StoreError> {
    let (mut signatures_verified, mut signatures_unchecked) = (0, 0);
    // Once a record keeps its public key every later one must: a missing key is not a way out. Likewise
    // once one answers the challenge that covers the reason, the older challenge is no way out.
    let mut keys_kept = false;
    let mut reasons_covered = false;
    let mut prev = GENESIS_HASH.to_owned();
    // The people whose approvals each approved request's records hold, to hold the request to the
    // rule its statement names.
    let mut approvals: HashMap<String, (AuthRequest, HashSet<String>)> = HashMap::new();
    for row in rows {
        let request = read_request(store, &row.auth_req_id).await?;
        if let (Ok(Some(request)), "approve") = (&request, row.decision.as_str()) {
            approvals
                .entry(request.id.clone())
                .or_insert_with(|| (request.clone(), HashSet::new()))
                .1
                .insert(row.approver_id.clone());
        }
        let checked = record_checks(
            row,
            &prev,
            request.as_ref().map(Option::as_ref).map_err(|_| ()),
            registry.get(&row.credential_id),
            rp,
            |jws| verifier.verify(jws),
        );
        let mut problem = |text: &str| {
            findings.push(Finding {
                about: Subject::Record {
                    seq: row.seq,
                    auth_req_id: row.auth_req_id.clone(),
                },
                problem: text.to_owned(),
            });
        };
        for check in &checked.checks {
            for text in &check.problems {
                problem(text);
            }
        }
        match checked.commitment {
            Some(Commitment::Current) => reasons_covered = true,
            Some(Commitment::V1) if reasons_covered => problem(
                "the passkey assertion answers the older challenge, which does not cover the reason, after the current one was in use",
            ),
            _ => {}
        }
        match checked.signature {
            Some(true) => {
                keys_kept = true;
                signatures_verified += 1;
            }
            Some(false) => keys_kept = true,
            None if keys_kept => {
                problem("the record keeps no passkey public key, unlike earlier ones");
            }
            None => signatures_unchecked += 1,
        }
        prev = row.record_hash.clone();
    }
    let mut short: Vec<_> = approvals
        .into_values()
        .filter(|(request, people)| {
            matches!(request.state.stage(), Stage::Approved | Stage::Redeemed)
                && (people.len() as i64) < request.approvals_needed()
        })
        .map(|(request, people)| {
            let needed = request.approvals_needed();
            (request.id, people.len(), needed)
        })
        .collect();
    short.sort();
    for (auth_req_id, people, needed) in short {
        findings.push(Finding {
            about: Subject::Request { auth_req_id },
            problem: format!(
                "marked approved with approvals by {people} people, and its policy asks for {needed}"
            ),
        });
    }
    Ok((signatures_verified, signatures_unchecked))
}

/// The request a record decided, as far as it can be read.
async fn read_request(
    store: &Store,
    id: &str,
) -> Result<Result<Option<AuthRequest>, ()>, StoreError> {
    match store.auth_request(id).await {
        Err(StoreError::Corrupt(_)) => Ok(Err(())),
        Err(e) => Err(e),
        Ok(found) => Ok(Ok(found)),
    }
}

/// One check of one decision record, named as the history's detail page lists it.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    /// Empty when it holds.
    pub problems: Vec<&'static str>,
    /// How it held, or why it could not be made, when that needs saying.
    pub note: Option<&'static str>,
}

/// What [`record_checks`] found.
struct RecordChecks {
    checks: Vec<Check>,
    /// Which challenge the assertion answered, if the request could be read.
    commitment: Option<Commitment>,
    /// Whether the passkey signature verified; None if the record keeps no public key.
    signature: Option<bool>,
}

/// The checks of one record that need nothing but the record before it (`prev_hash`), the request,
/// and the registry entry of its passkey (approver id, public key), if that entry is sound. The
/// audit's walk runs these on every record and adds the rules that need the whole chain; the detail
/// page runs them on one.
fn record_checks(
    row: &DecisionRow,
    prev_hash: &str,
    request: Result<Option<&AuthRequest>, ()>,
    registered: Option<&(String, String)>,
    rp: &RelyingParty,
    verify: impl Fn(&str) -> Result<serde_json::Map<String, Value>, crate::signing::KeyError>,
) -> RecordChecks {
    let check = |name, problems: Vec<&'static str>| Check {
        name,
        problems,
        note: None,
    };
    let mut checks = Vec::new();
    let link = if row.prev_hash == prev_hash {
        vec![]
    } else {
        vec!["the chain is broken: prev_hash is not the previous record's hash"]
    };
    checks.push(check("Chain link to the previous record", link));
    checks.push(check(
        "Record hash and server signature",
        seal_problems(row, verify),
    ));
    let mut commitment = None;
    match request {
        Err(()) => checks.push(check(
            "Request unchanged since the decision",
            vec!["the decided request cannot be read"],
        )),
        Ok(None) => checks.push(check(
            "Request unchanged since the decision",
            vec!["the decided request is missing"],
        )),
        Ok(Some(request)) => {
            let digest = request_digest(request);
            let changed = if hex(&digest) == row.request_digest {
                vec![]
            } else {
                vec!["the request has changed since it was decided"]
            };
            checks.push(check("Request unchanged since the decision", changed));
            let addressed = if request.is_addressed_to(&row.approver_id) {
                vec![]
            } else {
                vec!["the record names someone the request was not addressed to"]
            };
            checks.push(check("Decided by someone it was addressed to", addressed));
            let answered = assertion_commits(row, &digest, rp);
            commitment = Some(answered);
            checks.push(match answered {
                Commitment::Current => check("Passkey challenge covers this decision", vec![]),
                Commitment::V1 => Check {
                    note: Some("answers the earlier challenge, which did not cover a deny reason"),
                    ..check("Passkey challenge covers this decision", vec![])
                },
                Commitment::None => check(
                    "Passkey challenge covers this decision",
                    vec!["the passkey assertion does not commit to this decision on this request"],
                ),
            });
        }
    }
    let mut signature = None;
    match &row.credential_public_key {
        Some(key) => {
            let signed = kept(row).signed_by(key, rp);
            signature = Some(signed.is_ok());
            checks.push(check(
                "Approver's passkey signature",
                signed.err().into_iter().collect(),
            ));
            let entry = match registered {
                Some((approver_id, registered)) if *approver_id == row.approver_id => {
                    if registered == key {
                        vec![]
                    } else {
                        vec!["the recorded public key is not the one registered for this passkey"]
                    }
                }
                Some(_) => vec!["the passkey that signed belongs to another approver"],
                None => vec!["the passkey that signed has no sound key registry entry"],
            };
            checks.push(check("Passkey key in the sealed registry", entry));
        }
        None => checks.push(Check {
            note: Some(
                "not checked: the record keeps no passkey public key (made before keys were kept)",
            ),
            ..check("Approver's passkey signature", vec![])
        }),
    }
    RecordChecks {
        checks,
        commitment,
        signature,
    }
}

/// The checks of `row`, the record of `request`, as the detail page shows them: what `audit verify`
/// checks of it, given the record before it and its passkey's registry entry (whose own soundness is
/// checked, though not its place in the registry's chain). `verify` checks the server's signatures.
pub async fn check_one(
    store: &Store,
    rp: &RelyingParty,
    row: &DecisionRow,
    request: &AuthRequest,
    verify: impl Fn(&str) -> Result<serde_json::Map<String, Value>, crate::signing::KeyError>,
) -> Result<Vec<Check>, StoreError> {
    let prev = store
        .record_hash_before(row.seq)
        .await?
        .unwrap_or_else(|| GENESIS_HASH.to_owned());
    let registered = store
        .key_entry(&row.credential_id)
        .await?
        .filter(|entry| registry::entry_problems(entry, &verify).is_none())
        .map(|entry| (entry.approver_id, entry.public_key));
    Ok(record_checks(
        row,
        &prev,
        Ok(Some(request)),
        registered.as_ref(),
        rp,
        verify,
    )
    .checks)
}

/// What is wrong with the admin's passkey confirmation an admin log entry keeps: it must be an
/// assertion by a sound registry key of that admin over exactly the change.
fn confirmation_problem(
    entry: &AdminLogRow,
    registry: &HashMap<String, (String, String)>,
    rp: &RelyingParty,
) -> Option<&'static str> {
    let kept = entry.authorisation.as_deref()?;
    let Ok(confirmation) = serde_json::from_str::<Confirmation>(kept) else {
        return Some("the kept confirmation cannot be read");
    };
    let Ok(nonce) = URL_SAFE_NO_PAD.decode(&confirmation.assertion.nonce) else {
        return Some("the confirmation's nonce is not base64url");
    };
    match registry.get(&confirmation.credential_id) {
        Some((owner, key)) if *owner == entry.admin_id => {
            let challenge = change_challenge(&entry.admin_id, &confirmation.change, &nonce);
            confirmation.assertion.answers(&challenge, key, rp).err()
        }
        Some(_) => Some("the change was confirmed with another person's passkey"),
        None => Some("the passkey that confirmed the change has no sound key registry entry"),
    }
}

/// Keys enrolled through an admins' recovery whose approval the admin log does not hold: an entry
/// by the approving admin, confirmed with their passkey over approving exactly that recovery.
fn unapproved_recoveries(
    entries: &[KeyEntryRow],
    admin_log: &[AdminLogRow],
    registry: &HashMap<String, (String, String)>,
    rp: &RelyingParty,
) -> Vec<Finding> {
    let approved = |recovery: &str, admin: &str| {
        admin_log.iter().any(|row| {
            row.admin_id == admin
                && row
                    .authorisation
                    .as_deref()
                    .and_then(|kept| serde_json::from_str::<Confirmation>(kept).ok())
                    .is_some_and(|c| {
                        c.change
                            == (Change::ApproveRecovery {
                                recovery: recovery.to_owned(),
                            })
                    })
                && confirmation_problem(row, registry, rp).is_none()
        })
    };
    entries
        .iter()
        .filter_map(|entry| match registry::provenance(entry)? {
            Provenance::Recovery {
                recovery,
                approved_by: Some(admin),
                ..
            } if !approved(&recovery, &admin) => Some(Finding {
                about: Subject::KeyEntry {
                    seq: entry.seq,
                    credential_id: entry.credential_id.clone(),
                },
                problem: "the recovery it arrived through has no approval confirmed by a second admin's passkey in the admin log".into(),
            }),
            _ => None,
        })
        .collect()
}

/// The chains as the database holds them.
struct Chains<'a> {
    records: &'a [DecisionRow],
    keys: &'a [KeyEntryRow],
    admin_log: &'a [AdminLogRow],
}

/// Each chain must still hold the head the checkpoint saw: the same entry at the same place.
fn compare_heads(checkpoint: &Checkpoint, chains: &Chains<'_>, findings: &mut Vec<Finding>) {
    let chains = [
        (
            "decision record",
            &checkpoint.heads.decisions,
            chains
                .records
                .iter()
                .map(|r| (r.seq, r.record_hash.as_str()))
                .collect::<Vec<_>>(),
        ),
        (
            "key registry",
            &checkpoint.heads.key_registry,
            chains
                .keys
                .iter()
                .map(|e| (e.seq, e.entry_hash.as_str()))
                .collect(),
        ),
        (
            "admin log",
            &checkpoint.heads.admin_log,
            chains
                .admin_log
                .iter()
                .filter_map(|e| Some((e.seq, e.entry_hash.as_deref()?)))
                .collect(),
        ),
    ];
    for (name, head, chain) in chains {
        if head.seq == 0 {
            continue;
        }
        let problem = match chain.iter().find(|(seq, _)| *seq == head.seq) {
            Some((_, hash)) if *hash == head.hash => continue,
            Some(_) => format!(
                "the {name}'s entry {} differs from the checkpoint made at {}",
                head.seq, checkpoint.made_at
            ),
            None => format!(
                "the {name} has no entry {} although the checkpoint made at {} saw it: entries were deleted ({} left)",
                head.seq,
                checkpoint.made_at,
                chain.len()
            ),
        };
        findings.push(Finding {
            about: Subject::Checkpoint,
            problem,
        });
    }
}

/// What the decision records do not cover: a decided request or an issued token with no matching
/// record (one UPDATE of a status would otherwise pass unseen), and every approval the token
/// endpoint refused to redeem because it did not verify.
async fn uncovered(store: &Store) -> Result<Vec<Finding>, StoreError> {
    let mut findings = Vec::new();
    let mut finding = |auth_req_id: &str, problem: String| {
        findings.push(Finding {
            about: Subject::Request {
                auth_req_id: auth_req_id.to_owned(),
            },
            problem,
        });
    };
    for row in store.decision_coverage().await? {
        let (what, expected) = match row.covered() {
            Covered::Token => ("an access token was issued", "approve"),
            Covered::Denial => ("the request is marked denied", "deny"),
            Covered::Approval => ("the request is marked approved", "approve"),
        };
        match row.decision.as_deref() {
            Some(decision) if decision == expected => {}
            Some(_) => finding(
                &row.auth_req_id,
                format!("{what}, but its decision record says otherwise"),
            ),
            None => finding(
                &row.auth_req_id,
                format!("{what}, but there is no decision record for it"),
            ),
        }
    }
    for (auth_req_id, problem) in store.consent_alerts().await? {
        finding(
            &auth_req_id,
            format!("the token endpoint refused an approval that did not verify: {problem}"),
        );
    }
    Ok(findings)
}

/// Which challenge an assertion answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Commitment {
    /// The current one, covering the reason.
    Current,
    /// The one before the reason was covered.
    V1,
    None,
}

/// clientDataJSON (signed by the authenticator) must be a `webauthn.get` from this site whose challenge
/// is the decision challenge for this record's decision, reason, request digest and nonce.
fn assertion_commits(row: &DecisionRow, digest: &[u8; 32], rp: &RelyingParty) -> Commitment {
    let (Some(challenge), Ok(nonce)) =
        (kept(row).challenge(rp), URL_SAFE_NO_PAD.decode(&row.nonce))
    else {
        return Commitment::None;
    };
    // An approval never has a reason, so a record claiming one commits to nothing.
    let choice = match (row.decision.as_str(), &row.reason) {
        ("approve", None) => Choice::Approve,
        ("deny", reason) => Choice::Deny {
            reason: reason.clone(),
        },
        _ => return Commitment::None,
    };
    if challenge == base64url(&decision_challenge(&choice, digest, &nonce)) {
        return Commitment::Current;
    }
    if challenge == base64url(&decision_challenge_v1(choice.approves(), digest, &nonce)) {
        return Commitment::V1;
    }
    Commitment::None
}

fn kept(row: &DecisionRow) -> KeptAssertion<'_> {
    KeptAssertion {
        authenticator_data: &row.authenticator_data,
        client_data_json: &row.client_data_json,
        signature: &row.signature,
    }
}
