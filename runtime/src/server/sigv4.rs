//! AWS Signature Version 4 verification, as pure functions.
//!
//! The server recomputes the signature a client must have made over the request as it
//! arrived (raw path, query, the headers the client says it signed, the body) and
//! compares in constant time. The canonical URI is the received path percent-encoded
//! once more, as botocore and the other SDKs do for every service but S3.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime};

/// The most a request's `X-Amz-Date` may differ from the server's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// What an `Authorization: AWS4-HMAC-SHA256 ...` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key id.
    pub access_key: String,
    /// `YYYYMMDD` of the credential scope.
    pub date: String,
    /// The region of the scope.
    pub region: String,
    /// The service of the scope.
    pub service: String,
    /// Lower-case header names, in the order given.
    pub signed_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
}

/// A request as the verifier needs it.
pub struct Request<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The path exactly as received (still percent-encoded).
    pub raw_path: &'a str,
    /// The query string exactly as received, without `?`.
    pub raw_query: &'a str,
    /// Header lookup by lower-case name (all values of that name).
    pub headers: &'a dyn Fn(&str) -> Vec<String>,
    /// The body.
    pub body: &'a [u8],
}

/// Parses the Authorization header; `None` unless it is a well-formed SigV4 header.
pub fn parse_authorization(header: &str) -> Option<Authorization> {
    let rest = header.strip_prefix("AWS4-HMAC-SHA256")?.trim_start();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let mut scope = credential?.split('/');
    let auth = Authorization {
        access_key: scope.next()?.to_owned(),
        date: scope.next()?.to_owned(),
        region: scope.next()?.to_owned(),
        service: scope.next()?.to_owned(),
        signed_headers: signed?.split(';').map(str::to_owned).collect(),
        signature: signature?.to_owned(),
    };
    (scope.next()? == "aws4_request" && scope.next().is_none()).then_some(auth)
}

fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (other bytes, `+` included, stay as they are).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(raw: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&percent_decode(k), false), uri_encode(&percent_decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// The canonical request SigV4 signs.
pub fn canonical_request(req: &Request, signed_headers: &[String]) -> String {
    let path = if req.raw_path.is_empty() { "/" } else { req.raw_path };
    let mut headers = String::new();
    for name in signed_headers {
        let values: Vec<String> =
            (req.headers)(name).iter().map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload = match (req.headers)("x-amz-content-sha256").first() {
        Some(declared) if declared != "UNSIGNED-PAYLOAD" => declared.clone(),
        _ => hex::encode(Sha256::digest(req.body)),
    };
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        uri_encode(path, true),
        canonical_query(req.raw_query),
        headers,
        signed_headers.join(";"),
        payload
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key size");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The signature of `canonical` for `auth`'s scope at `amz_date` under `secret`.
pub fn signature(secret: &str, auth: &Authorization, amz_date: &str, canonical: &str) -> String {
    let scope = format!("{}/{}/{}/aws4_request", auth.date, auth.region, auth.service);
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    let k_region = hmac(&k_date, auth.region.as_bytes());
    let k_service = hmac(&k_region, auth.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    hex::encode(hmac(&k_signing, string_to_sign.as_bytes()))
}

/// Why a request's signature is not accepted (every one is `NotAuthorizedException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

/// Parses `YYYYMMDDTHHMMSSZ`.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(s, &format).ok()?.assume_utc();
    let secs = u64::try_from(t.unix_timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Checks the signature of `req` made with `secret`, the date's skew against `now`,
/// and that the scope names `service`.
pub fn verify(
    req: &Request,
    auth: &Authorization,
    secret: &str,
    service: &str,
    now: SystemTime,
) -> Result<(), Rejected> {
    if auth.service != service {
        return Err(Rejected(format!("credential scope is for service {:?}, not {service:?}", auth.service)));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(Rejected("the host header must be signed".into()));
    }
    let amz_date =
        (req.headers)("x-amz-date").into_iter().next().ok_or_else(|| Rejected("missing X-Amz-Date".into()))?;
    let when = parse_amz_date(&amz_date).ok_or_else(|| Rejected(format!("bad X-Amz-Date {amz_date:?}")))?;
    let skew = now.duration_since(when).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
    if skew > MAX_SKEW {
        return Err(Rejected("Signature expired: the request time is more than 15 minutes from the server's".into()));
    }
    if !amz_date.starts_with(&auth.date) {
        return Err(Rejected("credential scope date does not match X-Amz-Date".into()));
    }
    let canonical = canonical_request(req, &auth.signed_headers);
    let expected = signature(secret, auth, &amz_date, &canonical);
    let matches = expected.len() == auth.signature.len()
        && expected.bytes().zip(auth.signature.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if matches {
        Ok(())
    } else {
        Err(Rejected(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.".into(),
        ))
    }
}

/// Signs a request as an SDK would: returns the headers to add (`x-amz-date`,
/// `x-amz-security-token` when there is a session token, and `authorization`), signing
/// `host` and those. `raw_path` and `raw_query` are as they will be sent.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    host: &str,
    raw_path: &str,
    raw_query: &str,
    body: &[u8],
    (access_key, secret, session_token): (&str, &str, Option<&str>),
    region: &str,
    service: &str,
    now: SystemTime,
) -> Vec<(String, String)> {
    let secs = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let amz_date =
        time::OffsetDateTime::from_unix_timestamp(secs).ok().and_then(|t| t.format(&format).ok()).unwrap_or_default();
    let mut headers = vec![("host".to_owned(), host.to_owned()), ("x-amz-date".to_owned(), amz_date.clone())];
    if let Some(token) = session_token {
        headers.push(("x-amz-security-token".to_owned(), token.to_owned()));
    }
    let signed: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
    let lookup = |name: &str| headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect();
    let req = Request { method, raw_path, raw_query, headers: &lookup, body };
    let auth = Authorization {
        access_key: access_key.to_owned(),
        date: amz_date[..8.min(amz_date.len())].to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers: signed.clone(),
        signature: String::new(),
    };
    let signature = signature(secret, &auth, &amz_date, &canonical_request(&req, &signed));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/{}/{region}/{service}/aws4_request, SignedHeaders={}, Signature={signature}",
        auth.date,
        signed.join(";")
    );
    headers.retain(|(k, _)| k != "host");
    headers.push(("authorization".to_owned(), authorization));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published SigV4 test suite case `get-vanilla`.
    #[test]
    fn aws_test_vector_get_vanilla() {
        let headers = |name: &str| match name {
            "host" => vec!["example.amazonaws.com".to_owned()],
            "x-amz-date" => vec!["20150830T123600Z".to_owned()],
            _ => vec![],
        };
        let req = Request { method: "GET", raw_path: "/", raw_query: "", headers: &headers, body: b"" };
        let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let auth = parse_authorization(header).unwrap();
        let now = parse_amz_date("20150830T123600Z").unwrap();
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        assert_eq!(verify(&req, &auth, secret, "service", now), Ok(()));
        assert!(verify(&req, &auth, "wrong", "service", now).is_err());
        assert!(verify(&req, &auth, secret, "cognito-sync", now).is_err());
        let late = now + Duration::from_secs(16 * 60);
        assert!(verify(&req, &auth, secret, "service", late).unwrap_err().0.contains("15 minutes"));
        let body = Request { body: b"x", ..req };
        assert!(verify(&body, &auth, secret, "service", now).is_err(), "the body is signed");
    }

    #[test]
    fn what_sign_signs_verify_accepts() {
        let now = SystemTime::now();
        let added =
            sign("POST", "h:1", "/a%3Ab", "x=1", b"body", ("AK", "SK", Some("tok")), "us-east-1", "cognito-sync", now);
        let mut all = added.clone();
        all.push(("host".into(), "h:1".into()));
        let lookup = |name: &str| all.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect();
        let req = Request { method: "POST", raw_path: "/a%3Ab", raw_query: "x=1", headers: &lookup, body: b"body" };
        let auth = parse_authorization(&lookup("authorization")[0]).unwrap();
        assert_eq!(verify(&req, &auth, "SK", "cognito-sync", now), Ok(()));
        assert!(verify(&req, &auth, "other", "cognito-sync", now).is_err());
    }

    #[test]
    fn path_is_encoded_again_and_query_sorted() {
        let headers = |_: &str| vec![];
        let req = Request {
            method: "GET",
            raw_path: "/identitypools/us-east-1%3Aab/x",
            raw_query: "maxResults=2&lastSyncCount=0",
            headers: &headers,
            body: b"",
        };
        let canonical = canonical_request(&req, &[]);
        let lines: Vec<&str> = canonical.lines().collect();
        assert_eq!(lines[1], "/identitypools/us-east-1%253Aab/x");
        assert_eq!(lines[2], "lastSyncCount=0&maxResults=2");
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert!(parse_authorization("Basic abc").is_none());
        assert!(
            parse_authorization("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00").is_none()
        );
        assert!(parse_authorization("AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, Signature=00").is_none());
    }
}
