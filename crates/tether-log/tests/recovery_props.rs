//! Property tests for recovery and the record decoders: the fallback for the
//! `log_record` fuzz target (fuzz/, nightly only) in the normal test run. Both
//! run the same checks, `tether_log::fuzzing::check`, on a mode byte and a
//! segment file: arbitrary bytes, and written segments (format 2, and the
//! format-1 fixtures) with bytes changed or cut off.

use std::collections::BTreeMap;

use proptest::collection::vec;
use proptest::prelude::*;
use tether_log::Message;
use tether_log::fuzzing::{TOPIC, check, encode_v2};

const V1_SEGMENT: &[u8] = include_bytes!(
    "fixtures/v1/telemetry/projects%2Facme%2Ftopics%2Ftelemetry/00000000000000000000.log"
);

fn attributes() -> impl Strategy<Value = BTreeMap<String, String>> {
    let name = prop_oneof![
        Just("deviceId".to_owned()),
        Just("deviceNumId".to_owned()),
        Just("subFolder".to_owned()),
        "[a-zé ]{0,6}",
    ];
    let value = prop_oneof![
        Just(String::new()),
        "[0-9]{1,21}",
        "[a-z/ü-]{0,10}",
        Just("18446744073709551615".to_owned()),
    ];
    proptest::collection::btree_map(name, value, 0..5)
}

fn message() -> impl Strategy<Value = Message> {
    (attributes(), vec(any::<u8>(), 0..20), any::<i64>()).prop_map(
        |(attributes, data, publish_time)| Message {
            topic: TOPIC.to_owned(),
            data,
            attributes: attributes.into(),
            publish_time,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(mode in any::<u8>(), bytes in vec(any::<u8>(), 0..200)) {
        let mut input = vec![mode];
        if mode & 0x10 != 0 {
            // Often a format-2 header, so the record decoders are reached.
            input.extend_from_slice(b"\xfftlg\x02\0\0\0");
        }
        input.extend(bytes);
        check(&input);
    }

    #[test]
    fn damaged_v2_segments(
        messages in vec(message(), 0..8),
        block_every in 1usize..4,
        mode in any::<u8>(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        check(&damaged(mode, &encode_v2(&messages, block_every), &edits, cut));
    }

    #[test]
    fn damaged_v1_segments(
        mode in any::<u8>(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        check(&damaged(mode, V1_SEGMENT, &edits, cut));
    }
}

/// The target's input for `segment` after `edits` and a cut: the mode byte (base
/// offset 0, as the records say), then the segment's bytes.
fn damaged(
    mode: u8,
    segment: &[u8],
    edits: &[(prop::sample::Index, u8)],
    cut: prop::sample::Index,
) -> Vec<u8> {
    let mut input = vec![mode & !0b110];
    input.extend_from_slice(segment);
    for (at, byte) in edits {
        let i = 1 + at.index(input.len() - 1);
        input[i] = *byte;
    }
    input.truncate(1 + cut.index(input.len()));
    input
}

/// Whole segments as the writer produces them pass every check untouched.
#[test]
fn written_segments_are_clean() {
    let messages: Vec<Message> = (0..10)
        .map(|i| Message {
            topic: TOPIC.to_owned(),
            data: vec![i; usize::from(i)],
            attributes: std::sync::Arc::new(
                [("deviceId".to_owned(), format!("dev-{}", i % 3))].into(),
            ),
            publish_time: 1_764_000_000_000_000 + i64::from(i),
        })
        .collect();
    let segment = encode_v2(&messages, 4);
    let scanned = tether_log::fuzzing::scan(&segment, 0, 1 << 16, true).expect("scan");
    assert_eq!(scanned.stopped_at, None);
    assert_eq!(scanned.next, 10);
    check(&[[0].as_slice(), &segment].concat());
    check(&[[1].as_slice(), V1_SEGMENT].concat());
}

/// Found by the `log_record` fuzz target: a record at offset `u64::MAX` (here a
/// format-2 segment whose base offset is `u64::MAX - 2`, three records in)
/// overflowed `offset + 1` in the start-up scan. It is a bad record now, and
/// recovery cuts the segment before it.
#[test]
fn a_record_at_the_largest_offset_is_refused() {
    let input = include_bytes!("fixtures/fuzz/log_record-offset-max");
    check(input);
    let mut segment = input[1..].to_vec();
    tether_log::fuzzing::fix_crcs(&mut segment);
    let scanned = tether_log::fuzzing::scan(&segment, u64::MAX - 2, 1 << 16, true).expect("scan");
    assert_eq!(scanned.next, u64::MAX);
    assert_eq!(
        scanned.stopped_at.map(|(_, reason)| reason),
        Some(tether_log::CorruptReason::Malformed(
            "offset past the largest one"
        ))
    );
}

/// The same through `EmbeddedLog::open`: a segment file named for base offset
/// `u64::MAX - 2` whose third record sits at `u64::MAX` (a damaged or crafted
/// data directory) is truncated before that record, not a panic.
#[tokio::test]
async fn recovery_cuts_a_record_at_the_largest_offset() {
    let dir = tempfile::tempdir().expect("temp dir");
    let topic_dir = dir
        .path()
        .join("telemetry")
        .join("projects%2Fp%2Ftopics%2Ft");
    std::fs::create_dir_all(&topic_dir).expect("mkdir");
    let messages: Vec<Message> = (0..3u8)
        .map(|i| Message {
            topic: TOPIC.to_owned(),
            data: vec![i],
            attributes: BTreeMap::new().into(),
            publish_time: i64::from(i),
        })
        .collect();
    let name = format!("{:020}.log", u64::MAX - 2);
    std::fs::write(topic_dir.join(name), encode_v2(&messages, 1)).expect("write");
    let log = tether_log::EmbeddedLog::open(tether_log::LogConfig {
        retention: tether_log::RetentionPolicy::KEEP_ALL,
        ..tether_log::LogConfig::new(dir.path())
    })
    .await
    .expect("opens");
    let cut = log.truncations();
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert_eq!(
        cut[0].reason,
        tether_log::CorruptReason::Malformed("offset past the largest one")
    );
    let records = log.read(TOPIC, u64::MAX - 2, 10).await.expect("read");
    assert_eq!(records.len(), 2);
}
