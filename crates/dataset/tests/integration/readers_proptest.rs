//! Property tests of the two readers of user-supplied text: the predictions CSV reader and the
//! annotations JSONL reader. On any input (arbitrary bytes, or a valid file truncated or with
//! bytes inserted) they never panic, and every error names the file and a line number.

use std::path::Path;

use imagenetx_dataset::annotations::read_annotation_file;
use imagenetx_dataset::labels::N_CLASSES;
use imagenetx_dataset::{AnnotatedSet, AnnotationRecord, Error, LoadOptions, read_predictions};
use imagenetx_vocab::{FactorSet, Metaclass};
use proptest::prelude::*;

fn set() -> AnnotatedSet {
    let records = [
        "ILSVRC2012_val_00000001.JPEG",
        "ILSVRC2012_val_00000002.JPEG",
        "a.JPEG",
    ]
    .iter()
    .map(|name| AnnotationRecord {
        file_name: name.to_string(),
        class: 1,
        factors: FactorSet::EMPTY,
        justification: None,
        one_word: None,
    })
    .collect();
    AnnotatedSet::from_parts(
        records,
        vec![Metaclass::Other; N_CLASSES],
        &[],
        LoadOptions::default(),
        3,
    )
    .expect("valid set")
}

const VALID_CSV: &str = "file_name,predicted_class,predicted_probability,extra\n\
ILSVRC2012_val_00000001.JPEG,1,0.5,x\n\
a.JPEG,999,1,\"quoted, field\"\n\
ILSVRC2012_val_00000002.JPEG,0,0,y\n\
other.JPEG,3,0.25,z\n";

fn annotation_line(file: &str, class: u32) -> String {
    format!(
        r#"{{"file_name":"{file}","class":{class},"multiple_objects":0,"background":1,"color":0,"brighter":0,"darker":0,"style":0,"larger":0,"smaller":0,"object_blocking":0,"person_blocking":0,"partial_view":0,"pattern":0,"pose":0,"shape":0,"subcategory":0,"texture":0,"justification":null,"one_word":"x"}}"#
    )
}

fn valid_jsonl() -> String {
    [
        annotation_line("ILSVRC2012_val_00000001.JPEG", 3),
        String::new(),
        annotation_line("b.JPEG", 999),
        annotation_line("c.JPEG", 0),
    ]
    .join("\n")
        + "\n"
}

/// A valid file changed: cut at `cut` (a fraction of its length), then `insert` put at `at`.
fn mutate(valid: &[u8], cut: f64, at: f64, insert: &[u8]) -> Vec<u8> {
    let len = ((valid.len() as f64) * cut) as usize;
    let mut bytes = valid[..len.min(valid.len())].to_vec();
    let at = ((bytes.len() as f64) * at) as usize;
    let at = at.min(bytes.len());
    bytes.splice(at..at, insert.iter().copied());
    bytes
}

/// Bytes the readers care about, more often than uniform bytes would give them.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => any::<u8>(),
        2 => prop::sample::select(b",\n\r\"{}:01.-eE \\".to_vec()),
        1 => prop::sample::select(b"\xff\xc3\x80\0".to_vec()),
    ]
}

/// Checks that an error names the file and a line: `PATH:LINE: message`, LINE >= 1.
fn check_error(path: &Path, err: &Error) -> Result<(), TestCaseError> {
    let text = err.to_string();
    let Error::Parse { line, .. } = err else {
        return Err(TestCaseError::fail(format!(
            "not a file:line error: {text}"
        )));
    };
    prop_assert!(*line >= 1, "line 0: {text}");
    let prefix = format!("{}:{line}: ", path.display());
    prop_assert!(text.starts_with(&prefix), "{text}");
    Ok(())
}

fn check_predictions(bytes: &[u8]) -> Result<(), TestCaseError> {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), bytes).expect("write");
    let set = set();
    match read_predictions(file.path(), &set, false) {
        Ok(aligned) => {
            prop_assert_eq!(aligned.predictions.len(), set.len());
            let matched = aligned.predictions.iter().filter(|p| p.is_some()).count();
            prop_assert_eq!(matched + aligned.unannotated, aligned.rows);
            prop_assert_eq!(matched + aligned.missing, set.len());
        }
        Err(err) => check_error(file.path(), &err)?,
    }
    Ok(())
}

fn check_annotations(bytes: &[u8]) -> Result<(), TestCaseError> {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), bytes).expect("write");
    if let Err(err) = read_annotation_file(file.path(), N_CLASSES) {
        check_error(file.path(), &err)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn predictions_from_arbitrary_bytes(bytes in prop::collection::vec(interesting_byte(), 0..256)) {
        check_predictions(&bytes)?;
    }

    #[test]
    fn predictions_after_a_header_then_arbitrary_bytes(
        bytes in prop::collection::vec(interesting_byte(), 0..256),
    ) {
        let mut all = b"file_name,predicted_class,predicted_probability\n".to_vec();
        all.extend(bytes);
        check_predictions(&all)?;
    }

    #[test]
    fn predictions_from_a_mutated_valid_file(
        cut in 0.0..=1.0f64,
        at in 0.0..=1.0f64,
        insert in prop::collection::vec(interesting_byte(), 0..16),
    ) {
        check_predictions(&mutate(VALID_CSV.as_bytes(), cut, at, &insert))?;
    }

    #[test]
    fn annotations_from_arbitrary_bytes(bytes in prop::collection::vec(interesting_byte(), 0..256)) {
        check_annotations(&bytes)?;
    }

    #[test]
    fn annotations_from_a_mutated_valid_file(
        cut in 0.0..=1.0f64,
        at in 0.0..=1.0f64,
        insert in prop::collection::vec(interesting_byte(), 0..16),
    ) {
        check_annotations(&mutate(valid_jsonl().as_bytes(), cut, at, &insert))?;
    }
}

#[test]
fn the_valid_files_are_valid() {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), VALID_CSV).expect("write");
    let aligned = read_predictions(file.path(), &set(), true).expect("valid predictions");
    assert_eq!((aligned.rows, aligned.unannotated), (4, 1));
    std::fs::write(file.path(), valid_jsonl()).expect("write");
    let records = read_annotation_file(file.path(), N_CLASSES).expect("valid annotations");
    assert_eq!(records.len(), 3);
}
