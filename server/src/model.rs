//! The two API models (`models/*.json`, the botocore files the AWS SDKs are generated
//! from), loaded once, and the check every request's input passes before a handler sees
//! it: types, required members, lengths, ranges, patterns and enums, exactly as the model
//! states them. One mechanism for every field of every operation, so a bound the model
//! has cannot be forgotten by a handler, and a handler adds only the rules the model
//! cannot state (a page size past ours is clamped there, not here: the model has no bound).
//!
//! A broken constraint is `InvalidParameterException` with AWS's wording:
//! `1 validation error detected: Value 'x' at 'AccountId' failed to satisfy constraint:
//! Member must satisfy regular expression pattern: \d+`.

use super::error::ApiError;
use axum::http::HeaderMap;
use regex::bytes::Regex;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::LazyLock;
use synctrig_sigv4::Query;

/// A shape's type and what it holds.
#[derive(Debug)]
enum Kind {
    Structure { members: Vec<(String, Member)>, required: Vec<String> },
    List { member: String },
    Map { key: String, value: String },
    String,
    Integer,
    Long,
    Boolean,
    Timestamp,
    Blob,
    Number,
}

/// Where a rest-json input member travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    Body,
    Uri,
    Query,
    Header,
}

#[derive(Debug)]
struct Member {
    shape: String,
    location: Location,
    /// The name on the wire: the URI label, query parameter or header.
    wire_name: String,
}

#[derive(Debug)]
struct Shape {
    kind: Kind,
    min: Option<i64>,
    max: Option<i64>,
    pattern: Option<(String, Regex)>,
    values: Option<Vec<String>>,
}

/// One service's model: its shapes and each operation's input shape.
#[derive(Debug)]
pub struct Model {
    shapes: HashMap<String, Shape>,
    inputs: HashMap<String, String>,
}

/// Cognito Sync (rest-json).
pub static SYNC: LazyLock<Model> =
    LazyLock::new(|| Model::parse(include_str!("models/cognito-sync-2014-06-30.json")).expect("the sync model loads"));
/// Cognito Identity (JSON 1.1).
pub static IDENTITY: LazyLock<Model> = LazyLock::new(|| {
    Model::parse(include_str!("models/cognito-identity-2014-06-30.json")).expect("the identity model loads")
});

/// Most JSON values a request body may hold. A parsed value takes some 16 times the bytes
/// of a tiny one (`0,`), so the count, not only the body's size, bounds what parsing a
/// body costs; the largest real request (UpdateRecords with 1,024 patches) holds about
/// 10,000.
pub const MAX_JSON_VALUES: usize = 32_768;

/// Parses a request body as JSON, refusing one that holds more than [`MAX_JSON_VALUES`]
/// values before anything is allocated for them.
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    // Every value but the first follows a `,`, `:`, `[` or `{` outside a string.
    let (mut values, mut in_string, mut escaped) = (1usize, false, false);
    for &b in body {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b',' | b':' | b'[' | b'{' => values += 1,
                _ => {}
            }
        }
    }
    if values > MAX_JSON_VALUES {
        return Err(ApiError::invalid_parameter(format!(
            "the request body holds more than {MAX_JSON_VALUES} JSON values"
        )));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_parameter(format!("the request body is not valid JSON: {e}")))
}

/// The models' patterns as a server of the model reads them: whole-value matches, with
/// `\w`, `\d` and `\s` meaning their ASCII classes (Java's default), except that a pattern
/// naming Unicode properties (`\p{L}`) is matched in Unicode mode.
fn compile_pattern(pattern: &str) -> Result<Regex, regex::Error> {
    let flags = if pattern.contains("\\p{") { "" } else { "(?-u)" };
    Regex::new(&format!("{flags}^(?:{pattern})$"))
}

