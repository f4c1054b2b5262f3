//! Durations as people and Mesos write them.
//!
//! One parser for both: the scheduler's configuration (`30s`, `2m`, `1w`, or a bare number of
//! seconds) and the durations a Mesos agent writes into an executor's environment with stout's
//! printer (`5secs`, `1500ms`, `15mins`, `1.0005secs`; reference 1.4). Pure.

use std::time::Duration;

/// The units accepted, with their length in seconds. Stout's names (`ns us ms secs mins hrs
/// days weeks`) and the short ones people write.
const UNITS: &[(&str, f64)] = &[
    ("ns", 1e-9),
    ("us", 1e-6),
    ("ms", 1e-3),
    ("", 1.0),
    ("s", 1.0),
    ("sec", 1.0),
    ("secs", 1.0),
    ("m", 60.0),
    ("min", 60.0),
    ("mins", 60.0),
    ("h", 3600.0),
    ("hr", 3600.0),
    ("hrs", 3600.0),
    ("d", 86_400.0),
    ("day", 86_400.0),
    ("days", 86_400.0),
    ("w", 604_800.0),
    ("week", 604_800.0),
    ("weeks", 604_800.0),
];

/// Parses a number (fractions allowed) followed by a unit: `250ms`, `30s`, `1.5s`, `2m`,
/// `1h`, `7d`, `1w`, stout's `5secs`, `15mins`, `2hrs`, `3weeks`, `1500ms`, `10us`, `5ns`, or a
/// bare number of seconds. The error says what to write instead.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write e.g. 500ms, 30s, 2m or 1h"))?;
    let unit = unit.trim();
    let Some((_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(format!(
            "unknown unit {unit:?} in {text:?}; use ms, s, m, h, d or w (or Mesos' secs, mins, hrs, days, weeks)"
        ));
    };
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| format!("{text:?} is not a usable duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_and_stout_forms() {
        let cases = [
            ("250ms", Duration::from_millis(250)),
            ("30s", Duration::from_secs(30)),
            ("1.5s", Duration::from_millis(1500)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("7d", Duration::from_secs(7 * 86_400)),
            ("1w", Duration::from_secs(604_800)),
            ("45", Duration::from_secs(45)),
            ("5secs", Duration::from_secs(5)),
            ("15mins", Duration::from_secs(900)),
            ("2hrs", Duration::from_secs(7200)),
            ("3days", Duration::from_secs(3 * 86_400)),
            ("2weeks", Duration::from_secs(2 * 604_800)),
            ("1500ms", Duration::from_millis(1500)),
            ("10us", Duration::from_micros(10)),
            ("5ns", Duration::from_nanos(5)),
            ("1.0005secs", Duration::from_micros(1_000_500)),
            (" 2 m ", Duration::from_secs(120)),
        ];
        for (text, expected) in cases {
            let parsed = parse_duration(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let diff = parsed.abs_diff(expected);
            assert!(diff < Duration::from_nanos(2), "{text}: {parsed:?}");
        }
    }

    #[test]
    fn errors_say_what_to_write() {
        for text in ["", "fast", "10 parsecs", "-1s", "1e9w"] {
            let error = parse_duration(text).expect_err(text);
            assert!(
                error.contains("write e.g.")
                    || error.contains("use ms")
                    || error.contains("usable"),
                "{text}: {error}"
            );
        }
    }
}
