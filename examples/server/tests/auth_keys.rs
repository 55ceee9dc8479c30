//! Customer tokens verified with a public key: Ed25519 (`EdDSA`) and RSA (`RS256`), from the
//! test key pairs in `tests/keys` (made with `openssl genpkey`; test keys, never used elsewhere).
//! The server holds only the public key; the tokens are signed here, as an identity provider
//! would sign them.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use ticketing_core::Error;
use ticketing_core::service::Backends;
use ticketing_server::auth::{CustomerAuth, JwtKey, PublicKeyAlgorithm, TokenRules, unix_now};
use ticketing_server::config::Args;
use ticketing_server::rate_limit::PurchaseRate;

const ED25519_PRIVATE: &[u8] = include_bytes!("keys/ed25519_private.pem");
const ED25519_PUBLIC: &[u8] = include_bytes!("keys/ed25519_public.pem");
const OTHER_ED25519_PRIVATE: &[u8] = include_bytes!("keys/other_ed25519_private.pem");
const RSA_PRIVATE: &[u8] = include_bytes!("keys/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("keys/rsa_public.pem");

fn sign(algorithm: Algorithm, key: &EncodingKey, claims: serde_json::Value) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), &claims, key).expect("a signed token")
}

async fn app_verifying(algorithm: PublicKeyAlgorithm, pem: &[u8], rules: TokenRules) -> TestApp {
    let customers = CustomerAuth::new(
        &JwtKey::PublicKey {
            algorithm,
            pem: pem.to_vec(),
        },
        &rules,
    )
    .expect("a usable public key");
    assert!(customers.minter().is_none(), "a public key cannot mint");
    TestApp::custom(
        Backends::in_memory(),
        None,
        customers,
        PurchaseRate::default(),
    )
    .await
}

async fn buy_with(app: &TestApp, token: &str, seat: u32) -> common::Answer {
    let body = json!({"eventId": app.demo.event.to_string(),
        "seats": [{"zone": "STALLS", "row": "A", "number": seat}]});
    let auth = format!("Bearer {token}");
    app.call(
        axum::http::Method::POST,
        "/api/tickets",
        Some(&body),
        &[("authorization", &auth)],
    )
    .await
}

#[tokio::test]
async fn ed25519_tokens_verify_with_the_public_key_and_forgeries_do_not() {
    let rules = TokenRules {
        issuer: Some("https://id.example".into()),
        audience: Some("tickets".into()),
    };
    let app = app_verifying(PublicKeyAlgorithm::EdDsa, ED25519_PUBLIC, rules).await;
    let key = EncodingKey::from_ed_pem(ED25519_PRIVATE).unwrap();
    let claims = |sub: &str, exp: u64| json!({"sub": sub, "exp": exp, "iss": "https://id.example", "aud": "tickets"});
    let good = sign(Algorithm::EdDSA, &key, claims("erin", unix_now() + 600));
    let bought = buy_with(&app, &good, 1).await;
    bought.expect(StatusCode::CREATED, None);
    assert_eq!(bought.body["customerId"], "erin");
    let order = bought.body["id"].as_str().unwrap().to_owned();
    app.call(
        axum::http::Method::GET,
        &format!("/api/orders/{order}"),
        None,
        &[("authorization", &format!("Bearer {good}"))],
    )
    .await
    .expect(StatusCode::OK, None);

    let other = EncodingKey::from_ed_pem(OTHER_ED25519_PRIVATE).unwrap();
    let forged = sign(Algorithm::EdDSA, &other, claims("erin", unix_now() + 600));
    let expired = sign(Algorithm::EdDSA, &key, claims("erin", unix_now() - 600));
    let no_exp = sign(
        Algorithm::EdDSA,
        &key,
        json!({"sub": "erin", "iss": "https://id.example", "aud": "tickets"}),
    );
    let wrong_issuer = sign(
        Algorithm::EdDSA,
        &key,
        json!({"sub": "erin", "exp": unix_now() + 600, "iss": "https://evil.example", "aud": "tickets"}),
    );
    // An HS256 token "signed" with the public key as secret: the algorithm-confusion attack.
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("erin", unix_now() + 600),
        &EncodingKey::from_secret(ED25519_PUBLIC).unwrap(),
    )
    .unwrap();
    for (what, token) in [
        ("forged", &forged),
        ("expired", &expired),
        ("without exp", &no_exp),
        ("from another issuer", &wrong_issuer),
        ("HS256 with the public key", &confused),
    ] {
        let answer = buy_with(&app, token, 2).await;
        answer.expect(StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED"));
        assert!(
            answer.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{what}"
        );
    }
}

