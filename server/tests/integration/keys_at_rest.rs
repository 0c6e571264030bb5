//! The server's private keys, attacked from below the API: a copy of the database holds them only
//! sealed under the key-encryption key; keys stored in plain text by an earlier version are sealed on
//! start; a key written into the table by hand, or a public key swapped for another, is neither
//! published nor signed with; a client secret's digest written by hand authenticates nobody.
use axum::http::StatusCode;
use josekit::jwk::KeyPair;
use serde_json::Value;
use server::{clock::Clock, sealing::is_sealed, store::Store};

use crate::{common::*, on_both_databases};

on_both_databases!(
    private_keys_are_stored_sealed,
    plain_keys_from_an_earlier_version_are_sealed_only_when_the_operator_says_so,
    a_key_written_by_hand_is_never_used,
    a_swapped_public_key_is_never_published,
    another_key_encryption_key_opens_nothing,
    earlier_passkey_keys_are_sealed_into_the_registry_once_and_only_on_command,
    a_database_writer_cannot_set_a_client_secret_they_know
);

async fn stored_private_keys(store: &Store) -> Vec<String> {
    let mut keys: Vec<String> = sqlx::query_scalar("SELECT private_jwk FROM signing_keys")
        .fetch_all(store.pool())
        .await
        .unwrap();
    keys.extend(
        sqlx::query_scalar::<_, String>("SELECT private_key FROM vapid_keys")
            .fetch_all(store.pool())
            .await
            .unwrap(),
    );
    keys
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// An ES256 key pair as an attacker would make one: (private JWK, public JWK), both with `kid`.
fn attacker_key(kid: &str) -> (String, String) {
    let pair = josekit::jws::ES256.generate_key_pair().unwrap();
    let mut private = pair.to_jwk_private_key();
    private.set_key_id(kid);
    let mut public = pair.to_jwk_public_key();
    public.set_key_id(kid);
    public.set_algorithm("ES256");
    public.set_key_use("sig");
    (private.to_string(), public.to_string())
}

async fn private_keys_are_stored_sealed(db: Db) {
    let h = Harness::new(db).await;
    let keys = stored_private_keys(&h.store).await;
    assert_eq!(keys.len(), 2, "one signing key and the VAPID key");
    for key in keys {
        assert!(is_sealed(&key), "stored sealed: {key}");
        assert!(!key.contains("\"d\""), "no JWK private part in the clear");
    }
}

/// Issue 22: a start never seals what the database holds (a planted plain key would be adopted and
/// published); it refuses and names `countersign keys seal-legacy`, which seals an earlier version's
/// keys once.
async fn plain_keys_from_an_earlier_version_are_sealed_only_when_the_operator_says_so(db: Db) {
    let test_db = TestDb::new(db).await;
    let store = Store::connect(&test_db.url).await.unwrap();
    // What an earlier version stored: both private keys in plain text.
    let (private, public) = attacker_key("old-key");
    sqlx::query("INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk, created_at) VALUES ('old-key', 'ES256', $1, $2, 1)")
        .bind(&private)
        .bind(&public)
        .execute(store.pool())
        .await
        .unwrap();
    let vapid_private = "4jVb0_RZxEbHfpBUaS7nNbKBSJ9xlOGpI8qvVLRGnUQ";
    sqlx::query("INSERT INTO vapid_keys (id, private_key, public_key, created_at) VALUES ('current', $1, 'stale', 1)")
        .bind(vapid_private)
        .execute(store.pool())
        .await
        .unwrap();

    let clock = std::sync::Arc::new(server::clock::ManualClock::new(
        server::clock::SystemClock.now(),
    ));
    let refused = server::build(&test_config(), store.clone(), clock.clone())
        .await
        .err()
        .expect("a start refuses plain keys")
        .to_string();
    assert!(refused.contains("keys seal-legacy"), "{refused}");
    assert!(
        stored_private_keys(&store).await.contains(&private),
        "nothing was sealed by the start"
    );
    let sealed = server::legacy::seal_legacy(&store, std::sync::Arc::new(test_kek()), clock.now())
        .await
        .unwrap();
    assert_eq!(
        sealed,
        server::legacy::Sealed {
            signing_keys: 1,
            vapid_key: true,
            passkey_keys: 0,
            client_secrets: 0
        }
    );
    let built = server::build(&test_config(), store.clone(), clock)
        .await
        .unwrap();
    for key in stored_private_keys(&store).await {
        assert!(is_sealed(&key), "sealed by seal-legacy: {key}");
    }
    assert_eq!(
        built.ciba.keys().active_kid(),
        "old-key",
        "the same key, kept"
    );
    let token = built
        .ciba
        .keys()
        .sign("JWT", serde_json::Map::new())
        .unwrap();
    assert!(built.ciba.keys().verify(&token, "JWT").is_ok());
    assert_ne!(
        built.pusher.public_key(),
        "stale",
        "the VAPID public key is derived from the private one"
    );
}

async fn a_key_written_by_hand_is_never_used(db: Db) {
    let h = Harness::new(db).await;
    let original = h.server.ciba.keys().active_kid();
    // The attacker knows this key's private half and makes it the active one, in plain text as an
    // earlier version would have stored it.
    let (private, public) = attacker_key("forged");
    sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
        .bind(h.clock.now())
        .execute(h.store.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk, created_at) VALUES ('forged', 'ES256', $1, $2, $3)")
        .bind(&private)
        .bind(&public)
        .bind(h.clock.now())
        .execute(h.store.pool())
        .await
        .unwrap();

    let refused = h.server.ciba.refresh().await.unwrap_err().to_string();
    assert!(refused.contains("plain text"), "{refused}");
    assert_eq!(
        h.server.ciba.keys().active_kid(),
        original,
        "still signs with its own key"
    );
    let jwks = h.get("/jwks.json").await;
    assert_eq!(jwks.status, StatusCode::OK);
    assert_eq!(kids(&jwks.json), [original]);
    assert!(
        server::build(&test_config(), h.store.clone(), h.clock.clone())
            .await
            .is_err(),
        "a new instance refuses to start rather than sign with it"
    );
    for key in stored_private_keys(&h.store).await {
        if key != private {
            assert!(is_sealed(&key));
        }
    }
    assert!(
        stored_private_keys(&h.store).await.contains(&private),
        "the planted key is left as found, for the operator to see"
    );
}

async fn a_swapped_public_key_is_never_published(db: Db) {
    let h = Harness::new(db).await;
    let kid = h.server.ciba.keys().active_kid();
    let (_, attacker_public) = attacker_key(&kid);
    sqlx::query("UPDATE signing_keys SET public_jwk = $1 WHERE kid = $2")
        .bind(&attacker_public)
        .bind(&kid)
        .execute(h.store.pool())
        .await
        .unwrap();
    let refused = h.server.ciba.refresh().await.unwrap_err().to_string();
    assert!(
        refused.contains("not the one its private key makes"),
        "{refused}"
    );
    let published = h.get("/jwks.json").await.json;
    let x = |jwk: &Value| jwk["x"].as_str().unwrap().to_owned();
    let attacker: Value = serde_json::from_str(&attacker_public).unwrap();
    assert_ne!(x(&published["keys"][0]), x(&attacker));
}

async fn another_key_encryption_key_opens_nothing(db: Db) {
    let h = Harness::new(db).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config();
    config.data.key_file = Some(dir.path().join("other.key"));
    let Err(error) = server::build(&config, h.store.clone(), h.clock.clone()).await else {
        panic!("started with another key-encryption key");
    };
    let error = error.to_string();
    assert!(
        error.contains("not sealed by this server's key-encryption key"),
        "{error}"
    );
}

async fn earlier_passkey_keys_are_sealed_into_the_registry_once_and_only_on_command(db: Db) {
    let test_db = TestDb::new(db).await;
    let store = Store::connect(&test_db.url).await.unwrap();
    // What an earlier version left: an approver whose key sits in the unsealed `passkey_keys`.
    let insert_key = |credential: &'static str| {
        let store = store.clone();
        async move {
            sqlx::query("INSERT INTO passkey_keys (credential_id, approver_id, public_key, registered_at) VALUES ($1, 'a1', $2, 5)")
                .bind(credential)
                .bind(test_public_key(TEST_PASSKEY))
                .execute(store.pool())
                .await
                .unwrap();
        }
    };
    sqlx::query("INSERT INTO approvers (id, email, name, role, disabled, created_at) VALUES ('a1', 'old@example.com', 'Old', 'approver', 0, 1)")
        .execute(store.pool())
        .await
        .unwrap();
    insert_key("old-credential").await;
    let clock = std::sync::Arc::new(server::clock::ManualClock::new(
        server::clock::SystemClock.now(),
    ));
    // A start refuses rather than seal them: the same database could be one whose registry was
    // emptied from below, with a planted key among its passkeys.
    let refused = server::build(&test_config(), store.clone(), clock.clone())
        .await
        .err()
        .expect("a start refuses an empty registry beside passkey keys")
        .to_string();
    assert!(refused.contains("keys seal-legacy"), "{refused}");
    assert_eq!(store.key_registry_len().await.unwrap(), 0);
    let kek = std::sync::Arc::new(test_kek());
    let sealed = server::legacy::seal_legacy(&store, kek.clone(), clock.now())
        .await
        .unwrap();
    assert_eq!(sealed.passkey_keys, 1);
    let built = server::build(&test_config(), store.clone(), clock.clone())
        .await
        .unwrap();
    let entries = store.key_registry().await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (
            entries[0].credential_id.as_str(),
            entries[0].approver_id.as_str()
        ),
        ("old-credential", "a1")
    );
    assert!(built
        .ciba
        .key_registry()
        .is_registered("old-credential", "a1", &test_public_key(TEST_PASSKEY))
        .await
        .unwrap());
    assert!(audit_problems(&store).await.is_empty());

    // Later, a key added to the old table is not taken in, not even by the command: the registry is
    // filled once.
    insert_key("planted").await;
    assert_eq!(
        server::legacy::seal_legacy(&store, kek, clock.now())
            .await
            .unwrap(),
        server::legacy::Sealed::default()
    );
    let again = server::build(&test_config(), store.clone(), clock)
        .await
        .unwrap();
    assert_eq!(store.key_registry().await.unwrap().len(), 1);
    assert!(!again
        .ciba
        .key_registry()
        .is_registered("planted", "a1", &test_public_key(TEST_PASSKEY))
        .await
        .unwrap());
}

