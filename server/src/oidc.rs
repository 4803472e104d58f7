//! OpenID Connect tokens: verifying the logins identities present (tokens of issuers the
//! operator registered), and the tokens this server issues itself (GetOpenIdToken,
//! GetOpenIdTokenForDeveloperIdentity), signed with an ES256 key created once and published
//! at `/.well-known/openid-configuration` and `/.well-known/jwks.json`.
//!
//! Verification is `jsonwebtoken`'s: the signature under the issuer's key for the token's
//! `kid` (RS256, RS384, RS512, PS256, ES256, ES384; never `none`), then `iss`, `aud`, and
//! `exp`/`nbf` with a minute of leeway. A failure says what failed, never key material.

use super::error::ApiError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use synctrig_store::{Issuer, Store};

/// The login provider name that stands for this server's own tokens, as in Cognito.
pub const OWN_PROVIDER: &str = "cognito-identity.amazonaws.com";

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 60;

/// Algorithms accepted from issuers.
const ALGORITHMS: &[Algorithm] =
    &[Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::ES256, Algorithm::ES384];

/// The claims a login token must have.
#[derive(Debug, Deserialize)]
pub struct Claims {
    /// The subject: who signed in.
    pub sub: String,
}

/// The claims of this server's own tokens.
#[derive(Debug, Serialize, Deserialize)]
struct OwnClaims {
    iss: String,
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    amr: Vec<String>,
}

fn refused(reason: impl std::fmt::Display) -> ApiError {
    ApiError::not_authorized(format!("Invalid login token. {reason}"))
}

/// Verifies `token` for `issuer` and one of `audiences`; the subject it names. Keys read
/// again from the issuer's file (a rotation) are stored for the next tokens.
pub async fn verify(
    store: &Store,
    token: &str,
    issuer: &Issuer,
    accepted_issuers: &[String],
    audiences: &[String],
) -> Result<String, ApiError> {
    // A key id the stored set lacks: the issuer may have rotated its keys, so its file is
    // read again (off the async workers: it is a file) and a new valid set is kept, whatever
    // key id asked, so tokens naming junk key ids cannot hold a rotation back.
    let mut issuer = std::borrow::Cow::Borrowed(issuer);
    if let Ok(header) = jsonwebtoken::decode_header(token)
        && let Ok(set) = serde_json::from_str::<JwkSet>(&issuer.jwks)
        && find_key(&set, header.kid.as_deref()).is_none()
    {
        let read = issuer.clone().into_owned();
        let refreshed = tokio::task::spawn_blocking(move || refreshed_keys(&read)).await.ok().flatten();
        if let Some((text, _)) = refreshed
            && text != issuer.jwks
            && check_key_set(&text).is_ok()
        {
            let renewed = Issuer { jwks: text, ..issuer.clone().into_owned() };
            store.put_issuer(&renewed).await?;
            issuer = std::borrow::Cow::Owned(renewed);
        }
    }
    let claims: Claims = decode(token, &issuer, accepted_issuers, audiences)?;
    if claims.sub.is_empty() {
        return Err(refused("Its subject is empty."));
    }
    Ok(claims.sub)
}

/// Verifies `token` against `issuer`'s key set; its claims.
fn decode<C: serde::de::DeserializeOwned>(
    token: &str,
    issuer: &Issuer,
    accepted_issuers: &[String],
    audiences: &[String],
) -> Result<C, ApiError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| refused("It is not a JSON Web Token."))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(refused(format!("Its algorithm {:?} is not accepted.", header.alg)));
    }
    let set: JwkSet =
        serde_json::from_str(&issuer.jwks).map_err(|_| refused("The issuer's key set is not valid JSON."))?;
    let jwk =
        find_key(&set, header.kid.as_deref()).ok_or_else(|| refused("No key of its issuer has the token's key id."))?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| refused("The issuer's key cannot be used."))?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(accepted_issuers);
    validation.set_audience(audiences);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    let data = jsonwebtoken::decode::<C>(token, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        refused(match e.kind() {
            ErrorKind::ExpiredSignature => "The token has expired.",
            ErrorKind::ImmatureSignature => "The token is not valid yet.",
            ErrorKind::InvalidIssuer => "The token's issuer is not the login provider's.",
            ErrorKind::InvalidAudience => "The token is not for a client this identity pool accepts.",
            ErrorKind::InvalidSignature => "Its signature does not verify.",
            ErrorKind::MissingRequiredClaim(_) => "It lacks a required claim (exp, iss, aud or sub).",
            _ => "It cannot be verified.",
        })
    })?;
    Ok(data.claims)
}

