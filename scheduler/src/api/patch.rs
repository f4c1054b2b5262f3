//! The bodies of the two writes, `PUT /v1/scaling` (to a [`ScalingPatch`]) and
//! `PUT /v1/producers` (to a rate), with every problem named by field.
//!
//! serde stops at the first problem and words it for programmers ("invalid type: string
//! \"x\", expected u64 at line 1 column 20"). An operator who typed three fields wrong should
//! learn about all three, in words about the field, so each field is read on its own from a
//! parsed JSON object. The rules between fields are not checked here:
//! [`ScalingPatch::apply`] does that on the merged configuration. Pure.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::status::{FieldProblem, SCALING_FIELDS, ScalingPatch, ScalingRejected};

/// The field name problems with the body as a whole are reported under.
pub const BODY: &str = "body";

/// The field of `PUT /v1/producers`.
pub const RATE: &str = "rate";

/// Reads a patch from a request body.
pub fn parse_patch(body: &[u8]) -> Result<ScalingPatch, ScalingRejected> {
    from_fields(&object(body, r#"{"scale_up_lag": 1000}"#)?)
}

/// Reads the body of `PUT /v1/producers`: `{"rate": R}`, events per second per producer
/// task. The rate is required (there is nothing else to change) and must be a number; its
/// range is the run loop's rule ([`crate::status::check_producer_rate`]).
pub fn parse_rate(body: &[u8]) -> Result<f64, ScalingRejected> {
    let fields = object(body, r#"{"rate": 2000}"#)?;
    let mut problems: Vec<FieldProblem> = fields
        .keys()
        .filter(|name| name.as_str() != RATE)
        .map(|name| FieldProblem {
            field: name.clone(),
            message: if name.to_ascii_lowercase().contains(RATE) {
                format!("unknown field {name:?}; did you mean \"rate\"?")
            } else {
                format!(
                    "unknown field {name:?}; the only field is \"rate\" (events per second per producer task)"
                )
            },
        })
        .collect();
    let rate = match fields.get(RATE) {
        None | Some(Value::Null) => {
            problems.insert(
                0,
                FieldProblem {
                    field: RATE.to_owned(),
                    message: "rate is required: events per second per producer task, such as {\"rate\": 2000} (0 pauses)".to_owned(),
                },
            );
            None
        }
        Some(value) => match value.as_f64() {
            Some(rate) => Some(rate),
            None => {
                problems.insert(
                    0,
                    FieldProblem {
                        field: RATE.to_owned(),
                        message: format!(
                            "rate must be a number of events per second per producer task, not {}",
                            shown(value)
                        ),
                    },
                );
                None
            }
        },
    };
    match rate {
        Some(rate) if problems.is_empty() => Ok(rate),
        _ => Err(ScalingRejected { problems }),
    }
}

/// The body as a JSON object, or the problem with it as a whole; `example` shows what to send.
fn object(body: &[u8], example: &str) -> Result<Map<String, Value>, ScalingRejected> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        rejected(
            BODY,
            if body.iter().all(u8::is_ascii_whitespace) {
                format!("the body is empty; send a JSON object with the fields to change, such as {example}")
            } else {
                format!("the body is not valid JSON: {e}")
            },
        )
    })?;
    match value {
        Value::Object(fields) => Ok(fields),
        other => Err(rejected(
            BODY,
            format!(
                "the body must be a JSON object such as {example}, not {}",
                kind(&other)
            ),
        )),
    }
}

/// Reads a patch from the fields of a JSON object.
pub fn from_fields(fields: &Map<String, Value>) -> Result<ScalingPatch, ScalingRejected> {
    let mut problems = Vec::new();
    for name in fields.keys() {
        if !SCALING_FIELDS.contains(&name.as_str()) {
            problems.push(FieldProblem {
                field: name.clone(),
                message: unknown_field(name),
            });
        }
    }
    let mut reader = FieldReader {
        fields,
        problems: &mut problems,
    };
    let patch = ScalingPatch {
        mode: reader.read("mode", "must be \"step\" or \"proportional\""),
        scale_up_lag: reader.read("scale_up_lag", WHOLE_MESSAGES),
        scale_down_lag: reader.read("scale_down_lag", WHOLE_MESSAGES),
        min_consumers: reader.read("min_consumers", WHOLE_CONSUMERS),
        max_consumers: reader.read("max_consumers", WHOLE_CONSUMERS),
        step_interval_secs: reader.read("step_interval_secs", SECONDS),
        stabilization_window_secs: reader.read("stabilization_window_secs", SECONDS),
        cooldown_secs: reader.read("cooldown_secs", SECONDS),
        target_drain_time_secs: reader.read("target_drain_time_secs", SECONDS),
        headroom: reader.read(
            "headroom",
            "must be a number: the spare capacity kept as a fraction between 0 and 1",
        ),
        max_observation_age_secs: reader.read("max_observation_age_secs", SECONDS),
    };
    if problems.is_empty() {
        Ok(patch)
    } else {
        // Report in the order of the document, not of the map.
        problems.sort_by_key(|p| {
            SCALING_FIELDS
                .iter()
                .position(|f| *f == p.field)
                .unwrap_or(usize::MAX)
        });
        Err(ScalingRejected { problems })
    }
}

