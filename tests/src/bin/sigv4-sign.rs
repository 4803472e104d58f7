//! Signs requests with `aws-sigv4`, the signer of the AWS SDK for Rust: one of the three
//! signers of the differential SigV4 test (`tests/e2e/test_sigv4_differential.py`).
//!
//! Reads a JSON array of cases on stdin (`id`, `method`, `path` as sent, `query` as decoded
//! `[name, value]` pairs, extra `headers`, `body`, `host`, `region`, `service`,
//! `accessKeyId`, `secretAccessKey`, `sessionToken`) and prints, for each, what to send:
//! `id`, `method`, `target` (path and query as on the wire), `headers` and `body`.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde_json::{Value, json};
use std::io::Read as _;
use std::time::SystemTime;

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|p| (p[0].as_str().unwrap_or_default().to_owned(), p[1].as_str().unwrap_or_default().to_owned()))
        .collect()
}

fn sign_case(case: &Value) -> Result<Value, Box<dyn std::error::Error>> {
    let query: Vec<String> =
        pairs(&case["query"]).iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    let target =
        if query.is_empty() { text(case, "path") } else { format!("{}?{}", text(case, "path"), query.join("&")) };
    let uri = format!("http://{}{target}", text(case, "host"));
    let mut headers = pairs(&case["headers"]);
    headers.push(("host".into(), text(case, "host")));
    let body = text(case, "body");
    let identity = Credentials::new(
        text(case, "accessKeyId"),
        text(case, "secretAccessKey"),
        case["sessionToken"].as_str().map(str::to_owned),
        None,
        "differential-test",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let region = text(case, "region");
    let service = text(case, "service");
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name(&service)
        .time(SystemTime::now())
        .settings(settings)
        .build()?
        .into();
    let signable = SignableRequest::new(
        case["method"].as_str().unwrap_or("GET"),
        &uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body.as_bytes()),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    for (name, value) in instructions.headers() {
        headers.push((name.to_owned(), value.to_owned()));
    }
    Ok(json!({"id": case["id"], "method": case["method"], "target": target, "headers": headers, "body": body}))
}

fn main() {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).expect("read stdin");
    let cases: Vec<Value> = serde_json::from_str(&input).expect("a JSON array of cases");
    let signed: Vec<Value> = cases
        .iter()
        .map(|case| sign_case(case).unwrap_or_else(|e| panic!("cannot sign case {}: {e}", case["id"])))
        .collect();
    println!("{}", Value::Array(signed));
}
