//! The REST (axum) and gRPC (tonic) APIs, the OpenAPI document and the status page.
//!
//! Skeleton: implemented in the API work. Reads [`crate::status::StatusReceiver`], sends
//! [`crate::status::ApiRequest`]s.