impl Model {
    fn parse(text: &str) -> Result<Model, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut shapes = HashMap::new();
        for (name, s) in doc["shapes"].as_object().ok_or("no shapes")? {
            let kind = match s["type"].as_str().unwrap_or("") {
                "structure" => {
                    let mut members = Vec::new();
                    for (member, m) in s["members"].as_object().into_iter().flatten() {
                        let location = match m["location"].as_str() {
                            Some("uri") => Location::Uri,
                            Some("querystring") => Location::Query,
                            Some("header") => Location::Header,
                            _ => Location::Body,
                        };
                        let wire_name = m["locationName"].as_str().unwrap_or(member).to_owned();
                        let shape = m["shape"].as_str().ok_or_else(|| format!("{name}.{member} has no shape"))?;
                        members.push((member.clone(), Member { shape: shape.to_owned(), location, wire_name }));
                    }
                    let required = s["required"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r.as_str().map(str::to_owned))
                        .collect();
                    Kind::Structure { members, required }
                }
                "list" => Kind::List { member: s["member"]["shape"].as_str().ok_or("list member")?.to_owned() },
                "map" => Kind::Map {
                    key: s["key"]["shape"].as_str().ok_or("map key")?.to_owned(),
                    value: s["value"]["shape"].as_str().ok_or("map value")?.to_owned(),
                },
                "string" => Kind::String,
                "integer" => Kind::Integer,
                "long" => Kind::Long,
                "boolean" => Kind::Boolean,
                "timestamp" => Kind::Timestamp,
                "blob" => Kind::Blob,
                "double" | "float" => Kind::Number,
                other => return Err(format!("{name}: unknown type {other:?}")),
            };
            let pattern = match s["pattern"].as_str() {
                Some(p) => Some((p.to_owned(), compile_pattern(p).map_err(|e| format!("{name}: {e}"))?)),
                None => None,
            };
            let values = s["enum"].as_array().map(|v| v.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect());
            shapes
                .insert(name.clone(), Shape { kind, min: s["min"].as_i64(), max: s["max"].as_i64(), pattern, values });
        }
        let mut inputs = HashMap::new();
        for (name, op) in doc["operations"].as_object().ok_or("no operations")? {
            if let Some(input) = op["input"]["shape"].as_str() {
                inputs.insert(name.clone(), input.to_owned());
            }
        }
        let model = Model { shapes, inputs };
        // Every shape a shape names exists: a lookup below never misses.
        for shape in model.shapes.values() {
            let named: Vec<&String> = match &shape.kind {
                Kind::Structure { members, .. } => members.iter().map(|(_, m)| &m.shape).collect(),
                Kind::List { member } => vec![member],
                Kind::Map { key, value } => vec![key, value],
                _ => vec![],
            };
            if let Some(missing) = named.into_iter().find(|n| !model.shapes.contains_key(*n)) {
                return Err(format!("shape {missing} is named but not defined"));
            }
        }
        Ok(model)
    }

    /// Whether the model has `operation`.
    pub fn has(&self, operation: &str) -> bool {
        self.inputs.contains_key(operation)
    }

    /// Checks a JSON input (JSON 1.1: the body) against `operation`'s input shape.
    pub fn check(&self, operation: &str, input: &Value) -> Result<(), ApiError> {
        let Some(shape) = self.inputs.get(operation) else { return Ok(()) };
        let mut errors = Errors::default();
        self.check_value(shape, input, "", &mut errors);
        errors.into_result()
    }

    /// A rest-json request's input as one JSON object keyed by member name, from its URI
    /// labels (name, decoded value), query, headers and body; then checked. Query and
    /// header values of numeric members are read as numbers.
    pub fn rest_input(
        &self,
        operation: &str,
        labels: &[(&str, String)],
        query: &Query,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Value, ApiError> {
        let Some(Kind::Structure { members, .. }) = self.inputs.get(operation).map(|s| &self.shapes[s].kind) else {
            return Ok(Value::Object(Map::new()));
        };
        // Only an operation with members in the body reads one, as AWS does: a body sent
        // with a GET is not the request's.
        let reads_body = members.iter().any(|(_, m)| m.location == Location::Body);
        let mut input = match !reads_body || body.iter().all(u8::is_ascii_whitespace) {
            true => Map::new(),
            false => match parse_body(body)? {
                Value::Object(map) => map,
                _ => return Err(ApiError::invalid_parameter("the request body must be a JSON object")),
            },
        };
        let mut errors = Errors::default();
        for (name, member) in members {
            let raw = match member.location {
                Location::Body => continue,
                Location::Uri => labels.iter().find(|(l, _)| *l == member.wire_name).map(|(_, v)| v.clone()),
                Location::Query => {
                    query.get(&member.wire_name).map_err(|e| ApiError::invalid_parameter(e.0))?.map(str::to_owned)
                }
                Location::Header => headers.get(&member.wire_name).and_then(|v| v.to_str().ok()).map(str::to_owned),
            };
            // What the body said of a member that travels elsewhere is not the request's.
            input.remove(name);
            let Some(raw) = raw else { continue };
            let value = match self.shapes[&member.shape].kind {
                Kind::Integer | Kind::Long => match raw.parse::<i64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => {
                        errors.push(&raw_value(&raw), &member.wire_name, "Member must be a whole number".to_owned());
                        continue;
                    }
                },
                Kind::Boolean => match raw.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => {
                        errors.push(&raw_value(&raw), &member.wire_name, "Member must be true or false".to_owned());
                        continue;
                    }
                },
                _ => Value::String(raw),
            };
            input.insert(name.clone(), value);
        }
        let input = Value::Object(input);
        self.check_value(&self.inputs[operation], &input, "", &mut errors);
        errors.into_result().map(|()| input)
    }

    fn check_value(&self, shape_name: &str, value: &Value, path: &str, errors: &mut Errors) {
        let shape = &self.shapes[shape_name];
        let fail = |errors: &mut Errors, rule: String| errors.push(value, path, rule);
        match (&shape.kind, value) {
            (Kind::Structure { members, required }, Value::Object(map)) => {
                for name in required {
                    if map.get(name).is_none_or(Value::is_null) {
                        errors.push(&Value::Null, &join(path, name), "Member must not be null".to_owned());
                    }
                }
                for (name, member) in members {
                    if let Some(v) = map.get(name).filter(|v| !v.is_null()) {
                        self.check_value(&member.shape, v, &join(path, name), errors);
                    }
                }
            }
            (Kind::Structure { .. }, _) => fail(errors, "Member must be a structure".to_owned()),
            (Kind::List { member }, Value::Array(items)) => {
                check_length(shape, items.len(), value, path, errors);
                for (i, item) in items.iter().enumerate() {
                    self.check_value(member, item, &join(path, &(i + 1).to_string()), errors);
                }
            }
            (Kind::List { .. }, _) => fail(errors, "Member must be a list".to_owned()),
            (Kind::Map { key, value: value_shape }, Value::Object(map)) => {
                check_length(shape, map.len(), value, path, errors);
                for (k, v) in map {
                    self.check_value(key, &Value::String(k.clone()), &join(path, "key"), errors);
                    // A key names its value's place; cut, as values are, when it is long.
                    let at = join(path, &cut(k));
                    if v.is_null() {
                        errors.push(v, &at, "Member must not be null".to_owned());
                    } else {
                        self.check_value(value_shape, v, &at, errors);
                    }
                }
            }
            (Kind::Map { .. }, _) => fail(errors, "Member must be a map".to_owned()),
            (Kind::String, Value::String(s)) => {
                // A char is one to four bytes: within the maximum in bytes is within it in
                // chars, and a minimum of 0 or 1 needs only emptiness. So a megabyte value
                // is counted only when it is near its bound.
                let chars = if s.len() as i64 <= shape.max.unwrap_or(i64::MAX) && shape.min.unwrap_or(0) <= 1 {
                    s.len().min(1)
                } else {
                    s.chars().count()
                };
                check_length(shape, chars, value, path, errors);
                if let Some((source, pattern)) = &shape.pattern
                    && !pattern.is_match(s.as_bytes())
                {
                    fail(errors, format!("Member must satisfy regular expression pattern: {source}"));
                }
                if let Some(values) = &shape.values
                    && !values.iter().any(|v| v == s)
                {
                    fail(errors, format!("Member must satisfy enum value set: [{}]", values.join(", ")));
                }
            }
            (Kind::String, _) => fail(errors, "Member must be a string".to_owned()),
            (Kind::Integer | Kind::Long, Value::Number(n)) => {
                let bits32 = matches!(shape.kind, Kind::Integer);
                match n.as_i64() {
                    Some(v) if !bits32 || i32::try_from(v).is_ok() => {
                        if let Some(min) = shape.min.filter(|min| v < *min) {
                            fail(errors, format!("Member must have value greater than or equal to {min}"));
                        }
                        if let Some(max) = shape.max.filter(|max| v > *max) {
                            fail(errors, format!("Member must have value less than or equal to {max}"));
                        }
                    }
                    _ => {
                        fail(errors, format!("Member must be a whole number of {} bits", if bits32 { 32 } else { 64 }))
                    }
                }
            }
            (Kind::Integer | Kind::Long, _) => fail(errors, "Member must be a whole number".to_owned()),
            (Kind::Boolean, Value::Bool(_)) => {}
            (Kind::Boolean, _) => fail(errors, "Member must be true or false".to_owned()),
            (Kind::Timestamp, Value::Number(_)) => {}
            (Kind::Timestamp, _) => fail(errors, "Member must be a timestamp in epoch seconds".to_owned()),
            (Kind::Number, Value::Number(_)) => {}
            (Kind::Number, _) => fail(errors, "Member must be a number".to_owned()),
            (Kind::Blob, Value::String(s)) => {
                use base64::Engine as _;
                if base64::engine::general_purpose::STANDARD.decode(s).is_err() {
                    fail(errors, "Member must be base64-encoded".to_owned());
                }
            }
            (Kind::Blob, _) => fail(errors, "Member must be a base64-encoded string".to_owned()),
        }
    }
}

