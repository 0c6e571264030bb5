//! The test harness: a fresh database per test on SQLite (a temporary file, WAL) or PostgreSQL (a new
//! database on the local server, dropped afterwards), the real router driven in-process, and a clock
//! the test moves.
use std::sync::Arc;

use axum::{
    body::Body,
    http::{header, HeaderMap, Request, StatusCode},
};
use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::Value;
use server::{
    ciba::{clients, AuthMethod, DeliveryMode},
    clock::{Clock, ManualClock, SystemClock},
    config::ServeConfig,
    identity::approvers::{self, Approver, NewApprover, Role},
    store::Store,
    Server,
};
use sqlx::{Connection, Executor, PgConnection};
use tower::ServiceExt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs the named async test function once on each database.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::within_limit(super::$name($crate::common::Db::Sqlite)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::within_limit(super::$name($crate::common::Db::Postgres)).await
            }
        }
    )+};
}

/// A test that has not finished in this long is stuck: it fails, naming itself, rather than hold
/// the whole run until CI's limit (the slowest test takes seconds).
const TEST_LIMIT: std::time::Duration = std::time::Duration::from_secs(240);

pub async fn within_limit(test: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(TEST_LIMIT, test).await.is_err() {
        panic!("the test did not finish within {TEST_LIMIT:?}: something it awaits never came");
    }
}

fn postgres_admin_url() -> String {
    std::env::var("COUNTERSIGN_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(db: Db) -> TestDb {
        match db {
            Db::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("countersign.db").display());
                TestDb {
                    url,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Db::Postgres => {
                let admin = postgres_admin_url();
                let name = format!(
                    "countersign_test_{}",
                    server::secrets::random_token(9)
                        .to_lowercase()
                        .replace(['-', '_'], "x")
                );
                let mut conn = PgConnection::connect(&admin)
                    .await
                    .expect("PostgreSQL at 127.0.0.1:5432 (run `make test`, which starts it)");
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .unwrap();
                let mut url = url::Url::parse(&admin).unwrap();
                url.set_path(&name);
                TestDb {
                    url: url.to_string(),
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside async context guarantees, so use a private runtime on a plain thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&postgres_admin_url()).await {
                    let _ = conn
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                }
            });
        })
        .join();
    }
}

pub fn test_config() -> ServeConfig {
    use clap::Parser;
    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        config: ServeConfig,
    }
    let mut config = Wrapper::parse_from(["test"]).config;
    // One key-encryption key for every test server, outside the source tree (see `sealing`).
    config.data.key_file = Some(test_key_file());
    config
}

pub fn test_key_file() -> std::path::PathBuf {
    std::env::temp_dir().join("countersign-tests.key")
}

pub fn test_kek() -> server::sealing::Kek {
    server::sealing::Kek::load(&server::sealing::KekSource::File(test_key_file())).unwrap()
}

/// Client secrets as the test servers store them (under `test_kek`).
pub fn client_secrets() -> clients::ClientSecrets {
    clients::ClientSecrets::new(&test_kek())
}

/// A client's credentials as the tests present them.
#[derive(Clone, Debug)]
pub struct Creds {
    pub id: String,
    pub secret: String,
}

pub struct Harness {
    pub server: Server,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    test_db: TestDb,
}

pub const APPROVER: &str = "jane@example.com";

impl Harness {
    pub async fn new(db: Db) -> Harness {
        Harness::with_config(db, |_| {}).await
    }

    pub async fn with_config(db: Db, adjust: impl FnOnce(&mut ServeConfig)) -> Harness {
        let test_db = TestDb::new(db).await;
        let mut config = test_config();
        adjust(&mut config);
        let store = Store::connect(&test_db.url).await.unwrap();
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        let server = server::build(&config, store.clone(), clock.clone())
            .await
            .unwrap();
        Harness {
            server,
            store,
            clock,
            test_db,
        }
    }

    pub fn url(&self) -> &str {
        &self.test_db.url
    }

    /// A resource server: a tool agents call, allowed to introspect their tokens.
    pub async fn resource_server(&self) -> Creds {
        let new = clients::NewClient {
            name: "Payments API".into(),
            delivery_mode: DeliveryMode::Poll,
            notify_url: None,
            scopes: vec![],
            auth_method: AuthMethod::ClientSecretBasic,
            jwks: None,
            resource_server: true,
            dpop_bound: false,
        };
        let creds = self.register(new).await;
        Creds {
            id: creds.client_id,
            secret: creds.client_secret.unwrap(),
        }
    }

