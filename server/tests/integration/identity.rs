//! Invitations, enrollment and the session store, on both databases (the browser flows themselves are
//! in end2end/tests/passkeys.spec.ts).
use server::{
    clock::Clock,
    identity::{
        accounts::AdditionRefused,
        approvers::Role,
        invitations,
        provenance::{Authorisation, Provenance},
    },
    secrets::random_id,
    store::{approvers::ApproverRow, invitations::Enrollment, passkeys::PasskeyRow},
};
use tower_sessions::{session::Record, SessionStore};

use crate::{common::*, on_both_databases};

on_both_databases!(
    an_invitation_enrolls_once_and_only_before_it_expires,
    an_invitation_never_adds_a_passkey_to_an_enrolled_approver,
    a_passkey_is_added_only_when_one_the_approver_has_authorises_that_very_key,
    the_first_admin_link_exists_only_while_there_are_no_approvers,
    sessions_are_stored_loaded_and_deleted,
    a_database_writer_mints_no_session,
    a_signed_out_ceremony_is_sealed_in_time_and_finishes_once,
);

fn new_approver(email: &str) -> ApproverRow {
    ApproverRow {
        id: random_id(),
        email: email.into(),
        name: "Ann".into(),
        role: "approver".into(),
        user_code_hash: None,
        disabled: 0,
        created_at: 0,
    }
}

fn passkey(approver_id: &str) -> PasskeyRow {
    PasskeyRow {
        credential_id: random_id(),
        approver_id: approver_id.into(),
        name: "Laptop".into(),
        passkey: "{}".into(),
        backup_state: 0,
        created_at: 0,
        last_used_at: None,
        suspended_at: None,
        suspended_reason: None,
    }
}

async fn enroll(
    h: &Harness,
    token_hash: &str,
    now: i64,
    approver: &ApproverRow,
    create: bool,
    passkey: &PasskeyRow,
) -> Enrollment {
    h.store
        .enroll(token_hash, now, approver, create, passkey, &entry(passkey))
        .await
        .unwrap()
}

