//! RecordIO, the framing of Mesos event streams.
//!
//! A record is its length in decimal ASCII, a line feed, then exactly that many bytes
//! (`records = *record; record = record-size LF record-data`, Mesos `docs/recordio.md`).
//! HTTP chunk boundaries have nothing to do with record boundaries, so [`RecordIoDecoder`]
//! works on a byte buffer that may hold any part of the stream: it returns a record when one
//! is complete, `Ok(None)` when it needs more bytes, and a typed error otherwise.
//!
//! Choices where the Mesos docs and its code differ (reference section 1.2): a zero length is
//! accepted and yields an empty record (Mesos' own decoder does so); anything but ASCII digits
//! in the length is an error (Mesos fails the stream permanently); a length above the
//! configured cap is an error before any of its bytes are buffered; a stream that ends inside
//! a record is an error. The decoder never panics on any input (fuzzed in `proto/fuzz`).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Default cap on one record's length: 16 MiB, well above any Mesos event we handle
/// (mesos-go caps at 4 MiB by default; OFFERS from a thousand agents can exceed that).
pub const DEFAULT_MAX_RECORD_LEN: usize = 16 * 1024 * 1024;

/// Longest length header we accept: `u64::MAX` has 20 digits.
const MAX_HEADER_DIGITS: usize = 20;

/// Why a RecordIO stream could not be decoded. Each is fatal for the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordIoError {
    /// The length header held something other than ASCII digits.
    #[error(
        "invalid RecordIO length header: byte 0x{byte:02x} at position {position} is not a decimal digit"
    )]
    NonDigitLength {
        /// The offending byte.
        byte: u8,
        /// Its position within the header.
        position: usize,
    },
    /// The line feed came before any digit.
    #[error("invalid RecordIO length header: empty length")]
    EmptyLength,
    /// The length header has more digits than any `u64` (the stream is garbage).
    #[error("invalid RecordIO length header: more than {MAX_HEADER_DIGITS} digits")]
    LengthHeaderTooLong,
    /// The record is longer than this decoder accepts.
    #[error("RecordIO record of {len} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge {
        /// Announced length.
        len: u64,
        /// Configured cap.
        max: usize,
    },
    /// The stream ended inside a record or its header.
    #[error("RecordIO stream ended inside a record: {received} of {expected} bytes received")]
    TruncatedRecord {
        /// Bytes of the record (or header) that arrived.
        received: usize,
        /// Bytes the record announced; 0 when the stream ended inside the header.
        expected: usize,
    },
    /// An I/O error from the underlying stream (only from the `tokio_util` codec adapter).
    #[error("I/O error while reading a RecordIO stream: {0}")]
    Io(String),
}

impl From<std::io::Error> for RecordIoError {
    fn from(err: std::io::Error) -> Self {
        RecordIoError::Io(err.to_string())
    }
}

/// Streaming RecordIO decoder; see the module docs.
#[derive(Debug, Clone)]
pub struct RecordIoDecoder {
    max_record_len: usize,
    /// Length of the record whose header has been consumed, while its bytes are pending.
    pending: Option<usize>,
}

impl Default for RecordIoDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RECORD_LEN)
    }
}

impl RecordIoDecoder {
    /// A decoder refusing records longer than `max_record_len` bytes.
    pub fn new(max_record_len: usize) -> Self {
        RecordIoDecoder {
            max_record_len,
            pending: None,
        }
    }