    /// Registers `new` as `client create` would, under the test key.
    pub async fn register(&self, new: clients::NewClient) -> clients::ClientCredentials {
        clients::register(
            &self.store,
            &client_secrets(),
            new,
            Default::default(),
            self.clock.now(),
        )
        .await
        .unwrap()
    }

    pub async fn client(&self, delivery: DeliveryMode, auth: AuthMethod) -> Creds {
        let new = clients::NewClient {
            name: "Refund agent".into(),
            delivery_mode: delivery,
            notify_url: (delivery != DeliveryMode::Poll).then(|| "https://agent.example/cb".into()),
            scopes: vec!["email".into()],
            auth_method: auth,
            jwks: None,
            resource_server: false,
            dpop_bound: false,
        };
        let creds = self.register(new).await;
        Creds {
            id: creds.client_id,
            secret: creds.client_secret.unwrap_or_default(),
        }
    }

    pub async fn poll_client(&self) -> Creds {
        self.client(DeliveryMode::Poll, AuthMethod::ClientSecretBasic)
            .await
    }

    pub async fn approver(&self, email: &str, user_code: Option<&str>) -> Approver {
        let new = NewApprover {
            email: email.into(),
            name: "Jane Doe".into(),
            role: Role::Approver,
            user_code: user_code.map(Into::into),
        };
        approvers::add(&self.store, new, self.clock.now())
            .await
            .unwrap()
    }

    /// POSTs a form with optional Basic credentials; returns status, headers and the JSON body.
    pub async fn post(&self, path: &str, creds: Option<&Creds>, form: &[(&str, &str)]) -> Response {
        let body = serde_urlencoded::to_string(form).unwrap();
        self.post_raw(
            path,
            creds,
            "application/x-www-form-urlencoded",
            body.into_bytes(),
        )
        .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        creds: Option<&Creds>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Response {
        self.post_with_headers(path, creds, content_type, body, &[])
            .await
    }

    /// [`Harness::post_raw`] with `headers` added (a DPoP proof, say).
    pub async fn post_with_headers(
        &self,
        path: &str,
        creds: Option<&Creds>,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, content_type);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(c) = creds {
            request = request.header(
                header::AUTHORIZATION,
                format!(
                    "Basic {}",
                    STANDARD.encode(format!("{}:{}", c.id, c.secret))
                ),
            );
        }
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn send(&self, request: Request<Body>) -> Response {
        send_to(&self.server, request).await
    }

    /// Another instance of the server on the same database and clock, as a second replica is.
    pub async fn another_instance(&self) -> Server {
        server::build(&test_config(), self.store.clone(), self.clock.clone())
            .await
            .unwrap()
    }
}

/// A form POST to `server`.
pub async fn post_form_to(server: &Server, path: &str, form: &[(&str, &str)]) -> Response {
    let request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(serde_urlencoded::to_string(form).unwrap()))
        .unwrap();
    send_to(server, request).await
}

