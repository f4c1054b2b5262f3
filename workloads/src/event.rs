//! The sensor reading: what the producer publishes and the consumer writes.
//!
//! Owns the wire format of a reading and its validation, as pure functions over bytes and
//! values (no I/O, no clock). Two shapes are accepted:
//!
//! * the current one, `{"sensor_id": "sensor-7", "temperature": 71.5,
//!   "event_time": "2026-11-25T10:00:00.123Z", "seq": 42}`, with `event_time` in RFC 3339
//!   (any offset, normalised to UTC) and `seq` increasing per sensor;
//! * the original system's, `{"machineid": "sensor7", "temperature": 71,
//!   "eventdate": "2017-07-10T12:34:56.123456"}`, whose `eventdate` is Python's
//!   `datetime.utcnow().isoformat()`: UTC without a zone suffix. It has no `seq`, so the reading
//!   gets `seq` = its event time in microseconds since the Unix epoch: it still increases per
//!   sensor, and a replay of the same message yields the same row key.
//!
//! Unknown fields are ignored (a newer producer may add some). Anything else that is not a
//! plausible reading is a typed [`EventError`] whose `Display` is the reason recorded in the
//! dead-letter store.

use std::fmt;
use std::ops::RangeInclusive;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Accepted temperatures, in the original system's unit (its sensors random-walk from 70,
/// degrees Fahrenheit). Anything outside is a broken sensor or a broken message.
pub const TEMPERATURE_RANGE: RangeInclusive<f64> = -100.0..=300.0;

/// Largest payload accepted; a reading is about 100 bytes.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// Longest sensor id accepted, in bytes (it is half of a Cassandra partition key).
pub const MAX_SENSOR_ID_BYTES: usize = 128;

/// Earliest accepted event time (inclusive), 2000-01-01T00:00:00Z.
pub const EARLIEST_EVENT_TIME_MS: i64 = 946_684_800_000;
/// Latest accepted event time (exclusive), 2100-01-01T00:00:00Z.
pub const LATEST_EVENT_TIME_MS: i64 = 4_102_444_800_000;

/// One temperature reading of one sensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorReading {
    /// The sensor, e.g. `sensor-7`; also the Kafka message key.
    pub sensor_id: String,
    /// Degrees, within [`TEMPERATURE_RANGE`].
    pub temperature: f64,
    /// When the sensor took the reading, UTC.
    pub event_time: DateTime<Utc>,
    /// Increases per sensor; with `event_time` it makes a reading's row key unique.
    pub seq: i64,
}

impl SensorReading {
    /// The UTC calendar day of the reading: with the sensor id, its Cassandra partition.
    pub fn day(&self) -> NaiveDate {
        self.event_time.date_naive()
    }

    /// The current JSON shape, `event_time` with milliseconds and a `Z`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(112);
        self.write_json(&mut out);
        out
    }

    /// Appends the current JSON shape to `out` (the producer reuses one buffer).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        #[derive(Serialize)]
        struct Wire<'a> {
            sensor_id: &'a str,
            temperature: f64,
            event_time: String,
            seq: i64,
        }
        let wire = Wire {
            sensor_id: &self.sensor_id,
            temperature: self.temperature,
            event_time: self.event_time.to_rfc3339_opts(SecondsFormat::Millis, true),
            seq: self.seq,
        };
        // Serialising a struct of strings and finite numbers into a Vec cannot fail.
        serde_json::to_writer(out, &wire).expect("a reading always serialises");
    }
}

/// Which shape a message had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageShape {
    /// `sensor_id`, `temperature`, `event_time`, `seq`.
    Current,
    /// The original system's `machineid`, `temperature`, `eventdate`.
    Legacy,
}

/// The JSON type a field was expected to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A JSON string.
    String,
    /// A JSON number.
    Number,
    /// A JSON integer (no fraction, no exponent).
    Integer,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expected::String => "a string",
            Expected::Number => "a number",
            Expected::Integer => "an integer",
        })
    }
}

