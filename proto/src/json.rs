//! The protobuf JSON mapping of our messages, as Mesos speaks it.
//!
//! Mesos accepts and emits JSON bodies with the proto field names (`framework_id`, not
//! `frameworkId`), enum values by name, 64-bit integers as strings and bytes as base64. This
//! module converts any generated message to and from that form by reflection over our own
//! descriptors, so there is no second, hand-written JSON schema to drift.

use std::sync::OnceLock;

use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, ReflectMessage,
    SerializeOptions,
};

use crate::FILE_DESCRIPTOR_SET;

/// Errors converting between messages and JSON.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The JSON text is not a valid encoding of the message.
    #[error("invalid JSON for {message}: {source}")]
    Invalid {
        /// Full protobuf name of the expected message.
        message: String,
        /// What the parser found wrong.
        source: serde_json::Error,
    },
    /// A message type that is not in our descriptor set (a bug in this crate).
    #[error("message type {0} is not in the fastdata descriptor set")]
    UnknownType(String),
    /// The JSON parsed but leaves `required` fields out (or holds unknown enum values), which
    /// a prost struct could not show afterwards: prost fills absent required fields in.
    #[error("incomplete JSON for {message}: {problems}")]
    Incomplete {
        /// Full protobuf name of the expected message.
        message: String,
        /// What is missing, by path.
        problems: String,
    },
    /// Re-encoding the parsed message failed (a bug in this crate).
    #[error("could not convert {message}: {source}")]
    Convert {
        /// Full protobuf name of the message.
        message: String,
        /// The underlying decoding error.
        source: prost::DecodeError,
    },
}

/// Descriptors of every message in this crate.
pub fn descriptor_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    // Invariant: the descriptor set is produced by our own build script from files that
    // compiled, so it always decodes.
    POOL.get_or_init(|| {
        DescriptorPool::decode(FILE_DESCRIPTOR_SET)
            .expect("descriptor set built by build.rs is valid")
    })
}

/// The descriptor of a generated message type.
pub fn descriptor_of<M: prost::Name>() -> Result<MessageDescriptor, JsonError> {
    let name = M::full_name();
    descriptor_pool()
        .get_message_by_name(&name)
        .ok_or(JsonError::UnknownType(name))
}

/// A generated message as a reflective one (same bytes, same content).
pub fn to_dynamic<M: prost::Message + prost::Name>(
    message: &M,
) -> Result<DynamicMessage, JsonError> {
    let descriptor = descriptor_of::<M>()?;
    DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice()).map_err(|source| {
        JsonError::Convert {
            message: M::full_name(),
            source,
        }
    })
}

fn serialize_options() -> SerializeOptions {
    SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(true)
}

/// A message as Mesos-style JSON (proto field names, only the fields that are set).
pub fn to_json<M: prost::Message + prost::Name>(
    message: &M,
) -> Result<serde_json::Value, JsonError> {
    let dynamic = to_dynamic(message)?;
    dynamic_to_json(&dynamic)
}

/// A reflective message as Mesos-style JSON.
pub fn dynamic_to_json(message: &DynamicMessage) -> Result<serde_json::Value, JsonError> {
    message
        .serialize_with_options(serde_json::value::Serializer, &serialize_options())
        .map_err(|source| JsonError::Invalid {
            message: message.descriptor().full_name().to_owned(),
            source,
        })
}

/// Parses Mesos-style JSON (proto or lowerCamel field names) into a generated message.
/// Unknown fields are an error, as they are for Mesos, and so are missing `required` fields
/// at any depth (checked before prost's defaults would hide them).
pub fn from_json<M: prost::Message + prost::Name + Default>(json: &[u8]) -> Result<M, JsonError> {
    let descriptor = descriptor_of::<M>()?;
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let dynamic = DynamicMessage::deserialize_with_options(
        descriptor,
        &mut deserializer,
        &DeserializeOptions::new(),
    )
    .and_then(|m| deserializer.end().map(|()| m))
    .map_err(|source| JsonError::Invalid {
        message: M::full_name(),
        source,
    })?;
    let problems = crate::validate::problems_in(&dynamic);
    if !problems.is_empty() {
        let problems = problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return Err(JsonError::Incomplete {
            message: M::full_name(),
            problems,
        });
    }
    M::decode(dynamic.encode_to_vec().as_slice()).map_err(|source| JsonError::Convert {
        message: M::full_name(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::scheduler::{Call, call};
    use crate::v1::{FrameworkId, FrameworkInfo};

    #[test]
    fn round_trip_uses_proto_names_and_enum_names() {
        let call = Call {
            framework_id: Some(FrameworkId {
                value: "f-1".into(),
            }),
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe {
                framework_info: FrameworkInfo {
                    user: "root".into(),
                    name: "fastdata".into(),
                    failover_timeout: Some(3600.0),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        let json = to_json(&call).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "framework_id": {"value": "f-1"},
                "type": "SUBSCRIBE",
                "subscribe": {"framework_info": {"user": "root", "name": "fastdata", "failover_timeout": 3600.0}}
            })
        );
        let back: Call = from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(back, call);
    }

    #[test]
    fn rejects_unknown_fields_and_trailing_garbage() {
        assert!(from_json::<Call>(br#"{"string":"valid_json"}"#).is_err());
        assert!(from_json::<Call>(br#"{"type":"TEARDOWN"} x"#).is_err());
        assert!(from_json::<Call>(b"MALFORMED_CONTENT").is_err());
        let teardown: Call = from_json(br#"{"type":"TEARDOWN"}"#).unwrap();
        assert_eq!(teardown.r#type, Some(call::Type::Teardown as i32));
    }

    #[test]
    fn refuses_missing_required_fields_that_prost_would_fill_in() {
        let err = from_json::<Call>(
            br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root"}}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "incomplete JSON for mesos.v1.scheduler.Call: required field 'subscribe.framework_info.name' is missing"
        );
        let complete: Call = from_json(
            br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"f"}}}"#,
        )
        .unwrap();
        assert_eq!(complete.subscribe.unwrap().framework_info.name, "f");
    }
}