    /// Takes one complete record off the front of `buf`, or returns `Ok(None)` when `buf`
    /// does not yet hold one (consuming a complete header meanwhile).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, RecordIoError> {
        let len = match self.pending {
            Some(len) => len,
            None => match self.decode_header(buf)? {
                Some(len) => {
                    self.pending = Some(len);
                    len
                }
                None => return Ok(None),
            },
        };
        if buf.len() < len {
            // Reserve what the record still needs, so the reader fills it in few reads.
            buf.reserve(len - buf.len());
            return Ok(None);
        }
        self.pending = None;
        Ok(Some(buf.split_to(len).freeze()))
    }

    /// Like [`RecordIoDecoder::decode`] for the end of the stream: bytes left over that do
    /// not form a record are an error.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, RecordIoError> {
        if let Some(record) = self.decode(buf)? {
            return Ok(Some(record));
        }
        match self.pending {
            Some(expected) => Err(RecordIoError::TruncatedRecord {
                received: buf.len(),
                expected,
            }),
            None if buf.is_empty() => Ok(None),
            None => Err(RecordIoError::TruncatedRecord {
                received: buf.len(),
                expected: 0,
            }),
        }
    }

    /// Parses and consumes a length header, or returns `Ok(None)` if it is not complete.
    fn decode_header(&self, buf: &mut BytesMut) -> Result<Option<usize>, RecordIoError> {
        let mut len: u64 = 0;
        for (position, &byte) in buf.iter().enumerate() {
            if byte == b'\n' {
                if position == 0 {
                    return Err(RecordIoError::EmptyLength);
                }
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&l| l <= self.max_record_len)
                    .ok_or(RecordIoError::RecordTooLarge {
                        len,
                        max: self.max_record_len,
                    })?;
                buf.advance(position + 1);
                return Ok(Some(len));
            }
            if !byte.is_ascii_digit() {
                return Err(RecordIoError::NonDigitLength { byte, position });
            }
            if position >= MAX_HEADER_DIGITS {
                return Err(RecordIoError::LengthHeaderTooLong);
            }
            len = len
                .checked_mul(10)
                .and_then(|l| l.checked_add(u64::from(byte - b'0')))
                .ok_or(RecordIoError::LengthHeaderTooLong)?;
            // Refuse an oversized record as soon as its header says so, without waiting for
            // the line feed, so garbage cannot make us buffer.
            if len > self.max_record_len as u64 {
                return Err(RecordIoError::RecordTooLarge {
                    len,
                    max: self.max_record_len,
                });
            }
        }
        Ok(None)
    }
}