/// Why a payload is not a reading. The `Display` text is the dead-letter reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventError {
    /// The message had no payload, or an empty one.
    #[error("empty payload")]
    Empty,
    /// Over [`MAX_PAYLOAD_BYTES`].
    #[error("payload of {len} bytes is larger than the {max} bytes accepted")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON at all.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// JSON, but not an object.
    #[error("JSON payload is {found}, not an object")]
    NotAnObject {
        /// What it was instead.
        found: &'static str,
    },
    /// A required field is absent (or null).
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    #[error("field `{field}` must be {expected}, found {found}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it should be.
        expected: Expected,
        /// What it was.
        found: &'static str,
    },
    /// A field has the right type but an implausible value.
    #[error("field `{field}` out of range: {detail}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value and the accepted range.
        detail: String,
    },
    /// A timestamp field that does not parse.
    #[error("field `{field}` is not {format}: {value:?}")]
    BadTimestamp {
        /// The field.
        field: &'static str,
        /// The expected format.
        format: &'static str,
        /// The value, cut to 64 characters.
        value: String,
    },
}

impl EventError {
    /// A short machine-friendly kind (`missing_field`, `out_of_range`, ...) for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            EventError::Empty => "empty",
            EventError::TooLarge { .. } => "too_large",
            EventError::InvalidJson(_) => "invalid_json",
            EventError::NotAnObject { .. } => "not_an_object",
            EventError::MissingField(_) => "missing_field",
            EventError::WrongType { .. } => "wrong_type",
            EventError::OutOfRange { .. } => "out_of_range",
            EventError::BadTimestamp { .. } => "bad_timestamp",
        }
    }
}

/// Parses and validates one message payload in either shape.
pub fn parse_reading(payload: &[u8]) -> Result<SensorReading, EventError> {
    parse_reading_with_shape(payload).map(|(reading, _)| reading)
}

/// Like [`parse_reading`], also telling which shape the message had.
pub fn parse_reading_with_shape(
    payload: &[u8],
) -> Result<(SensorReading, MessageShape), EventError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(EventError::Empty);
    }
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(EventError::TooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| EventError::InvalidJson(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(EventError::NotAnObject {
            found: json_type(&value),
        });
    };
    if present(&object, "sensor_id") {
        parse_current(&object).map(|r| (r, MessageShape::Current))
    } else if present(&object, "machineid") {
        parse_legacy(&object).map(|r| (r, MessageShape::Legacy))
    } else {
        Err(EventError::MissingField("sensor_id"))
    }
}

fn parse_current(object: &Map<String, Value>) -> Result<SensorReading, EventError> {
    let sensor_id = sensor_id(object, "sensor_id")?;
    let temperature = temperature(object)?;
    let raw_time = string(object, "event_time")?;
    let event_time = DateTime::parse_from_rfc3339(raw_time)
        .map_err(|_| bad_timestamp("event_time", "an RFC 3339 time with a zone", raw_time))?
        .with_timezone(&Utc);
    check_event_time("event_time", event_time)?;
    let seq = match object.get("seq") {
        None | Some(Value::Null) => return Err(EventError::MissingField("seq")),
        Some(Value::Number(n)) => {
            if let Some(seq) = n.as_i64() {
                seq
            } else if n.as_u64().is_some() {
                return Err(EventError::OutOfRange {
                    field: "seq",
                    detail: format!("{n} is larger than {}", i64::MAX),
                });
            } else {
                return Err(wrong_type("seq", Expected::Integer, "a fractional number"));
            }
        }
        Some(other) => return Err(wrong_type("seq", Expected::Integer, json_type(other))),
    };
    if seq < 0 {
        return Err(EventError::OutOfRange {
            field: "seq",
            detail: format!("{seq} is negative"),
        });
    }
    Ok(SensorReading {
        sensor_id,
        temperature,
        event_time,
        seq,
    })
}

fn parse_legacy(object: &Map<String, Value>) -> Result<SensorReading, EventError> {
    let sensor_id = sensor_id(object, "machineid")?;
    let temperature = temperature(object)?;
    let raw_time = string(object, "eventdate")?;
    let event_time = parse_legacy_time(raw_time)
        .ok_or_else(|| bad_timestamp("eventdate", "an ISO 8601 UTC time", raw_time))?;
    check_event_time("eventdate", event_time)?;
    Ok(SensorReading {
        sensor_id,
        temperature,
        event_time,
        // Within [EARLIEST_EVENT_TIME_MS, LATEST_EVENT_TIME_MS) this is positive and fits.
        seq: event_time.timestamp_micros(),
    })
}

