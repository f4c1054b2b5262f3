//! Credentials for Mesos requests: HTTP Basic, or a DC/OS service account's IAM token.
//!
//! Owns the `Authorization` header of every request to the master, and for a service account
//! the login that produces it. It never decides what a 401 means for the subscription (the
//! connection state machine does); it only says whether a fresh login is worth one retry.
//!
//! - Basic: `Authorization: Basic base64(principal:secret)`, what a master started with
//!   `--authenticate_http_frameworks --http_framework_authenticators=basic` checks against
//!   its `--credentials` (`auth-basic.jsonl`).
//! - DC/OS service account (strict mode): we sign a short login token, RS256 with the
//!   account's private key, claims `{"uid", "exp": now + 120 s}`; POST `{"uid", "token"}` to
//!   the IAM login endpoint (`/acs/api/v1/auth/login`); it answers `{"token": ...}`, an
//!   authentication token sent as `Authorization: token=<token>` on every request. We read
//!   its `exp` (without verifying it: it is the IAM's token, not ours to check) and log in
//!   again 30 s before it expires; on a 401 from Mesos we log in again once and retry.
//!
//! Secrets stay in [`Secret`] or in header values marked sensitive; nothing here logs them.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::HeaderValue;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::fatal::AuthKind;
use crate::config::{MesosAuth, Secret, ServiceAccount};

/// Lifetime of the login token we sign (the DC/OS SDK and CLI use short-lived login tokens;
/// the IAM only needs it for the exchange).
pub const LOGIN_TOKEN_LIFETIME: Duration = Duration::from_secs(120);
/// Log in again this long before the authentication token expires.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// Why no credentials could be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The service account's private key is unusable (configuration).
    #[error(
        "the private key of service account {uid:?} is not a usable RSA key ({reason}); check DCOS_SERVICE_ACCOUNT_CREDENTIAL"
    )]
    BadKey {
        /// The account.
        uid: String,
        /// What is wrong (no key material).
        reason: String,
    },
    /// The login endpoint could not be reached, timed out, or failed (5xx): retry later.
    #[error("the DC/OS IAM login at {url} failed: {reason}")]
    Unavailable {
        /// The login URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The IAM refused the login (4xx) or answered something that is not a token.
    #[error("the DC/OS IAM login at {url} answered {status}: {body}")]
    Refused {
        /// The login URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// Body text.
        body: String,
    },
}

/// `Basic base64(principal:secret)`, marked sensitive so no HTTP layer prints it.
pub fn basic_authorization(principal: &str, secret: &Secret) -> HeaderValue {
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{principal}:{}", secret.expose()));
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .expect("base64 text is always a valid header value");
    value.set_sensitive(true);
    value
}

/// `token=<token>`, the DC/OS form, marked sensitive; `None` if the IAM's token cannot be
/// a header value.
pub fn token_authorization(token: &Secret) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("token={}", token.expose())).ok()?;
    value.set_sensitive(true);
    Some(value)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct LoginClaims {
    uid: String,
    exp: u64,
}

/// The login token: RS256 over `{"uid": uid, "exp": now + 120 s}`.
pub fn login_token(uid: &str, key: &EncodingKey, now_unix: u64) -> Result<Secret, AuthError> {
    let claims = LoginClaims {
        uid: uid.to_owned(),
        exp: now_unix + LOGIN_TOKEN_LIFETIME.as_secs(),
    };
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key)
        .map(Secret::new)
        .map_err(|e| AuthError::BadKey {
            uid: uid.to_owned(),
            reason: e.to_string(),
        })
}

/// Parses the account's PEM private key (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`).
pub fn signing_key(account: &ServiceAccount) -> Result<EncodingKey, AuthError> {
    EncodingKey::from_rsa_pem(account.private_key.expose().as_bytes()).map_err(|e| {
        AuthError::BadKey {
            uid: account.uid.clone(),
            reason: e.to_string(),
        }
    })
}