pub async fn send_to(server: &Server, request: Request<Body>) -> Response {
    {
        let response = server.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 10 << 20)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Response {
            status,
            headers,
            json,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

impl Harness {
    /// A valid backchannel request for `email`, with `extra` parameters added or overriding.
    pub async fn bc_authorize(
        &self,
        creds: &Creds,
        email: &str,
        extra: &[(&str, &str)],
    ) -> Response {
        let details = action_details();
        let mut form: Vec<(&str, &str)> = vec![
            ("scope", "openid email"),
            ("login_hint", email),
            ("authorization_details", &details),
        ];
        for (k, v) in extra {
            form.retain(|(name, _)| name != k);
            if !v.is_empty() {
                form.push((k, v));
            }
        }
        self.post("/bc-authorize", Some(creds), &form).await
    }

    /// Starts a request and returns its auth_req_id, asserting success.
    pub async fn start(&self, creds: &Creds, email: &str) -> String {
        let response = self.bc_authorize(creds, email, &[]).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text);
        response.json["auth_req_id"].as_str().unwrap().to_owned()
    }

    /// A request from `creds` to APPROVER (whose id is `approver_id`), approved with the test passkey.
    pub async fn approved(&self, creds: &Creds, approver_id: &str) -> String {
        self.approved_with(creds, approver_id, &[]).await
    }

    /// [`Harness::approved`], with `extra` backchannel parameters.
    pub async fn approved_with(
        &self,
        creds: &Creds,
        approver_id: &str,
        extra: &[(&str, &str)],
    ) -> String {
        let r = self.bc_authorize(creds, APPROVER, extra).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let id = r.json["auth_req_id"].as_str().unwrap().to_owned();
        self.approve(&id, approver_id).await;
        id
    }

    /// Approves request `id` as `approver_id`, with the test passkey.
    pub async fn approve(&self, id: &str, approver_id: &str) {
        decide(
            &self.server.ciba,
            id,
            approver_id,
            server::ciba::Decision::approve_with_passkey(false),
        )
        .await
        .unwrap();
    }

    pub async fn poll(&self, creds: &Creds, auth_req_id: &str) -> Response {
        self.post(
            "/token",
            Some(creds),
            &[
                ("grant_type", "urn:openid:params:grant-type:ciba"),
                ("auth_req_id", auth_req_id),
            ],
        )
        .await
    }

    /// A token request with the DPoP proofs `proofs` (RFC 9449 §5; usually one).
    pub async fn poll_with_proofs(
        &self,
        creds: &Creds,
        auth_req_id: &str,
        proofs: &[&str],
    ) -> Response {
        let form = [
            ("grant_type", "urn:openid:params:grant-type:ciba"),
            ("auth_req_id", auth_req_id),
        ];
        let headers: Vec<(&str, &str)> = proofs.iter().map(|p| ("DPoP", *p)).collect();
        let body = serde_urlencoded::to_string(form).unwrap().into_bytes();
        self.post_with_headers(
            "/token",
            Some(creds),
            "application/x-www-form-urlencoded",
            body,
            &headers,
        )
        .await
    }

    /// Counts rows of auth_requests matching a WHERE clause (database state assertions).
    pub async fn count_requests(&self, condition: &str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(&format!(
            "SELECT COUNT(*) FROM auth_requests WHERE {condition}"
        ))
        .fetch_one(self.store.pool())
        .await
        .unwrap();
        n
    }
}

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
    pub text: String,
}

impl Response {
    /// Asserts an OAuth error response: status, `error` code and `Cache-Control: no-store`.
    #[track_caller]
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(
            (self.status, self.json["error"].as_str()),
            (status, Some(code)),
            "body: {}",
            self.text
        );
        assert_eq!(self.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
        if status == StatusCode::UNAUTHORIZED {
            assert!(
                self.headers.contains_key(header::WWW_AUTHENTICATE),
                "401 needs WWW-Authenticate"
            );
        }
    }

    pub fn description(&self) -> &str {
        self.json["error_description"].as_str().unwrap_or_default()
    }
}

pub fn action_value() -> Value {
    serde_json::json!([{
        "type": "agent_action",
        "action": "Refund $120.00",
        "target": "jane@example.com for order #1234",
        "consequence": "The money leaves the company account; this cannot be undone.",
        "amount": "120.00",
        "currency": "USD",
        "reversible": false
    }])
}

pub fn action_details() -> String {
    action_value().to_string()
}

/// Decodes a JWT's payload without verifying it (the tests verify signatures separately).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

pub fn header_of(jwt: &str) -> Value {
    let header = jwt.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap()
}

/// Records a decision as the approval page does, with evidence whose clientDataJSON carries the
/// challenge bound to this decision on this request (no real authenticator signs it here; the browser
/// tests cover real assertions).
pub async fn decide(
    ciba: &server::ciba::Ciba,
    id: &str,
    approver_id: &str,
    decision: server::ciba::Decision,
) -> Result<server::store::decisions::DecisionRow, server::ciba::DecisionError> {
    decide_signed(ciba, id, approver_id, decision, TEST_PASSKEY, TEST_PASSKEY).await
}

/// The credential id of an approver's test passkey.
pub fn test_credential(approver_id: &str) -> String {
    format!("test-credential-{approver_id}")
}

/// The seed of the test passkey's P-256 key.
pub const TEST_PASSKEY: u8 = 7;

/// A P-256 signing key derived from `seed`, standing in for an authenticator's.
fn test_key(seed: u8) -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_bytes(&[seed; 32].into()).unwrap()
}

