//! The SigV4 fuzzing harness (`fuzz/fuzz_targets/sigv4.rs`): see `synctrig_runtime::fuzzing`
//! for how the targets run.

use crate as sigv4;
use arbitrary::{Arbitrary, Unstructured};

#[derive(Arbitrary, Debug)]
struct SigV4Case<'a> {
    authorization: &'a str,
    method: &'a str,
    path: &'a str,
    query: &'a str,
    body: &'a [u8],
    secret: &'a str,
    /// A byte of the signed request to change, and what to add to it.
    flip: Option<(u16, u8)>,
}

/// SigV4: parsing never panics; a query's canonical form parses back to the same pairs;
/// path normalisation is idempotent; what the signer signs the verifier accepts, and a
/// change to the body is refused.
pub fn sigv4(data: &[u8]) {
    let Ok(case) = SigV4Case::arbitrary(&mut Unstructured::new(data)) else { return };
    let _ = sigv4::parse_authorization(case.authorization);
    let normalized = sigv4::normalized_path(case.path);
    assert_eq!(sigv4::normalized_path(&normalized), normalized, "normalising twice changes nothing");
    let _ = sigv4::canonical_path(case.path);
    let Ok(query) = sigv4::Query::parse(case.query) else { return };
    let again = sigv4::Query::parse(&query.canonical()).expect("a canonical query parses");
    let sorted = |q: &sigv4::Query| {
        let mut pairs: Vec<(String, Option<String>)> =
            q.names().map(|n| (n.to_owned(), q.get(n).ok().flatten().map(str::to_owned))).collect();
        pairs.sort();
        pairs
    };
    assert_eq!(sorted(&again), sorted(&query), "the canonical query holds the same pairs");

    // Only what an SDK could send is signed: a path of visible ASCII starting with '/'.
    let path_ok = case.path.starts_with('/') && case.path.bytes().all(|b| b.is_ascii_graphic());
    let method_ok = !case.method.is_empty() && case.method.bytes().all(|b| b.is_ascii_uppercase());
    if !path_ok || !method_ok || case.secret.is_empty() {
        return;
    }
    let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_000);
    let creds = ("AKIDFUZZ", case.secret, None);
    let mut headers = sigv4::sign(case.method, "h", case.path, case.query, case.body, creds, "r", "s", now);
    // The signer leaves the Host header to the client, which sends it.
    headers.push(("host".to_owned(), "h".to_owned()));
    let lookup = |name: &str| headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect();
    let auth_header = headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v.as_str()).unwrap_or("");
    let auth = sigv4::parse_authorization(auth_header).expect("the signer's header parses");
    let scope = sigv4::Scope { service: "s", region: "r" };
    let req =
        sigv4::Request { method: case.method, raw_path: case.path, query: &query, headers: &lookup, body: case.body };
    if let Err(e) = sigv4::verify(&req, &auth, case.secret, scope, now) {
        panic!("a request this server signed is refused: {e}\n{case:?}");
    }
    if let Some((at, by)) = case.flip
        && !case.body.is_empty()
        && by != 0
    {
        let mut body = case.body.to_vec();
        let i = at as usize % body.len();
        body[i] = body[i].wrapping_add(by);
        let req = sigv4::Request { body: &body, ..req };
        assert!(sigv4::verify(&req, &auth, case.secret, scope, now).is_err(), "a changed body is refused");
    }
}

/// A short JSON value, mostly of the shapes the APIs take.
#[cfg(test)]
mod tests {
    use super::*;
    use synctrig_runtime::fuzzing::replay;

    #[test]
    fn the_sigv4_corpus_and_random_inputs_hold() {
        assert!(replay("sigv4", sigv4, 3000, 512) > 0);
    }
}
