//! Authentication over real HTTP (tier 2): HTTP Basic against devcluster with
//! `credentials` (as a master with `--authenticate_http_frameworks`), and the DC/OS service
//! account flow against a login endpoint in this test that checks the RS256 signature with
//! the account's public key, as the DC/OS IAM does.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use common::{Events, Proxy, decline, revive};
use fastdata_scheduler::config::{MesosAuth, Secret, ServiceAccount};
use fastdata_scheduler::mesos::{ConnectionState, MesosClient};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

const SECRET: &str = "s3cret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_with_and_without_the_right_secret() {
    let cluster = common::cluster(1, |c| {
        c.credentials = vec![(common::PRINCIPAL.into(), SECRET.into())];
    })
    .await;
    let proxy = Proxy::start(cluster.master_addr()).await;

    // No credentials: 401, a Fatal naming the secret file flag, one SUBSCRIBE only.
    let (client, rx) = MesosClient::start(common::client_config(vec![proxy.url()], None));
    let mut events = Events::new(rx);
    let fatal = events.fatal().await;
    eprintln!("without credentials: {fatal:?}");
    assert!(fatal.message.contains("401"), "{}", fatal.message);
    assert!(
        fatal.remedy.contains("--mesos-secret-file"),
        "{}",
        fatal.remedy
    );
    assert!(
        fatal.remedy.contains("FASTDATA_MESOS_SECRET_FILE"),
        "{}",
        fatal.remedy
    );
    assert_eq!(events.until_closed().await, Vec::<String>::new());
    assert!(matches!(
        *client.state().borrow(),
        ConnectionState::Fatal(_)
    ));

    // The wrong secret: the same, naming the principal.
    let mut config = common::client_config(vec![proxy.url()], None);
    config.auth = MesosAuth::Basic {
        principal: common::PRINCIPAL.into(),
        secret: Secret::new("wrong"),
    };
    let (wrong, rx) = MesosClient::start(config);
    let fatal = Events::new(rx).fatal().await;
    assert!(fatal.remedy.contains(common::PRINCIPAL), "{}", fatal.remedy);
    assert!(matches!(*wrong.state().borrow(), ConnectionState::Fatal(_)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(proxy.subscribes().len(), 2, "no retries after a 401");
    assert!(common::frameworks(&cluster).is_empty());

    // The right secret: subscribed, and calls carry the credentials too.
    let mut config = common::client_config(vec![proxy.url()], None);
    config.auth = MesosAuth::Basic {
        principal: common::PRINCIPAL.into(),
        secret: Secret::new(SECRET),
    };
    let (right, rx) = MesosClient::start(config);
    let mut events = Events::new(rx);
    let (framework_id, _) = events.subscribed().await;
    let offers = events.offers().await;
    right
        .call(decline(&offers))
        .await
        .expect("DECLINE with credentials");
    let requests = proxy.requests();
    let expected = "Basic ZmFzdGRhdGEtcHJpbmNpcGFsOnMzY3JldA=="; // auth-basic.jsonl
    let subscribe = requests.last_subscribe();
    assert_eq!(subscribe.header("authorization"), Some(expected));
    let declined = requests
        .iter()
        .rfind(|r| r.call_type() == Some(fastdata_proto::v1::scheduler::call::Type::Decline))
        .unwrap();
    assert_eq!(declined.header("authorization"), Some(expected));
    assert_eq!(common::frameworks(&cluster)[0]["id"], framework_id.as_str());
    right.shutdown().await;
    cluster.stop().await;
}

trait LastSubscribe {
    fn last_subscribe(&self) -> &common::Recorded;
}

impl LastSubscribe for Vec<common::Recorded> {
    fn last_subscribe(&self) -> &common::Recorded {
        self.iter()
            .rfind(|r| r.call_type() == Some(fastdata_proto::v1::scheduler::call::Type::Subscribe))
            .expect("a SUBSCRIBE")
    }
}

// ---- a DC/OS IAM login endpoint ----

const UID: &str = "fastdata-sa";
const PUBLIC_KEY: &str = include_str!("data/service-account-public.pem");
const PRIVATE_KEY: &str = include_str!("data/service-account-pkcs8.pem");
/// Lifetime of the tokens this IAM hands out: short, so the client must log in again
/// during the test (half-way through, since it is below twice the 30 s margin).
const TOKEN_LIFETIME_S: u64 = 6;

#[derive(Default)]
struct Iam {
    logins: AtomicUsize,
    refused: AtomicUsize,
    issued: Mutex<Vec<String>>,
}

#[derive(serde::Deserialize)]
struct LoginBody {
    uid: String,
    token: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    uid: String,
    exp: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Checks the login token as the IAM does: RS256, signed by the account's key, for the uid
/// in the body, not expired, short-lived. Answers a fresh authentication token.
async fn login(
    State(iam): State<Arc<Iam>>,
    Json(body): Json<LoginBody>,
) -> Result<Json<serde_json::Value>, (StatusCode, Json<serde_json::Value>)> {
    let refuse = |why: String| {
        iam.refused.fetch_add(1, Ordering::SeqCst);
        (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"title": "Authentication failed", "description": why})),
        )
    };
    let key = DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap();
    let claims =
        jsonwebtoken::decode::<Claims>(&body.token, &key, &Validation::new(Algorithm::RS256))
            .map_err(|e| refuse(format!("invalid login token: {e}")))?
            .claims;
    if body.uid != UID || claims.uid != UID {
        return Err(refuse(format!("unknown uid {}", body.uid)));
    }
    if claims.exp > now() + 130 {
        return Err(refuse("login token lives too long".into()));
    }
    let n = iam.logins.fetch_add(1, Ordering::SeqCst);
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &serde_json::json!({"uid": UID, "exp": now() + TOKEN_LIFETIME_S, "n": n}),
        &EncodingKey::from_secret(b"the IAM's own key").unwrap(),
    )
    .unwrap();
    iam.issued.lock().unwrap().push(token.clone());
    Ok(Json(serde_json::json!({"token": token})))
}