impl tokio_util::codec::Decoder for RecordIoDecoder {
    type Item = Bytes;
    type Error = RecordIoError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, RecordIoError> {
        RecordIoDecoder::decode(self, src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, RecordIoError> {
        RecordIoDecoder::decode_eof(self, src)
    }
}

/// Appends one record (`<len>\n<bytes>`) to `dst`.
pub fn encode(record: &[u8], dst: &mut BytesMut) {
    let header = record.len().to_string();
    dst.reserve(header.len() + 1 + record.len());
    dst.put_slice(header.as_bytes());
    dst.put_u8(b'\n');
    dst.put_slice(record);
}

/// One record as a fresh buffer.
pub fn encode_to_bytes(record: &[u8]) -> Bytes {
    let mut dst = BytesMut::new();
    encode(record, &mut dst);
    dst.freeze()
}

/// Encodes a protobuf message as one record.
pub fn encode_message<M: prost::Message>(message: &M) -> Bytes {
    encode_to_bytes(&message.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(
        decoder: &mut RecordIoDecoder,
        chunks: &[&[u8]],
    ) -> Result<Vec<Bytes>, RecordIoError> {
        let mut buf = BytesMut::new();
        let mut records = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(record) = decoder.decode(&mut buf)? {
                records.push(record);
            }
        }
        while let Some(record) = decoder.decode_eof(&mut buf)? {
            records.push(record);
        }
        Ok(records)
    }

    fn stream(records: &[&[u8]]) -> Vec<u8> {
        let mut buf = BytesMut::new();
        for r in records {
            encode(r, &mut buf);
        }
        buf.to_vec()
    }

    #[test]
    fn heartbeat_record_from_the_reference() {
        // Event{type=HEARTBEAT(8)} is `08 08`, framed as `2\n\x08\x08`.
        let mut d = RecordIoDecoder::default();
        let records = decode_all(&mut d, &[b"2\n\x08\x08"]).unwrap();
        assert_eq!(records, vec![Bytes::from_static(b"\x08\x08")]);
        assert_eq!(
            encode_to_bytes(b"\x08\x08"),
            Bytes::from_static(b"2\n\x08\x08")
        );
    }

    /// A case name, the chunks fed in, and the records expected out.
    type ChunkCase<'a> = (&'a str, &'a [&'a [u8]], &'a [&'a [u8]]);

    #[test]
    fn splits_and_several_records_per_chunk() {
        let cases: &[ChunkCase<'_>] = &[
            (
                "one chunk, three records",
                &[b"3\nabc1\nx0\n"],
                &[b"abc", b"x", b""],
            ),
            ("header split", &[b"1", b"0\n0123456789"], &[b"0123456789"]),
            ("payload split", &[b"5\nab", b"c", b"de"], &[b"abcde"]),
            ("split right after LF", &[b"2\n", b"hi"], &[b"hi"]),
            ("zero-length record", &[b"0\n"], &[b""]),
            ("empty stream", &[], &[]),
        ];
        for (name, chunks, expected) in cases {
            let got = decode_all(&mut RecordIoDecoder::default(), chunks).unwrap();
            let expected: Vec<Bytes> = expected.iter().map(|r| Bytes::copy_from_slice(r)).collect();
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn distinct_errors() {
        let cases: &[(&str, &[u8], RecordIoError)] = &[
            (
                "letter in length",
                b"1x\nab",
                RecordIoError::NonDigitLength {
                    byte: b'x',
                    position: 1,
                },
            ),
            (
                "sign",
                b"-1\n",
                RecordIoError::NonDigitLength {
                    byte: b'-',
                    position: 0,
                },
            ),
            (
                "leading space",
                b" 1\na",
                RecordIoError::NonDigitLength {
                    byte: b' ',
                    position: 0,
                },
            ),
            (
                "CRLF",
                b"1\r\na",
                RecordIoError::NonDigitLength {
                    byte: b'\r',
                    position: 1,
                },
            ),
            ("empty length", b"\nabc", RecordIoError::EmptyLength),
            (
                "too large",
                b"11\n",
                RecordIoError::RecordTooLarge { len: 11, max: 10 },
            ),
            (
                "too large before LF",
                b"99999",
                RecordIoError::RecordTooLarge { len: 99, max: 10 },
            ),
            (
                "EOF in payload",
                b"5\nab",
                RecordIoError::TruncatedRecord {
                    received: 2,
                    expected: 5,
                },
            ),
            (
                "EOF in header",
                b"3",
                RecordIoError::TruncatedRecord {
                    received: 1,
                    expected: 0,
                },
            ),
        ];
        for (name, input, expected) in cases {
            let got = decode_all(&mut RecordIoDecoder::new(10), &[input]);
            assert_eq!(got.as_ref(), Err(expected), "{name}");
        }
    }

    #[test]
    fn too_many_digits_even_with_a_huge_cap() {
        let got = decode_all(
            &mut RecordIoDecoder::new(usize::MAX),
            &[b"000000000000000000001\n"],
        );
        assert_eq!(got, Err(RecordIoError::LengthHeaderTooLong));
        let got = decode_all(
            &mut RecordIoDecoder::new(usize::MAX),
            &[b"99999999999999999999\n"],
        );
        assert_eq!(got, Err(RecordIoError::LengthHeaderTooLong));
    }

    proptest! {
        /// Any split of a valid stream into chunks decodes to the same records.
        #[test]
        fn any_chunking_decodes_the_same(
            records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            let bytes = stream(&refs);
            let mut positions: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            positions.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for p in positions {
                chunks.push(&bytes[start..p]);
                start = p;
            }
            chunks.push(&bytes[start..]);
            let got = decode_all(&mut RecordIoDecoder::default(), &chunks).unwrap();
            let expected: Vec<Bytes> = records.into_iter().map(Bytes::from).collect();
            prop_assert_eq!(got, expected);
        }

        /// One byte at a time is the worst case of chunking.
        #[test]
        fn byte_at_a_time(records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..6)) {
            let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            let bytes = stream(&refs);
            let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
            let got = decode_all(&mut RecordIoDecoder::default(), &chunks).unwrap();
            let expected: Vec<Bytes> = records.into_iter().map(Bytes::from).collect();
            prop_assert_eq!(got, expected);
        }

        /// Arbitrary garbage never panics and never yields a record longer than the cap.
        #[test]
        fn garbage_never_panics(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut d = RecordIoDecoder::new(64);
            if let Ok(records) = decode_all(&mut d, &[&input]) {
                prop_assert!(records.iter().all(|r| r.len() <= 64));
            }
        }
    }
}
