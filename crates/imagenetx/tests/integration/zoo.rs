//! [`Zoo`]: fixture models grouped by their resolved preprocessing, every member's predictions
//! equal to its own [`Evaluator::run`], each member with its own list of images, and a member
//! whose sink fails dropped from the pass while the others finish.

use std::path::{Path, PathBuf};

use imagenetx::dataset::{ImageEntry, discover_images};
use imagenetx::infer::{Fingerprint, TopK};
use imagenetx::{Collect, Error, Evaluator, EvaluatorConfig, ExecutionProvider, Sink, Zoo};
use imagenetx_test_support::fixture;

fn base() -> EvaluatorConfig {
    EvaluatorConfig {
        provider: ExecutionProvider::Cpu,
        batch_size: 2,
        ..EvaluatorConfig::new("")
    }
}

fn models(names: &[&str]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|n| fixture(format!("models/{n}.onnx")))
        .collect()
}

fn photos() -> Vec<ImageEntry> {
    discover_images(&fixture("photos"), None)
        .expect("fixture photos")
        .images
}

/// The predictions of `model` run alone.
fn alone(model: &Path, images: &[ImageEntry], todo: &[usize]) -> Vec<Option<TopK>> {
    let mut evaluator = Evaluator::new(EvaluatorConfig {
        model: model.to_path_buf(),
        ..base()
    })
    .expect("ONNX Runtime (`just setup-ort`) and the fixture models");
    let mut sink = Collect::default();
    evaluator.run(images, todo, &mut sink).expect("run");
    sink.predictions
}

#[test]
fn models_are_grouped_by_preprocessing_and_predict_as_alone() {
    let paths = models(&["nchw_dynamic", "input160", "not_onnx", "softmax", "nhwc"]);
    let mut zoo = Zoo::new(&paths, &base()).expect("zoo");
    assert_eq!(zoo.failures().len(), 1);
    assert!(zoo.failures()[0].model.ends_with("not_onnx.onnx"));
    let names: Vec<String> = (0..zoo.members().len()).map(|m| zoo.name(m)).collect();
    assert_eq!(names, ["nchw_dynamic", "input160", "softmax", "nhwc"]);
    assert_eq!(zoo.groups(), [vec![0, 2], vec![1], vec![3]]);
    let records = zoo.group_records();
    assert_eq!(records[0].models, ["nchw_dynamic", "softmax"]);
    assert_eq!(records[1].preprocessing.crop_height, 160);

    let images = photos();
    let all: Vec<usize> = (0..images.len()).collect();
    // Each member its own list: softmax only the odd images (as on a resume).
    let odd: Vec<usize> = all.iter().copied().filter(|i| i % 2 == 1).collect();
    let todos = vec![all.clone(), all.clone(), odd.clone(), all.clone()];
    let mut sinks = vec![Collect::default(); 4];
    let outcomes = zoo.run(&images, &todos, &mut sinks).expect("pass");
    for (m, outcome) in outcomes.iter().enumerate() {
        let stats = outcome.as_ref().expect("member ran");
        assert_eq!(stats.predicted, todos[m].len(), "{}", names[m]);
        let mut got = sinks[m].predictions.clone();
        got.resize(images.len(), None);
        let mut want = alone(&paths[[0, 1, 3, 4][m]], &images, &todos[m]);
        want.resize(images.len(), None);
        assert_eq!(got, want, "{}", names[m]);
    }
    assert!(sinks[2].predictions.iter().step_by(2).all(Option::is_none));
}

/// Fails at its first prediction.
struct Failing;

impl Sink for Failing {
    fn prediction(
        &mut self,
        _index: usize,
        _image: &ImageEntry,
        _fingerprint: Option<Fingerprint>,
        _prediction: &TopK,
    ) -> imagenetx::Result<()> {
        Err(Error::invalid("the sink's disk is full"))
    }
}

/// Collects, or fails as [`Failing`].
enum Either {
    Collect(Collect),
    Failing(Failing),
}

impl Sink for Either {
    fn prediction(
        &mut self,
        index: usize,
        image: &ImageEntry,
        fingerprint: Option<Fingerprint>,
        prediction: &TopK,
    ) -> imagenetx::Result<()> {
        match self {
            Either::Collect(c) => c.prediction(index, image, fingerprint, prediction),
            Either::Failing(f) => f.prediction(index, image, fingerprint, prediction),
        }
    }
}

#[test]
fn a_member_that_fails_is_dropped_and_the_others_finish() {
    let paths = models(&["nchw_dynamic", "softmax"]);
    let mut zoo = Zoo::new(&paths, &base()).expect("zoo");
    let images = photos();
    let all: Vec<usize> = (0..images.len()).collect();
    let mut sinks = vec![
        Either::Failing(Failing),
        Either::Collect(Collect::default()),
    ];
    let outcomes = zoo
        .run(&images, &[all.clone(), all.clone()], &mut sinks)
        .expect("pass");
    let err = outcomes[0].as_ref().expect_err("the failing member");
    assert!(err.to_string().contains("disk is full"), "{err}");
    assert_eq!(
        outcomes[1].as_ref().expect("the other").predicted,
        images.len()
    );
    let Either::Collect(collected) = &sinks[1] else {
        unreachable!()
    };
    assert_eq!(collected.predictions, alone(&paths[1], &images, &all));

    // Lists that do not fit the members are an error of the whole pass.
    let err = zoo
        .run(&images, std::slice::from_ref(&all), &mut sinks)
        .expect_err("one list for two models");
    assert!(err.to_string().contains("2 models, but 1 lists"), "{err}");
    // Two models of one name are refused, naming both.
    let err = Zoo::new(&[paths[0].clone(), paths[0].clone()], &base()).expect_err("same name");
    assert!(
        err.to_string().contains("same name `nchw_dynamic`"),
        "{err}"
    );
}