async fn start_iam() -> (Arc<Iam>, String, tokio::task::JoinHandle<()>) {
    let iam = Arc::new(Iam::default());
    let app = axum::Router::new()
        .route("/acs/api/v1/auth/login", axum::routing::post(login))
        .with_state(Arc::clone(&iam));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/acs/api/v1/auth/login",
        listener.local_addr().unwrap()
    );
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (iam, url, server)
}

fn account(uid: &str, login_url: &str) -> MesosAuth {
    MesosAuth::ServiceAccount(ServiceAccount {
        uid: uid.into(),
        private_key: Secret::new(PRIVATE_KEY),
        login_url: login_url.into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_logs_in_sends_the_token_and_refreshes_it() {
    let (iam, login_url, server) = start_iam().await;
    let cluster = common::cluster(1, |_| {}).await;
    let proxy = Proxy::start(cluster.master_addr()).await;
    let mut config = common::client_config(vec![proxy.url()], None);
    config.auth = account(UID, &login_url);
    let (client, rx) = MesosClient::start(config);
    let mut events = Events::new(rx);
    events.subscribed().await;

    let first = iam.issued.lock().unwrap()[0].clone();
    let subscribe = proxy.requests().last_subscribe().clone();
    assert_eq!(
        subscribe.header("authorization"),
        Some(format!("token={first}").as_str())
    );

    // Calls carry the token; once it is due (half its 6 s life), a new login replaces it.
    let started = std::time::Instant::now();
    let refreshed = common::eventually("a call with a refreshed token", || {
        let issued = iam.issued.lock().unwrap().clone();
        let last =
            proxy.requests().into_iter().rev().find(|r| {
                r.call_type() == Some(fastdata_proto::v1::scheduler::call::Type::Revive)
            })?;
        let sent = last
            .header("authorization")?
            .strip_prefix("token=")?
            .to_owned();
        assert!(
            issued.contains(&sent),
            "only tokens the IAM issued are sent"
        );
        (sent != first).then_some(sent)
    });
    let caller = {
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                client.call(revive()).await.expect("REVIVE with a token");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let second = refreshed.await;
    caller.abort();
    eprintln!(
        "token refreshed after {:?}; {} logins",
        started.elapsed(),
        iam.logins.load(Ordering::SeqCst)
    );
    assert_ne!(second, first);
    assert!(iam.logins.load(Ordering::SeqCst) >= 2);
    assert_eq!(
        client.iam_logins() as usize,
        iam.logins.load(Ordering::SeqCst)
    );
    assert_eq!(iam.refused.load(Ordering::SeqCst), 0);
    client.shutdown().await;
    server.abort();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_is_fatal_and_an_unreachable_iam_is_retried() {
    let (iam, login_url, server) = start_iam().await;
    let cluster = common::cluster(1, |_| {}).await;
    let proxy = Proxy::start(cluster.master_addr()).await;

    // An account the IAM does not know: 401 from the IAM, Fatal, nothing sent to Mesos.
    let mut config = common::client_config(vec![proxy.url()], None);
    config.auth = account("stranger", &login_url);
    let (client, rx) = MesosClient::start(config);
    let fatal = Events::new(rx).fatal().await;
    eprintln!("refused login: {fatal:?}");
    assert!(
        fatal
            .message
            .contains("refused service account \"stranger\""),
        "{}",
        fatal.message
    );
    assert!(fatal.message.contains("401"), "{}", fatal.message);
    assert!(
        fatal.remedy.contains("DCOS_SERVICE_ACCOUNT_CREDENTIAL"),
        "{}",
        fatal.remedy
    );
    assert_eq!(iam.refused.load(Ordering::SeqCst), 1);
    assert!(
        proxy.subscribes().is_empty(),
        "no SUBSCRIBE without a token"
    );
    assert!(matches!(
        *client.state().borrow(),
        ConnectionState::Fatal(_)
    ));

    // The IAM is down: not fatal, the client keeps trying.
    server.abort();
    let _ = server.await;
    let mut config = common::client_config(vec![proxy.url()], None);
    config.auth = account(UID, &login_url);
    let (down, _rx) = MesosClient::start(config);
    let error = common::wait_state(&down, "retrying the login", |s| match s {
        ConnectionState::Subscribing {
            attempt,
            last_error: Some(e),
        } if *attempt >= 2 => Some(e.clone()),
        _ => None,
    })
    .await;
    assert!(error.contains("DC/OS IAM login"), "{error}");
    assert!(proxy.subscribes().is_empty());
    down.shutdown().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_from_mesos_gets_one_fresh_login_and_one_retry() {
    // A master that only knows Basic credentials refuses any IAM token: the client logs in
    // again once, retries once, and then stops with the service account's remedy.
    let (iam, login_url, server) = start_iam().await;
    let cluster = common::cluster(1, |c| {
        c.credentials = vec![(common::PRINCIPAL.into(), SECRET.into())];
    })
    .await;
    let proxy = Proxy::start(cluster.master_addr()).await;
    let mut config = common::client_config(vec![proxy.url()], None);
    config.auth = account(UID, &login_url);
    let (client, rx) = MesosClient::start(config);
    let mut events = Events::new(rx);
    let fatal = events.fatal().await;
    assert!(fatal.message.contains("401"), "{}", fatal.message);
    assert!(
        fatal.remedy.contains("even right after a fresh login"),
        "{}",
        fatal.remedy
    );
    assert_eq!(events.until_closed().await, Vec::<String>::new());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let subscribes = proxy.subscribes();
    assert_eq!(subscribes.len(), 2, "the SUBSCRIBE and one retry");
    assert_eq!(
        iam.logins.load(Ordering::SeqCst),
        2,
        "one fresh login between them"
    );
    let issued = iam.issued.lock().unwrap().clone();
    for (sent, token) in subscribes.iter().zip(&issued) {
        assert_eq!(
            sent.header("authorization"),
            Some(format!("token={token}").as_str())
        );
    }
    client.shutdown().await;
    server.abort();
    cluster.stop().await;
}

#[tokio::test]
async fn a_key_that_is_not_rsa_is_a_fatal_configuration_error() {
    let mut config = common::client_config(vec!["http://127.0.0.1:1".into()], None);
    config.auth = MesosAuth::ServiceAccount(ServiceAccount {
        uid: UID.into(),
        private_key: Secret::new(
            "-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----",
        ),
        login_url: "http://127.0.0.1:1/login".into(),
    });
    let (client, rx) = MesosClient::start(config);
    let mut events = Events::new(rx);
    let fatal = events.fatal().await;
    assert!(
        fatal.message.contains("DCOS_SERVICE_ACCOUNT_CREDENTIAL"),
        "{}",
        fatal.message
    );
    assert!(!fatal.message.contains("bm9wZQ"), "the key never shows");
    assert_eq!(events.until_closed().await, Vec::<String>::new());
    assert!(matches!(
        *client.state().borrow(),
        ConnectionState::Fatal(_)
    ));
    client.shutdown().await;
}