#[tokio::test]
async fn rs256_tokens_verify_with_the_public_key() {
    let app = app_verifying(PublicKeyAlgorithm::Rs256, RSA_PUBLIC, TokenRules::default()).await;
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap();
    let token = sign(
        Algorithm::RS256,
        &key,
        json!({"sub": "frank", "exp": unix_now() + 600}),
    );
    buy_with(&app, &token, 3)
        .await
        .expect(StatusCode::CREATED, None);
    // An Ed25519 token does not pass for an RS256 one.
    let ed = sign(
        Algorithm::EdDSA,
        &EncodingKey::from_ed_pem(ED25519_PRIVATE).unwrap(),
        json!({"sub": "frank", "exp": unix_now() + 600}),
    );
    buy_with(&app, &ed, 4)
        .await
        .expect(StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED"));
}

/// The flags: a public key file with its algorithm; every combination that cannot work is a
/// [`Error::Config`] naming the flag.
#[test]
fn key_flags_that_cannot_work_are_config_errors() {
    let dir = std::env::temp_dir().join(format!("ticketing-auth-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let public = dir.join("ed25519_public.pem");
    std::fs::write(&public, ED25519_PUBLIC).unwrap();
    let public = public.to_str().unwrap();
    let secret = "0123456789abcdef0123456789abcdef";
    let args = |extra: &[&str]| {
        let mut argv = vec!["ticketing-server", "--database-url", "mysql://x/y"];
        argv.extend_from_slice(extra);
        Args::from_flags(argv)
    };
    assert!(
        args(&["--jwt-public-key-file", public, "--jwt-algorithm", "EdDSA"])
            .customer_auth()
            .is_ok()
    );
    assert!(
        args(&["--jwt-hs256-secret", secret])
            .customer_auth()
            .is_ok()
    );
    let setting = |extra: &[&str]| match args(extra).customer_auth() {
        Err(Error::Config { setting, .. }) => setting,
        Err(other) => panic!("{extra:?}: {other}"),
        Ok(_) => panic!("{extra:?} was accepted"),
    };
    assert_eq!(setting(&[]), "jwt-hs256-secret");
    assert_eq!(
        setting(&["--jwt-hs256-secret", "short"]),
        "jwt-hs256-secret"
    );
    assert_eq!(
        setting(&[
            "--jwt-hs256-secret",
            secret,
            "--jwt-public-key-file",
            public
        ]),
        "jwt-hs256-secret"
    );
    assert_eq!(setting(&["--jwt-public-key-file", public]), "jwt-algorithm");
    assert_eq!(
        setting(&["--jwt-hs256-secret", secret, "--jwt-algorithm", "RS256"]),
        "jwt-algorithm"
    );
    assert_eq!(
        setting(&[
            "--jwt-public-key-file",
            "/nonexistent.pem",
            "--jwt-algorithm",
            "EdDSA"
        ]),
        "jwt-public-key-file"
    );
    // An Ed25519 key given as RS256 does not parse as an RSA key.
    assert_eq!(
        setting(&["--jwt-public-key-file", public, "--jwt-algorithm", "RS256"]),
        "jwt-public-key-file"
    );
    // Demo mode mints tokens, which a public key cannot.
    assert_eq!(
        setting(&[
            "--demo",
            "true",
            "--jwt-public-key-file",
            public,
            "--jwt-algorithm",
            "EdDSA"
        ]),
        "demo"
    );
    // Demo mode without a key gets a random secret it can mint with.
    let demo = Args::from_flags(["ticketing-server"])
        .customer_auth()
        .unwrap();
    assert!(demo.minter().is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}
