//! Rate limits on every guessable secret, counted in the database so they hold across
//! instances: per client IP per minute, and per account (email) per quarter hour.
//!
//! Each limit holds over any window of its length, not only over windows aligned to the clock:
//! the hits of the window before the current one count in proportion to how much of it the
//! last `window` milliseconds still cover (the sliding-window counter). Fixed windows alone let
//! twice the limit through around an edge: a full window's worth just before it, another just
//! after.

use crate::clock::{self, DAY, HOUR, MINUTE};
use crate::crypto::sha256_hex;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::rate_limits::WindowHits;

#[derive(Debug, PartialEq, Eq)]
pub enum Limit {
    Allowed,
    Exceeded,
}

/// Whether `hits`, counted `elapsed` ms into the current window of `window` ms, exceed `limit`
/// over the last `window` ms: the current window's hits plus the previous window's, weighted by
/// the part of it still inside. Integer arithmetic: `current + previous × (window − elapsed) /
/// window > limit`, multiplied through by `window`.
pub fn exceeds(hits: WindowHits, elapsed: i64, window: i64, limit: i64) -> bool {
    let still_inside = (window - elapsed).clamp(0, window) as i128;
    hits.current as i128 * window as i128 + hits.previous as i128 * still_inside > limit as i128 * window as i128
}

async fn hit(state: &AppState, bucket: String, limit: i64, window: i64) -> Result<Limit, StoreError> {
    let now = clock::now_ms();
    let elapsed = now % window;
    let hits = state.db.hit_sliding(&bucket, now - elapsed, window).await?;
    if exceeds(hits, elapsed, window, limit) {
        metrics::counter!("citizen_id_rate_limited_total").increment(1);
        Ok(Limit::Exceeded)
    } else {
        Ok(Limit::Allowed)
    }
}

/// One attempt at `action` from `ip`.
pub async fn per_ip(state: &AppState, action: &str, ip: &str) -> Result<Limit, StoreError> {
    hit(state, format!("ip:{action}:{ip}"), state.settings.limits.per_ip_per_minute, MINUTE).await
}

/// One attempt at `action` against the account named by `email` (known or not, so the
/// answer does not reveal which). The email is hashed: no personal data in the table.
pub async fn per_account(state: &AppState, action: &str, email: &str) -> Result<Limit, StoreError> {
    hit(state, format!("acct:{action}:{}", sha256_hex(email)), state.settings.limits.per_account_per_quarter_hour, 15 * MINUTE).await
}

/// One message about to be sent to `recipient` (an email address or mobile number, known to
/// belong to an account or not) at the request of `ip`. Both caps count over any hour, in the
/// database, so they hold across instances and across every journey that sends something
/// (codes of every purpose, "you already have an account"): a stranger cannot flood one
/// citizen from many journeys, nor many citizens from one address. The recipient is hashed
/// under the pepper: no address is stored.
pub async fn message(state: &AppState, recipient: Option<&str>, ip: &str) -> Result<Limit, StoreError> {
    let limits = &state.settings.limits;
    if hit(state, format!("msg-ip:{ip}"), limits.messages_per_ip_per_hour, HOUR).await? == Limit::Exceeded {
        return Ok(Limit::Exceeded);
    }
    match recipient {
        Some(to) => {
            let key = crate::crypto::hmac_hex(state.kek.pepper(), &format!("recipient:{}", to.to_lowercase()));
            hit(state, format!("msg-to:{key}"), limits.messages_per_recipient_per_hour, HOUR).await
        }
        None => Ok(Limit::Allowed),
    }
}

/// What a quota says about one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Counted; this many more are allowed now.
    Allowed { remaining: i64 },
    /// Refused and not counted; one more will be allowed in `retry_in` ms (if no other is
    /// tried meanwhile).
    Exceeded { retry_in: i64 },
}

/// How many more hits `limit` allows now, given the hits counted so far.
pub fn remaining(hits: WindowHits, elapsed: i64, window: i64, limit: i64) -> i64 {
    let still_inside = (window - elapsed).clamp(0, window) as i128;
    let room = limit as i128 * window as i128 - hits.current as i128 * window as i128 - hits.previous as i128 * still_inside;
    (room.div_euclid(window as i128)).clamp(0, i64::MAX as i128) as i64
}

/// How long until one more hit is allowed (by [`exceeds`]), for someone who tries nothing
/// meanwhile: later in this window, when less of the previous one still counts, or in the next
/// one, when this window's hits are the previous ones.
pub fn retry_in(hits: WindowHits, elapsed: i64, window: i64, limit: i64) -> i64 {
    let (w, left) = (window as i128, (window - elapsed).clamp(0, window) as i128);
    // The longest part of the previous window that may still count with `current` hits in
    // this one and one more to come.
    let inside_max = |current: i128, previous: i128| -> Option<i128> {
        let room = (limit as i128 - current - 1) * w;
        if room < 0 {
            None
        } else if previous == 0 {
            Some(w)
        } else {
            Some(room / previous)
        }
    };
    if let Some(inside) = inside_max(hits.current as i128, hits.previous as i128) {
        return (left - inside).max(0) as i64;
    }
    match inside_max(0, hits.current as i128) {
        Some(inside) => (left + (w - inside).max(0)) as i64,
        // A limit below one never allows anything: "a window from now" is as honest as any.
        None => (left + w) as i64,
    }
}

