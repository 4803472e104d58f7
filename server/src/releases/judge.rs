//! The rules of releases, as pure functions: which version serves a dataset's sync, how
//! an invocation's outcome counts, and what a rollout decides from its figures.

use sha2::{Digest, Sha256};
use synctrig_store::releases::{Outcomes, RolloutSettings, Verdict, VersionFigures};

/// Whether the sync of `dataset` of `identity` in `pool` goes to the second version of
/// `function`'s alias, which takes `weight_bp` basis points of them. The choice is a hash
/// of the dataset, so a dataset stays with one version from sync to sync (and on every
/// node), and raising the weight keeps the datasets it had.
pub fn routes_to_candidate(function: &str, (pool, identity, dataset): (&str, &str, &str), weight_bp: i64) -> bool {
    let mut h = Sha256::new();
    for part in [function, pool, identity, dataset] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let point = u64::from_le_bytes(digest[..8].try_into().unwrap_or_default()) % 10_000;
    (point as i64) < weight_bp
}

/// How an invocation that ended with `outcome` (the runtime's label) counts in a
/// version's figures; `None` for what is the host's doing, not the version's (a full
/// queue, a compile still running, an internal fault).
pub fn classify(outcome: &str) -> Option<fn(&mut Outcomes)> {
    Some(match outcome {
        "ok" => |o: &mut Outcomes| o.ok += 1,
        "rejected" => |o: &mut Outcomes| o.rejected += 1,
        "timeout" => |o: &mut Outcomes| o.timeout += 1,
        "throttled" | "not_ready" | "internal" => return None,
        _ => |o: &mut Outcomes| o.error += 1,
    })
}

fn rate_bp(part: i64, total: i64) -> i64 {
    if total == 0 { 0 } else { part * 10_000 / total }
}

/// What a rollout decides now, and why: `None` while it goes on.
pub fn judge(
    settings: &RolloutSettings,
    primary: &VersionFigures,
    candidate: &VersionFigures,
    seconds_running: i64,
) -> Option<(Verdict, String)> {
    let (p, c) = (&primary.outcomes, &candidate.outcomes);
    let (p_total, c_total) = (p.total(), c.total());
    if c_total < settings.min_invocations.max(1) {
        return None;
    }
    let (p_bad, c_bad) = (rate_bp(p.error + p.timeout, p_total), rate_bp(c.error + c.timeout, c_total));
    if c_bad - p_bad > settings.error_margin_bp {
        return Some((
            Verdict::RollBack,
            format!(
                "errors and timeouts: {} of {c_total} invocations ({}) against the primary's {} of {p_total} ({}), \
                 more than the margin of {}",
                c.error + c.timeout,
                percent(c_bad),
                p.error + p.timeout,
                percent(p_bad),
                percent(settings.error_margin_bp)
            ),
        ));
    }
    if let Some(margin) = settings.reject_margin_bp {
        let (p_rej, c_rej) = (rate_bp(p.rejected, p_total), rate_bp(c.rejected, c_total));
        if c_rej - p_rej > margin {
            return Some((
                Verdict::RollBack,
                format!(
                    "rejections: {} of {c_total} invocations ({}) against the primary's {} of {p_total} ({}), \
                     more than the margin of {}",
                    c.rejected,
                    percent(c_rej),
                    p.rejected,
                    percent(p_rej),
                    percent(margin)
                ),
            ));
        }
    }
    if settings.promote_after_invocations.is_some_and(|n| c_total >= n) {
        return Some((Verdict::Promote, format!("{c_total} invocations within the margins")));
    }
    if settings.promote_after_seconds.is_some_and(|t| seconds_running >= t) {
        return Some((Verdict::Promote, format!("{seconds_running} s and {c_total} invocations within the margins")));
    }
    None
}

fn percent(bp: i64) -> String {
    format!("{}.{:02}%", bp / 100, bp % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(ok: i64, error: i64, timeout: i64, rejected: i64) -> VersionFigures {
        VersionFigures { outcomes: Outcomes { ok, rejected, error, timeout }, ..Default::default() }
    }

    fn settings() -> RolloutSettings {
        RolloutSettings {
            promote_after_invocations: Some(100),
            promote_after_seconds: None,
            error_margin_bp: 500,
            reject_margin_bp: None,
            min_invocations: 20,
        }
    }

    #[test]
    fn a_rollout_waits_for_enough_invocations_then_judges_against_the_primary() {
        let s = settings();
        assert_eq!(judge(&s, &figures(100, 0, 0, 0), &figures(10, 9, 0, 0), 0), None, "too few to judge");
        let (v, why) = judge(&s, &figures(100, 0, 0, 0), &figures(16, 3, 1, 0), 0).unwrap();
        assert_eq!(v, Verdict::RollBack, "{why}");
        assert!(why.contains("4 of 20 invocations (20.00%)"), "{why}");
        // The primary fails as often: not the candidate's doing.
        assert_eq!(judge(&s, &figures(80, 20, 0, 0), &figures(16, 4, 0, 0), 0), None);
        // Within the margin until the promotion count.
        assert_eq!(judge(&s, &figures(100, 0, 0, 0), &figures(95, 4, 0, 0), 0), None);
        assert_eq!(judge(&s, &figures(100, 0, 0, 0), &figures(96, 4, 0, 0), 0).unwrap().0, Verdict::Promote);
        // Rejections count only when asked.
        assert_eq!(judge(&s, &figures(100, 0, 0, 0), &figures(50, 0, 0, 50), 0).unwrap().0, Verdict::Promote);
        let strict = RolloutSettings { reject_margin_bp: Some(1_000), ..s.clone() };
        assert_eq!(judge(&strict, &figures(100, 0, 0, 0), &figures(50, 0, 0, 50), 0).unwrap().0, Verdict::RollBack);
        let timed = RolloutSettings { promote_after_invocations: None, promote_after_seconds: Some(600), ..s };
        assert_eq!(judge(&timed, &figures(1, 0, 0, 0), &figures(30, 0, 0, 0), 599), None);
        assert_eq!(judge(&timed, &figures(1, 0, 0, 0), &figures(30, 0, 0, 0), 600).unwrap().0, Verdict::Promote);
    }

    #[test]
    fn routing_is_stable_per_dataset_and_near_its_weight() {
        let key = |i: usize| ("pool".to_owned(), format!("identity-{}", i / 20), format!("ds-{}", i % 20));
        let mut chosen = 0;
        for i in 0..10_000 {
            let (p, id, ds) = key(i);
            let first = routes_to_candidate("f", (&p, &id, &ds), 2_000);
            assert_eq!(first, routes_to_candidate("f", (&p, &id, &ds), 2_000), "stable");
            if first {
                chosen += 1;
                assert!(routes_to_candidate("f", (&p, &id, &ds), 3_000), "a higher weight keeps its datasets");
            }
        }
        assert!((1_850..=2_150).contains(&chosen), "{chosen} of 10,000 at 20%");
        assert!(!routes_to_candidate("f", ("p", "i", "d"), 0));
    }

    #[test]
    fn host_failures_do_not_count_against_a_version() {
        let mut o = Outcomes::default();
        for label in ["ok", "rejected", "timeout", "trap", "out_of_fuel", "invalid_output", "invalid_component"] {
            classify(label).unwrap()(&mut o);
        }
        assert_eq!(o, Outcomes { ok: 1, rejected: 1, error: 4, timeout: 1 });
        assert!(classify("throttled").is_none() && classify("not_ready").is_none() && classify("internal").is_none());
    }
}
