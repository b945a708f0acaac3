//! Retry policy: which failed attempts are made again and how long to wait.
//!
//! An attempt is repeated only while no text has reached the caller, so a
//! retry can never duplicate or contradict what the user already sees. Within
//! that: failures to connect, connections lost or stalled before the first
//! event, and the statuses that mean "try later" (429, 500, 502, 503, 504) are
//! retried under the `retry` settings' budget, waiting the server's
//! `Retry-After` (capped) or exponential backoff with jitter.
//!
//! Every attempt the server may have received counts against the budget, so
//! `maxRetries: 0` sends a prompt once. The only request sent again outside
//! it is one the server never took: a pooled keep-alive connection found
//! closed before the request went out (hyper's pool re-sends it on another
//! connection) or, on HTTP/2, a stream refused unprocessed (reqwest re-sends
//! it), both before an error reaches the engine. Any error that does reach it
//! may follow a request the server read.

use std::time::Duration;

use crate::settings::RetryPolicy;

use super::failure::Failure;

/// One failed attempt, and whether and how another may be made.
#[derive(Debug)]
pub(super) struct AttemptError {
    pub failure: Failure,
    pub retry: Retry,
    /// The server's `Retry-After`, when it gave one.
    pub retry_after: Option<Duration>,
}

/// Whether a failed attempt may be made again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    Never,
    /// Under the retry budget, after a backoff.
    WithBackoff,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    GiveUp,
    /// Try again after this wait (one retry of the budget used).
    Again {
        wait: Duration,
    },
}

/// Longest wait a `Retry-After` header can impose.
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

impl From<Failure> for AttemptError {
    fn from(failure: Failure) -> Self {
        AttemptError {
            failure,
            retry: Retry::Never,
            retry_after: None,
        }
    }
}

impl AttemptError {
    pub fn retryable(failure: Failure) -> Self {
        AttemptError {
            failure,
            retry: Retry::WithBackoff,
            retry_after: None,
        }
    }
}

/// The attempts made so far of one completion.
#[derive(Debug, Default)]
pub(super) struct Attempts {
    /// Attempts made, all kinds.
    pub made: u32,
    /// Retries made, all from the budget.
    counted: u32,
}

impl Attempts {
    /// Decides about the attempt that just failed. `sent_text`: text already
    /// reached the caller.
    pub fn after(
        &mut self,
        error: &AttemptError,
        policy: &RetryPolicy,
        sent_text: bool,
    ) -> Decision {
        if sent_text {
            return Decision::GiveUp;
        }
        match error.retry {
            Retry::Never => Decision::GiveUp,
            Retry::WithBackoff => {
                if self.counted >= policy.max_retries {
                    return Decision::GiveUp;
                }
                self.counted += 1;
                Decision::Again {
                    wait: backoff(policy, self.counted, error.retry_after),
                }
            }
        }
    }
}

/// The wait before retry number `retry` (1-based): the server's `Retry-After`
/// when it gave one (capped), else exponential backoff with jitter.
pub(super) fn backoff(policy: &RetryPolicy, retry: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(MAX_RETRY_AFTER);
    }
    let exp = policy
        .initial_backoff
        .saturating_mul(1u32 << (retry.max(1) - 1).min(16))
        .min(policy.max_backoff);
    // Jitter in [exp/2, exp].
    exp / 2 + exp.mul_f64(fastrand::f64() / 2.0)
}

/// `Retry-After`: delay seconds or an HTTP date.
pub(super) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(3600.0)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::failure::FailureKind;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        let past = httpdate::fmt_http_date(std::time::SystemTime::now() - Duration::from_secs(5));
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        let future =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        let d = parse_retry_after(&future).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let policy = RetryPolicy::default();
        for retry in 1..5 {
            let d = backoff(&policy, retry, None);
            let exp = (Duration::from_millis(500) * (1 << (retry - 1))).min(Duration::from_secs(8));
            assert!(d >= exp / 2 && d <= exp, "{retry}: {d:?}");
        }
        assert_eq!(
            backoff(&policy, 1, Some(Duration::from_secs(600))),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn every_retry_uses_the_budget_and_none_after_text() {
        let policy = RetryPolicy {
            max_retries: 1,
            ..RetryPolicy::default()
        };
        let error = |retry| AttemptError {
            failure: Failure::new(FailureKind::Cancelled),
            retry,
            retry_after: None,
        };
        let mut a = Attempts::default();
        assert!(matches!(
            a.after(&error(Retry::WithBackoff), &policy, false),
            Decision::Again { .. }
        ));
        assert_eq!(
            a.after(&error(Retry::WithBackoff), &policy, false),
            Decision::GiveUp
        );
        let mut b = Attempts::default();
        assert_eq!(
            b.after(&error(Retry::WithBackoff), &policy, true),
            Decision::GiveUp
        );
        assert_eq!(
            b.after(&error(Retry::Never), &policy, false),
            Decision::GiveUp
        );
    }
}
