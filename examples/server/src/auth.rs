//! Who is calling: a customer, named by the `sub` claim of a JWT in `Authorization: Bearer …`
//! that the configured key verifies, or the admin, with the admin token.
//!
//! A customer's routes take a [`Caller`] (the admin may act on any order) or a [`Customer`] (a
//! purchase is always some customer's). A missing, malformed, forged or expired token is
//! `401 UNAUTHORIZED` with `WWW-Authenticate: Bearer`. Ownership is the handlers' business:
//! another customer's order or ticket is `404`, exactly as if it did not exist.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use ticketing_core::domain::CustomerId;
use ticketing_core::{Error, Result};

use crate::app::AppState;
use crate::error::ApiError;

/// Shortest HS256 secret accepted, in bytes: HS256's own strength (RFC 7518, section 3.2).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// Clock skew tolerated on `exp` between the token's issuer and this server, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;

/// The algorithm of a public key that verifies customer tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PublicKeyAlgorithm {
    /// Ed25519 signatures (`alg: EdDSA`).
    #[value(name = "EdDSA")]
    EdDsa,
    /// RSA PKCS#1 v1.5 with SHA-256 (`alg: RS256`).
    #[value(name = "RS256")]
    Rs256,
}

/// The key that verifies customer tokens.
#[derive(Clone)]
pub enum JwtKey {
    /// A shared secret (`alg: HS256`): whoever holds it can also mint tokens, this server
    /// included (the demo's tokens).
    Hs256(Vec<u8>),
    /// A public key in PEM (`-----BEGIN PUBLIC KEY-----`); the tokens are minted elsewhere.
    PublicKey {
        /// Its algorithm.
        algorithm: PublicKeyAlgorithm,
        /// The PEM text.
        pem: Vec<u8>,
    },
}

impl std::fmt::Debug for JwtKey {
    /// Never prints a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtKey::Hs256(_) => f.write_str("Hs256(..)"),
            JwtKey::PublicKey { algorithm, .. } => write!(f, "PublicKey({algorithm:?})"),
        }
    }
}

/// What a customer token must satisfy besides its signature and `exp`.
#[derive(Debug, Clone, Default)]
pub struct TokenRules {
    /// The required `iss` claim, if any.
    pub issuer: Option<String>,
    /// The required `aud` claim (or one of its values), if any.
    pub audience: Option<String>,
}

/// The claims this server reads and the demo writes.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<serde_json::Value>,
}

/// Verifies customer tokens. Cheap to clone.
#[derive(Clone)]
pub struct CustomerAuth(Arc<Inner>);

struct Inner {
    key: DecodingKey,
    validation: Validation,
    minter: Option<TokenMinter>,
}

impl CustomerAuth {
    /// A verifier of tokens signed with `key` that satisfy `rules`; `exp` and `sub` are
    /// required. A key that cannot work (a short secret, a PEM that is not a key of the
    /// algorithm) is [`Error::Config`].
    pub fn new(key: &JwtKey, rules: &TokenRules) -> Result<Self> {
        // Only the pure-Rust backend is compiled in; installing it explicitly keeps another
        // crate's choice of backend from making jsonwebtoken's own inference ambiguous.
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        let (algorithm, decoding, minter) = match key {
            JwtKey::Hs256(secret) => {
                check_secret(secret)?;
                let key = DecodingKey::from_secret(secret)
                    .map_err(|e| Error::config("jwt-hs256-secret", e.to_string()))?;
                (
                    Algorithm::HS256,
                    key,
                    Some(TokenMinter::hs256(secret, rules)?),
                )
            }
            JwtKey::PublicKey { algorithm, pem } => {
                let (algorithm, key) = match algorithm {
                    PublicKeyAlgorithm::EdDsa => (Algorithm::EdDSA, DecodingKey::from_ed_pem(pem)),
                    PublicKeyAlgorithm::Rs256 => (Algorithm::RS256, DecodingKey::from_rsa_pem(pem)),
                };
                let key = key.map_err(|e| {
                    Error::config(
                        "jwt-public-key-file",
                        format!("not a PEM public key for {algorithm:?}: {e}"),
                    )
                })?;
                (algorithm, key, None)
            }
        };
        let mut validation = Validation::new(algorithm);
        // A configured iss or aud is required too: jsonwebtoken checks them only when present.
        let mut required = vec!["exp", "sub"];
        required.extend(rules.issuer.as_ref().map(|_| "iss"));
        required.extend(rules.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        validation.leeway = LEEWAY_SECONDS;
        match &rules.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &rules.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        Ok(Self(Arc::new(Inner {
            key: decoding,
            validation,
            minter,
        })))
    }

    /// The customer a token names, or why it is refused (a message for the `401`).
    pub fn verify(&self, token: &str) -> std::result::Result<CustomerId, String> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.0.key, &self.0.validation)
            .map_err(|e| refusal(e.kind()))?;
        CustomerId::new(data.claims.sub)
            .map_err(|_| "the token's sub claim is not a customer id (1 to 128 of letters, digits and _ - . @ +)".to_owned())
    }

    /// The minter of tokens this verifier accepts: only with an HS256 secret.
    pub fn minter(&self) -> Option<&TokenMinter> {
        self.0.minter.as_ref()
    }
}