/// Issue 22: a session alone never adds a signing passkey. An addition needs a user-verified
/// assertion by a usable passkey the approver already has, over the addition challenge for exactly
/// the new key; it is sealed with that authorisation as the key's provenance, `audit verify` checks
/// it, and the approver is told by e-mail.
async fn a_passkey_is_added_only_when_one_the_approver_has_authorises_that_very_key(db: Db) {
    let (url, mut mails) = crate::notify::smtp_sink().await;
    let h = Harness::with_config(db, |c| c.smtp_url = Some(url)).await;
    let accounts = &h.server.accounts;
    let jane = h.approver(APPROVER, None).await;
    let mallory = h.approver("mallory@example.com", None).await;
    register_passkey(
        &h,
        &passkey_row("TGFwdG9w", &jane.id, TEST_PASSKEY),
        TEST_PASSKEY,
    )
    .await;
    register_passkey(&h, &passkey_row("T2xk", &jane.id, 5), 5).await;
    h.store
        .suspend_passkey("T2xk", "signature counter went backwards", 1)
        .await
        .unwrap();
    register_passkey(&h, &passkey_row("TWFsbG9yeQ", &mallory.id, 9), 9).await;
    let phone = new_passkey("UGhvbmU", &jane.id, 11);
    let key = test_public_key(11);
    let now = h.clock.now();
    let add = |by: &'static str, a: Authorisation| accounts.add_passkey(&phone, by, a, now);

    // Mallory's passkey, signing correctly: it is not one of Jane's.
    let by_mallory = addition_authorisation("TWFsbG9yeQ", 9, &jane.id, "UGhvbmU", &key);
    assert_eq!(
        add("TWFsbG9yeQ", by_mallory).await.unwrap(),
        Err(AdditionRefused::NotAuthorised)
    );
    // Jane's suspended passkey: it may not sign anything.
    let by_old = addition_authorisation("T2xk", 5, &jane.id, "UGhvbmU", &key);
    assert_eq!(
        add("T2xk", by_old).await.unwrap(),
        Err(AdditionRefused::NotAuthorised)
    );
    // The new passkey vouching for itself.
    let by_itself = addition_authorisation("UGhvbmU", 11, &jane.id, "UGhvbmU", &key);
    assert_eq!(
        add("UGhvbmU", by_itself).await.unwrap(),
        Err(AdditionRefused::NotAuthorised)
    );
    // Laptop's genuine confirmation of another key, replayed for this one.
    let for_another = addition_authorisation("TGFwdG9w", TEST_PASSKEY, &jane.id, "T3RoZXI", &key);
    assert_eq!(
        add("TGFwdG9w", for_another).await.unwrap(),
        Err(AdditionRefused::Authorisation(
            "the authorising assertion does not commit to adding this key"
        ))
    );
    // A confirmation made up without Laptop's private key.
    let forged = addition_authorisation("TGFwdG9w", 9, &jane.id, "UGhvbmU", &key);
    assert_eq!(
        add("TGFwdG9w", forged).await.unwrap(),
        Err(AdditionRefused::Authorisation(
            "the passkey signature does not verify"
        ))
    );
    assert!(h.store.passkey("UGhvbmU").await.unwrap().is_none());
    assert!(h.store.key_entry("UGhvbmU").await.unwrap().is_none());

    // Laptop confirms exactly this key: added, with the authorisation sealed as its provenance.
    let confirmed = addition_authorisation("TGFwdG9w", TEST_PASSKEY, &jane.id, "UGhvbmU", &key);
    assert_eq!(add("TGFwdG9w", confirmed.clone()).await.unwrap(), Ok(()));
    assert!(accounts.passkey("UGhvbmU").await.unwrap().is_some());
    assert_eq!(
        accounts.provenance_of("UGhvbmU").await.unwrap(),
        Some(Provenance::Addition {
            authorised_by: "TGFwdG9w".into(),
            assertion: confirmed.clone()
        })
    );
    assert_eq!(
        add("TGFwdG9w", confirmed).await.unwrap(),
        Err(AdditionRefused::Registered)
    );
    assert_eq!(
        audit_problems(&h.store).await,
        Vec::<(String, String)>::new()
    );
    assert!(audit_report(&h.store, None)
        .await
        .keys_without_provenance
        .is_empty());

    let mail = tokio::time::timeout(std::time::Duration::from_secs(10), mails.recv())
        .await
        .expect("an e-mail within 10 s")
        .unwrap()
        .replace("=\n", "");
    assert!(mail.contains(&format!("RCPT TO:<{APPROVER}>")), "{mail}");
    assert!(
        mail.contains("Subject: A passkey was added to your account: Phone"),
        "{mail}"
    );
    assert!(mail.contains("http://localhost:3000/account"), "{mail}");

    // From below: an entry sealed with an authorisation that does not cover its key (a server
    // holding the signing key, misused) vouches for nothing, and the audit says why.
    seal_misauthorised_entry(&h, &jane.id, &key).await;
    let problems = audit_problems(&h.store).await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].0.contains("(UGxhbnRlZA)"), "{problems:?}");
    assert_eq!(
        problems[0].1,
        "the authorising assertion does not commit to adding this key"
    );
}

