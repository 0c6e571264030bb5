//! Web Push: a new request reaches each browser its approver opted in, through a local push endpoint
//! that checks the VAPID signature (RFC 8292) and decrypts the payload (RFC 8291) as a browser would.
use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
    Router,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::Value;
use server::{clock::Clock, store::push::PushSubscriptionRow};
use tokio::sync::{mpsc, Mutex};

use server::ciba::ids::page_ref;

use crate::{common::*, on_both_databases};

on_both_databases!(
    a_new_request_is_pushed_encrypted_to_each_browser_of_its_approver,
    gone_subscriptions_are_forgotten_and_failures_counted,
    the_vapid_key_is_made_once_and_kept,
    a_subscription_the_push_service_replaced_is_renewed,
    a_subscription_made_on_another_instance_counts_after_a_refresh,
    a_request_whose_announcement_was_lost_is_pushed_by_the_sweep,
    two_instances_announce_a_request_once,
    an_unfinished_claim_is_announced_again_after_its_lease,
    an_unreadable_request_is_settled_without_an_announcement
);

/// A request made while its approver had no subscription: its announcement never happened (as after
/// a crash between the request's commit and the send). Then the approver subscribes.
async fn unannounced_request(h: &Harness, service: &PushService) -> (String, Browser, String) {
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let id = h.start(&creds, APPROVER).await;
    // The push channel learns of the request from an event it handles on its own task; subscribing
    // before it has (a busy machine) would let it announce the request at once, which these tests
    // need it not to. It takes microseconds; this leaves it ample time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let phone = browser();
    subscribe(
        h,
        &jane.id,
        &format!("{}/push/phone", service.origin),
        &phone,
    )
    .await;
    (id, phone, jane.id)
}

/// The outbox row of a request's push announcement: (attempts, done).
async fn outbox_row(h: &Harness, id: &str) -> Option<(i64, bool)> {
    sqlx::query_as::<_, (i64, Option<i64>)>(
        "SELECT attempts, done_at FROM notification_outbox WHERE auth_req_id = $1 AND channel = 'push'",
    )
    .bind(id)
    .fetch_optional(h.store.pool())
    .await
    .unwrap()
    .map(|(attempts, done)| (attempts, done.is_some()))
}