/// The model's answer to an empty value of a member whose minimum length is 1.
pub fn empty_member(name: &str) -> ApiError {
    let mut errors = Errors::default();
    errors.push(&Value::String(String::new()), name, "Member must have length greater than or equal to 1".to_owned());
    errors.into_result().err().unwrap_or_else(|| ApiError::invalid_parameter(format!("{name} is empty")))
}

fn check_length(shape: &Shape, len: usize, value: &Value, path: &str, errors: &mut Errors) {
    let len = len as i64;
    if let Some(min) = shape.min.filter(|min| len < *min) {
        errors.push(value, path, format!("Member must have length greater than or equal to {min}"));
    }
    if let Some(max) = shape.max.filter(|max| len > *max) {
        errors.push(value, path, format!("Member must have length less than or equal to {max}"));
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") }
}

/// Text as a message shows it: at most [`SHOWN_VALUE_CHARS`] characters.
fn cut(text: &str) -> String {
    let mut shown: String = text.chars().take(SHOWN_VALUE_CHARS).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    shown
}

/// A query or header value as the message shows it.
fn raw_value(raw: &str) -> Value {
    Value::String(raw.to_owned())
}

/// Validation errors, reported as AWS reports them: counted, each naming the value, where
/// it is and the rule it breaks. The message names the first few; a request can break
/// thousands.
#[derive(Default)]
struct Errors {
    shown: Vec<String>,
    count: usize,
}

/// Most errors a message names.
const SHOWN_ERRORS: usize = 5;
/// Most characters of a value a message repeats.
const SHOWN_VALUE_CHARS: usize = 64;

impl Errors {
    fn push(&mut self, value: &Value, path: &str, rule: String) {
        self.count += 1;
        if self.shown.len() < SHOWN_ERRORS {
            let shown = match value {
                Value::Null => "null".to_owned(),
                Value::String(s) => format!("'{}'", cut(s)),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Array(_) | Value::Object(_) => "(not shown)".to_owned(),
            };
            let at = if path.is_empty() { "the request" } else { path };
            self.shown.push(format!("Value {shown} at '{at}' failed to satisfy constraint: {rule}"));
        }
    }

    fn into_result(self) -> Result<(), ApiError> {
        if self.count == 0 {
            return Ok(());
        }
        let noun = if self.count == 1 { "error" } else { "errors" };
        let mut message = format!("{} validation {noun} detected: {}", self.count, self.shown.join("; "));
        if self.count > self.shown.len() {
            message.push_str(&format!("; and {} more", self.count - self.shown.len()));
        }
        Err(ApiError::invalid_parameter(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(model: &Model, op: &str, input: Value) -> String {
        model.check(op, &input).expect_err("refused").message
    }

    #[test]
    fn both_models_load_with_every_operation() {
        assert_eq!(SYNC.inputs.len(), 17);
        assert_eq!(IDENTITY.inputs.len(), 23);
    }

    #[test]
    fn patterns_match_whole_values_with_ascii_classes() {
        let id = compile_pattern(r"[\w-]+:[0-9a-f-]+").unwrap();
        assert!(id.is_match(b"us-east-1:0123abcd-ef"));
        assert!(!id.is_match(b"us-east-1:0123X"), "anchored at the end");
        assert!(!id.is_match(b"x us-east-1:01"), "anchored at the start");
        assert!(!id.is_match("é:01".as_bytes()), "\\w is ASCII");
        let token = compile_pattern(r"[\S]+").unwrap();
        assert!(token.is_match("abc€".as_bytes()));
        assert!(!token.is_match(b"a b"));
        let claim = compile_pattern(r"[\p{L}\p{M}\p{S}\p{N}\p{P}]+").unwrap();
        assert!(claim.is_match("émail".as_bytes()) && !claim.is_match(b"a b"));
    }

    #[test]
    fn the_deviations_an_independent_check_found_are_refused() {
        let pool = json!({"IdentityPoolName": "p", "AllowUnauthenticatedIdentities": true});
        let with = |key: &str, v: Value| {
            let mut p = pool.clone();
            p[key] = v;
            p
        };
        for providers in [
            json!([{"ProviderName": "cognito-idp.us-east-1.amazonaws.com/us-east-1_x", "ClientId": "client-id!"}]),
            json!([{"ProviderName": "cognito-idp.us-east-1.amazonaws.com/us-east-1_x", "ClientId": "abc_123,"}]),
            json!([{"ProviderName": "cognito-idp.us-east-1.amazonaws.com/us-east-1_x", "ClientId": "c".repeat(129)}]),
            json!([{"ProviderName": "a".repeat(129), "ClientId": "c"}]),
            json!([{"ProviderName": "a,b", "ClientId": "c"}]),
        ] {
            assert!(IDENTITY.check("CreateIdentityPool", &with("CognitoIdentityProviders", providers)).is_err());
        }
        let m = message(&IDENTITY, "CreateIdentityPool", with("SupportedLoginProviders", json!({"x": "a b"})));
        assert!(m.contains("pattern: [\\w.;_/-]+"), "{m}");
        for account in [json!(""), json!("12ab"), json!("1234567890123456"), json!(12)] {
            let input = json!({"IdentityPoolId": "us-east-1:00", "AccountId": account});
            assert!(IDENTITY.check("GetId", &input).is_err(), "{input}");
        }
        assert!(IDENTITY.check("GetId", &json!({"IdentityPoolId": "us-east-1:00", "AccountId": "123"})).is_ok());
        let m = message(&IDENTITY, "ListIdentityPools", json!({"MaxResults": 5, "NextToken": ""}));
        assert_eq!(
            m,
            "2 validation errors detected: Value '' at 'NextToken' failed to satisfy constraint: \
             Member must have length greater than or equal to 1; Value '' at 'NextToken' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [\\S]+"
        );
        let m =
            message(&IDENTITY, "LookupDeveloperIdentity", json!({"IdentityPoolId": "us-east-1:00", "IdentityId": ""}));
        assert!(m.contains("at 'IdentityId'"), "{m}");
        let logins: Map<String, Value> = (0..11).map(|i| (format!("p{i}"), json!("t"))).collect();
        let m = message(
            &IDENTITY,
            "GetOpenIdTokenForDeveloperIdentity",
            json!({"IdentityPoolId": "us-east-1:00", "Logins": logins}),
        );
        assert!(
            m.contains("at 'Logins' failed to satisfy constraint: Member must have length less than or equal to 10")
        );
    }

    #[test]
    fn a_body_of_many_tiny_values_is_refused_before_it_is_parsed() {
        let many = format!("[{}0]", "0,".repeat(MAX_JSON_VALUES));
        let e = parse_body(many.as_bytes()).unwrap_err();
        assert!(e.message.contains("more than 32768 JSON values"), "{}", e.message);
        // Commas inside strings are not values.
        let text = format!("{{\"k\": \"{}\"}}", ",".repeat(MAX_JSON_VALUES * 2));
        assert!(parse_body(text.as_bytes()).is_ok());
        let escaped = format!("{{\"k\": \"\\\"{}\"}}", ",".repeat(MAX_JSON_VALUES * 2));
        assert!(parse_body(escaped.as_bytes()).is_ok(), "an escaped quote does not end the string");
    }

    #[test]
    fn messages_count_every_error_and_show_a_few() {
        let input = json!({"IdentityPoolId": 7, "MaxResults": 0});
        let m = message(&IDENTITY, "ListIdentities", input);
        assert!(m.starts_with("2 validation errors detected: "), "{m}");
        let ids: Vec<Value> = (0..60).map(|_| json!("bad")).collect();
        let m = message(&IDENTITY, "DeleteIdentities", json!({"IdentityIdsToDelete": ids}));
        assert!(m.starts_with("60 validation errors") && m.ends_with("; and 55 more"), "{m}");
        let long = "x".repeat(2000);
        let m = message(&IDENTITY, "DescribeIdentity", json!({"IdentityId": long}));
        assert!(m.len() < 400, "{m}");
        let logins: Map<String, Value> = (0..5).map(|i| (format!("{i}{}", "p".repeat(50_000)), json!(""))).collect();
        let m = message(&IDENTITY, "GetId", json!({"IdentityPoolId": "us-east-1:00", "Logins": logins}));
        assert!(m.len() < 2000, "long keys are cut in the message: {} bytes", m.len());
    }

    #[test]
    fn rest_inputs_are_read_from_labels_query_and_body() {
        let query = Query::parse("maxResults=abc").unwrap();
        let labels = [("IdentityPoolId", "us-east-1:00".to_owned()), ("IdentityId", "us-east-1:01".to_owned())];
        let e = SYNC.rest_input("ListDatasets", &labels, &query, &HeaderMap::new(), b"").unwrap_err();
        assert_eq!(e.name, "InvalidParameterException");
        assert!(e.message.contains("Value 'abc' at 'maxResults'"), "{}", e.message);
        let query = Query::parse("maxResults=64").unwrap();
        let input = SYNC.rest_input("ListDatasets", &labels, &query, &HeaderMap::new(), b"").unwrap();
        assert_eq!(input, json!({"IdentityPoolId": "us-east-1:00", "IdentityId": "us-east-1:01", "MaxResults": 64}));
        let body = br#"{"Events": {"SyncTrigger": "f"}, "IdentityPoolId": "ignored"}"#;
        let input = SYNC.rest_input("SetCognitoEvents", &labels[..1], &Query::default(), &HeaderMap::new(), body);
        assert_eq!(input.unwrap(), json!({"Events": {"SyncTrigger": "f"}, "IdentityPoolId": "us-east-1:00"}));
        let bad = SYNC.rest_input("SetCognitoEvents", &labels[..1], &Query::default(), &HeaderMap::new(), b"[1]");
        assert!(bad.is_err());
        // An operation without body members ignores a body.
        let ignored = SYNC.rest_input("ListDatasets", &labels, &Query::default(), &HeaderMap::new(), b"[1]");
        assert_eq!(ignored.unwrap(), json!({"IdentityPoolId": "us-east-1:00", "IdentityId": "us-east-1:01"}));
        let name = [
            ("IdentityPoolId", "us-east-1:00".to_owned()),
            ("IdentityId", "us-east-1:01".to_owned()),
            ("DatasetName", "d".repeat(129)),
        ];
        let e = SYNC.rest_input("DescribeDataset", &name, &Query::default(), &HeaderMap::new(), b"").unwrap_err();
        assert!(e.message.contains("at 'DatasetName'"), "{}", e.message);
    }
}