const WHOLE_MESSAGES: &str = "must be a whole number of messages, 0 or more";
const WHOLE_CONSUMERS: &str = "must be a whole number of consumers, 0 to 4294967295";
const SECONDS: &str = "must be a number of seconds, such as 15 or 7.5";

struct FieldReader<'a> {
    fields: &'a Map<String, Value>,
    problems: &'a mut Vec<FieldProblem>,
}

impl FieldReader<'_> {
    /// The field's value; `None` when absent or `null` (keep the current value), or when it
    /// has the wrong type (then a problem is recorded).
    fn read<T: DeserializeOwned>(&mut self, name: &str, rule: &str) -> Option<T> {
        let value = self.fields.get(name)?;
        if value.is_null() {
            return None;
        }
        match serde_json::from_value::<T>(value.clone()) {
            Ok(v) => Some(v),
            Err(_) => {
                self.problems.push(FieldProblem {
                    field: name.to_owned(),
                    message: format!("{name} {rule}, not {}", shown(value)),
                });
                None
            }
        }
    }
}

fn rejected(field: &str, message: String) -> ScalingRejected {
    ScalingRejected {
        problems: vec![FieldProblem {
            field: field.to_owned(),
            message,
        }],
    }
}

/// "unknown field", with the closest known one when there is an obvious candidate.
fn unknown_field(name: &str) -> String {
    let lower = name.to_ascii_lowercase().replace('-', "_");
    let candidate = SCALING_FIELDS
        .iter()
        .find(|f| **f == lower)
        .or_else(|| {
            SCALING_FIELDS
                .iter()
                .find(|f| !lower.is_empty() && (f.starts_with(&lower) || lower.starts_with(**f)))
        })
        .or_else(|| {
            SCALING_FIELDS
                .iter()
                .find(|f| lower.len() >= 3 && f.contains(&lower))
        });
    match candidate {
        Some(field) => format!("unknown field {name:?}; did you mean {field:?}?"),
        None => format!(
            "unknown field {name:?}; the fields are {}",
            SCALING_FIELDS.join(", ")
        ),
    }
}