/// One attempt counted against every `(bucket, limit)` over the last `window` ms, all or
/// none: when any is over its limit the attempt is refused and its hits are taken back, so a
/// citizen who keeps trying while refused is not pushed further out (the answer's
/// `retry_in` holds) and one bucket's refusal does not use up another's allowance.
///
/// Atomic under concurrency: each hit is one statement returning its own count, so of N
/// parallel attempts exactly the ones the limit allows are counted as allowed.
pub async fn quota(state: &AppState, buckets: &[(String, i64)], window: i64) -> Result<Quota, StoreError> {
    let now = clock::now_ms();
    let elapsed = now % window;
    let start = now - elapsed;
    let mut counted = Vec::with_capacity(buckets.len());
    let mut left = i64::MAX;
    let mut retry: Option<i64> = None;
    for (bucket, limit) in buckets {
        let hits = state.db.hit_sliding(bucket, start, window).await?;
        counted.push(bucket);
        if exceeds(hits, elapsed, window, *limit) {
            let before = WindowHits { current: hits.current - 1, previous: hits.previous };
            retry = Some(retry.unwrap_or(0).max(retry_in(before, elapsed, window, *limit)));
            break;
        }
        left = left.min(remaining(hits, elapsed, window, *limit));
    }
    let Some(retry_in) = retry else { return Ok(Quota::Allowed { remaining: left }) };
    for bucket in counted {
        state.db.unhit(bucket, start).await?;
    }
    metrics::counter!("citizen_id_rate_limited_total").increment(1);
    Ok(Quota::Exceeded { retry_in })
}

/// [`quota`] over any 24 hours: for the few-per-day limits (matching demographics).
pub async fn per_day(state: &AppState, buckets: &[(String, i64)]) -> Result<Quota, StoreError> {
    quota(state, buckets, DAY).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: i64 = 60_000;

    fn hits(current: i64, previous: i64) -> WindowHits {
        WindowHits { current, previous }
    }

    #[test]
    fn the_previous_window_counts_for_the_part_still_inside() {
        // (current, previous, ms into the window, exceeded with a limit of 30)
        let table = [
            (30, 0, 0, false),
            (31, 0, 59_999, true),
            // Just after an edge, a full previous window still counts almost whole.
            (1, 30, 1_000, true),
            (1, 29, 1_000, false),
            // Halfway, half of it: 10 + 40 × 0.5 = 30 is the limit, one more is over.
            (10, 40, 30_000, false),
            (11, 40, 30_000, true),
            // At the window's end the previous one no longer counts.
            (30, 1_000, 60_000, false),
        ];
        for (current, previous, elapsed, exceeded) in table {
            assert_eq!(exceeds(hits(current, previous), elapsed, WINDOW, 30), exceeded, "{current} + {previous} at {elapsed} ms");
        }
    }

    #[test]
    fn a_burst_across_an_edge_is_held_to_the_limit() {
        // 30 hits in the last second of one window, then as many as are let through in the
        // first second of the next: fixed windows would allow 30 more, the sliding count none.
        let let_through = (1..=30).take_while(|n| !exceeds(hits(*n, 30), 1_000, WINDOW, 30)).count();
        assert_eq!(let_through, 0);
        // Half a window later, half of the limit is available again.
        let let_through = (1..=30).take_while(|n| !exceeds(hits(*n, 30), 30_000, WINDOW, 30)).count();
        assert_eq!(let_through, 15);
    }

    #[test]
    fn retry_in_is_the_first_moment_one_more_is_allowed() {
        for limit in [1, 5, 20] {
            for current in 0..=limit + 2 {
                for previous in [0, 1, 3, limit, 4 * limit] {
                    for elapsed in [0, 1, 17_000, 30_000, 59_999] {
                        let h = hits(current, previous);
                        let wait = retry_in(h, elapsed, WINDOW, limit);
                        // Where that moment falls: this window, or the next one.
                        let at = |dt: i64| {
                            let t = elapsed + dt;
                            if t < WINDOW { exceeds(hits(current + 1, previous), t, WINDOW, limit) } else { exceeds(hits(1, current), t - WINDOW, WINDOW, limit) }
                        };
                        assert!(!at(wait), "allowed after {wait} ms: {current} + {previous} at {elapsed}, limit {limit}");
                        if wait > 0 {
                            assert!(at(wait - 1), "not before: {current} + {previous} at {elapsed}, limit {limit}");
                        }
                        if !exceeds(hits(current + 1, previous), elapsed, WINDOW, limit) {
                            assert_eq!(wait, 0);
                            assert!(remaining(h, elapsed, WINDOW, limit) >= 1);
                        } else {
                            assert_eq!(remaining(h, elapsed, WINDOW, limit), 0);
                        }
                    }
                }
            }
        }
    }
}
