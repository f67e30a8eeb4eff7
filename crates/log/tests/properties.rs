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