fn check_secret(secret: &[u8]) -> Result<()> {
    if secret.len() < MIN_HS256_SECRET_BYTES {
        return Err(Error::config(
            "jwt-hs256-secret",
            format!(
                "an HS256 secret needs at least {MIN_HS256_SECRET_BYTES} bytes, got {}",
                secret.len()
            ),
        ));
    }
    Ok(())
}

/// Why jsonwebtoken refused a token, for the client.
fn refusal(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::InvalidAlgorithm => "the token is signed with another algorithm".into(),
        ErrorKind::InvalidIssuer => "the token's iss claim is not the expected issuer".into(),
        ErrorKind::InvalidAudience => "the token's aud claim is not the expected audience".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token lacks the {claim} claim"),
        _ => "the token is not a well-formed JWT".into(),
    }
}

/// Signs customer tokens with an HS256 secret (the demo's `/demo/token`, tests, load
/// generators).
#[derive(Clone)]
pub struct TokenMinter {
    key: EncodingKey,
    rules: TokenRules,
}

impl TokenMinter {
    /// A minter with `secret`, writing the `iss` and `aud` that `rules` require.
    pub fn hs256(secret: &[u8], rules: &TokenRules) -> Result<Self> {
        check_secret(secret)?;
        Ok(Self {
            key: EncodingKey::from_secret(secret)
                .map_err(|e| Error::config("jwt-hs256-secret", e.to_string()))?,
            rules: rules.clone(),
        })
    }

    /// A token for `customer` that expires at `expires_at` (Unix seconds).
    pub fn mint(&self, customer: &CustomerId, expires_at: u64) -> String {
        let claims = Claims {
            sub: customer.to_string(),
            exp: expires_at,
            iss: self.rules.issuer.clone(),
            aud: self.rules.audience.clone().map(Into::into),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .unwrap_or_else(|e| unreachable!("HS256 signs any claims: {e}"))
    }
}

/// Now, in Unix seconds, as jsonwebtoken reads `exp` against.
pub fn unix_now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Whether `presented` is the admin token (a constant-time comparison).
pub fn is_admin_token(state: &AppState, presented: &str) -> bool {
    bool::from(presented.as_bytes().ct_eq(state.admin_token().as_bytes()))
}

/// The token of `Authorization: Bearer <token>`, if the header has that form.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// A `401 UNAUTHORIZED` with `WWW-Authenticate: Bearer` (RFC 6750: `error="invalid_token"`
/// when a token was given and refused).
#[derive(Debug)]
pub struct AuthRejection {
    error: ApiError,
    token_given: bool,
}

impl AuthRejection {
    /// No token.
    pub fn missing(message: &str) -> Self {
        Self {
            error: ApiError::unauthorized(message),
            token_given: false,
        }
    }

