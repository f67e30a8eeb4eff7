//! Property: any sequence of batches, written and committed (with writer reopens between some of
//! them, and segments tiny enough to roll constantly), reads back identically from any seq.

use cascade_log::{LogReader, LogWriter, WriterOptions, verify};
use proptest::prelude::*;

fn batches() -> impl Strategy<Value = Vec<(Vec<Vec<u8>>, bool)>> {
    let record = prop::collection::vec(any::<u8>(), 1..300);
    let batch = prop::collection::vec(record, 0..40);
    prop::collection::vec((batch, any::<bool>()), 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn committed_batches_read_back_identically(
        batches in batches(),
        segment_bytes in 64u64..4096,
        buffer_bytes in 1usize..2048,
        seeks in prop::collection::vec(any::<prop::sample::Index>(), 1..8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let options = WriterOptions { segment_bytes, buffer_bytes };
        let mut expected: Vec<Vec<u8>> = Vec::new();
        let (mut writer, _) = LogWriter::open(dir.path(), options).unwrap();
        for (batch, reopen) in batches {
            for record in batch {
                prop_assert_eq!(writer.append_raw(&record).unwrap(), expected.len() as u64);
                expected.push(record);
            }
            writer.commit().unwrap();
            prop_assert_eq!(writer.committed_seq(), expected.len() as u64);
            if reopen {
                drop(writer);
                let (reopened, report) = LogWriter::open(dir.path(), options).unwrap();
                prop_assert!(report.is_clean(), "{:?}", report);
                prop_assert_eq!(report.next_seq, expected.len() as u64);
                writer = reopened;
            }
        }
        drop(writer);
        let reader = LogReader::open(dir.path()).unwrap();
        prop_assert_eq!(reader.next_seq(), expected.len() as u64);
        let all: Vec<Vec<u8>> = reader.records(0).map(|r| r.unwrap().1).collect();
        prop_assert!(all == expected);
        for seek in seeks {
            if expected.is_empty() {
                break;
            }
            let from = seek.index(expected.len());
            let mut tail = Vec::new();
            reader.for_each_record(from as u64, |seq, payload| tail.push((seq, payload.to_vec()))).unwrap();
            prop_assert_eq!(tail.len(), expected.len() - from);
            for (offset, (seq, payload)) in tail.into_iter().enumerate() {
                prop_assert_eq!(seq, (from + offset) as u64);
                prop_assert!(payload == expected[from + offset]);
            }
        }
        let report = verify(dir.path());
        // Arbitrary bytes are not events: verify reads every record, then refuses to decode one.
        if let Err(error) = report {
            prop_assert!(matches!(error, cascade_log::LogError::Decode { .. }), "{}", error);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random bit flips anywhere in the segment files: a reader either returns the right record
    /// for every seq it hands out, or an error; it never hands out wrong bytes, and it never
    /// stops short silently (only a torn tail of the last segment may end the log early, and the
    /// reader reports it).
    #[test]
    fn flipped_bits_never_yield_wrong_records(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..120), 5..80),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let options = WriterOptions { segment_bytes: 600, buffer_bytes: 256 };
        let (mut writer, _) = LogWriter::open(dir.path(), options).unwrap();
        for record in &records {
            writer.append_raw(record).unwrap();
        }
        writer.commit().unwrap();
        drop(writer);
        let segments = LogReader::open(dir.path()).unwrap().segment_paths();
        for (segment, at, bit) in flips {
            let path = segment.get(&segments);
            let mut bytes = std::fs::read(path).unwrap();
            let at = at.index(bytes.len());
            bytes[at] ^= 1 << bit;
            std::fs::write(path, bytes).unwrap();
        }
        let Ok(reader) = LogReader::open(dir.path()) else {
            return Ok(());
        };
        let mut next = 0u64;
        let mut failed = false;
        for result in reader.records(0) {
            match result {
                Ok((seq, payload)) => {
                    prop_assert_eq!(seq, next);
                    prop_assert!(payload == records[seq as usize], "wrong bytes at seq {}", seq);
                    next += 1;
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if !failed && next < records.len() as u64 {
            prop_assert!(reader.torn_tail().is_some(), "stopped at {} of {} silently", next, records.len());
        }
    }
}
