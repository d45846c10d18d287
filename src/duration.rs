//! Durations from users, checked in one place: flags, script options, `sleep`, wait times
//! and request timeouts all go through here, so none of them can panic on `1e30`, `NaN` or
//! a negative number (`Duration::from_secs_f64` does, and `Instant + huge` overflows).

use std::time::Duration;

/// The longest duration accepted anywhere: a year is far beyond any load test, and far
/// below the point where adding it to an `Instant` could overflow.
pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` is not a number of seconds >= 0")]
    Invalid(String),
    #[error("`{0}` is longer than the most allowed (365 days)")]
    TooLong(String),
    #[error("`{0}` is not a duration like 30s, 5m or 1h30m ({1})")]
    Unparsable(String, String),
    #[error("must be more than 0")]
    Zero,
}

/// `seconds` as a duration: finite, not negative, at most [`MAX`].
pub fn from_secs(seconds: f64) -> Result<Duration, DurationError> {
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(DurationError::Invalid(seconds.to_string()));
    }
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if d <= MAX => Ok(d),
        _ => Err(DurationError::TooLong(seconds.to_string())),
    }
}

/// Like [`from_secs`], for things that cannot be zero (a timeout of 0 would fail every
/// request at random).
pub fn positive(seconds: f64) -> Result<Duration, DurationError> {
    match from_secs(seconds)? {
        Duration::ZERO => Err(DurationError::Zero),
        d => Ok(d),
    }
}

/// Parses `"1m30s"`-style text (humantime) or a number of seconds.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return from_secs(secs);
    }
    let d = humantime::parse_duration(text)
        .map_err(|e| DurationError::Unparsable(text.to_owned(), e.to_string()))?;
    if d > MAX {
        return Err(DurationError::TooLong(text.to_owned()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_numbers_are_errors_not_panics() {
        for bad in [1e30, f64::NAN, f64::INFINITY, -1.0, 1e10] {
            assert!(from_secs(bad).is_err(), "{bad}");
        }
        assert_eq!(from_secs(2.5).unwrap(), Duration::from_millis(2500));
        assert_eq!(positive(0.0), Err(DurationError::Zero));
        for bad in ["1e30", "100000000y", "-3", "NaN", "soon"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("2").unwrap(), Duration::from_secs(2));
    }
}
