//! The dead-letter store: messages that are not readings, kept with where they came from and why.
//!
//! One JSON object per line in `<spool dir>/dead-letters.jsonl` (on the consumer slot's volume,
//! so a relaunched slot finds it again):
//!
//! ```json
//! {"topic":"sensor-temp","partition":3,"offset":1234,"key":"sensor-7","payload":"{bad json",
//!  "encoding":"utf8","reason":"invalid JSON: ...","kind":"invalid_json",
//!  "dead_lettered_at":"2026-11-25T10:00:00.123Z"}
//! ```
//!
//! `key` and `payload` are the message bytes as text when both are UTF-8 (`encoding` =
//! `utf8`), else both in standard base64 (`encoding` = `base64`); a missing key is `null`, a
//! missing payload `""`. The record format is pure ([`DeadLetter`]); the store appends lines
//! from one writer thread and syncs them to disk before it acknowledges, grouping whatever
//! arrived meanwhile into one `fdatasync`. The consumer stores a message's offset only after
//! that acknowledgement, so a dead letter is never lost; after a crash it may be recorded twice
//! (same coordinates), never zero times.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::event::EventError;

/// The file name inside the spool directory.
pub const FILE_NAME: &str = "dead-letters.jsonl";

/// How `key` and `payload` are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// As text.
    Utf8,
    /// Standard base64.
    Base64,
}

/// One dead-lettered message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Kafka topic.
    pub topic: String,
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Message key, encoded per `encoding`; `None` if the message had none.
    pub key: Option<String>,
    /// Message payload, encoded per `encoding`.
    pub payload: String,
    /// Encoding of `key` and `payload`.
    pub encoding: Encoding,
    /// Why it is not a reading (an [`EventError`]'s text).
    pub reason: String,
    /// [`EventError::kind`].
    pub kind: String,
    /// When it was recorded.
    pub dead_lettered_at: DateTime<Utc>,
}

impl DeadLetter {
    /// The record for a message that failed to parse.
    pub fn new(
        topic: &str,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        error: &EventError,
        now: DateTime<Utc>,
    ) -> Self {
        let payload = payload.unwrap_or_default();
        let text_key = key.map(std::str::from_utf8).transpose();
        let text_payload = std::str::from_utf8(payload);
        let (key, payload, encoding) = match (text_key, text_payload) {
            (Ok(key), Ok(payload)) => (key.map(str::to_owned), payload.to_owned(), Encoding::Utf8),
            _ => (
                key.map(|k| BASE64.encode(k)),
                BASE64.encode(payload),
                Encoding::Base64,
            ),
        };
        DeadLetter {
            topic: topic.to_owned(),
            partition,
            offset,
            key,
            payload,
            encoding,
            reason: error.to_string(),
            kind: error.kind().to_owned(),
            dead_lettered_at: now,
        }
    }

    /// The record as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        // Strings and numbers only: serialising cannot fail.
        let mut line = serde_json::to_vec(self).expect("a dead letter always serialises");
        line.push(b'\n');
        line
    }

    /// The original payload bytes.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, base64::DecodeError> {
        match self.encoding {
            Encoding::Utf8 => Ok(self.payload.clone().into_bytes()),
            Encoding::Base64 => BASE64.decode(&self.payload),
        }
    }
}

/// Reads every complete record of a dead-letter file (a torn last line from a crash, or any
/// line that is not a record, is skipped).
pub fn read_file(path: &Path) -> io::Result<Vec<DeadLetter>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut records = Vec::new();
    for line in BufReader::new(file).lines() {
        if let Ok(record) = serde_json::from_str(&line?) {
            records.push(record);
        }
    }
    Ok(records)
}

struct Append {
    line: Vec<u8>,
    done: oneshot::Sender<io::Result<()>>,
}

/// Appends records durably; cheap to clone (all clones feed one writer thread).
#[derive(Debug, Clone)]
pub struct DeadLetterStore {
    path: PathBuf,
    tx: mpsc::Sender<Append>,
}