/// The COSE public key of `test_key(seed)`, as the decision record keeps it.
pub fn test_public_key(seed: u8) -> String {
    use webauthn_rs::prelude::{COSEAlgorithm, COSEEC2Key, COSEKey, COSEKeyType, ECDSACurve};
    let point = test_key(seed).verifying_key().to_encoded_point(false);
    let key = COSEKey {
        type_: COSEAlgorithm::ES256,
        key: COSEKeyType::EC_EC2(COSEEC2Key {
            curve: ECDSACurve::SECP256R1,
            x: point.x().unwrap().to_vec(),
            y: point.y().unwrap().to_vec(),
        }),
    };
    serde_json::to_string(&key).unwrap()
}

/// Records a decision with an assertion as an authenticator makes it for http://localhost:3000:
/// clientDataJSON with the bound challenge, authenticatorData for the RP id with UP and UV, and an
/// ES256 signature by `signer`'s key; the record keeps `recorded`'s public key. The key registry has
/// `TEST_PASSKEY`'s key for the credential.
pub async fn decide_signed(
    ciba: &server::ciba::Ciba,
    id: &str,
    approver_id: &str,
    decision: server::ciba::Decision,
    signer: u8,
    recorded: u8,
) -> Result<server::store::decisions::DecisionRow, server::ciba::DecisionError> {
    use server::ciba::record::{decision_challenge, request_digest};
    let nonce = server::secrets::random_bytes::<32>().to_vec();
    let digest = match ciba.store().auth_request(id).await.unwrap() {
        Some(row) => request_digest(&row),
        None => [0; 32],
    };
    let challenge = decision_challenge(&decision.choice(), &digest, &nonce);
    // The approver's passkey, registered once with the test key, as enrollment would.
    let credential_id = test_credential(approver_id);
    let public_key = test_public_key(TEST_PASSKEY);
    let provenance = enrolled();
    let key = server::identity::registry::NewKey {
        credential_id: &credential_id,
        approver_id,
        public_key: &public_key,
        registered_at: 0,
        provenance: Some(&provenance),
    };
    let registered = ciba
        .store()
        .insert_passkey(
            &passkey_row(&credential_id, approver_id, TEST_PASSKEY),
            &ciba.key_registry().sealer(&key),
        )
        .await;
    assert!(matches!(
        registered,
        Ok(()) | Err(server::store::StoreError::Conflict(_))
    ));
    let evidence = test_evidence(credential_id, &challenge, nonce, signer, recorded);
    ciba.record_decision(id, approver_id, decision, &evidence)
        .await
}

/// The evidence of an assertion as an authenticator makes it for http://localhost:3000 over
/// `challenge`: clientDataJSON with the challenge, authenticatorData for the RP id with UP and UV, and
/// an ES256 signature by `test_key(signer)`; the evidence keeps `recorded`'s public key.
pub fn test_evidence(
    credential_id: String,
    challenge: &[u8; 32],
    nonce: Vec<u8>,
    signer: u8,
    recorded: u8,
) -> server::ciba::record::Evidence {
    use p256::ecdsa::signature::Signer;
    let client_data_json = serde_json::json!({
        "type": "webauthn.get",
        "challenge": server::secrets::base64url(challenge),
        "origin": "http://localhost:3000",
    })
    .to_string()
    .into_bytes();
    let mut authenticator_data = server::secrets::sha256(b"localhost").to_vec();
    authenticator_data.extend_from_slice(&[0x05, 0, 0, 0, 0]);
    let mut signed = authenticator_data.clone();
    signed.extend_from_slice(&server::secrets::sha256(&client_data_json));
    let signature: p256::ecdsa::Signature = test_key(signer).sign(&signed);
    server::ciba::record::Evidence {
        credential_id,
        authenticator_data,
        client_data_json,
        signature: signature.to_der().as_bytes().to_vec(),
        nonce,
        public_key: test_public_key(recorded),
    }
}

/// The site the test passkeys belong to, as `audit verify` checks it.
pub fn test_rp() -> server::ciba::audit::RelyingParty {
    server::ciba::audit::RelyingParty::of(&"http://localhost:3000".parse().unwrap())
}

/// What `audit verify` finds (with the key-encryption key, without a checkpoint), as (subject,
/// problem) pairs; the subject is the request's id where there is one.
pub async fn audit_problems(store: &Store) -> Vec<(String, String)> {
    audit_report(store, None)
        .await
        .findings
        .into_iter()
        .map(|f| {
            let subject = f
                .auth_req_id()
                .map_or_else(|| f.about.to_string(), str::to_owned);
            (subject, f.problem)
        })
        .collect()
}

