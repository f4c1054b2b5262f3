//! Scheduler events out of the subscription's bytes.
//!
//! Owns the decoding of the event stream: RecordIO framing (the proto crate's
//! [`RecordIoDecoder`], with a cap on the record size) and protobuf `Event`s. Anything
//! that is not a well-formed stream is an error for the caller to drop the connection on;
//! nothing here panics on any input (see the property test). It reads no socket: the
//! connection task pushes the HTTP body's chunks in, whatever their boundaries.

use bytes::BytesMut;
use fastdata_proto::recordio::{RecordIoDecoder, RecordIoError};
use fastdata_proto::v1::scheduler;
use prost::Message as _;

/// Largest event accepted. OFFERS from a thousand agents stay far below it; a length header
/// above it is garbage (or an attack) and ends the stream before anything is buffered.
pub const MAX_EVENT_LEN: usize = fastdata_proto::recordio::DEFAULT_MAX_RECORD_LEN;

/// Why the stream cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// Bad RecordIO framing (non-digit length, over-long record, truncated at the end).
    #[error("the event stream is not valid RecordIO: {0}")]
    Framing(#[from] RecordIoError),
    /// A record that is not a protobuf scheduler `Event`.
    #[error("an event could not be decoded: {0}")]
    Undecodable(String),
    /// The connection failed.
    #[error("the event stream broke: {0}")]
    Transport(String),
    /// The master ended the stream.
    #[error("the master closed the event stream")]
    Closed,
}

/// Bytes in, events out.
#[derive(Debug)]
pub struct EventDecoder {
    buf: BytesMut,
    records: RecordIoDecoder,
}

impl Default for EventDecoder {
    fn default() -> Self {
        EventDecoder::new(MAX_EVENT_LEN)
    }
}

impl EventDecoder {
    /// A decoder refusing records longer than `max_event_len`.
    pub fn new(max_event_len: usize) -> EventDecoder {
        EventDecoder {
            buf: BytesMut::new(),
            records: RecordIoDecoder::new(max_event_len),
        }
    }

    /// Appends bytes as they arrived.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, `Ok(None)` if more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<scheduler::Event>, StreamError> {
        loop {
            match self.records.decode(&mut self.buf)? {
                // Mesos never sends empty records (docs/recordio.md); its own decoder and
                // mesos-go skip them, and so do we.
                Some(record) if record.is_empty() => continue,
                Some(record) => return decode(&record).map(Some),
                None => return Ok(None),
            }
        }
    }

    /// At the end of the stream: the last event, or an error if bytes are left over.
    pub fn finish(&mut self) -> Result<Option<scheduler::Event>, StreamError> {
        loop {
            match self.records.decode_eof(&mut self.buf)? {
                Some(record) if record.is_empty() => continue,
                Some(record) => return decode(&record).map(Some),
                None => return Ok(None),
            }
        }
    }
}

fn decode(record: &[u8]) -> Result<scheduler::Event, StreamError> {
    scheduler::Event::decode(record).map_err(|e| StreamError::Undecodable(e.to_string()))
}