/// `2017-07-10T12:34:56.123456` (Python's `isoformat()`, which drops the fraction when it is
/// zero), read as UTC; a space instead of the `T` and an explicit zone are tolerated too.
fn parse_legacy_time(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(raw, format).ok())
        .map(|naive| naive.and_utc())
}

fn check_event_time(field: &'static str, time: DateTime<Utc>) -> Result<(), EventError> {
    let ms = time.timestamp_millis();
    if (EARLIEST_EVENT_TIME_MS..LATEST_EVENT_TIME_MS).contains(&ms) {
        Ok(())
    } else {
        Err(EventError::OutOfRange {
            field,
            detail: format!(
                "{} is not within 2000-01-01 .. 2100-01-01",
                time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            ),
        })
    }
}

fn sensor_id(object: &Map<String, Value>, field: &'static str) -> Result<String, EventError> {
    let id = string(object, field)?;
    if id.is_empty() {
        return Err(EventError::OutOfRange {
            field,
            detail: "empty".to_owned(),
        });
    }
    if id.len() > MAX_SENSOR_ID_BYTES {
        return Err(EventError::OutOfRange {
            field,
            detail: format!(
                "{} bytes long, at most {MAX_SENSOR_ID_BYTES} accepted",
                id.len()
            ),
        });
    }
    if id.chars().any(char::is_control) {
        return Err(EventError::OutOfRange {
            field,
            detail: "contains control characters".to_owned(),
        });
    }
    Ok(id.to_owned())
}

fn temperature(object: &Map<String, Value>) -> Result<f64, EventError> {
    let value = match object.get("temperature") {
        None | Some(Value::Null) => return Err(EventError::MissingField("temperature")),
        Some(Value::Number(n)) => n.as_f64(),
        Some(other) => {
            return Err(wrong_type(
                "temperature",
                Expected::Number,
                json_type(other),
            ));
        }
    };
    match value {
        Some(t) if t.is_finite() && TEMPERATURE_RANGE.contains(&t) => Ok(t),
        Some(t) => Err(EventError::OutOfRange {
            field: "temperature",
            detail: format!(
                "{t} is outside {} ..= {}",
                TEMPERATURE_RANGE.start(),
                TEMPERATURE_RANGE.end()
            ),
        }),
        // serde_json without arbitrary_precision always has an f64 view of a number.
        None => Err(wrong_type("temperature", Expected::Number, "a huge number")),
    }
}

fn string<'a>(object: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, EventError> {
    match object.get(field) {
        None | Some(Value::Null) => Err(EventError::MissingField(field)),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(wrong_type(field, Expected::String, json_type(other))),
    }
}

fn present(object: &Map<String, Value>, field: &str) -> bool {
    !matches!(object.get(field), None | Some(Value::Null))
}

fn wrong_type(field: &'static str, expected: Expected, found: &'static str) -> EventError {
    EventError::WrongType {
        field,
        expected,
        found,
    }
}

fn bad_timestamp(field: &'static str, format: &'static str, raw: &str) -> EventError {
    EventError::BadTimestamp {
        field,
        format,
        value: raw.chars().take(64).collect(),
    }
}