/// `audit verify` with the tests' key-encryption key and, optionally, a checkpoint.
pub async fn audit_report(
    store: &Store,
    checkpoint: Option<String>,
) -> server::ciba::audit::AuditReport {
    let kek = test_kek();
    let inputs = server::ciba::audit::AuditInputs {
        kek: Some(&kek),
        checkpoint,
        checkpoint_dir: None,
    };
    server::ciba::audit::verify(store, &test_rp(), inputs)
        .await
        .unwrap()
}

/// A stored passkey as webauthn-rs keeps it, with `test_key(seed)`'s public key.
pub fn passkey_json(credential_id: &str, seed: u8) -> String {
    let key: Value = serde_json::from_str(&test_public_key(seed)).unwrap();
    serde_json::json!({"cred": {
        "cred_id": credential_id, "cred": key, "counter": 0, "transports": null,
        "user_verified": true, "backup_eligible": false, "backup_state": false,
        "registration_policy": "required",
        "extensions": {"cred_protect": "Ignored", "hmac_create_secret": "NotRequested",
            "appid": "NotRequested", "cred_props": {"Unsigned": {"rk": true}}},
        "attestation": {"data": "None", "metadata": "None"}, "attestation_format": "none",
    }})
    .to_string()
}

/// A passkey as an approver just registered it, whose key is `test_public_key(seed)`.
pub fn new_passkey(
    credential_id: &str,
    approver_id: &str,
    seed: u8,
) -> server::identity::accounts::NewPasskey {
    server::identity::accounts::NewPasskey {
        approver_id: approver_id.into(),
        name: "Phone".into(),
        key: serde_json::from_str(&passkey_json(credential_id, seed)).unwrap(),
    }
}

pub fn passkey_row(
    credential_id: &str,
    approver_id: &str,
    seed: u8,
) -> server::store::passkeys::PasskeyRow {
    server::store::passkeys::PasskeyRow {
        credential_id: credential_id.into(),
        approver_id: approver_id.into(),
        name: "Phone".into(),
        passkey: passkey_json(credential_id, seed),
        backup_state: 0,
        created_at: 0,
        last_used_at: None,
        suspended_at: None,
        suspended_reason: None,
    }
}

/// The provenance test passkeys are registered with, standing in for an enrollment.
pub fn enrolled() -> server::identity::provenance::Provenance {
    server::identity::provenance::Provenance::Invitation {
        invitation: "test-invitation".into(),
        issued_by: None,
    }
}

/// Registers `row`, whose key is `test_public_key(seed)`, as an enrollment does: the passkey and its
/// sealed key registry entry, in one transaction.
pub async fn register_passkey(h: &Harness, row: &server::store::passkeys::PasskeyRow, seed: u8) {
    let public_key = test_public_key(seed);
    let provenance = enrolled();
    let key = server::identity::registry::NewKey {
        credential_id: &row.credential_id,
        approver_id: &row.approver_id,
        public_key: &public_key,
        registered_at: row.created_at,
        provenance: Some(&provenance),
    };
    h.store
        .insert_passkey(row, &h.server.ciba.key_registry().sealer(&key))
        .await
        .unwrap();
}