impl std::fmt::Debug for Append {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Append")
            .field("bytes", &self.line.len())
            .finish()
    }
}

impl DeadLetterStore {
    /// Opens (creating the directory and file if needed) `<spool_dir>/dead-letters.jsonl`.
    pub fn open(spool_dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(spool_dir)?;
        let path = spool_dir.join(FILE_NAME);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)?;
        // A crash mid-append leaves a torn last line: end it so the next record starts clean.
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
                file.sync_data()?;
            }
        }
        let (tx, rx) = mpsc::channel(1024);
        std::thread::Builder::new()
            .name("dead-letters".to_owned())
            .spawn(move || writer(file, rx))?;
        Ok(DeadLetterStore { path, tx })
    }

    /// Where the records go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record; returns once it is on disk.
    pub async fn append(&self, record: &DeadLetter) -> io::Result<()> {
        let (done, result) = oneshot::channel();
        let closed = || io::Error::other("the dead-letter writer thread has stopped");
        self.tx
            .send(Append {
                line: record.to_line(),
                done,
            })
            .await
            .map_err(|_| closed())?;
        result.await.map_err(|_| closed())?
    }
}

/// The writer thread: append whatever is queued, one sync for the group, then acknowledge.
fn writer(mut file: File, mut rx: mpsc::Receiver<Append>) {
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        while let Ok(more) = rx.try_recv() {
            group.push(more);
            if group.len() >= 256 {
                break;
            }
        }
        let result = group
            .iter()
            .try_for_each(|a| file.write_all(&a.line))
            .and_then(|()| file.sync_data());
        for append in group {
            let reply = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            // The waiting write may have been abandoned (hard stop): nothing to tell then.
            let _ = append.done.send(reply);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
    }

    #[test]
    fn text_and_binary_records() {
        let text = DeadLetter::new(
            "sensor-temp",
            3,
            1234,
            Some(b"sensor-7"),
            Some(b"{bad json"),
            &EventError::InvalidJson("eof".to_owned()),
            now(),
        );
        assert_eq!(
            String::from_utf8(text.to_line()).unwrap(),
            "{\"topic\":\"sensor-temp\",\"partition\":3,\"offset\":1234,\"key\":\"sensor-7\",\
             \"payload\":\"{bad json\",\"encoding\":\"utf8\",\"reason\":\"invalid JSON: eof\",\
             \"kind\":\"invalid_json\",\"dead_lettered_at\":\"2026-11-25T10:00:00Z\"}\n"
        );
        let binary = DeadLetter::new(
            "t",
            0,
            1,
            None,
            Some(&[0xff, 0x00]),
            &EventError::Empty,
            now(),
        );
        assert_eq!(binary.encoding, Encoding::Base64);
        assert_eq!(binary.key, None);
        assert_eq!(binary.payload, "/wA=");
        assert_eq!(binary.payload_bytes().unwrap(), vec![0xff, 0x00]);
        let empty = DeadLetter::new("t", 0, 2, Some(b"k"), None, &EventError::Empty, now());
        assert_eq!(
            (empty.payload.as_str(), empty.reason.as_str()),
            ("", "empty payload")
        );
    }

    #[tokio::test]
    async fn appends_survive_a_torn_line() {
        let dir = std::env::temp_dir().join(format!(
            "fastdata-dl-test-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(FILE_NAME), b"{\"topic\":\"torn").unwrap();
        let store = DeadLetterStore::open(&dir).unwrap();
        let records: Vec<_> = (0..5)
            .map(|i| DeadLetter::new("t", 1, i, None, Some(b"x"), &EventError::Empty, now()))
            .collect();
        futures::future::try_join_all(records.iter().map(|r| store.append(r)))
            .await
            .unwrap();
        let mut read = read_file(store.path()).unwrap();
        read.sort_by_key(|r| r.offset);
        assert_eq!(read, records);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