fn find_key(set: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(kid) => set.find(kid).cloned(),
        None if set.keys.len() == 1 => set.keys.first().cloned(),
        None => None,
    }
}

/// An issuer's key set read again from its file, at most every 30 s per issuer.
fn refreshed_keys(issuer: &Issuer) -> Option<(String, JwkSet)> {
    static LAST: Mutex<Vec<(String, Instant)>> = Mutex::new(Vec::new());
    let path = issuer.jwks_file.as_ref()?;
    {
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        if last.iter().any(|(i, at)| *i == issuer.issuer && at.elapsed() < Duration::from_secs(30)) {
            return None;
        }
        last.retain(|(i, _)| *i != issuer.issuer);
        last.push((issuer.issuer.clone(), Instant::now()));
    }
    // Bounded: a key set is a few KiB.
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(std::fs::File::open(path).ok()?, 1 << 20), &mut text)
        .ok()?;
    let set = serde_json::from_str(&text).ok()?;
    Some((text, set))
}

/// Checks a key set given for an issuer: JSON with at least one key usable for verifying.
pub fn check_key_set(jwks: &str) -> Result<(), String> {
    let set: JwkSet = serde_json::from_str(jwks).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
    if set.keys.is_empty() {
        return Err("the key set has no keys".into());
    }
    for key in &set.keys {
        DecodingKey::from_jwk(key).map_err(|e| format!("key {:?} cannot verify signatures: {e}", key.common.key_id))?;
    }
    Ok(())
}

/// This server's signing key.
pub struct OwnKey {
    encoding: EncodingKey,
    jwk: serde_json::Value,
    kid: String,
    /// The issuer (`iss`) of its tokens: the server's public URL.
    pub issuer: String,
}