/// The login exchange: `POST <login_url>` with `{"uid", "token"}` as JSON.
pub fn login_request(
    login_url: &str,
    uid: &str,
    login_token: &Secret,
) -> Result<http::Request<Bytes>, AuthError> {
    let body = serde_json::json!({"uid": uid, "token": login_token.expose()});
    http::Request::post(login_url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(Bytes::from(body.to_string()))
        .map_err(|e| AuthError::Refused {
            url: login_url.to_owned(),
            status: 0,
            body: format!("not a usable URL: {e}"),
        })
}

/// The authentication token from the login answer.
pub fn parse_login_answer(login_url: &str, status: u16, body: &str) -> Result<Secret, AuthError> {
    if status >= 500 || status == 429 || status == 408 {
        return Err(AuthError::Unavailable {
            url: login_url.to_owned(),
            reason: format!("answered {status}: {}", body.trim()),
        });
    }
    if status != 200 {
        return Err(AuthError::Refused {
            url: login_url.to_owned(),
            status,
            body: body.trim().to_owned(),
        });
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        token: String,
    }
    match serde_json::from_str::<Answer>(body) {
        Ok(answer) if token_authorization(&Secret::new(answer.token.clone())).is_some() => {
            Ok(Secret::new(answer.token))
        }
        // Never echo the body here: it may be the token itself in some other shape.
        _ => Err(AuthError::Refused {
            url: login_url.to_owned(),
            status,
            body: "the answer is not {\"token\": \"...\"} with a usable token".into(),
        }),
    }
}

/// The `exp` claim of a JWT, read without verifying it; `None` for an opaque token.
pub fn token_expiry(token: &Secret) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Exp {
        exp: u64,
    }
    jsonwebtoken::dangerous::insecure_decode_claims::<Exp>(token.expose())
        .ok()
        .map(|c| c.exp)
}

/// When to log in again for a token received at `now` that expires at `exp`: `margin`
/// before expiry, or half-way for a token that lives shorter than two margins (so a short
/// token is not refreshed on every request). An opaque token is kept until Mesos refuses it.
pub fn refresh_at(now_unix: u64, exp: Option<u64>, margin: Duration) -> Option<u64> {
    let exp = exp?;
    let left = exp.saturating_sub(now_unix);
    Some(if left > 2 * margin.as_secs() {
        exp - margin.as_secs()
    } else {
        now_unix + left / 2
    })
}

/// The current authentication token and when to replace it.
#[derive(Debug, Default)]
pub struct TokenCache {
    current: Option<(HeaderValue, Option<u64>)>,
}

impl TokenCache {
    /// The header to send at `now`, if the token is still good.
    pub fn fresh(&self, now_unix: u64) -> Option<HeaderValue> {
        match &self.current {
            Some((value, refresh)) if refresh.is_none_or(|at| now_unix < at) => Some(value.clone()),
            _ => None,
        }
    }

    /// Keeps a token received at `now`.
    pub fn store(&mut self, token: &Secret, now_unix: u64) -> Option<HeaderValue> {
        let value = token_authorization(token)?;
        let refresh = refresh_at(now_unix, token_expiry(token), REFRESH_MARGIN);
        self.current = Some((value.clone(), refresh));
        Some(value)
    }