/// A session cookie for `approver_id`, signed in with their test passkey (registered here if it is
/// not yet), as a passkey sign-in makes it: stored by the server's own session store.
pub async fn signed_in_session(h: &Harness, approver_id: &str) -> String {
    use tower_sessions::{session::Record, SessionStore};
    let credential_id = test_credential(approver_id);
    if h.store.passkey(&credential_id).await.unwrap().is_none() {
        register_passkey(
            h,
            &passkey_row(&credential_id, approver_id, TEST_PASSKEY),
            TEST_PASSKEY,
        )
        .await;
    }
    let epoch = h.store.session_epoch(approver_id).await.unwrap().unwrap();
    let mut record = Record {
        id: Default::default(),
        data: [(
            "signed_in".to_owned(),
            serde_json::json!({"approver_id": approver_id, "epoch": epoch, "since": h.clock.now(),
                "credential_id": credential_id}),
        )]
        .into_iter()
        .collect(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::minutes(30),
    };
    h.server.sessions.create(&mut record).await.unwrap();
    format!("countersign_session={}", record.id)
}

/// An assertion by `test_key(seed)` as credential `by`, over the challenge that authorises adding
/// `credential_id` with `public_key` to `approver_id` (`identity::provenance::addition_challenge`).
pub fn addition_authorisation(
    by: &str,
    seed: u8,
    approver_id: &str,
    credential_id: &str,
    public_key: &str,
) -> server::identity::provenance::Authorisation {
    use server::secrets::base64url;
    let nonce = server::secrets::random_bytes::<32>().to_vec();
    let challenge = server::identity::provenance::addition_challenge(
        approver_id,
        credential_id,
        public_key,
        &nonce,
    );
    let e = test_evidence(by.into(), &challenge, nonce, seed, seed);
    server::identity::provenance::Authorisation {
        nonce: base64url(&e.nonce),
        authenticator_data: base64url(&e.authenticator_data),
        client_data_json: base64url(&e.client_data_json),
        signature: base64url(&e.signature),
    }
}

/// Seals, as the server would (it holds the signing key), a registry entry for `UGxhbnRlZA` with
/// `test_public_key(12)` in `approver_id`'s name, claiming to be authorised by `TGFwdG9w` with a
/// genuine assertion of that passkey over the addition of another key (`UGhvbmU`, `other_key`): the
/// misuse that the audit and the independent verifier must name.
pub async fn seal_misauthorised_entry(h: &Harness, approver_id: &str, other_key: &str) {
    let bad = server::identity::provenance::Provenance::Addition {
        authorised_by: "TGFwdG9w".into(),
        assertion: addition_authorisation(
            "TGFwdG9w",
            TEST_PASSKEY,
            approver_id,
            "UGhvbmU",
            other_key,
        ),
    };
    h.server
        .ciba
        .key_registry()
        .register(&server::identity::registry::NewKey {
            credential_id: "UGxhbnRlZA",
            approver_id,
            public_key: &test_public_key(12),
            registered_at: 0,
            provenance: Some(&bad),
        })
        .await
        .unwrap();
}

/// The passkey seed of the admins the console tests make.
pub const ADMIN_PASSKEY: u8 = 21;

/// An admin with a registered passkey (`test_public_key(ADMIN_PASSKEY)`, credential
/// `test_credential(id)`), as the console's changes need.
pub async fn admin_with_passkey(h: &Harness, email: &str) -> Approver {
    use server::identity::approvers::{self, NewApprover, Role};
    let admin = approvers::add(
        &h.store,
        NewApprover {
            email: email.into(),
            name: "Ada Admin".into(),
            role: Role::Admin,
            user_code: None,
        },
        h.clock.now(),
    )
    .await
    .unwrap();
    let row = passkey_row(&test_credential(&admin.id), &admin.id, ADMIN_PASSKEY);
    register_passkey(h, &row, ADMIN_PASSKEY).await;
    admin
}

/// `admin_id`'s confirmation of `change`, signed by the passkey with seed `seed` under credential
/// `credential_id`, as the browser's assertion would be.
pub fn confirmation(
    admin_id: &str,
    credential_id: &str,
    seed: u8,
    change: server::admin::confirmation::Change,
) -> server::admin::confirmation::Confirmation {
    use server::secrets::base64url;
    let nonce = server::secrets::random_bytes::<32>().to_vec();
    let challenge = server::admin::confirmation::change_challenge(admin_id, &change, &nonce);
    let e = test_evidence(credential_id.into(), &challenge, nonce, seed, seed);
    server::admin::confirmation::Confirmation {
        credential_id: credential_id.into(),
        change,
        assertion: server::identity::provenance::Authorisation {
            nonce: base64url(&e.nonce),
            authenticator_data: base64url(&e.authenticator_data),
            client_data_json: base64url(&e.client_data_json),
            signature: base64url(&e.signature),
        },
    }
}

/// Asks for `change` as `admin` (made by `admin_with_passkey`) and confirms it with their passkey.
pub async fn confirmed_change(
    console: &server::admin::approvers::Approvers,
    admin: &Approver,
    change: server::admin::confirmation::Change,
) -> Result<server::admin::approvers::Done, server::admin::approvers::ApproverChangeError> {
    let who = server::admin::agents::Admin {
        id: &admin.id,
        email: &admin.email,
    };
    console.ask(&who, &change).await?;
    let confirmed = confirmation(
        &admin.id,
        &test_credential(&admin.id),
        ADMIN_PASSKEY,
        change,
    );
    console.confirm(&who, &confirmed).await
}

/// The approvers console of `h`'s server.
pub fn approvers_console(h: &Harness) -> server::admin::approvers::Approvers {
    server::admin::approvers::Approvers::new(
        h.server.ciba.clone(),
        h.server.invitations.clone(),
        h.server.accounts.clone(),
    )
}