/// Invitations enroll a first passkey only: refused when issued for an approver who has one, and
/// refused again by the store when the link exists anyway (issued before the approver enrolled, or
/// written straight into the database), while an approver added without a passkey enrolls.
async fn an_invitation_never_adds_a_passkey_to_an_enrolled_approver(db: Db) {
    let h = Harness::new(db).await;
    let now = h.clock.now();
    // Someone added with `approver add` has no passkey yet: their invitation enrolls the first.
    let added = new_approver("added@example.com");
    h.store.insert_approver(&added).await.unwrap();
    assert_eq!(
        invitations::check_invitee(&h.store, "added@example.com")
            .await
            .unwrap(),
        Ok(())
    );
    // Two links while they have none, as a slow admin or a database writer might leave them.
    let link = || {
        h.server.invitations.create(
            Some("added@example.com"),
            None,
            Role::Approver,
            None,
            now,
            invitations::INVITATION_TTL_MS,
        )
    };
    let token = link().await.unwrap();
    let other_token = link().await.unwrap();
    let first = passkey(&added.id);
    let second = passkey(&added.id);
    assert_eq!(
        enroll(
            &h,
            &h.server.invitations.digest(&token),
            now,
            &added,
            false,
            &first
        )
        .await,
        Enrollment::Enrolled
    );
    // A second link issued while they had none adds nothing once they have one.
    assert_eq!(
        enroll(
            &h,
            &h.server.invitations.digest(&other_token),
            now,
            &added,
            false,
            &second
        )
        .await,
        Enrollment::HasPasskey
    );
    assert_eq!(h.store.passkeys_of(&added.id).await.unwrap().len(), 1);
    assert!(h
        .store
        .passkey(&second.credential_id)
        .await
        .unwrap()
        .is_none());
    let unused = h
        .store
        .invitation(&h.server.invitations.digest(&other_token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unused.used_at, None);
    // Issuing one now is refused, whatever the case of the address.
    assert!(invitations::check_invitee(&h.store, "Added@Example.com")
        .await
        .unwrap()
        .unwrap_err()
        .contains("already has a passkey"));
}

async fn an_invitation_enrolls_once_and_only_before_it_expires(db: Db) {
    let h = Harness::new(db).await;
    let now = h.clock.now();
    let token = h
        .server
        .invitations
        .create(
            Some("Ann@Example.com"),
            Some("Ann"),
            Role::Approver,
            None,
            now,
            invitations::INVITATION_TTL_MS,
        )
        .await
        .unwrap();
    let row = h
        .store
        .invitation(&h.server.invitations.digest(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.email.as_deref(), Some("ann@example.com"));
    assert_ne!(row.token_hash, token, "only a hash of the token is stored");
    assert_eq!(row.expires_at - row.created_at, 24 * 3600 * 1000);
    assert!(invitations::check(Some(&invitations::Invitation::of(row.clone())), now).is_ok());
    assert!(invitations::check(
        Some(&invitations::Invitation::of(row.clone())),
        now + 24 * 3600 * 1000
    )
    .unwrap_err()
    .contains("expired"));
    assert!(invitations::check(None, now)
        .unwrap_err()
        .contains("not valid"));

    let ann = new_approver("ann@example.com");
    let ann_passkey = passkey(&ann.id);
    assert_eq!(
        enroll(&h, &row.token_hash, now, &ann, true, &ann_passkey).await,
        Enrollment::Enrolled
    );
    assert_eq!(h.store.passkeys_of(&ann.id).await.unwrap().len(), 1);
    let used = h.store.invitation(&row.token_hash).await.unwrap().unwrap();
    assert!(
        invitations::check(Some(&invitations::Invitation::of(used.clone())), now)
            .unwrap_err()
            .contains("already been used")
    );
    // A second enrollment with the same link changes nothing, not even a half-made approver.
    let other = new_approver("other@example.com");
    let other_passkey = passkey(&other.id);
    assert_eq!(
        enroll(&h, &row.token_hash, now, &other, true, &other_passkey).await,
        Enrollment::InvitationSpent
    );
    assert!(h.store.approver(&other.id).await.unwrap().is_none());

    let late = h
        .server
        .invitations
        .create(
            Some("late@example.com"),
            None,
            Role::Admin,
            None,
            now,
            60_000,
        )
        .await
        .unwrap();
    let late_approver = new_approver("late@example.com");
    let late_passkey = passkey(&late_approver.id);
    assert_eq!(
        enroll(
            &h,
            &h.server.invitations.digest(&late),
            now + 60_000,
            &late_approver,
            true,
            &late_passkey
        )
        .await,
        Enrollment::InvitationSpent
    );
    assert!(h.store.approver(&late_approver.id).await.unwrap().is_none());

    // The last passkey cannot be removed.
    let only = h.store.passkeys_of(&ann.id).await.unwrap().remove(0);
    assert!(!h
        .store
        .remove_passkey(&ann.id, &only.credential_id)
        .await
        .unwrap());
    let second = passkey(&ann.id);
    h.store
        .insert_passkey(&second, &entry(&second))
        .await
        .unwrap();
    assert!(h
        .store
        .remove_passkey(&ann.id, &only.credential_id)
        .await
        .unwrap());
    // Its key stays in the registry, for auditing the decisions it signed.
    let kept = h
        .store
        .key_entry(&only.credential_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (kept.approver_id, kept.public_key),
        (ann.id.clone(), "{}".to_owned())
    );
}

async fn the_first_admin_link_exists_only_while_there_are_no_approvers(db: Db) {
    let h = Harness::new(db).await;
    let token = h
        .server
        .invitations
        .first_admin_link(h.clock.now())
        .await
        .unwrap()
        .expect("a first-admin link");
    let row = h
        .store
        .invitation(&h.server.invitations.digest(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.email.as_deref(), row.role.as_str()), (None, "admin"));
    // A restart prints a new link, and the old one stops working: one live link at a time.
    h.clock.advance_secs(1);
    let again = h
        .server
        .invitations
        .first_admin_link(h.clock.now())
        .await
        .unwrap()
        .expect("a new first-admin link");
    let invitation = |token: String| {
        let invitations = h.server.invitations.clone();
        async move { invitations.find(&token).await.unwrap().unwrap() }
    };
    let (old, new) = (invitation(token).await, invitation(again).await);
    let now = h.clock.now();
    assert!(invitations::check(Some(&invitations::Invitation::of(old.clone())), now).is_err());
    assert!(invitations::check(Some(&invitations::Invitation::of(new.clone())), now).is_ok());
    assert_eq!(
        invitations::check_open(&h.store, &new).await.unwrap(),
        Ok(())
    );
    // Once anyone is enrolled, the open link is refused: it would let whoever holds it give that
    // person's e-mail and add a passkey to their account.
    h.approver(APPROVER, None).await;
    assert!(invitations::check_open(&h.store, &new)
        .await
        .unwrap()
        .is_err());
    assert!(h
        .server
        .invitations
        .first_admin_link(h.clock.now())
        .await
        .unwrap()
        .is_none());
}

async fn sessions_are_stored_loaded_and_deleted(db: Db) {
    let h = Harness::new(db).await;
    let sessions = h.server.sessions.clone();
    let mut record = Record {
        id: Default::default(),
        data: [(
            "signed_in".to_owned(),
            serde_json::json!({"approver_id": "a"}),
        )]
        .into_iter()
        .collect(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::minutes(30),
    };
    sessions.create(&mut record).await.unwrap();
    let loaded = sessions.load(&record.id).await.unwrap().expect("stored");
    assert_eq!(loaded.data, record.data);
    // The database holds a hash of the id, not the cookie's value.
    let (key,): (String,) = sqlx::query_as("SELECT id FROM sessions")
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    assert_ne!(key, record.id.to_string());
    assert_eq!(key, sessions.row_key(&record.id));
    assert_eq!(key.len(), 64);
    record.expiry_date = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    sessions.save(&record).await.unwrap();
    assert!(
        sessions.load(&record.id).await.unwrap().is_none(),
        "an expired session is not loaded"
    );
    sessions.delete(&record.id).await.unwrap();
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions")
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);

    // "Sign out everywhere" moves the approver's epoch, which every older session carries.
    let jane = h.approver(APPROVER, None).await;
    let before = h.store.session_epoch(&jane.id).await.unwrap();
    h.store.bump_session_epoch(&jane.id).await.unwrap();
    assert_eq!(
        h.store.session_epoch(&jane.id).await.unwrap(),
        before.map(|e| e + 1)
    );
}

/// A key registry entry for `row`, as the store sees it (sealing is `identity::registry`'s, tested
/// with the whole server).
fn entry(
    row: &PasskeyRow,
) -> impl Fn(&str) -> server::store::StoreResult<server::store::key_registry::KeyEntryRow>
       + Send
       + Sync
       + '_ {
    move |prev: &str| {
        Ok(server::store::key_registry::KeyEntryRow {
            seq: 0,
            credential_id: row.credential_id.clone(),
            approver_id: row.approver_id.clone(),
            public_key: "{}".into(),
            registered_at: row.created_at,
            provenance: None,
            prev_hash: prev.into(),
            entry_hash: "unsealed".into(),
            jws: "unsealed".into(),
        })
    }
}

/// What `/inbox` answers the browser with `cookie`: 200 when it is a session, a redirect to sign-in
/// otherwise.
async fn inbox_with(h: &Harness, cookie: &str) -> axum::http::StatusCode {
    let request = axum::http::Request::get("/inbox")
        .header("cookie", cookie)
        .body(axum::body::Body::empty())
        .unwrap();
    h.send(request).await.status
}

async fn write_session(h: &Harness, row_key: &str, data: &str) {
    sqlx::query("INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3)")
        .bind(row_key)
        .bind(data)
        .bind(h.clock.now() + 3_600_000)
        .execute(h.store.pool())
        .await
        .unwrap();
}

/// Issue 22: session rows are keyed by an HMAC of the id and sealed to their row, and a session names
/// the passkey that made it. A database writer who inserts a row, even under the right key, signs no
/// one in; nor does moving a genuine session's data to a row of their own, or a session without a
/// passkey.
async fn a_database_writer_mints_no_session(db: Db) {
    use axum::http::StatusCode;
    use tower_sessions::{session::Id, session::Record, SessionStore};
    let h = Harness::new(db).await;
    let jane = h.approver(APPROVER, None).await;
    let genuine = signed_in_session(&h, &jane.id).await;
    assert_eq!(inbox_with(&h, &genuine).await, StatusCode::OK);

    let epoch = h.store.session_epoch(&jane.id).await.unwrap().unwrap();
    let signed_in = serde_json::json!({"signed_in": {"approver_id": jane.id, "epoch": epoch,
        "since": h.clock.now(), "credential_id": test_credential(&jane.id)}})
    .to_string();
    // Under the key an unkeyed hash of the chosen id gives (what the rows were keyed by before).
    let chosen = Id::default();
    let unkeyed = server::secrets::hex(&server::secrets::sha256(
        format!("countersign/session/v1:{chosen}").as_bytes(),
    ));
    write_session(&h, &unkeyed, &signed_in).await;
    let cookie = format!("countersign_session={chosen}");
    assert_ne!(inbox_with(&h, &cookie).await, StatusCode::OK);
    // Even under the right key (which needs the key-encryption key), plain data does not open.
    let chosen = Id::default();
    write_session(&h, &h.server.sessions.row_key(&chosen), &signed_in).await;
    let cookie = format!("countersign_session={chosen}");
    assert_ne!(inbox_with(&h, &cookie).await, StatusCode::OK);
    // Jane's genuine, sealed data copied to the attacker's row opens only in its own row.
    let (sealed,): (String,) = sqlx::query_as("SELECT data FROM sessions WHERE id = $1")
        .bind(
            h.server
                .sessions
                .row_key(&genuine["countersign_session=".len()..].parse().unwrap()),
        )
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    let chosen = Id::default();
    write_session(&h, &h.server.sessions.row_key(&chosen), &sealed).await;
    let cookie = format!("countersign_session={chosen}");
    assert_ne!(inbox_with(&h, &cookie).await, StatusCode::OK);
    // A session that names no passkey, however it was stored, signs no one in.
    let mut record = Record {
        id: Default::default(),
        data: [(
            "signed_in".to_owned(),
            serde_json::json!({"approver_id": jane.id, "epoch": epoch, "since": h.clock.now()}),
        )]
        .into_iter()
        .collect(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::minutes(30),
    };
    h.server.sessions.create(&mut record).await.unwrap();
    let cookie = format!("countersign_session={}", record.id);
    assert_ne!(inbox_with(&h, &cookie).await, StatusCode::OK);
    assert_eq!(inbox_with(&h, &genuine).await, StatusCode::OK);
}

/// A sign-in's or enrollment's state travels sealed in the browser's cookie
/// (`identity::ceremonies`): only this server opens it, only for its kind and in time, and a finish
/// spends it at every instance, so a replayed cookie finishes nothing.
async fn a_signed_out_ceremony_is_sealed_in_time_and_finishes_once(db: Db) {
    use server::identity::ceremonies::{Ceremonies, CeremonyError, Kind, CEREMONY_TTL_MS};
    let h = Harness::new(db).await;
    let ceremonies = Ceremonies::new(std::sync::Arc::new(test_kek()), h.store.clone());
    let now = server::clock::SystemClock.now();
    let sealed = ceremonies.seal(Kind::SignIn, "the challenge".to_owned(), now);
    assert!(!sealed.contains("the challenge"));

    let open = |kind, presented: Option<&str>, at| ceremonies.open::<String>(kind, presented, at);
    assert_eq!(
        open(Kind::SignIn, None, now).unwrap_err(),
        CeremonyError::Missing
    );
    assert_eq!(
        open(Kind::Enrollment, Some(&sealed), now).unwrap_err(),
        CeremonyError::Forged,
        "a sign-in's state does not finish an enrollment"
    );
    let mut altered = sealed.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        open(Kind::SignIn, Some(&altered), now).unwrap_err(),
        CeremonyError::Forged
    );
    assert_eq!(
        open(Kind::SignIn, Some("sealed:v1:made-up"), now).unwrap_err(),
        CeremonyError::Forged
    );
    let other_server = Ceremonies::new(
        std::sync::Arc::new(server::sealing::Kek::from_bytes([9; 32])),
        h.store.clone(),
    );
    assert_eq!(
        other_server
            .open::<String>(Kind::SignIn, Some(&sealed), now)
            .unwrap_err(),
        CeremonyError::Forged
    );
    assert_eq!(
        open(Kind::SignIn, Some(&sealed), now + CEREMONY_TTL_MS).unwrap_err(),
        CeremonyError::Expired
    );

    // Opening writes nothing; the finish's spend does, once, for every instance.
    let (state, ticket) = open(Kind::SignIn, Some(&sealed), now + 1_000).unwrap();
    assert_eq!(state, "the challenge");
    let used = |h: &Harness| {
        let pool = h.store.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM used_jtis")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(used(&h).await, 0);
    ceremonies
        .spend(ticket, now + 1_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(used(&h).await, 1);
    let (_, replayed) = open(Kind::SignIn, Some(&sealed), now + 2_000).unwrap();
    assert_eq!(
        ceremonies.spend(replayed, now + 2_000).await.unwrap(),
        Err(CeremonyError::Spent)
    );
    let another_instance = Ceremonies::new(std::sync::Arc::new(test_kek()), h.store.clone());
    let (_, elsewhere) = another_instance
        .open::<String>(Kind::SignIn, Some(&sealed), now + 3_000)
        .unwrap();
    assert_eq!(
        another_instance
            .spend(elsewhere, now + 3_000)
            .await
            .unwrap(),
        Err(CeremonyError::Spent)
    );
    // A second start is a new ceremony.
    let again = ceremonies.seal(Kind::SignIn, "the challenge".to_owned(), now);
    let (_, fresh) = open(Kind::SignIn, Some(&again), now).unwrap();
    ceremonies.spend(fresh, now).await.unwrap().unwrap();
}
