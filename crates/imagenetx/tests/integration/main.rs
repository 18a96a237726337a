//! The facade as an embedder uses it: an [`Evaluator`] over the fixture photos with a fixture
//! model, results through custom [`Sink`]s (order, early stop, a failing sink), a journaled
//! run resumed, and a runtime library that is not there named in the error. The byte-for-
//! byte agreement of the library with the command is the CLI's `embed` test.
//!
//! Needs ONNX Runtime (`just setup-ort`, found through `$IMAGENETX_CACHE` as any embedder
//! finds it) and the annotations (`just setup`).

mod pipeline;
mod side_files;
mod zoo;

use std::path::PathBuf;

use imagenetx::dataset::{ImageEntry, discover_images};
use imagenetx::infer::{CheckpointPolicy, Fingerprint, SkippedFile, TopK};
use imagenetx::{
    AnnotationOptions, Error, Evaluator, EvaluatorConfig, ExecutionProvider, RunOutput,
    RuntimeSearch, Sink,
};
use imagenetx_test_support::{fixture, temp_dir};

fn evaluator(batch_size: usize) -> Evaluator {
    let config = EvaluatorConfig {
        provider: ExecutionProvider::Cpu,
        batch_size,
        ..EvaluatorConfig::new(fixture("models/nchw_dynamic.onnx"))
    };
    Evaluator::new(config).unwrap_or_else(|e| {
        panic!("these tests need ONNX Runtime (`just setup-ort`) and the fixture models: {e}")
    })
}

fn photos() -> imagenetx::dataset::ImageList {
    discover_images(&fixture("photos"), None).expect("fixture photos")
}

/// Records what it is given; stops or fails where told.
#[derive(Default)]
pub(crate) struct Recorder {
    predicted: Vec<usize>,
    batches: Vec<usize>,
    stop_after_batches: Option<usize>,
    fail_at_prediction: Option<usize>,
    /// Time taken by each batch (a slow sink).
    delay_per_batch: std::time::Duration,
}

impl Sink for Recorder {
    fn prediction(
        &mut self,
        index: usize,
        _image: &ImageEntry,
        _fingerprint: Option<Fingerprint>,
        prediction: &TopK,
    ) -> imagenetx::Result<()> {
        assert_eq!(prediction.classes.len(), 5, "top-5 of image {index}");
        if self.fail_at_prediction == Some(self.predicted.len()) {
            return Err(Error::invalid("the sink's disk is full"));
        }
        self.predicted.push(index);
        Ok(())
    }

    fn skipped(&mut self, index: usize, skipped: &SkippedFile) -> imagenetx::Result<()> {
        panic!("image {index} skipped: {}", skipped.reason);
    }

    fn batch_done(&mut self, images: usize) -> imagenetx::Result<()> {
        std::thread::sleep(self.delay_per_batch);
        self.batches.push(images);
        Ok(())
    }

    fn should_stop(&mut self) -> bool {
        self.stop_after_batches == Some(self.batches.len())
    }
}

#[test]
fn a_sink_gets_every_image_in_list_order_batch_by_batch() {
    let list = photos();
    let mut evaluator = evaluator(2);
    let todo: Vec<usize> = (0..list.images.len()).collect();
    let mut sink = Recorder::default();
    let stats = evaluator.run(&list.images, &todo, &mut sink).expect("run");
    assert_eq!(sink.predicted, todo);
    assert_eq!(sink.batches, vec![2, 2, 1]);
    assert_eq!(
        (stats.predicted, stats.skipped, stats.stopped),
        (5, 0, false)
    );
    // A subset, in the order given.
    let mut sink = Recorder::default();
    evaluator
        .run(&list.images, &[4, 1], &mut sink)
        .expect("run");
    assert_eq!(sink.predicted, vec![4, 1]);
}

#[test]
fn an_index_outside_the_list_is_an_error() {
    let list = photos();
    let err = evaluator(2)
        .run(&list.images, &[0, 9], &mut Recorder::default())
        .expect_err("index 9 of 5 images");
    assert_eq!(
        err.to_string(),
        "image index 9 is outside the list of 5 images"
    );
}

#[test]
fn a_sink_can_stop_the_run_between_batches() {
    let list = photos();
    let mut evaluator = evaluator(2);
    let todo: Vec<usize> = (0..list.images.len()).collect();
    let mut sink = Recorder {
        stop_after_batches: Some(1),
        ..Recorder::default()
    };
    let stats = evaluator.run(&list.images, &todo, &mut sink).expect("run");
    assert!(stats.stopped);
    assert_eq!(sink.predicted, vec![0, 1]);
    assert_eq!(stats.predicted, 2);
}