/// Client secrets are stored as keyed digests (`ciba::clients::secrets`): a database writer who
/// writes the digest of a secret they chose into an agent's row cannot authenticate as the agent,
/// and an earlier version's unkeyed digest counts only once the operator converts it.
async fn a_database_writer_cannot_set_a_client_secret_they_know(db: Db) {
    let h = Harness::new(db).await;
    h.approver(APPROVER, None).await;
    let agent = h.poll_client().await;
    assert_eq!(
        h.bc_authorize(&agent, APPROVER, &[]).await.status,
        StatusCode::OK
    );
    let write = |digest: String| {
        let (h, id) = (&h, agent.id.clone());
        async move {
            sqlx::query("UPDATE clients SET secret_hash = $1 WHERE id = $2")
                .bind(digest)
                .bind(id)
                .execute(h.store.pool())
                .await
                .unwrap();
            h.server.ciba.refresh().await.unwrap();
        }
    };
    let attacker = Creds {
        secret: "the attacker's own secret".into(),
        ..agent.clone()
    };
    for planted in [
        server::secrets::hash_secret(&attacker.secret),
        format!(
            "hmac-sha256:{}",
            server::secrets::hash_secret(&attacker.secret)
        ),
        server::ciba::ClientSecrets::new(&server::sealing::Kek::from_bytes([7; 32]))
            .stored(&attacker.secret),
    ] {
        write(planted).await;
        h.bc_authorize(&attacker, APPROVER, &[])
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }

    // What an earlier version stored (the plain SHA-256 of the real secret) is refused, and named,
    // until `countersign keys seal-legacy` keys it; then the agent's own secret works again.
    write(server::secrets::hash_secret(&agent.secret)).await;
    h.bc_authorize(&agent, APPROVER, &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(
        server::legacy::unkeyed_client_secrets(&h.store)
            .await
            .unwrap(),
        vec![agent.id.clone()]
    );
    let kek = std::sync::Arc::new(test_kek());
    let sealed = server::legacy::seal_legacy(&h.store, kek.clone(), h.clock.now())
        .await
        .unwrap();
    assert_eq!(sealed.client_secrets, 1);
    h.server.ciba.refresh().await.unwrap();
    assert_eq!(
        h.bc_authorize(&agent, APPROVER, &[]).await.status,
        StatusCode::OK
    );
    assert!(server::legacy::unkeyed_client_secrets(&h.store)
        .await
        .unwrap()
        .is_empty());
    let again = server::legacy::seal_legacy(&h.store, kek, h.clock.now())
        .await
        .unwrap();
    assert_eq!(again.client_secrets, 0, "converted once");
}