impl OwnKey {
    /// The key in the store's meta table, created (an ES256 key) the first time.
    pub async fn load_or_create(store: &Store, issuer: &str) -> Result<OwnKey, ApiError> {
        let fresh = loop {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).expect("the OS random source failed");
            if p256::SecretKey::from_slice(&bytes).is_ok() {
                break hex::encode(bytes);
            }
        };
        let (secret, _) = store.meta_or_insert("oidc_signing_key", fresh).await?;
        let bytes = hex::decode(&secret).map_err(|_| ApiError::internal("the stored signing key is corrupt"))?;
        let secret =
            p256::SecretKey::from_slice(&bytes).map_err(|_| ApiError::internal("the stored signing key is corrupt"))?;
        use p256::pkcs8::EncodePrivateKey;
        let der = secret.to_pkcs8_der().map_err(|_| ApiError::internal("cannot encode the signing key"))?;
        let encoding = EncodingKey::from_ec_der(der.as_bytes());
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
        let (x, y) = (point.x().map(|x| B64.encode(x)), point.y().map(|y| B64.encode(y)));
        let kid = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(point.as_bytes())[..8]);
        let jwk = serde_json::json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y, "use": "sig", "alg": "ES256", "kid": kid });
        Ok(OwnKey { encoding, jwk, kid, issuer: issuer.trim_end_matches('/').to_owned() })
    }

    /// A token for an identity of a pool (`aud`), valid for `ttl`.
    pub fn issue(
        &self,
        identity: &str,
        pool: &str,
        authenticated: bool,
        providers: &[String],
        ttl: Duration,
    ) -> Result<String, ApiError> {
        let iat = synctrig_store::now();
        let mut amr = vec![if authenticated { "authenticated" } else { "unauthenticated" }.to_owned()];
        amr.extend(providers.iter().cloned());
        let claims = OwnClaims {
            iss: self.issuer.clone(),
            sub: identity.to_owned(),
            aud: pool.to_owned(),
            iat,
            exp: iat + ttl.as_secs() as i64,
            amr,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| ApiError::internal(format!("cannot sign a token: {e}")))
    }

    /// Verifies one of this server's own tokens for `pool`: the identity it names, and
    /// whether it was issued to an authenticated identity.
    pub fn verify(&self, token: &str, pool: &str) -> Result<(String, bool), ApiError> {
        let issuer = Issuer {
            tenant: String::new(),
            issuer: self.issuer.clone(),
            audiences: vec![pool.to_owned()],
            jwks: self.jwks().to_string(),
            jwks_file: None,
        };
        let claims: OwnClaims = decode(token, &issuer, std::slice::from_ref(&self.issuer), &[pool.to_owned()])?;
        let authenticated = claims.amr.first().map(String::as_str) == Some("authenticated");
        Ok((claims.sub, authenticated))
    }

    /// The public key set (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.jwk] })
    }

    /// The discovery document (`/.well-known/openid-configuration`).
    pub fn discovery(&self) -> serde_json::Value {
        serde_json::json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/.well-known/jwks.json", self.issuer),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "claims_supported": ["sub", "aud", "iss", "exp", "iat", "amr"],
        })
    }
}

/// Registers an OpenID Connect issuer for a tenant's pools (as an IAM OIDC provider is an
/// account's), as `admin register-issuer` does: its URL (https,
/// kept without a trailing slash, as pools name it in `OpenIdConnectProviderARNs`), the
/// client ids its tokens may be for, and its keys, inline or from a file that is read
/// again when a token names a key id the stored set lacks.
pub async fn register_issuer(
    store: &Store,
    tenant: &str,
    issuer: &str,
    audiences: &[String],
    jwks: Option<&str>,
    jwks_file: Option<&std::path::Path>,
) -> Result<Issuer, String> {
    if !store.tenant_exists(tenant).await.map_err(|e| e.to_string())? {
        return Err(format!("no tenant {tenant:?}"));
    }
    let issuer = issuer.trim_end_matches('/');
    let host_and_path =
        issuer.strip_prefix("https://").ok_or("the issuer must be an https:// URL, as in its tokens' iss")?;
    let ok = !host_and_path.is_empty()
        && host_and_path.len() <= 255
        && host_and_path.chars().all(|c| c.is_ascii_alphanumeric() || "-._~/:%".contains(c));
    if !ok {
        return Err(format!("{issuer:?} is not an issuer URL (https://host[/path])"));
    }
    if audiences.is_empty() || audiences.iter().any(|a| a.is_empty() || a.len() > 255) {
        return Err("give at least one audience (the client ids its tokens are for), each 1 to 255 characters".into());
    }
    let (jwks, file) = match (jwks, jwks_file) {
        (Some(jwks), None) => (jwks.to_owned(), None),
        (None, Some(path)) => {
            let path = std::fs::canonicalize(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            (text, Some(path.display().to_string()))
        }
        _ => return Err("give the issuer's keys with exactly one of --jwks or --jwks-file".into()),
    };
    check_key_set(&jwks)?;
    let issuer = Issuer {
        tenant: tenant.to_owned(),
        issuer: issuer.to_owned(),
        audiences: audiences.to_vec(),
        jwks,
        jwks_file: file,
    };
    store.put_issuer(&issuer).await.map_err(|e| e.to_string())?;
    Ok(issuer)
}