/// `"x"`, `-3`, `an object`: how a wrong value is quoted back.
fn shown(value: &Value) -> String {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            let text = value.to_string();
            if text.chars().count() > 40 {
                format!("{}…", text.chars().take(40).collect::<String>())
            } else {
                text
            }
        }
        other => kind(other).to_owned(),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ScalingMode;

    fn problems(body: &str) -> Vec<(String, String)> {
        parse_patch(body.as_bytes())
            .expect_err(body)
            .problems
            .into_iter()
            .map(|p| (p.field, p.message))
            .collect()
    }

    #[test]
    fn a_valid_body_reads_every_field() {
        let patch = parse_patch(
            br#"{"mode":"step","scale_up_lag":2000,"scale_down_lag":50,"min_consumers":2,
                "max_consumers":8,"step_interval_secs":7.5,"stabilization_window_secs":30,
                "cooldown_secs":0,"target_drain_time_secs":90,"headroom":0.1,
                "max_observation_age_secs":5}"#,
        )
        .expect("valid");
        assert_eq!(
            patch,
            ScalingPatch {
                mode: Some(ScalingMode::Step),
                scale_up_lag: Some(2000),
                scale_down_lag: Some(50),
                min_consumers: Some(2),
                max_consumers: Some(8),
                step_interval_secs: Some(7.5),
                stabilization_window_secs: Some(30.0),
                cooldown_secs: Some(0.0),
                target_drain_time_secs: Some(90.0),
                headroom: Some(0.1),
                max_observation_age_secs: Some(5.0),
            }
        );
        assert_eq!(parse_patch(b"{}"), Ok(ScalingPatch::default()));
        assert_eq!(
            parse_patch(br#"{"scale_up_lag":null}"#),
            Ok(ScalingPatch::default()),
            "null keeps the current value"
        );
    }

    #[test]
    fn every_wrong_field_is_reported_in_document_order() {
        let got = problems(
            r#"{"max_consumers":-1,"scale_up_lag":"lots","mode":"fast","min":2,"cooldown_secs":true}"#,
        );
        let fields: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "mode",
                "scale_up_lag",
                "max_consumers",
                "cooldown_secs",
                "min"
            ]
        );
        assert_eq!(
            got[0].1,
            "mode must be \"step\" or \"proportional\", not \"fast\""
        );
        assert_eq!(
            got[1].1,
            "scale_up_lag must be a whole number of messages, 0 or more, not \"lots\""
        );
        assert_eq!(
            got[2].1,
            "max_consumers must be a whole number of consumers, 0 to 4294967295, not -1"
        );
        assert_eq!(
            got[3].1,
            "cooldown_secs must be a number of seconds, such as 15 or 7.5, not true"
        );
        assert_eq!(
            got[4].1,
            "unknown field \"min\"; did you mean \"min_consumers\"?"
        );
    }

    #[test]
    fn fractional_and_huge_counts_are_refused() {
        assert_eq!(problems(r#"{"scale_up_lag":1.5}"#)[0].0, "scale_up_lag");
        assert_eq!(
            problems(r#"{"max_consumers":4294967296}"#)[0].0,
            "max_consumers"
        );
        assert_eq!(
            problems(r#"{"scale_up_lag":18446744073709551616}"#)[0].0,
            "scale_up_lag"
        );
    }

    #[test]
    fn the_body_as_a_whole_is_checked() {
        let cases = [
            ("", "the body is empty"),
            ("   ", "the body is empty"),
            ("{\"scale_up_lag\":", "the body is not valid JSON: EOF"),
            (
                "[1,2]",
                "must be a JSON object such as {\"scale_up_lag\": 1000}, not an array",
            ),
            ("42", "not a number"),
        ];
        for (body, message) in cases {
            let got = problems(body);
            assert_eq!(got.len(), 1, "{body:?}");
            assert_eq!(got[0].0, BODY);
            assert!(
                got[0].1.contains(message),
                "{:?} lacks {message:?}",
                got[0].1
            );
        }
    }

    #[test]
    fn a_rate_body_needs_exactly_a_numeric_rate() {
        assert_eq!(parse_rate(br#"{"rate": 2500}"#), Ok(2500.0));
        assert_eq!(parse_rate(br#"{"rate": 0.5}"#), Ok(0.5));
        assert_eq!(
            parse_rate(br#"{"rate": -3}"#),
            Ok(-3.0),
            "the range is the run loop's rule"
        );
        let problems = |body: &str| -> Vec<(String, String)> {
            parse_rate(body.as_bytes())
                .expect_err(body)
                .problems
                .into_iter()
                .map(|p| (p.field, p.message))
                .collect()
        };
        let cases: [(&str, &[(&str, &str)]); 7] = [
            (
                "",
                &[(
                    BODY,
                    "the body is empty; send a JSON object with the fields to change, such as {\"rate\": 2000}",
                )],
            ),
            (
                "[1]",
                &[(
                    BODY,
                    "must be a JSON object such as {\"rate\": 2000}, not an array",
                )],
            ),
            ("{}", &[(RATE, "rate is required")]),
            (r#"{"rate": null}"#, &[(RATE, "rate is required")]),
            (
                r#"{"rate": "fast"}"#,
                &[(
                    RATE,
                    "rate must be a number of events per second per producer task, not \"fast\"",
                )],
            ),
            (
                r#"{"rates": 10}"#,
                &[
                    (RATE, "rate is required"),
                    ("rates", "did you mean \"rate\"?"),
                ],
            ),
            (
                r#"{"rate": 10, "sensors": 5}"#,
                &[("sensors", "the only field is \"rate\"")],
            ),
        ];
        for (body, expected) in cases {
            let got = problems(body);
            assert_eq!(got.len(), expected.len(), "{body:?}: {got:?}");
            for ((field, message), (want_field, want_message)) in got.iter().zip(expected) {
                assert_eq!(field, want_field, "{body:?}");
                assert!(
                    message.contains(want_message),
                    "{body:?}: {message:?} lacks {want_message:?}"
                );
            }
        }
    }

    #[test]
    fn unknown_fields_get_a_suggestion_or_the_list() {
        assert_eq!(
            unknown_field("scale-up-lag"),
            "unknown field \"scale-up-lag\"; did you mean \"scale_up_lag\"?"
        );
        assert_eq!(
            unknown_field("headroom_fraction"),
            "unknown field \"headroom_fraction\"; did you mean \"headroom\"?"
        );
        assert!(unknown_field("zzz").contains("the fields are mode, scale_up_lag,"));
    }
}