#[test]
fn an_error_of_the_sink_ends_the_run_with_that_error_and_does_not_hang() {
    let list = photos();
    let mut evaluator = evaluator(1);
    let todo: Vec<usize> = (0..list.images.len()).collect();
    let mut sink = Recorder {
        fail_at_prediction: Some(2),
        ..Recorder::default()
    };
    let err = evaluator
        .run(&list.images, &todo, &mut sink)
        .expect_err("the sink fails");
    assert_eq!(err.to_string(), "the sink's disk is full");
    assert_eq!(sink.predicted, vec![0, 1]);
    // The evaluator is still usable.
    let mut sink = Recorder::default();
    evaluator
        .run(&list.images, &todo, &mut sink)
        .expect("run again");
    assert_eq!(sink.predicted.len(), 5);
}

#[test]
fn evaluate_scores_the_photos_with_their_annotations() {
    let list = photos();
    let annotations = AnnotationOptions {
        image_annotations: Some(fixture("photos/annotations.jsonl")),
        ..AnnotationOptions::default()
    };
    let evaluation = evaluator(32)
        .evaluate(&list, &annotations)
        .expect("evaluate");
    assert_eq!(evaluation.model, "nchw_dynamic");
    assert_eq!(evaluation.rows.len(), 5);
    let names: Vec<&str> = evaluation
        .rows
        .iter()
        .map(|r| r.file_name.as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "rows sorted by file name");
    assert_eq!(evaluation.scores.accuracy.labelled, 5);
    let analysis = evaluation.analysis().expect("annotated photos");
    assert_eq!(analysis.counts.overall.images, 5);
    let intervals = evaluation.intervals.as_ref().expect("intervals");
    assert_eq!(intervals.overall.images, 5);
    let average = analysis.average().expect("an accuracy");
    let interval = intervals.average_interval.expect("an interval");
    assert!(interval.contains(average), "{interval:?} holds {average}");
    assert!(evaluation.skipped.is_empty());
}

#[test]
fn a_journaled_run_resumes_where_it_stopped() {
    let list = photos();
    let dir = temp_dir();
    let csv = dir.path().join("out/p.csv");
    let policy = CheckpointPolicy {
        rows: 1,
        interval: std::time::Duration::from_secs(60),
    };
    let mut evaluator = evaluator(2);
    {
        let output = RunOutput::prepare(&csv).expect("prepare");
        let mut started = output
            .start(&evaluator, &list.images, &list.skipped, false, policy)
            .expect("start");
        assert_eq!(started.todo.len(), 5);
        // Stop after the first batch: two predictions journaled, then interrupted.
        struct StopAfterOne<'a, 'b>(&'b mut imagenetx::JournalSink<'a>, usize);
        impl Sink for StopAfterOne<'_, '_> {
            fn prediction(
                &mut self,
                i: usize,
                image: &ImageEntry,
                fingerprint: Option<Fingerprint>,
                prediction: &TopK,
            ) -> imagenetx::Result<()> {
                self.0.prediction(i, image, fingerprint, prediction)
            }
            fn skipped(&mut self, i: usize, skipped: &SkippedFile) -> imagenetx::Result<()> {
                self.0.skipped(i, skipped)
            }
            fn warning(&mut self, message: &str) {
                self.0.warning(message);
            }
            fn batch_done(&mut self, _images: usize) -> imagenetx::Result<()> {
                self.1 += 1;
                Ok(())
            }
            fn should_stop(&mut self) -> bool {
                self.1 == 1
            }
        }
        let todo = std::mem::take(&mut started.todo);
        let stats = evaluator
            .run(&list.images, &todo, &mut StopAfterOne(&mut started.sink, 0))
            .expect("run");
        assert!(stats.stopped);
        let (how, saved) = started.sink.interrupt();
        saved.expect("last checkpoint");
        assert!(how.contains("2 predictions are safe"), "{how}");
        assert!(!csv.exists(), "no CSV before the run completes");
    }
    let output = RunOutput::prepare(&csv).expect("prepare again");
    let started = output
        .start(&evaluator, &list.images, &list.skipped, true, policy)
        .expect("resume");
    assert_eq!(started.todo, vec![2, 3, 4]);
    assert!(
        started
            .messages
            .iter()
            .any(|m| m.contains("2 predictions kept, 3 images to predict")),
        "{:?}",
        started.messages
    );
    let mut sink = started.sink;
    evaluator
        .run(&list.images, &started.todo, &mut sink)
        .expect("run the rest");
    let finished = sink.finish().expect("finish");
    assert_eq!(finished.predictions, 5);
    let text = std::fs::read_to_string(&csv).expect("csv");
    assert_eq!(text.lines().count(), 6, "{text}");
}

#[test]
fn a_runtime_library_that_is_not_there_is_named() {
    let config = EvaluatorConfig {
        runtime: RuntimeSearch::empty()
            .with_library(Some(PathBuf::from("/nonexistent/libonnxruntime.so"))),
        provider: ExecutionProvider::Cpu,
        ..EvaluatorConfig::new(fixture("models/nchw_dynamic.onnx"))
    };
    let err = Evaluator::new(config)
        .expect_err("no runtime there")
        .to_string();
    assert!(err.contains("/nonexistent/libonnxruntime.so"), "{err}");
}
