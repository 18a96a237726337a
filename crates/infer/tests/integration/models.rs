//! Integration tests on the fixture models (`fixtures/models/`): introspection, parity with
//! Python onnxruntime on a golden tensor, error paths, execution providers.
//!
//! They need ONNX Runtime (`just setup-ort`) and the reference venv (`just venv`) and fail,
//! saying so, when either is missing.

use crate::common;

use common::{Reference, fixture, golden_tensor, reference, runtime};
use imagenetx_infer::{
    CPU_PROVIDER, Classifier, ClassifierConfig, Dim, ElementType, Error, ExecutionProvider, Layout,
    PROVIDERS, ScoreKind,
};

fn cpu(name: &str) -> ClassifierConfig {
    ClassifierConfig::new(fixture(name)).with_provider(ExecutionProvider::Cpu)
}

fn load(name: &str) -> Classifier {
    Classifier::new(runtime(), &cpu(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn load_err(config: &ClassifierConfig) -> Error {
    match Classifier::new(runtime(), config) {
        Ok(_) => panic!("{} loaded, expected an error", config.model.display()),
        Err(err) => err,
    }
}

/// What fixtures/models/README.md says about each good model.
struct Expect {
    file: &'static str,
    layout: Layout,
    batch: Option<u64>,
    size: u64,
    element: ElementType,
    output: &'static str,
    classes: usize,
    scores: ScoreKind,
    metadata: bool,
}

const GOOD: [Expect; 8] = [
    Expect {
        file: "nchw_dynamic.onnx",
        layout: Layout::Nchw,
        batch: None,
        size: 224,
        element: ElementType::F32,
        output: "logits",
        classes: 1000,
        scores: ScoreKind::Logits,
        metadata: false,
    },
    Expect {
        file: "nchw_batch1.onnx",
        layout: Layout::Nchw,
        batch: Some(1),
        size: 224,
        element: ElementType::F32,
        output: "logits",
        classes: 1000,
        scores: ScoreKind::Logits,
        metadata: false,
    },
    Expect {
        file: "nhwc.onnx",
        layout: Layout::Nhwc,
        batch: None,
        size: 224,
        element: ElementType::F32,
        output: "logits",
        classes: 1000,
        scores: ScoreKind::Logits,
        metadata: false,
    },
    Expect {
        file: "classes1001.onnx",
        layout: Layout::Nchw,
        batch: None,
        size: 224,
        element: ElementType::F32,
        output: "logits",
        classes: 1001,
        scores: ScoreKind::Logits,
        metadata: false,
    },
    Expect {
        file: "softmax.onnx",
        layout: Layout::Nchw,
        batch: None,
        size: 224,
        element: ElementType::F32,
        output: "probabilities",
        classes: 1000,
        scores: ScoreKind::Probabilities,
        metadata: false,
    },
    Expect {
        file: "two_outputs.onnx",
        layout: Layout::Nchw,
        batch: None,
        size: 224,
        element: ElementType::F32,
        output: "logits",
        classes: 1000,
        scores: ScoreKind::Logits,
        metadata: false,
    },
    Expect {
        file: "input160.onnx",
        layout: Layout::Nchw,
        batch: None,
        size: 160,
        element: ElementType::F32,
        output: "logits",
        classes: 1000,
        scores: ScoreKind::Logits,
        metadata: true,
    },
    Expect {
        file: "float16.onnx",
        layout: Layout::Nchw,
        batch: None,
        size: 224,
        element: ElementType::F16,
        output: "logits",
        classes: 1000,
        scores: ScoreKind::Logits,
        metadata: false,
    },
];

#[test]
fn introspection_of_every_convention_without_flags() {
    for e in &GOOD {
        let classifier = load(e.file);
        let info = classifier.info();
        let ctx = format!("{}: {:#?}", e.file, info.decisions);
        assert_eq!(info.input.name, "input", "{ctx}");
        assert_eq!(info.input.layout, e.layout, "{ctx}");
        assert_eq!(classifier.layout(), e.layout, "{ctx}");
        assert_eq!(info.input.batch.fixed(), e.batch, "{ctx}");
        assert_eq!(info.input.element_type, e.element, "{ctx}");
        assert_eq!(info.output.element_type, e.element, "{ctx}");
        assert_eq!(
            classifier.input_size(),
            Some((e.size as usize, e.size as usize)),
            "{ctx}"
        );
        assert_eq!(info.output.name, e.output, "{ctx}");
        assert_eq!(info.output.classes, e.classes, "{ctx}");
        assert_eq!(info.output.background_first, e.classes == 1001, "{ctx}");
        assert_eq!(info.scores, e.scores, "{ctx}");
        assert_eq!(
            info.metadata.custom("imagenetx.preprocess").is_some(),
            e.metadata,
            "{ctx}"
        );
        assert_eq!(classifier.provider().used, CPU_PROVIDER, "{ctx}");
        for subject in [
            "provider",
            "input",
            "element type",
            "layout",
            "batch",
            "input size",
            "class output",
            "classes",
            "scores",
        ] {
            assert!(
                info.decisions
                    .iter()
                    .any(|d| d.subject == subject && !d.reason.is_empty()),
                "no `{subject}` decision: {ctx}"
            );
        }
        // The record is serialisable and reads back.
        let json = serde_json::to_string(info).expect("serialise");
        let back: imagenetx_infer::ModelInfo = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(&back, info, "{}", e.file);
    }
}

#[test]
fn decisions_state_their_reasons() {
    let lines = |name: &str| {
        load(name)
            .info()
            .decisions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    let nchw = lines("nchw_dynamic.onnx");
    assert!(
        nchw.contains(&"layout NCHW: input dim 1 is 3".to_owned()),
        "{nchw:#?}"
    );
    assert!(
        nchw.contains(&"batch dynamic: input dim 0 is `N`".to_owned()),
        "{nchw:#?}"
    );
    let nhwc = lines("nhwc.onnx");
    assert!(
        nhwc.iter()
            .any(|l| l.starts_with("layout NHWC: ") && l.contains("last dim is 3")),
        "{nhwc:#?}"
    );
    let two = lines("two_outputs.onnx");
    assert!(
        two.iter()
            .any(|l| l.starts_with("class output `logits`: the only one of 2 outputs")),
        "{two:#?}"
    );
    let bg = lines("classes1001.onnx");
    assert!(
        bg.iter()
            .any(|l| l.starts_with("classes 1001: ") && l.contains("background")),
        "{bg:#?}"
    );
    let softmax = lines("softmax.onnx");
    assert!(
        softmax
            .iter()
            .any(|l| l.starts_with("scores probabilities: the probe")),
        "{softmax:#?}"
    );
}

#[test]
fn custom_metadata_is_exposed_as_written() {
    let classifier = load("input160.onnx");
    let metadata = &classifier.info().metadata;
    assert_eq!(
        metadata.custom.keys().collect::<Vec<_>>(),
        ["imagenetx.preprocess"]
    );
    // Values from fixtures/models/generate.py (`_model`, `plain`).
    assert_eq!(
        metadata.producer_name.as_deref(),
        Some("imagenetx-fixtures")
    );
    assert_eq!(metadata.graph_name.as_deref(), Some("input160"));
    // Not set by the generator: absent, not ONNX Runtime's placeholder values.
    assert_eq!(metadata.model_version, None);
    assert_eq!(metadata.description, None);
    let raw = metadata.custom("imagenetx.preprocess").expect("metadata");
    let meta: serde_json::Value = serde_json::from_str(raw).expect("JSON");
    // Values from fixtures/models/generate.py (INPUT160_PREPROCESS).
    assert_eq!(meta["crop"], 160);
    assert_eq!(meta["resize"], 182);
    assert_eq!(meta["interpolation"], "bilinear");
}

/// Largest allowed |ours - reference| of a top-5 probability. Both sides run the same ONNX
/// Runtime build on bit-identical input tensors; only the softmax differs (ours: f64 sum in
/// class order; numpy: f64 pairwise sum), and batch vs one-image runs.
/// Measured (ONNX Runtime 1.31.1, CPU, every fixture model and the batch-4 model): the
/// largest difference is 3.9e-16, f64 rounding; the tests print it per image. 1e-12 leaves
/// room for another CPU's summation while any real difference (a wrong class, a float32
/// softmax: ~1e-8) fails.
const PROBABILITY_TOLERANCE: f64 = 1e-12;

/// One image, ours against the reference: the top-5 classes in the same order, exactly (the
/// first is the predicted class), and each probability within [`PROBABILITY_TOLERANCE`]. Ties
/// (equal reference probabilities) are not loosened: both sides break them by the lower class
/// index, which is checked explicitly so that a failure says so. Returns the largest
/// probability difference.
fn assert_same_top5(
    what: &str,
    classes: &[usize],
    probabilities: &[f64],
    want_classes: &[usize],
    want_probabilities: &[f64],
) -> f64 {
    assert_eq!(
        want_classes.len(),
        5,
        "{what}: reference top-5 {want_classes:?}"
    );
    assert_eq!(
        want_probabilities.len(),
        5,
        "{what}: reference {want_probabilities:?}"
    );
    assert_eq!(probabilities.len(), classes.len(), "{what}: ours");
    for i in 1..want_classes.len() {
        if want_probabilities[i] == want_probabilities[i - 1] {
            assert!(
                want_classes[i - 1] < want_classes[i],
                "{what}: the reference breaks a tie at {} against the lower class index: {want_classes:?}",
                want_probabilities[i]
            );
        }
    }
    let tied = want_probabilities.windows(2).any(|w| w[0] == w[1]);
    assert_eq!(
        classes,
        want_classes,
        "{what}: top-5 (in order) {classes:?} {probabilities:?}, reference {want_classes:?} {want_probabilities:?}{}",
        if tied {
            " (the reference has tied probabilities; both break ties by the lower class index)"
        } else {
            ""
        }
    );
    let mut worst = 0.0f64;
    for ((class, got), want) in classes.iter().zip(probabilities).zip(want_probabilities) {
        let diff = (got - want).abs();
        worst = worst.max(diff);
        assert!(
            diff <= PROBABILITY_TOLERANCE,
            "{what} class {class}: {got} vs reference {want} (diff {diff:e})"
        );
    }
    worst
}

/// Runs `name` in Rust and in Python onnxruntime on the same golden tensor.
fn parity(
    name: &str,
    size: usize,
    layout: Layout,
    output: &str,
    probabilities: bool,
    background: bool,
) -> Vec<Reference> {
    const BATCH: usize = 3;
    let shape = match layout {
        Layout::Nchw => [BATCH, 3, size, size],
        Layout::Nhwc => [BATCH, size, size, 3],
    };
    let data = golden_tensor(shape.iter().product(), 0x1A2B_3C4D);
    let mut classifier = load(name);
    let ours = classifier.classify_slice(&data, shape).expect("classify");
    let theirs = reference(
        &fixture(name),
        &data,
        shape,
        output,
        probabilities,
        background,
    );
    assert_eq!(ours.len(), BATCH, "{name}");
    assert_eq!(theirs.len(), BATCH, "{name}");
    let mut ours_as_reference = Vec::new();
    for (i, (mine, want)) in ours.into_iter().zip(&theirs).enumerate() {
        let mine = mine.unwrap_or_else(|err| panic!("{name} image {i}: {err}"));
        let Reference::Top5(classes, probs) = want else {
            panic!("{name} image {i}: reference gave NaN")
        };
        let diff = assert_same_top5(
            &format!("{name} image {i}"),
            &mine.classes,
            &mine.probabilities,
            classes,
            probs,
        );
        println!("{name} image {i}: largest top-5 probability difference {diff:e}");
        ours_as_reference.push(Reference::Top5(mine.classes, mine.probabilities));
    }
    ours_as_reference
}

#[test]
fn inference_matches_python_onnxruntime() {
    let nchw = parity(
        "nchw_dynamic.onnx",
        224,
        Layout::Nchw,
        "logits",
        false,
        false,
    );
    parity(
        "nchw_batch1.onnx",
        224,
        Layout::Nchw,
        "logits",
        false,
        false,
    );
    parity("classes1001.onnx", 224, Layout::Nchw, "logits", false, true);
    parity(
        "softmax.onnx",
        224,
        Layout::Nchw,
        "probabilities",
        true,
        false,
    );
    parity(
        "two_outputs.onnx",
        224,
        Layout::Nchw,
        "logits",
        false,
        false,
    );
    parity("input160.onnx", 160, Layout::Nchw, "logits", false, false);
    parity("float16.onnx", 224, Layout::Nchw, "logits", false, false);
    parity("nhwc.onnx", 224, Layout::Nhwc, "logits", false, false);
    // The fixture README: models sharing the classifier give bitwise-identical logits.
    let batch1 = parity(
        "nchw_batch1.onnx",
        224,
        Layout::Nchw,
        "logits",
        false,
        false,
    );
    assert_eq!(nchw, batch1);
    let bg = parity("classes1001.onnx", 224, Layout::Nchw, "logits", false, true);
    assert_eq!(
        nchw, bg,
        "dropping the background column must give nchw_dynamic's predictions"
    );
}

#[test]
fn nhwc_gets_channels_last_data() {
    // The same images, transposed to NHWC, give nchw_dynamic's predictions.
    let (n, s) = (2usize, 224usize);
    let data = golden_tensor(n * 3 * s * s, 7);
    let nchw = ndarray::ArrayView4::from_shape([n, 3, s, s], &data).expect("shape");
    let nhwc = nchw
        .permuted_axes([0, 2, 3, 1])
        .as_standard_layout()
        .into_owned();
    let a = load("nchw_dynamic.onnx").classify(nchw).expect("nchw");
    let b = load("nhwc.onnx").classify(nhwc.view()).expect("nhwc");
    let strip = |v: Vec<imagenetx_infer::ImageResult>| {
        v.into_iter()
            .map(|r| r.expect("finite"))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(a), strip(b));
    // NCHW data handed to the NHWC model is refused, naming the expected shape.
    let err = load("nhwc.onnx").classify(nchw).expect_err("wrong layout");
    assert!(
        err.to_string().contains("expected [N,224,224,3] (NHWC)"),
        "{err}"
    );
}

#[test]
fn fixed_size_is_enforced_and_empty_batches_are_fine() {
    let mut classifier = load("input160.onnx");
    let data = golden_tensor(3 * 224 * 224, 1);
    let err = classifier
        .classify_slice(&data, [1, 3, 224, 224])
        .expect_err("224 into a 160 model");
    assert!(matches!(err, Error::BatchShape { .. }), "{err}");
    assert!(
        err.to_string().contains("expected [N,3,160,160] (NCHW)"),
        "{err}"
    );
    assert!(
        classifier
            .classify_slice(&[], [0, 3, 160, 160])
            .expect("empty")
            .is_empty()
    );
}

#[test]
fn bad_models_give_typed_errors_naming_what_was_expected() {
    let err = load_err(&cpu("not_onnx.onnx"));
    assert!(matches!(err, Error::ModelLoad { .. }), "{err}");
    assert!(
        err.to_string().contains("not_onnx.onnx")
            && err.to_string().contains("expected an ONNX model"),
        "{err}"
    );

    let err = load_err(&cpu("no_image_input.onnx"));
    assert!(matches!(err, Error::NoImageInput { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("no image-like input: expected [N,3,H,W] or [N,H,W,3], got `input` [N,10]"),
        "{err}"
    );

    let err = load_err(&cpu("no_class_output.onnx"));
    assert!(matches!(err, Error::NoClassOutput { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("expected an output shaped [N,1000] or [N,1001]")
            && err.to_string().contains("`scores` f32 [N,7]"),
        "{err}"
    );

    let missing = ClassifierConfig::new(common::workspace().join("fixtures/models/absent.onnx"));
    let err = load_err(&missing);
    assert!(
        matches!(err, Error::Io { .. }) && err.to_string().contains("absent.onnx"),
        "{err}"
    );
}

#[test]
fn output_override() {
    let config = cpu("two_outputs.onnx").with_output(Some("logits".into()));
    let classifier = Classifier::new(runtime(), &config).expect("logits");
    assert!(
        classifier
            .info()
            .decisions
            .iter()
            .any(|d| d.to_string() == "class output `logits`: named with --output")
    );

    let err = load_err(&cpu("two_outputs.onnx").with_output(Some("features".into())));
    assert!(
        matches!(err, Error::ClassShape { .. }) && err.to_string().contains("[N,16]"),
        "{err}"
    );
    let err = load_err(&cpu("two_outputs.onnx").with_output(Some("nope".into())));
    assert!(
        err.to_string().contains(
            "no output named `nope`; its outputs are `features` f32 [N,16], `logits` f32 [N,1000]"
        ),
        "{err}"
    );
}

#[test]
fn nan_output_is_reported_per_image() {
    let mut classifier = load("nan_output.onnx");
    let scores = classifier
        .info()
        .decisions
        .iter()
        .find(|d| d.subject == "scores")
        .expect("scores decision");
    assert!(scores.reason.contains("NaN"), "{scores}");
    let data = golden_tensor(2 * 3 * 224 * 224, 3);
    let results = classifier
        .classify_slice(&data, [2, 3, 224, 224])
        .expect("batch runs");
    assert_eq!(results.len(), 2);
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Err(err @ Error::NonFiniteOutput { image, .. }) => {
                assert_eq!(image, i);
                assert!(err.to_string().starts_with("NaN output"), "{err}");
            }
            other => panic!("image {i}: expected a NaN error, got {other:?}"),
        }
    }
    // The reference agrees that there is nothing to rank.
    let theirs = reference(
        &fixture("nan_output.onnx"),
        &data,
        [2, 3, 224, 224],
        "logits",
        false,
        false,
    );
    assert_eq!(theirs, vec![Reference::Nan, Reference::Nan]);
}

#[test]
fn named_providers_the_cpu_build_lacks_fail_loudly_and_auto_falls_back() {
    let rt = runtime();
    // The CPU wheel is built with the CPU provider (and Azure's, which is no accelerator).
    assert!(
        rt.providers().iter().any(|p| p == CPU_PROVIDER),
        "{:?}",
        rt.providers()
    );
    for info in PROVIDERS {
        if rt.providers().iter().any(|p| p == info.ort_name) {
            continue;
        }
        let err = load_err(&cpu("nchw_dynamic.onnx").with_provider(info.provider));
        assert!(
            matches!(err, Error::ProviderMissing { .. }),
            "{}: {err}",
            info.name
        );
        let message = err.to_string();
        for needle in [
            info.name,
            info.ort_name,
            info.how_to_get,
            &rt.library().path.display().to_string(),
            "CPUExecutionProvider",
        ] {
            assert!(
                message.contains(needle),
                "{needle:?} missing from: {message}"
            );
        }
    }
    let cuda = load_err(&cpu("nchw_dynamic.onnx").with_provider(ExecutionProvider::Cuda));
    assert!(cuda.to_string().contains("just setup-gpu"), "{cuda}");

    let auto = Classifier::new(
        rt,
        &cpu("nchw_dynamic.onnx").with_provider(ExecutionProvider::Auto),
    )
    .expect("auto");
    let provider = auto.provider();
    assert_eq!(provider.used, CPU_PROVIDER);
    assert_eq!(provider.requested, ExecutionProvider::Auto);
    assert_eq!(provider.available, rt.providers());
    let why = provider.fallback.as_deref().expect("fallback reason");
    assert!(
        why.contains("offers none of the accelerators auto tries"),
        "{why}"
    );
    assert!(
        provider.to_string().contains("fell back to CPU"),
        "{provider}"
    );
    let cpu_only = Classifier::new(rt, &cpu("nchw_dynamic.onnx")).expect("cpu");
    assert_eq!(cpu_only.provider().used, CPU_PROVIDER);
    assert_eq!(cpu_only.provider().fallback, None);
}

#[test]
fn runtime_is_loaded_once_and_reports_its_version() {
    let rt = runtime();
    assert_eq!(rt.version(), imagenetx_infer::ORT_VERSION);
    assert!(std::ptr::eq(rt, runtime()));
    let other = imagenetx_infer::RuntimeLibrary {
        path: common::workspace().join("Cargo.toml"),
        source: imagenetx_infer::LibrarySource::Explicit,
        reason: "test".into(),
    };
    let err = imagenetx_infer::Runtime::init(other).expect_err("second library");
    assert!(matches!(err, Error::RuntimeAlreadyLoaded { .. }), "{err}");
}

#[test]
fn dynamic_dims_are_reported_as_dynamic() {
    let info = load("nchw_dynamic.onnx").info().clone();
    assert_eq!(info.input.batch, Dim::Dynamic("N".into()));
    assert_eq!(
        imagenetx_infer::format_shape(&info.input.shape),
        "[N,3,224,224]"
    );
}

/// Writes a throwaway model with a fixed batch of 4 (`[4,3,8,8]` -> `[4,1000]` logits) with the
/// venv's `onnx`; no fixture has a fixed batch above 1.
fn fixed_batch4_model(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("batch4.onnx");
    let script = r#"
import sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
w = np.random.default_rng(5).standard_normal((192, 1000)).astype(np.float32)
nodes = [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "W"], ["logits"])]
graph = helper.make_graph(nodes, "batch4",
    [helper.make_tensor_value_info("input", TensorProto.FLOAT, [4, 3, 8, 8])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [4, 1000])],
    initializer=[numpy_helper.from_array(w, "W")])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
"#;
    let out = std::process::Command::new(common::venv_python())
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

#[test]
fn fixed_batch_models_get_padded_chunks_and_strided_views_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = fixed_batch4_model(dir.path());
    let config = ClassifierConfig::new(&model).with_provider(ExecutionProvider::Cpu);
    let mut classifier = Classifier::new(runtime(), &config).expect("batch-4 model");
    assert_eq!(classifier.info().input.fixed_batch(), Some(4));

    // 6 images: a chunk of 4, then 2 padded to 4.
    let shape = [6, 3, 8, 8];
    let data = golden_tensor(shape.iter().product(), 99);
    let ours = classifier.classify_slice(&data, shape).expect("classify");
    let theirs = reference(&model, &data, shape, "logits", false, false);
    assert_eq!(ours.len(), 6);
    assert_eq!(theirs.len(), 6, "reference: one result per image");
    for (i, (mine, want)) in ours.iter().zip(&theirs).enumerate() {
        let mine = mine.as_ref().expect("finite");
        let Reference::Top5(classes, probs) = want else {
            panic!("NaN reference")
        };
        let diff = assert_same_top5(
            &format!("batch-4 image {i}"),
            &mine.classes,
            &mine.probabilities,
            classes,
            probs,
        );
        println!("batch-4 model image {i}: largest top-5 probability difference {diff:e}");
    }

    // A non-contiguous view (every other image) gives the same results as a copy.
    let view = ndarray::ArrayView4::from_shape(shape, &data).expect("shape");
    let strided = view.slice(ndarray::s![..;2, .., .., ..]);
    assert!(strided.as_slice().is_none());
    let from_view = classifier.classify(strided).expect("strided");
    let from_copy = classifier
        .classify(strided.to_owned().view())
        .expect("copy");
    let strip = |v: Vec<imagenetx_infer::ImageResult>| {
        v.into_iter()
            .map(|r| r.expect("finite"))
            .collect::<Vec<_>>()
    };
    let from_view = strip(from_view);
    assert_eq!(from_view, strip(from_copy));
    let expected: Vec<_> = ours
        .into_iter()
        .step_by(2)
        .map(|r| r.expect("finite"))
        .collect();
    assert_eq!(from_view, expected);
}

#[test]
fn search_finds_a_python_onnxruntime_package() {
    let search = imagenetx_infer::RuntimeSearch::empty()
        .with_python(Some(common::venv_python().into_os_string()));
    let found = search.locate().expect("the venv has onnxruntime");
    assert_eq!(found.source, imagenetx_infer::LibrarySource::PythonPackage);
    assert!(
        found
            .path
            .ends_with("onnxruntime/capi/libonnxruntime.so.1.31.1"),
        "{}",
        found.path.display()
    );
    assert!(
        found.reason.contains("onnxruntime package"),
        "{}",
        found.reason
    );
}
