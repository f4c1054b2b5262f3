//! How values are stored: JSON documents and plain text, an empty node meaning "never set",
//! and the size limit. Pure: bytes in, values out.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StateError;

/// The largest value written, in bytes: the DC/OS SDK's `MAX_VALUE_LENGTH_BYTES`, lowered
/// from 1 MiB after ZooKeeper "Len error" incidents (a node at `jute.maxbuffer` makes the
/// responses that carry it fail for every client).
pub const MAX_VALUE_BYTES: usize = 1_000_000;

/// Refuses values over [`MAX_VALUE_BYTES`].
pub(crate) fn check_size(path: &str, size: usize) -> Result<(), StateError> {
    if size > MAX_VALUE_BYTES {
        return Err(StateError::TooLarge {
            path: path.to_owned(),
            size,
            limit: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

/// JSON bytes of `value`, within the size limit.
pub(crate) fn encode_json<T: Serialize + ?Sized>(
    path: &str,
    value: &T,
) -> Result<Vec<u8>, StateError> {
    let bytes = serde_json::to_vec(value).map_err(|e| StateError::InvalidValue {
        path: path.to_owned(),
        reason: format!("it cannot be encoded as JSON: {e}"),
    })?;
    check_size(path, bytes.len())?;
    Ok(bytes)
}

/// The JSON document in a node; `Ok(None)` for an empty node (never set). The error is the
/// reason, for the caller to name the node.
pub(crate) fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<Option<T>, String> {
    if bytes.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|e| format!("not the expected JSON: {e}"))
}

/// The text in a node, trimmed; `Ok(None)` for an empty node.
pub(crate) fn decode_text(bytes: &[u8]) -> Result<Option<String>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ScalingConfig;

    #[test]
    fn the_limit_is_inclusive() {
        assert!(check_size("/x", MAX_VALUE_BYTES).is_ok());
        let err = check_size("/x", MAX_VALUE_BYTES + 1).expect_err("too large");
        assert!(
            matches!(
                err,
                StateError::TooLarge {
                    size: 1_000_001,
                    limit: 1_000_000,
                    ..
                }
            ),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.contains("/x") && message.contains("1000001"),
            "{message}"
        );
        // A string of n bytes encodes to n + 2 (the quotes).
        let big = "a".repeat(MAX_VALUE_BYTES - 1);
        let err = encode_json("/big", &big).expect_err("too large");
        assert!(matches!(err, StateError::TooLarge { .. }), "{err}");
        let fits = "a".repeat(MAX_VALUE_BYTES - 2);
        assert_eq!(
            encode_json("/big", &fits).expect("fits").len(),
            MAX_VALUE_BYTES
        );
    }

    #[test]
    fn json_round_trips_and_empty_means_unset() {
        let config = ScalingConfig {
            scale_up_lag: 900,
            ..ScalingConfig::default()
        };
        let bytes = encode_json("/s", &config).expect("encodes");
        assert_eq!(
            decode_json::<ScalingConfig>(&bytes).expect("decodes"),
            Some(config)
        );
        assert_eq!(decode_json::<ScalingConfig>(b"").expect("empty"), None);
    }

    #[test]
    fn unreadable_json_is_a_reason_not_a_panic() {
        let cases: [&[u8]; 4] = [
            b"{not json",
            br#"{"mode":"quantum"}"#,
            br#"{"a_field_from_the_future":1}"#,
            &[0xff, 0xfe, 0x00],
        ];
        for bytes in cases {
            let reason = decode_json::<ScalingConfig>(bytes).expect_err("unreadable");
            assert!(reason.starts_with("not the expected JSON"), "{reason}");
        }
    }

    #[test]
    fn text_is_trimmed_utf8() {
        assert_eq!(
            decode_text(b" 7c4d-0001\n").expect("text"),
            Some("7c4d-0001".to_owned())
        );
        assert_eq!(decode_text(b"").expect("empty"), None);
        assert_eq!(decode_text(b" \n").expect("blank"), None);
        assert!(decode_text(&[0xc3, 0x28]).is_err());
    }
}