async fn a_request_whose_announcement_was_lost_is_pushed_by_the_sweep(db: Db) {
    let mut service = push_service().await;
    let h = Harness::with_config(db, |c| c.push_services = "127.0.0.1".into()).await;
    let (id, phone, _) = unannounced_request(&h, &service).await;
    assert_eq!(outbox_row(&h, &id).await, None);
    // Past the grace the immediate path has, the next sweep (every 5 s) announces it.
    h.clock.advance_secs(11);
    let message = next(&mut service).await;
    let payload: Value =
        serde_json::from_slice(&ece::decrypt(&phone.keys, &phone.auth, &message.body).unwrap())
            .unwrap();
    assert_eq!(payload["url"], format!("/requests/{}", page_ref(&id)));
    for _ in 0..50 {
        if outbox_row(&h, &id).await == Some((1, true)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the announcement is recorded as done: {:?}",
        outbox_row(&h, &id).await
    );
}

async fn two_instances_announce_a_request_once(db: Db) {
    let mut service = push_service().await;
    let h = Harness::with_config(db, |c| c.push_services = "127.0.0.1".into()).await;
    let mut config = test_config();
    config.push_services = "127.0.0.1".into();
    let other = server::build(&config, h.store.clone(), h.clock.clone())
        .await
        .unwrap();
    let (id, _, jane) = unannounced_request(&h, &service).await;
    other.pusher.subscribed(&jane);
    h.clock.advance_secs(11);
    // Both instances' sweeps find it; the outbox lets one of them announce it.
    next(&mut service).await;
    assert!(
        tokio::time::timeout(Duration::from_secs(6), service.received.recv())
            .await
            .is_err(),
        "announced once, though two instances swept"
    );
    assert_eq!(outbox_row(&h, &id).await, Some((1, true)));
}

async fn an_unfinished_claim_is_announced_again_after_its_lease(db: Db) {
    let mut service = push_service().await;
    let h = Harness::with_config(db, |c| c.push_services = "127.0.0.1".into()).await;
    let (id, _, _) = unannounced_request(&h, &service).await;
    // An instance claimed it and went away before sending: its lease (2 minutes) protects the claim...
    sqlx::query(
        "INSERT INTO notification_outbox (auth_req_id, channel, claimed_until, attempts, done_at) \
         VALUES ($1, 'push', $2, 1, NULL)",
    )
    .bind(&id)
    .bind(h.clock.now() + 120_000)
    .execute(h.store.pool())
    .await
    .unwrap();
    h.clock.advance_secs(11);
    assert!(
        tokio::time::timeout(Duration::from_secs(6), service.received.recv())
            .await
            .is_err(),
        "not while the claim holds"
    );
    // ...and once it has run out, a sweep claims it again and announces it.
    h.clock.advance_secs(120);
    next(&mut service).await;
    for _ in 0..50 {
        if outbox_row(&h, &id).await == Some((2, true)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "claimed a second time and done: {:?}",
        outbox_row(&h, &id).await
    );
}

/// One message as the push service received it.
struct Received {
    subscription: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A push service on loopback: `POST /push/{name}` answers with the status set for `name` (201 when
/// none) and hands over every message it receives.
struct PushService {
    origin: String,
    statuses: Arc<Mutex<HashMap<String, u16>>>,
    received: mpsc::UnboundedReceiver<Received>,
}

type Shared = (
    Arc<Mutex<HashMap<String, u16>>>,
    mpsc::UnboundedSender<Received>,
);

async fn receive(
    State((statuses, tx)): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let status = statuses.lock().await.get(&name).copied().unwrap_or(201);
    let _ = tx.send(Received {
        subscription: name,
        headers,
        body: body.to_vec(),
    });
    StatusCode::from_u16(status).unwrap()
}

async fn push_service() -> PushService {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let statuses = Arc::new(Mutex::new(HashMap::new()));
    let (tx, received) = mpsc::unbounded_channel();
    let app = Router::new()
        .route("/push/{name}", post(receive))
        .with_state((statuses.clone(), tx));
    tokio::spawn(async move { axum::serve(listener, app).await });
    PushService {
        origin,
        statuses,
        received,
    }
}

/// A browser's side of a subscription: its ECDH key pair and auth secret.
struct Browser {
    keys: ece::EcKeyComponents,
    auth: [u8; 16],
    public: Vec<u8>,
}

fn browser() -> Browser {
    let (pair, auth) = ece::generate_keypair_and_auth_secret().unwrap();
    Browser {
        keys: pair.raw_components().unwrap(),
        public: pair.pub_as_raw().unwrap(),
        auth,
    }
}

async fn subscribe(h: &Harness, approver_id: &str, endpoint: &str, browser: &Browser) -> String {
    let id = server::secrets::random_id();
    h.store
        .upsert_push_subscription(&PushSubscriptionRow {
            id: id.clone(),
            approver_id: approver_id.into(),
            endpoint: endpoint.into(),
            p256dh: URL_SAFE_NO_PAD.encode(&browser.public),
            auth: URL_SAFE_NO_PAD.encode(browser.auth),
            label: "Chrome on Linux".into(),
            created_at: h.clock.now(),
            last_sent_at: None,
            failures: 0,
        })
        .await
        .unwrap();
    // As the account page's subscribing does: this instance counts the subscriber at once.
    h.server.pusher.subscribed(approver_id);
    id
}

async fn next(service: &mut PushService) -> Received {
    tokio::time::timeout(Duration::from_secs(10), service.received.recv())
        .await
        .expect("a push message within 10 s")
        .unwrap()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("{name} header"))
        .to_str()
        .unwrap()
}

/// RFC 8292 §3: `Authorization: vapid t=<JWT>, k=<public key>`; the JWT is ES256 over aud/exp/sub.
fn verify_vapid(headers: &HeaderMap, audience: &str, now_secs: i64) -> (String, Value) {
    let value = header(headers, "authorization");
    let rest = value.strip_prefix("vapid ").expect("vapid scheme");
    let mut params = HashMap::new();
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').unwrap();
        params.insert(k.to_owned(), v.to_owned());
    }
    let key = URL_SAFE_NO_PAD.decode(&params["k"]).unwrap();
    assert_eq!(
        (key.len(), key[0]),
        (65, 0x04),
        "k is an uncompressed P-256 point"
    );
    let mut jwk = josekit::jwk::Jwk::new("EC");
    jwk.set_curve("P-256");
    jwk.set_parameter("x", Some(URL_SAFE_NO_PAD.encode(&key[1..33]).into()))
        .unwrap();
    jwk.set_parameter("y", Some(URL_SAFE_NO_PAD.encode(&key[33..]).into()))
        .unwrap();
    let verifier = josekit::jws::ES256.verifier_from_jwk(&jwk).unwrap();
    let (payload, _) = josekit::jwt::decode_with_verifier(&params["t"], &verifier)
        .expect("the VAPID JWT verifies with k");
    let claims: Value = serde_json::from_str(&payload.to_string()).unwrap();
    assert_eq!(claims["aud"], audience, "aud is the push service's origin");
    let exp = claims["exp"].as_i64().unwrap();
    assert!(
        exp > now_secs && exp <= now_secs + 24 * 3600,
        "exp within 24 h (§2)"
    );
    (params["k"].clone(), claims)
}

async fn a_new_request_is_pushed_encrypted_to_each_browser_of_its_approver(db: Db) {
    let mut service = push_service().await;
    let h = Harness::with_config(db, |c| c.push_services = "127.0.0.1".into()).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let other = h.approver("sam@example.com", None).await;
    let (phone, laptop, sams) = (browser(), browser(), browser());
    let phone_id = subscribe(
        &h,
        &jane.id,
        &format!("{}/push/phone", service.origin),
        &phone,
    )
    .await;
    subscribe(
        &h,
        &jane.id,
        &format!("{}/push/laptop", service.origin),
        &laptop,
    )
    .await;
    subscribe(
        &h,
        &other.id,
        &format!("{}/push/sam", service.origin),
        &sams,
    )
    .await;

    let id = h.start(&creds, APPROVER).await;
    let mut got = HashMap::new();
    for _ in 0..2 {
        let message = next(&mut service).await;
        got.insert(message.subscription.clone(), message);
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(500), service.received.recv())
            .await
            .is_err(),
        "Sam's browser is not told of Jane's request"
    );
    let stored_key: String = sqlx::query_scalar("SELECT public_key FROM vapid_keys")
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (name, browser) in [("phone", &phone), ("laptop", &laptop)] {
        let message = &got[name];
        // RFC 8030 §5: TTL (the request's remaining life, 300 s by default) and §5.3 urgency.
        let ttl: i64 = header(&message.headers, "ttl").parse().unwrap();
        assert!((290..=300).contains(&ttl), "TTL {ttl}");
        assert_eq!(header(&message.headers, "urgency"), "high");
        // RFC 8291 §4: one aes128gcm record.
        assert_eq!(header(&message.headers, "content-encoding"), "aes128gcm");
        let (k, claims) = verify_vapid(&message.headers, &service.origin, now_secs);
        assert_eq!(k, stored_key, "signed with the deployment's VAPID key");
        assert_eq!(claims["sub"], "mailto:countersign@localhost");

        let plain = ece::decrypt(&browser.keys, &browser.auth, &message.body)
            .expect("the browser's keys decrypt the payload");
        let payload: Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(payload["title"], "Approval needed: Refund $120.00");
        assert_eq!(
            payload["body"],
            "Refund agent asks: Refund $120.00 \u{2014} jane@example.com for order #1234"
        );
        assert_eq!(payload["url"], format!("/requests/{}", page_ref(&id)));
        let text = String::from_utf8(plain).unwrap();
        assert!(!text.contains(&creds.secret), "no secrets in notifications");
        assert!(!text.contains(&id), "nor the auth_req_id the agent redeems");
        // Each browser's payload is encrypted for it alone.
        let other = if name == "phone" { &laptop } else { &phone };
        assert!(ece::decrypt(&other.keys, &other.auth, &message.body).is_err());
    }
    let last_sent: Option<i64> =
        sqlx::query_scalar("SELECT last_sent_at FROM push_subscriptions WHERE id = $1")
            .bind(&phone_id)
            .fetch_one(h.store.pool())
            .await
            .unwrap();
    assert!(last_sent.is_some(), "a delivery is recorded");
}

async fn gone_subscriptions_are_forgotten_and_failures_counted(db: Db) {
    let mut service = push_service().await;
    let h = Harness::with_config(db, |c| c.push_services = "127.0.0.1".into()).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    service.statuses.lock().await.insert("gone".into(), 410);
    service.statuses.lock().await.insert("broken".into(), 503);
    subscribe(
        &h,
        &jane.id,
        &format!("{}/push/gone", service.origin),
        &browser(),
    )
    .await;
    let broken = subscribe(
        &h,
        &jane.id,
        &format!("{}/push/broken", service.origin),
        &browser(),
    )
    .await;

    h.start(&creds, APPROVER).await;
    let mut attempts = HashMap::<String, usize>::new();
    // 410 once; 503 three times (retried after 1 s and 2 s).
    for _ in 0..4 {
        *attempts
            .entry(next(&mut service).await.subscription)
            .or_default() += 1;
    }
    assert_eq!(attempts["gone"], 1, "410 Gone is not retried");
    assert_eq!(
        attempts["broken"], 3,
        "503 is retried, three attempts in all"
    );
    // The outcome is written after the last answer; give it a moment.
    let mut rows = Vec::new();
    for _ in 0..50 {
        rows = h.store.push_subscriptions_of(&jane.id).await.unwrap();
        if rows.len() == 1 && rows[0].failures == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows.len(), 1, "the gone subscription is forgotten");
    assert_eq!(rows[0].id, broken);
    assert_eq!(rows[0].failures, 1, "the failed delivery is counted");
    assert_eq!(rows[0].last_sent_at, None);
}

async fn the_vapid_key_is_made_once_and_kept(db: Db) {
    let h = Harness::new(db).await;
    let key = |store: server::store::Store| async move {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT private_key, public_key FROM vapid_keys")
                .fetch_all(store.pool())
                .await
                .unwrap();
        rows
    };
    let first = key(h.store.clone()).await;
    assert_eq!(first.len(), 1, "made at first start");
    assert_eq!(URL_SAFE_NO_PAD.decode(&first[0].1).unwrap().len(), 65);
    // More instances on the same database, two starting at once, keep using it.
    let config = test_config();
    let (a, b) = tokio::join!(
        server::build(&config, h.store.clone(), h.clock.clone()),
        server::build(&config, h.store.clone(), h.clock.clone())
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(key(h.store.clone()).await, first);
}

/// `pushsubscriptionchange` (Push API §11.2): the service worker reports the new subscription with
/// the old subscription's auth secret as proof; the device keeps its record and receives the next
/// request.
async fn a_subscription_the_push_service_replaced_is_renewed(db: Db) {
    let mut service = push_service().await;
    let h = Harness::with_config(db, |c| c.push_services = "127.0.0.1".into()).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let old_endpoint = format!("{}/push/old", service.origin);
    let old_browser = browser();
    let id = subscribe(&h, &jane.id, &old_endpoint, &old_browser).await;
    let old_auth = URL_SAFE_NO_PAD.encode(old_browser.auth);
    let fresh = browser();
    let renewal_with = |old: &str, proof: &str, endpoint: &str| {
        serde_json::json!({
            "old_endpoint": old,
            "old_auth": proof,
            "subscription": {
                "endpoint": endpoint,
                "expirationTime": null,
                "keys": {
                    "p256dh": URL_SAFE_NO_PAD.encode(&fresh.public),
                    "auth": URL_SAFE_NO_PAD.encode(fresh.auth),
                },
            },
        })
        .to_string()
    };
    let renewal = |old: &str, endpoint: &str| renewal_with(old, &old_auth, endpoint);
    let post = |body: String, origin: Option<&str>| {
        let mut request =
            axum::http::Request::post("/push/renew").header("content-type", "application/json");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        h.send(request.body(axum::body::Body::from(body)).unwrap())
    };
    let new_endpoint = format!("{}/push/new", service.origin);
    let site = Some("http://localhost:3000");
    let status = |r: Response| r.status.as_u16();
    assert_eq!(
        status(post(renewal(&old_endpoint, &new_endpoint), None).await),
        403,
        "the same-origin guard applies"
    );
    assert_eq!(
        status(
            post(
                renewal("http://127.0.0.1:1/push/unknown", &new_endpoint),
                site
            )
            .await
        ),
        404
    );
    // Knowing the endpoint is not enough (the push service knows it): the old auth secret is the
    // proof, and a wrong one is answered as an unknown endpoint.
    let wrong = URL_SAFE_NO_PAD.encode(browser().auth);
    assert_eq!(
        status(post(renewal_with(&old_endpoint, &wrong, &new_endpoint), site).await),
        404
    );
    assert_eq!(
        h.store.push_subscriptions_of(&jane.id).await.unwrap()[0].endpoint,
        old_endpoint
    );
    assert_eq!(
        status(post(renewal(&old_endpoint, "https://push.evil.example/x"), site).await),
        400,
        "the new endpoint must be a known push service too"
    );
    assert_eq!(
        status(post(renewal(&old_endpoint, &new_endpoint), site).await),
        204
    );
    let rows = h.store.push_subscriptions_of(&jane.id).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].id.as_str(), rows[0].endpoint.as_str()),
        (id.as_str(), new_endpoint.as_str())
    );

    h.start(&creds, APPROVER).await;
    let message = next(&mut service).await;
    assert_eq!(message.subscription, "new");
    assert!(ece::decrypt(&fresh.keys, &fresh.auth, &message.body).is_ok());
}