fn json_type(value: &Value) -> &'static str {
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
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micros: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
            + chrono::Duration::microseconds(i64::from(micros))
    }

    fn reading(sensor: &str, t: f64, time: DateTime<Utc>, seq: i64) -> SensorReading {
        SensorReading {
            sensor_id: sensor.to_owned(),
            temperature: t,
            event_time: time,
            seq,
        }
    }

    #[test]
    fn accepts_both_shapes() {
        let cases: &[(&str, SensorReading, MessageShape)] = &[
            (
                r#"{"sensor_id":"sensor-7","temperature":71.5,"event_time":"2026-11-25T10:00:00.123Z","seq":42}"#,
                reading("sensor-7", 71.5, at(2026, 11, 25, 10, 0, 0, 123_000), 42),
                MessageShape::Current,
            ),
            // Any RFC 3339 offset is normalised to UTC; extra fields are ignored.
            (
                r#"{"sensor_id":"s","temperature":-3,"event_time":"2026-11-25T12:00:00+02:00","seq":0,"unit":"F"}"#,
                reading("s", -3.0, at(2026, 11, 25, 10, 0, 0, 0), 0),
                MessageShape::Current,
            ),
            // The original shape: integer temperature, no zone (UTC), microseconds.
            (
                r#"{"machineid":"sensor7","temperature":71,"eventdate":"2017-07-10T12:34:56.123456"}"#,
                reading(
                    "sensor7",
                    71.0,
                    at(2017, 7, 10, 12, 34, 56, 123_456),
                    at(2017, 7, 10, 12, 34, 56, 123_456).timestamp_micros(),
                ),
                MessageShape::Legacy,
            ),
            // Python's isoformat() drops a zero fraction.
            (
                r#"{"machineid":"sensor0","temperature":70,"eventdate":"2017-07-10T12:34:56"}"#,
                reading(
                    "sensor0",
                    70.0,
                    at(2017, 7, 10, 12, 34, 56, 0),
                    at(2017, 7, 10, 12, 34, 56, 0).timestamp_micros(),
                ),
                MessageShape::Legacy,
            ),
            (
                r#"{"machineid":"m","temperature":70,"eventdate":"2017-07-10 00:00:01.5"}"#,
                reading(
                    "m",
                    70.0,
                    at(2017, 7, 10, 0, 0, 1, 500_000),
                    at(2017, 7, 10, 0, 0, 1, 500_000).timestamp_micros(),
                ),
                MessageShape::Legacy,
            ),
        ];
        for (payload, want, shape) in cases {
            assert_eq!(
                parse_reading_with_shape(payload.as_bytes()),
                Ok((want.clone(), *shape)),
                "{payload}"
            );
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty payload"),
            (b"  \n", "empty payload"),
            (b"{bad json", "invalid JSON: key must be a string at line 1 column 2"),
            (b"[1,2]", "JSON payload is an array, not an object"),
            (b"42", "JSON payload is a number, not an object"),
            (b"{}", "missing field `sensor_id`"),
            (
                br#"{"sensor_id":"s","event_time":"2026-01-01T00:00:00Z","seq":1}"#,
                "missing field `temperature`",
            ),
            (
                br#"{"sensor_id":"s","temperature":null,"event_time":"2026-01-01T00:00:00Z","seq":1}"#,
                "missing field `temperature`",
            ),
            (
                br#"{"sensor_id":"s","temperature":70,"seq":1}"#,
                "missing field `event_time`",
            ),
            (
                br#"{"sensor_id":"s","temperature":70,"event_time":"2026-01-01T00:00:00Z"}"#,
                "missing field `seq`",
            ),
            (
                br#"{"sensor_id":"s","temperature":"hot","event_time":"2026-01-01T00:00:00Z","seq":1}"#,
                "field `temperature` must be a number, found a string",
            ),
            (
                br#"{"sensor_id":7,"temperature":70,"event_time":"2026-01-01T00:00:00Z","seq":1}"#,
                "field `sensor_id` must be a string, found a number",
            ),
            (
                br#"{"sensor_id":"s","temperature":70,"event_time":"2026-01-01T00:00:00Z","seq":1.5}"#,
                "field `seq` must be an integer, found a fractional number",
            ),
            (
                br#"{"sensor_id":"s","temperature":70,"event_time":"2026-01-01T00:00:00Z","seq":"1"}"#,
                "field `seq` must be an integer, found a string",
            ),
            (
                br#"{"sensor_id":"s","temperature":70,"event_time":"2026-01-01T00:00:00Z","seq":-1}"#,
                "field `seq` out of range: -1 is negative",
            ),
            (
                br#"{"sensor_id":"s","temperature":70,"event_time":"2026-01-01T00:00:00Z","seq":18446744073709551615}"#,
                "field `seq` out of range: 18446744073709551615 is larger than 9223372036854775807",
            ),
            (
                br#"{"sensor_id":"s","temperature":1000000,"event_time":"2026-01-01T00:00:00Z","seq":1}"#,
                "field `temperature` out of range: 1000000 is outside -100 ..= 300",
            ),
            (
                br#"{"sensor_id":"s","temperature":-459.67,"event_time":"2026-01-01T00:00:00Z","seq":1}"#,
                "field `temperature` out of range: -459.67 is outside -100 ..= 300",
            ),
            (
                br#"{"sensor_id":"","temperature":70,"event_time":"2026-01-01T00:00:00Z","seq":1}"#,
                "field `sensor_id` out of range: empty",
            ),
            (
                br#"{"sensor_id":"a\nb","temperature":70,"event_time":"2026-01-01T00:00:00Z","seq":1}"#,
                "field `sensor_id` out of range: contains control characters",
            ),
            (
                br#"{"sensor_id":"s","temperature":70,"event_time":"2026-01-01T00:00:00","seq":1}"#,
                "field `event_time` is not an RFC 3339 time with a zone: \"2026-01-01T00:00:00\"",
            ),
            (
                br#"{"sensor_id":"s","temperature":70,"event_time":"1970-01-01T00:00:00Z","seq":1}"#,
                "field `event_time` out of range: 1970-01-01T00:00:00Z is not within 2000-01-01 .. 2100-01-01",
            ),
            (
                br#"{"machineid":"m","temperature":70,"eventdate":"yesterday"}"#,
                "field `eventdate` is not an ISO 8601 UTC time: \"yesterday\"",
            ),
            (
                br#"{"machineid":"m","temperature":true,"eventdate":"2017-07-10T12:34:56"}"#,
                "field `temperature` must be a number, found a boolean",
            ),
            (
                br#"{"machineid":"m","temperature":70}"#,
                "missing field `eventdate`",
            ),
        ];
        for (payload, reason) in cases {
            let err = parse_reading(payload).expect_err(&String::from_utf8_lossy(payload));
            assert_eq!(
                err.to_string(),
                *reason,
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    #[test]
    fn rejects_oversized_payloads_before_parsing() {
        let payload = vec![b'{'; MAX_PAYLOAD_BYTES + 1];
        assert_eq!(
            parse_reading(&payload),
            Err(EventError::TooLarge {
                len: MAX_PAYLOAD_BYTES + 1,
                max: MAX_PAYLOAD_BYTES
            })
        );
        let long_id = "x".repeat(MAX_SENSOR_ID_BYTES + 1);
        let payload = format!(
            r#"{{"sensor_id":"{long_id}","temperature":70,"event_time":"2026-01-01T00:00:00Z","seq":1}}"#
        );
        assert_eq!(
            parse_reading(payload.as_bytes()).unwrap_err().kind(),
            "out_of_range"
        );
    }

    #[test]
    fn writes_the_design_shape() {
        let r = reading("sensor-7", 71.5, at(2026, 11, 25, 10, 0, 0, 123_000), 42);
        assert_eq!(
            String::from_utf8(r.to_json()).unwrap(),
            r#"{"sensor_id":"sensor-7","temperature":71.5,"event_time":"2026-11-25T10:00:00.123Z","seq":42}"#
        );
        assert_eq!(r.day(), NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
    }

    proptest! {
        /// Whatever the producer writes, the consumer reads back unchanged (at the
        /// millisecond precision both Kafka payload and Cassandra keep).
        #[test]
        fn round_trips(
            sensor in "[a-z][a-z0-9-]{0,20}",
            centi in -10_000i64..=30_000,
            ms in EARLIEST_EVENT_TIME_MS..LATEST_EVENT_TIME_MS,
            seq in 0i64..=i64::MAX,
        ) {
            let r = SensorReading {
                sensor_id: sensor,
                temperature: centi as f64 / 100.0,
                event_time: DateTime::from_timestamp_millis(ms).unwrap(),
                seq,
            };
            prop_assert_eq!(parse_reading(&r.to_json()), Ok(r));
        }

        /// Arbitrary bytes never panic the parser.
        #[test]
        fn never_panics(payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_reading(&payload);
        }
    }
}