    /// Forgets the token (Mesos refused it).
    pub fn invalidate(&mut self) {
        self.current = None;
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct ServiceAccountLogin {
    uid: String,
    login_url: String,
    key: EncodingKey,
    http: reqwest::Client,
    timeout: Duration,
    cache: Mutex<TokenCache>,
    /// One login at a time: concurrent calls that find the token stale wait for the login
    /// in flight instead of each logging in.
    login_in_flight: tokio::sync::Semaphore,
    logins: std::sync::atomic::AtomicU64,
}

impl ServiceAccountLogin {
    fn cached(&self) -> Option<HeaderValue> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .fresh(unix_now())
    }

    async fn authorization(&self) -> Result<HeaderValue, AuthError> {
        if let Some(value) = self.cached() {
            return Ok(value);
        }
        let _permit = self
            .login_in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        if let Some(value) = self.cached() {
            return Ok(value);
        }
        let token = self.login().await?;
        let value = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .store(&token, unix_now());
        value.ok_or_else(|| AuthError::Refused {
            url: self.login_url.clone(),
            status: 200,
            body: "the token cannot be sent as a header".into(),
        })
    }

    async fn login(&self) -> Result<Secret, AuthError> {
        let unavailable = |reason: String| AuthError::Unavailable {
            url: self.login_url.clone(),
            reason,
        };
        let token = login_token(&self.uid, &self.key, unix_now())?;
        let request = login_request(&self.login_url, &self.uid, &token)?;
        let request = reqwest::Request::try_from(request).map_err(|e| AuthError::Refused {
            url: self.login_url.clone(),
            status: 0,
            body: format!("not a usable URL: {e}"),
        })?;
        let exchange = async {
            let response = self.http.execute(request).await?;
            let status = response.status().as_u16();
            let body = response.text().await?;
            Ok::<_, reqwest::Error>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| unavailable(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| unavailable(e.to_string()))?;
        let count = self
            .logins
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let result = parse_login_answer(&self.login_url, status, &body);
        match &result {
            Ok(_) => tracing::info!(uid = %self.uid, logins = count, "logged in to the DC/OS IAM"),
            Err(e) => tracing::warn!(uid = %self.uid, error = %e, "DC/OS IAM login failed"),
        }
        result
    }
}

/// Produces the `Authorization` header for every request to Mesos.
pub struct Authenticator {
    kind: AuthKind,
    source: Source,
}

enum Source {
    None,
    Basic(HeaderValue),
    ServiceAccount(Box<ServiceAccountLogin>),
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Credentials from the configuration. `http` is used for the IAM login, with `timeout`.
    pub fn new(
        auth: &MesosAuth,
        http: reqwest::Client,
        timeout: Duration,
    ) -> Result<Authenticator, AuthError> {
        Ok(match auth {
            MesosAuth::None => Authenticator {
                kind: AuthKind::None,
                source: Source::None,
            },
            MesosAuth::Basic { principal, secret } => Authenticator {
                kind: AuthKind::Basic {
                    principal: principal.clone(),
                },
                source: Source::Basic(basic_authorization(principal, secret)),
            },
            MesosAuth::ServiceAccount(account) => Authenticator {
                kind: AuthKind::ServiceAccount {
                    uid: account.uid.clone(),
                    login_url: account.login_url.clone(),
                },
                source: Source::ServiceAccount(Box::new(ServiceAccountLogin {
                    uid: account.uid.clone(),
                    login_url: account.login_url.clone(),
                    key: signing_key(account)?,
                    http,
                    timeout,
                    cache: Mutex::new(TokenCache::default()),
                    login_in_flight: tokio::sync::Semaphore::new(1),
                    logins: std::sync::atomic::AtomicU64::new(0),
                })),
            },
        })
    }

    /// Which kind of credentials these are (for remedies).
    pub fn kind(&self) -> &AuthKind {
        &self.kind
    }

    /// The header for the next request (logging in first if the token is missing or due).
    pub async fn authorization(&self) -> Result<Option<HeaderValue>, AuthError> {
        match &self.source {
            Source::None => Ok(None),
            Source::Basic(value) => Ok(Some(value.clone())),
            Source::ServiceAccount(login) => login.authorization().await.map(Some),
        }
    }

    /// Mesos answered 401: forget the token. `true` when logging in again may help, so the
    /// request is worth one retry (a Basic secret or no credentials will not change).
    pub fn refresh_after_unauthorized(&self) -> bool {
        match &self.source {
            Source::ServiceAccount(login) => {
                login
                    .cache
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .invalidate();
                true
            }
            Source::None | Source::Basic(_) => false,
        }
    }

    /// How many IAM logins answered (for tests and metrics).
    pub fn logins(&self) -> u64 {
        match &self.source {
            Source::ServiceAccount(login) => {
                login.logins.load(std::sync::atomic::Ordering::Relaxed)
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PKCS8_KEY: &str = include_str!("../../tests/data/service-account-pkcs8.pem");
    const PKCS1_KEY: &str = include_str!("../../tests/data/service-account-pkcs1.pem");
    const PUBLIC_KEY: &str = include_str!("../../tests/data/service-account-public.pem");

    fn account(key: &str) -> ServiceAccount {
        ServiceAccount {
            uid: "fastdata-sa".into(),
            private_key: Secret::new(key),
            login_url: "http://127.0.0.1:1/acs/api/v1/auth/login".into(),
        }
    }

    #[test]
    fn basic_is_base64_of_principal_and_secret() {
        // The recorded header for fastdata-principal:s3cret (auth-basic.jsonl).
        let value = basic_authorization("fastdata-principal", &Secret::new("s3cret"));
        assert_eq!(value, "Basic ZmFzdGRhdGEtcHJpbmNpcGFsOnMzY3JldA==");
        assert!(value.is_sensitive());
        assert!(!format!("{value:?}").contains("ZmFz"));
    }

    #[test]
    fn login_tokens_verify_with_the_public_key_in_both_key_formats() {
        let decoding = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap();
        for pem in [PKCS8_KEY, PKCS1_KEY] {
            let key = signing_key(&account(pem)).expect("key parses");
            let now = unix_now();
            let token = login_token("fastdata-sa", &key, now).unwrap();
            let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
            validation.required_spec_claims = ["exp".to_owned()].into();
            let data = jsonwebtoken::decode::<LoginClaims>(token.expose(), &decoding, &validation)
                .expect("signature verifies");
            assert_eq!(data.claims.uid, "fastdata-sa");
            assert_eq!(data.claims.exp, now + 120);
            assert_eq!(data.header.alg, Algorithm::RS256);
        }
    }

    #[test]
    fn a_bad_key_is_a_configuration_error_that_hides_the_key() {
        let bad = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----";
        let Err(err) = signing_key(&account(bad)) else {
            panic!("a key that is not RSA was accepted");
        };
        assert!(matches!(err, AuthError::BadKey { .. }));
        let text = err.to_string();
        assert!(text.contains("DCOS_SERVICE_ACCOUNT_CREDENTIAL"), "{text}");
        assert!(!text.contains("bm90IGEga2V5"), "{text}");
    }

    #[test]
    fn login_request_is_json_uid_and_token() {
        let req = login_request(
            "http://master.mesos/acs/api/v1/auth/login",
            "sa",
            &Secret::new("eyJ.x.y"),
        )
        .unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri().path(), "/acs/api/v1/auth/login");
        assert_eq!(req.headers()["content-type"], "application/json");
        let body: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(body, serde_json::json!({"uid": "sa", "token": "eyJ.x.y"}));
    }

    #[test]
    fn login_answers() {
        let url = "http://iam/login";
        assert_eq!(
            parse_login_answer(url, 200, r#"{"token":"abc.def.ghi"}"#)
                .unwrap()
                .expose(),
            "abc.def.ghi"
        );
        assert!(matches!(
            parse_login_answer(url, 401, "{\"title\":\"Bad token\"}"),
            Err(AuthError::Refused { status: 401, .. })
        ));
        assert!(matches!(
            parse_login_answer(url, 503, "down"),
            Err(AuthError::Unavailable { .. })
        ));
        let garbage = parse_login_answer(url, 200, "secret-ish garbage").unwrap_err();
        assert!(!garbage.to_string().contains("secret-ish"));
        assert!(parse_login_answer(url, 200, r#"{"token":"a\nb"}"#).is_err());
    }

    fn jwt_with_exp(exp: u64) -> Secret {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        Secret::new(format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"RS256","typ":"JWT"}"#),
            b64(&format!(r#"{{"uid":"sa","exp":{exp}}}"#))
        ))
    }

    #[test]
    fn expiry_is_read_without_verifying() {
        assert_eq!(
            token_expiry(&jwt_with_exp(1_800_000_000)),
            Some(1_800_000_000)
        );
        assert_eq!(token_expiry(&Secret::new("opaque")), None);
        assert_eq!(token_expiry(&Secret::new("a.b.c")), None);
    }

    #[test]
    fn refresh_times() {
        let margin = Duration::from_secs(30);
        // A 5-day DC/OS token: 30 s before expiry.
        assert_eq!(
            refresh_at(1000, Some(1000 + 432_000), margin),
            Some(1000 + 431_970)
        );
        // A short token (40 s): half-way, not on every request.
        assert_eq!(refresh_at(1000, Some(1040), margin), Some(1020));
        // Already expired: now.
        assert_eq!(refresh_at(1000, Some(900), margin), Some(1000));
        // Opaque: until Mesos refuses it.
        assert_eq!(refresh_at(1000, None, margin), None);
    }

    #[test]
    fn the_cache_hands_out_a_token_until_it_is_due_or_refused() {
        let mut cache = TokenCache::default();
        assert_eq!(cache.fresh(1000), None);
        let value = cache.store(&jwt_with_exp(1000 + 3600), 1000).unwrap();
        assert!(value.to_str().unwrap().starts_with("token=eyJ"));
        assert!(value.is_sensitive());
        assert_eq!(cache.fresh(1000), Some(value.clone()));
        assert_eq!(cache.fresh(1000 + 3569), Some(value));
        assert_eq!(cache.fresh(1000 + 3570), None, "30 s before expiry");
        cache.store(&jwt_with_exp(1000 + 3600), 1000);
        cache.invalidate();
        assert_eq!(cache.fresh(1001), None);
        cache.store(&Secret::new("opaque-token"), 1000);
        assert_eq!(
            cache.fresh(u64::MAX).unwrap().to_str().unwrap(),
            "token=opaque-token"
        );
    }

    #[tokio::test]
    async fn basic_and_none_never_retry_a_401() {
        let http = reqwest::Client::new();
        let none =
            Authenticator::new(&MesosAuth::None, http.clone(), Duration::from_secs(1)).unwrap();
        assert_eq!(none.authorization().await.unwrap(), None);
        assert!(!none.refresh_after_unauthorized());
        let basic = Authenticator::new(
            &MesosAuth::Basic {
                principal: "p".into(),
                secret: Secret::new("s"),
            },
            http.clone(),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(basic.authorization().await.unwrap().unwrap(), "Basic cDpz");
        assert!(!basic.refresh_after_unauthorized());
        assert!(!format!("{basic:?}").contains("cDpz"));
        let account = Authenticator::new(
            &MesosAuth::ServiceAccount(account(PKCS8_KEY)),
            http,
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(account.refresh_after_unauthorized());
        // Port 1 on loopback refuses: the login is unavailable (retry), not refused.
        assert!(matches!(
            account.authorization().await,
            Err(AuthError::Unavailable { .. })
        ));
    }
}
