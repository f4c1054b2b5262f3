//! Feeds arbitrary bytes, split at arbitrary points, to the RecordIO decoder.
//!
//! Properties: it never panics; every record it yields respects the length cap; and the
//! records decoded from a split input equal those decoded from the same input in one piece
//! (chunk boundaries never change the outcome).
//!
//! Run: `cd proto/fuzz && cargo +nightly fuzz run recordio_decoder -- -max_total_time=60`

#![no_main]

use bytes::BytesMut;
use fastdata_proto::recordio::{RecordIoDecoder, RecordIoError};
use libfuzzer_sys::fuzz_target;

const CAP: usize = 1024;

fn decode(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Option<RecordIoError>) {
    let mut decoder = RecordIoDecoder::new(CAP);
    let mut buf = BytesMut::new();
    let mut records = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(record)) => records.push(record.to_vec()),
                Ok(None) => break,
                Err(e) => return (records, Some(e)),
            }
        }
    }
    loop {
        match decoder.decode_eof(&mut buf) {
            Ok(Some(record)) => records.push(record.to_vec()),
            Ok(None) => return (records, None),
            Err(e) => return (records, Some(e)),
        }
    }
}

fuzz_target!(|input: (u16, &[u8])| {
    let (split, data) = input;
    let at = usize::from(split) % (data.len() + 1);
    let whole = decode(&[data]);
    let split = decode(&[&data[..at], &data[at..]]);
    assert!(whole.0.iter().all(|r| r.len() <= CAP));
    assert_eq!(whole, split);
});