    /// A token that is refused.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            error: ApiError::unauthorized(message),
            token_given: true,
        }
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let challenge = if self.token_given {
            HeaderValue::from_static("Bearer error=\"invalid_token\"")
        } else {
            HeaderValue::from_static("Bearer")
        };
        let mut response = self.error.into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
        response
    }
}

/// Who calls a customer route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin token: may read and cancel any order and ticket.
    Admin,
    /// A customer, from a verified token.
    Customer(CustomerId),
}

impl Caller {
    /// Whether the caller may see what `owner` bought.
    pub fn may_see(&self, owner: &CustomerId) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Customer(customer) => customer == owner,
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        let Some(token) = bearer_token(parts) else {
            return Err(AuthRejection::missing(
                "this route needs Authorization: Bearer <customer token>",
            ));
        };
        if is_admin_token(state, token) {
            return Ok(Caller::Admin);
        }
        state
            .customers()
            .verify(token)
            .map(Caller::Customer)
            .map_err(AuthRejection::invalid)
    }
}

/// The customer a purchase is for: only a customer token names one.
#[derive(Debug, Clone)]
pub struct Customer(pub CustomerId);

impl FromRequestParts<AppState> for Customer {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Customer(customer) => Ok(Customer(customer)),
            Caller::Admin => Err(AuthRejection::invalid(
                "the admin token names no customer: buy with a customer token",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn auth(rules: &TokenRules) -> CustomerAuth {
        CustomerAuth::new(&JwtKey::Hs256(SECRET.to_vec()), rules).unwrap()
    }

    #[test]
    fn a_minted_token_names_its_customer() {
        let auth = auth(&TokenRules::default());
        let alice: CustomerId = "alice".parse().unwrap();
        let token = auth.minter().unwrap().mint(&alice, unix_now() + 60);
        assert_eq!(auth.verify(&token), Ok(alice));
    }

    #[test]
    fn expired_forged_and_malformed_tokens_are_refused() {
        let auth = auth(&TokenRules::default());
        let alice: CustomerId = "alice".parse().unwrap();
        let expired = auth
            .minter()
            .unwrap()
            .mint(&alice, unix_now() - LEEWAY_SECONDS - 60);
        assert_eq!(auth.verify(&expired).unwrap_err(), "the token has expired");
        let other = TokenMinter::hs256(&[7; 32], &TokenRules::default()).unwrap();
        let forged = other.mint(&alice, unix_now() + 60);
        assert!(auth.verify(&forged).unwrap_err().contains("signature"));
        assert!(
            auth.verify("not.a.jwt")
                .unwrap_err()
                .contains("well-formed")
        );
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let rules = TokenRules {
            issuer: Some("https://id.example".into()),
            audience: Some("tickets".into()),
        };
        let strict = auth(&rules);
        let alice: CustomerId = "alice".parse().unwrap();
        let exp = unix_now() + 60;
        let plain = TokenMinter::hs256(SECRET, &TokenRules::default()).unwrap();
        assert!(strict.verify(&plain.mint(&alice, exp)).is_err());
        let wrong_audience = TokenMinter::hs256(
            SECRET,
            &TokenRules {
                audience: Some("other".into()),
                ..rules.clone()
            },
        )
        .unwrap();
        assert!(
            strict
                .verify(&wrong_audience.mint(&alice, exp))
                .unwrap_err()
                .contains("aud")
        );
        assert_eq!(
            strict.verify(&strict.minter().unwrap().mint(&alice, exp)),
            Ok(alice)
        );
    }

    #[test]
    fn unusable_keys_are_config_errors() {
        let short = CustomerAuth::new(&JwtKey::Hs256(b"short".to_vec()), &TokenRules::default());
        assert!(matches!(
            short,
            Err(Error::Config {
                setting: "jwt-hs256-secret",
                ..
            })
        ));
        let garbage = CustomerAuth::new(
            &JwtKey::PublicKey {
                algorithm: PublicKeyAlgorithm::EdDsa,
                pem: b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".to_vec(),
            },
            &TokenRules::default(),
        );
        assert!(matches!(
            garbage,
            Err(Error::Config {
                setting: "jwt-public-key-file",
                ..
            })
        ));
    }
}
