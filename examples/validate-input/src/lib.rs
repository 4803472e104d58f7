//! Validates a profile dataset before it is stored: normalises what it can, rejects
//! what it cannot, and keeps reserved keys server-owned.
//!
//! - `email`: trimmed and lower-cased; rejected unless it looks like `a@b.c`;
//! - `nickname`: trimmed; rejected when empty or longer than 32 characters;
//! - `age`: rejected unless a whole number from 0 to 150;
//! - `server:*`: users may not change these; their changes are dropped (omitted).

use synctrig_guest::{Rejection, SyncEvent};

/// Normalises or rejects the user's changes.
pub fn handle(mut event: SyncEvent) -> Result<SyncEvent, Rejection> {
    let changed: Vec<(String, Option<String>)> =
        event.changes().map(|(k, r)| (k.to_owned(), r.value().map(str::to_owned))).collect();
    for (key, value) in changed {
        if key.starts_with("server:") {
            synctrig_guest::warn!("dropping the user's change to reserved key {key}");
            event.omit(&key);
            continue;
        }
        let Some(value) = value else { continue };
        match key.as_str() {
            "email" => {
                let email = value.trim().to_lowercase();
                let valid = email
                    .split_once('@')
                    .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.') && !domain.starts_with('.'));
                if !valid {
                    return Err(Rejection::new(format!("email {value:?} is not a valid address")));
                }
                event.replace("email", email);
            }
            "nickname" => {
                let nickname = value.trim();
                let len = nickname.chars().count();
                if len == 0 || len > 32 {
                    return Err(Rejection::new("nickname must be 1 to 32 characters"));
                }
                event.replace("nickname", nickname.to_owned());
            }
            "age" => match value.trim().parse::<u8>() {
                Ok(age) if age <= 150 => event.replace("age", age.to_string()),
                _ => return Err(Rejection::new(format!("age {value:?} must be a whole number from 0 to 150"))),
            },
            _ => {}
        }
    }
    Ok(event)
}

synctrig_guest::trigger!(handle);

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> synctrig_guest::EventBuilder {
        SyncEvent::builder("us-east-1:p", "us-east-1:i", "profile").stored("server:plan", "free")
    }

    #[test]
    fn normalises_good_values() {
        let event = profile()
            .changed("email", None, "  Ada@Example.COM ")
            .changed("nickname", Some("ada"), "  Countess ")
            .changed("age", None, "036")
            .build();
        let out = handle(event).unwrap();
        assert_eq!(out.value("email"), Some("ada@example.com"));
        assert_eq!(out.value("nickname"), Some("Countess"));
        assert_eq!(out.value("age"), Some("36"));
    }

    #[test]
    fn rejects_bad_values_with_a_reason() {
        let cases = [("email", "nope"), ("nickname", "   "), ("age", "200"), ("age", "x")];
        for (key, value) in cases {
            let err = handle(profile().changed(key, None, value).build()).unwrap_err();
            assert!(err.reason().contains(key), "{key}={value}: {err}");
        }
    }

    #[test]
    fn reserved_keys_are_kept_server_side() {
        let event = profile().build();
        let mut changed = event.clone();
        changed.replace("server:plan", "premium");
        let out = handle(changed).unwrap();
        assert!(!out.contains("server:plan"), "the user's change is omitted, so the stored value stays");
        assert_eq!(handle(event.clone()).unwrap(), event);
    }
}