/// Whether an event carries the payload its type announces. prost does not enforce it
/// (reference 4.0), and the run loop must be able to rely on `offers` being there in an
/// OFFERS event; a master never sends one without, so its absence means a broken stream.
pub fn payload_present(event: &scheduler::Event) -> bool {
    use scheduler::event::Type;
    match event
        .r#type
        .and_then(|t| Type::try_from(t).ok())
        .unwrap_or(Type::Unknown)
    {
        Type::Subscribed => event.subscribed.is_some(),
        Type::Offers => event.offers.is_some(),
        Type::InverseOffers => event.inverse_offers.is_some(),
        Type::Rescind => event.rescind.is_some(),
        Type::RescindInverseOffer => event.rescind_inverse_offer.is_some(),
        Type::Update => event.update.is_some(),
        Type::UpdateOperationStatus => event.update_operation_status.is_some(),
        Type::Message => event.message.is_some(),
        Type::Failure => event.failure.is_some(),
        Type::Error => event.error.is_some(),
        Type::Heartbeat | Type::Unknown => true,
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use proptest::prelude::*;
    use scheduler::event::Type;

    use super::*;

    /// The first two records of the recorded master-restart re-subscription
    /// (`faults-master-restart.jsonl`, replicated log run): SUBSCRIBED, then HEARTBEAT.
    fn recorded() -> Vec<Vec<u8>> {
        let transcript =
            include_str!("../../../proto/tests/data/mesos-transcripts/faults-master-restart.jsonl");
        let step: serde_json::Value = transcript
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|s| s["run"] == "replicated_log" && s["step"] == "re-SUBSCRIBE attempt 17")
            .expect("the recorded re-subscription");
        step["events"].as_array().unwrap()[..2]
            .iter()
            .map(|e| {
                base64::engine::general_purpose::STANDARD
                    .decode(e["record_b64"].as_str().unwrap())
                    .unwrap()
            })
            .collect()
    }

    fn framed(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            out.extend_from_slice(format!("{}\n", r.len()).as_bytes());
            out.extend_from_slice(r);
        }
        out
    }

    fn drain(d: &mut EventDecoder) -> Result<Vec<scheduler::Event>, StreamError> {
        let mut out = Vec::new();
        while let Some(e) = d.next_event()? {
            out.push(e);
        }
        Ok(out)
    }

    #[test]
    fn recorded_events_decode_across_any_chunking() {
        let bytes = framed(&recorded());
        for chunk in [1, 2, 3, 7, 64, bytes.len()] {
            let mut d = EventDecoder::default();
            let mut events = Vec::new();
            for piece in bytes.chunks(chunk) {
                d.push(piece);
                events.extend(drain(&mut d).unwrap());
            }
            assert_eq!(d.finish().unwrap(), None);
            let kinds: Vec<i32> = events.iter().filter_map(|e| e.r#type).collect();
            assert_eq!(kinds, vec![Type::Subscribed as i32, Type::Heartbeat as i32]);
            let subscribed = events[0].subscribed.as_ref().unwrap();
            assert_eq!(
                subscribed.framework_id.value,
                "ea96ae7b-d25c-433e-8983-ec3b07ae2559-0000"
            );
            assert_eq!(subscribed.heartbeat_interval_seconds, Some(15.0));
        }
    }

    #[test]
    fn empty_records_are_skipped() {
        let mut d = EventDecoder::default();
        d.push(b"0\n0\n2\n\x08\x08");
        let events = drain(&mut d).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].r#type, Some(Type::Heartbeat as i32));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let table: [(&[u8], &str); 4] = [
            (b"xyz\n", "not valid RecordIO"),
            (b"99999999999\n", "not valid RecordIO"),
            // A record whose bytes are not protobuf (an invalid wire type 7).
            (b"3\n\x0f\xff\xff", "could not be decoded"),
            (b"\n", "not valid RecordIO"),
        ];
        for (bytes, expected) in table {
            let mut d = EventDecoder::default();
            d.push(bytes);
            let e = drain(&mut d).expect_err("garbage");
            assert!(e.to_string().contains(expected), "{bytes:?}: {e}");
        }
        let mut truncated = EventDecoder::default();
        truncated.push(b"10\nabc");
        assert_eq!(truncated.next_event(), Ok(None));
        assert!(matches!(truncated.finish(), Err(StreamError::Framing(_))));
    }

    #[test]
    fn oversized_records_are_refused_before_buffering() {
        let mut d = EventDecoder::new(16);
        d.push(b"17\n");
        assert!(matches!(d.next_event(), Err(StreamError::Framing(_))));
    }

    #[test]
    fn payload_presence_per_type() {
        let bare = |t: Type| scheduler::Event {
            r#type: Some(t as i32),
            ..Default::default()
        };
        for t in [
            Type::Subscribed,
            Type::Offers,
            Type::Rescind,
            Type::Update,
            Type::Message,
            Type::Failure,
            Type::Error,
            Type::InverseOffers,
            Type::RescindInverseOffer,
            Type::UpdateOperationStatus,
        ] {
            assert!(!payload_present(&bare(t)), "{t:?}");
        }
        assert!(payload_present(&bare(Type::Heartbeat)));
        let recorded = scheduler::Event::decode(recorded()[0].as_slice()).unwrap();
        assert!(payload_present(&recorded));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512),
                                       split in 1usize..64) {
            let mut d = EventDecoder::new(4096);
            for piece in bytes.chunks(split) {
                d.push(piece);
                while let Ok(Some(_)) = d.next_event() {}
            }
            let _ = d.finish();
        }
    }
}
