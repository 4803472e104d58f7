//! AWS Signature Version 4 verification, as pure functions.
//!
//! The server recomputes the signature a client must have made over the request as it
//! arrived and compares in constant time. What the signature covers is exactly what the
//! handlers read:
//!
//! - the **body** is always hashed as received; a declared `x-amz-content-sha256` must
//!   equal that hash (`UNSIGNED-PAYLOAD` and `STREAMING-*` are refused: no SDK sends them
//!   to this API, and they would leave the body unsigned);
//! - the **query** is parsed once, by [`Query::parse`], into the pairs that both the
//!   canonical request and the handlers use (`%XX` is the only escape; `+` is a plus);
//! - the **path** is canonicalised as the SDKs do for every service but S3: dot segments
//!   and empty segments removed, then percent-encoded once more;
//! - the **credential scope** must name this server's region, the request's own date and
//!   the expected service.
//!
//! `tests/e2e/test_sigv4_differential.py` checks this against the signers of botocore,
//! the JavaScript SDK v3 and the Rust SDK (`aws-sigv4`), and that a change to any byte of
//! what is signed is refused.

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

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

/// A query string, decoded once: the pairs in the order received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

/// Why a query string is not one any SDK would send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadQuery(pub String);

impl Query {
    /// Parses a raw query string (without `?`). `%XX` escapes are decoded; nothing else
    /// is (`+` stays a plus, as the canonical request treats it). A malformed escape or
    /// a name or value that is not UTF-8 is refused.
    pub fn parse(raw: &str) -> Result<Query, BadQuery> {
        let mut pairs = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let decode = |s: &str| {
                percent_decode(s)
                    .ok_or_else(|| BadQuery(format!("query parameter {part:?} is not valid percent-encoded UTF-8")))
            };
            pairs.push((decode(k)?, decode(v)?));
        }
        Ok(Query { pairs })
    }

    /// The value of `name`; a name given more than once is refused, because no operation
    /// of the API takes a list in its query and a handler must never pick one of several.
    pub fn get(&self, name: &str) -> Result<Option<&str>, BadQuery> {
        let mut found = self.pairs.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(BadQuery(format!("query parameter {name} is given more than once")));
        }
        Ok(first)
    }

    /// The names given, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }

    /// The canonical query string: each name and value URI-encoded, sorted by name, then
    /// value.
    pub fn canonical(&self) -> String {
        let mut encoded: Vec<(String, String)> =
            self.pairs.iter().map(|(k, v)| (uri_encode(k, false), uri_encode(v, false))).collect();
        encoded.sort();
        encoded.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
    }
}

/// A request as the verifier needs it.
pub struct Request<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The path exactly as received (still percent-encoded).
    pub raw_path: &'a str,
    /// The query, parsed.
    pub query: &'a Query,
    /// Header lookup by lower-case name (all values of that name).
    pub headers: &'a dyn Fn(&str) -> Vec<String>,
    /// The body.
    pub body: &'a [u8],
}