/// Another instance (sharing the database) made the subscription: this one learns of it within its
/// refresh period (2 s) and pushes from then on.
async fn a_subscription_made_on_another_instance_counts_after_a_refresh(db: Db) {
    let mut service = push_service().await;
    let h = Harness::with_config(db, |c| c.push_services = "127.0.0.1".into()).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let phone = browser();
    h.store
        .upsert_push_subscription(&PushSubscriptionRow {
            id: server::secrets::random_id(),
            approver_id: jane.id.clone(),
            endpoint: format!("{}/push/phone", service.origin),
            p256dh: URL_SAFE_NO_PAD.encode(&phone.public),
            auth: URL_SAFE_NO_PAD.encode(phone.auth),
            label: "Firefox on Android".into(),
            created_at: h.clock.now(),
            last_sent_at: None,
            failures: 0,
        })
        .await
        .unwrap();
    // Two refresh periods, so a busy machine cannot make the test flaky.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    h.start(&creds, APPROVER).await;
    let message = next(&mut service).await;
    assert_eq!(message.subscription, "phone");
}

/// A request whose action cannot be read (written by another version, say) must not stay due for ever
/// and crowd out the ones behind it: the sweep settles it without announcing anything.
async fn an_unreadable_request_is_settled_without_an_announcement(db: Db) {
    let mut service = push_service().await;
    let h = Harness::with_config(db, |c| c.push_services = "127.0.0.1".into()).await;
    let (id, _, _) = unannounced_request(&h, &service).await;
    sqlx::query("UPDATE auth_requests SET authorization_details = 'not json' WHERE id = $1")
        .bind(&id)
        .execute(h.store.pool())
        .await
        .unwrap();
    h.clock.advance_secs(11);
    for _ in 0..100 {
        if outbox_row(&h, &id).await == Some((1, true)) {
            assert!(service.received.try_recv().is_err(), "nothing was pushed");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("settled: {:?}", outbox_row(&h, &id).await);
}