/// Parses the Authorization header; `None` unless it is a well-formed SigV4 header.
pub fn parse_authorization(header: &str) -> Option<Authorization> {
    let rest = header.strip_prefix("AWS4-HMAC-SHA256 ")?.trim_start();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return None,
        };
        if slot.replace(v).is_some() {
            return None;
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
    let well_formed = scope.next()? == "aws4_request"
        && scope.next().is_none()
        && !auth.access_key.is_empty()
        && auth.signed_headers.iter().all(|h| !h.is_empty() && *h == h.to_ascii_lowercase());
    well_formed.then_some(auth)
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

/// Decodes `%XX` escapes (other bytes, `+` included, stay as they are); `None` for a
/// malformed escape or a result that is not UTF-8. The router decodes path segments with
/// this too, so what a handler reads is what was signed.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The path as SigV4 signs it for every service but S3: empty, `.` and `..` segments
/// removed (RFC 3986 §5.2.4, plus the merging of slashes the SDKs do), a trailing slash
/// kept, then every byte but unreserved ones and `/` percent-encoded (so an escape in the
/// received path is encoded a second time).
pub fn canonical_path(raw_path: &str) -> String {
    uri_encode(&normalized_path(raw_path), true)
}

/// The path with empty, `.` and `..` segments removed as SigV4 removes them before
/// signing (still percent-encoded as received).
pub fn normalized_path(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw_path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let trailing = raw_path.ends_with('/') && !segments.is_empty();
    format!("/{}{}", segments.join("/"), if trailing { "/" } else { "" })
}

/// The hex SHA-256 of a body.
pub fn payload_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The canonical request SigV4 signs, over the body's real hash.
pub fn canonical_request(req: &Request, signed_headers: &[String]) -> String {
    let mut headers = String::new();
    for name in signed_headers {
        let values: Vec<String> =
            (req.headers)(name).iter().map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_path(req.raw_path),
        req.query.canonical(),
        headers,
        signed_headers.join(";"),
        payload_hash(req.body)
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

/// Compares two secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

/// What a signature must be made for: the service and region of this server.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// The SigV4 service name, e.g. `cognito-sync`.
    pub service: &'a str,
    /// The server's region.
    pub region: &'a str,
}

/// Checks the signature of `req` made with `secret`: the scope, the date's skew against
/// `now`, the declared payload hash, then the signature itself.
pub fn verify(
    req: &Request,
    auth: &Authorization,
    secret: &str,
    scope: Scope,
    now: SystemTime,
) -> Result<(), Rejected> {
    if auth.service != scope.service {
        return Err(Rejected(format!("credential scope is for service {:?}, not {:?}", auth.service, scope.service)));
    }
    if auth.region != scope.region {
        return Err(Rejected(format!(
            "credential scope is for region {:?}, but this service is in {:?}; sign for {:?}",
            auth.region, scope.region, scope.region
        )));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(Rejected("the host header must be signed".into()));
    }
    let dates = (req.headers)("x-amz-date");
    let [amz_date] = dates.as_slice() else {
        return Err(Rejected("exactly one X-Amz-Date header is required".into()));
    };
    let when = parse_amz_date(amz_date).ok_or_else(|| Rejected(format!("bad X-Amz-Date {amz_date:?}")))?;
    let skew = now.duration_since(when).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
    if skew > MAX_SKEW {
        return Err(Rejected("Signature expired: the request time is more than 15 minutes from the server's".into()));
    }
    if amz_date.get(..8) != Some(auth.date.as_str()) {
        return Err(Rejected(format!(
            "credential scope date {:?} is not the date of X-Amz-Date {amz_date:?}",
            auth.date
        )));
    }
    for declared in (req.headers)("x-amz-content-sha256") {
        if declared == "UNSIGNED-PAYLOAD" || declared.starts_with("STREAMING-") {
            return Err(Rejected(format!("x-amz-content-sha256 {declared:?} is not accepted; sign the payload")));
        }
        if !declared.eq_ignore_ascii_case(&payload_hash(req.body)) {
            return Err(Rejected("x-amz-content-sha256 does not match the SHA-256 of the body".into()));
        }
    }
    let canonical = canonical_request(req, &auth.signed_headers);
    let expected = signature(secret, auth, amz_date, &canonical);
    if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        Ok(())
    } else {
        Err(Rejected(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.".into(),
        ))
    }
}

/// The credentials a client signs with: (access key, secret, session token).
pub type SigningCredentials<'a> = (&'a str, &'a str, Option<&'a str>);

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
    (access_key, secret, session_token): SigningCredentials,
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
    let query = Query::parse(raw_query).unwrap_or_default();
    let req = Request { method, raw_path, query: &query, headers: &lookup, body };
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

    const SERVICE: Scope = Scope { service: "service", region: "us-east-1" };

    fn vanilla_headers(name: &str) -> Vec<String> {
        match name {
            "host" => vec!["example.amazonaws.com".to_owned()],
            "x-amz-date" => vec!["20150830T123600Z".to_owned()],
            _ => vec![],
        }
    }

    const VANILLA: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// AWS's published SigV4 test suite case `get-vanilla`.
    #[test]
    fn aws_test_vector_get_vanilla() {
        let query = Query::default();
        let req = Request { method: "GET", raw_path: "/", query: &query, headers: &vanilla_headers, body: b"" };
        let auth = parse_authorization(VANILLA).unwrap();
        let now = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(verify(&req, &auth, SECRET, SERVICE, now), Ok(()));
        assert!(verify(&req, &auth, "wrong", SERVICE, now).is_err());
        assert!(verify(&req, &auth, SECRET, Scope { service: "cognito-sync", ..SERVICE }, now).is_err());
        let late = now + Duration::from_secs(16 * 60);
        assert!(verify(&req, &auth, SECRET, SERVICE, late).unwrap_err().0.contains("15 minutes"));
        let body = Request { body: b"x", ..req };
        assert!(verify(&body, &auth, SECRET, SERVICE, now).is_err(), "the body is signed");
    }

    /// AWS's `get-relative-relative` and `get-slashes` cases: dot segments and repeated
    /// slashes are normalised before signing.
    #[test]
    fn dot_segments_and_slashes_are_normalised() {
        let query = Query::default();
        let auth = parse_authorization(VANILLA).unwrap();
        let now = parse_amz_date("20150830T123600Z").unwrap();
        for path in ["/example1/example2/../..", "/./", "//", "/example/.."] {
            let req = Request { method: "GET", raw_path: path, query: &query, headers: &vanilla_headers, body: b"" };
            assert_eq!(verify(&req, &auth, SECRET, SERVICE, now), Ok(()), "{path}");
        }
        assert_eq!(canonical_path("/a/datasets/.."), "/a");
        assert_eq!(canonical_path("/a/b/./c/"), "/a/b/c/");
        assert_eq!(canonical_path("/identitypools/us-east-1%3Aab/x"), "/identitypools/us-east-1%253Aab/x");
        assert_eq!(canonical_path(""), "/");
    }

    #[test]
    fn the_scope_must_be_this_servers_and_todays() {
        let query = Query::default();
        let req = Request { method: "GET", raw_path: "/", query: &query, headers: &vanilla_headers, body: b"" };
        let now = parse_amz_date("20150830T123600Z").unwrap();
        let region = parse_authorization(&VANILLA.replace("us-east-1", "eu-west-3")).unwrap();
        let err = verify(&req, &region, SECRET, SERVICE, now).unwrap_err().0;
        assert!(err.contains("region \"eu-west-3\""), "{err}");
        for date in ["", "2015", "201508", "20150831"] {
            let auth = parse_authorization(&VANILLA.replace("/20150830/", &format!("/{date}/"))).unwrap();
            let err = verify(&req, &auth, SECRET, SERVICE, now).unwrap_err().0;
            assert!(err.contains("credential scope date"), "{date}: {err}");
        }
    }

    #[test]
    fn a_declared_payload_hash_must_be_the_bodys() {
        let query = Query::default();
        let auth = parse_authorization(VANILLA).unwrap();
        let now = parse_amz_date("20150830T123600Z").unwrap();
        for declared in
            [payload_hash(b"other body"), "UNSIGNED-PAYLOAD".into(), "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".into()]
        {
            let headers = |name: &str| match name {
                "x-amz-content-sha256" => vec![declared.clone()],
                _ => vanilla_headers(name),
            };
            let req = Request { method: "GET", raw_path: "/", query: &query, headers: &headers, body: b"" };
            let err = verify(&req, &auth, SECRET, SERVICE, now).unwrap_err().0;
            assert!(err.contains("x-amz-content-sha256"), "{declared}: {err}");
        }
        // The true hash of the (empty) body is accepted.
        let headers = |name: &str| match name {
            "x-amz-content-sha256" => vec![payload_hash(b"")],
            _ => vanilla_headers(name),
        };
        let req = Request { method: "GET", raw_path: "/", query: &query, headers: &headers, body: b"" };
        assert_eq!(verify(&req, &auth, SECRET, SERVICE, now), Ok(()));
    }

    #[test]
    fn what_sign_signs_verify_accepts() {
        let now = SystemTime::now();
        let added =
            sign("POST", "h:1", "/a%3Ab", "x=1", b"body", ("AK", "SK", Some("tok")), "us-east-1", "cognito-sync", now);
        let mut all = added.clone();
        all.push(("host".into(), "h:1".into()));
        let lookup = |name: &str| all.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect();
        let query = Query::parse("x=1").unwrap();
        let req = Request { method: "POST", raw_path: "/a%3Ab", query: &query, headers: &lookup, body: b"body" };
        let auth = parse_authorization(&lookup("authorization")[0]).unwrap();
        let scope = Scope { service: "cognito-sync", region: "us-east-1" };
        assert_eq!(verify(&req, &auth, "SK", scope, now), Ok(()));
        assert!(verify(&req, &auth, "other", scope, now).is_err());
    }

    #[test]
    fn one_query_parser_for_signature_and_handlers() {
        let q = Query::parse("maxResults=2&lastSyncCount=0&a=x+y&b=%2B&c=&d").unwrap();
        assert_eq!(q.canonical(), "a=x%2By&b=%2B&c=&d=&lastSyncCount=0&maxResults=2");
        // The handler reads the same pairs: `+` is a plus, not a space.
        assert_eq!(q.get("a").unwrap(), Some("x+y"));
        assert_eq!(q.get("b").unwrap(), Some("+"));
        assert_eq!(q.get("d").unwrap(), Some(""));
        // Duplicates are sorted into the signature and refused by the handler.
        let dup = Query::parse("maxResults=3&maxResults=1").unwrap();
        assert_eq!(dup.canonical(), "maxResults=1&maxResults=3");
        assert!(dup.get("maxResults").unwrap_err().0.contains("more than once"));
        assert!(Query::parse("a=%zz").is_err());
        assert!(Query::parse("a=%ff").is_err(), "not UTF-8");
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert!(parse_authorization("Basic abc").is_none());
        assert!(
            parse_authorization("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00").is_none()
        );
        assert!(parse_authorization("AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, Signature=00").is_none());
        assert!(
            parse_authorization("AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=Host, Signature=00")
                .is_none(),
            "signed header names are lower case"
        );
        assert!(
            parse_authorization(
                "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=00, Signature=01"
            )
            .is_none()
        );
    }

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(percent_decode("us-east-1%3Aab").as_deref(), Some("us-east-1:ab"));
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(percent_decode("%C3"), None);
    }
}
