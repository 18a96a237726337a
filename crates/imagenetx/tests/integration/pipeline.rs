//! Where a run's time went ([`RunStats::pipeline`]): the times add up, a slow model side is
//! named the bottleneck, and large images with a model that costs little make decoding the
//! bottleneck. The models of a pass share their group's times.

use std::path::Path;
use std::time::Duration;

use imagenetx::dataset::{ImageEntry, discover_images};
use imagenetx::{
    Bottleneck, Collect, Evaluator, EvaluatorConfig, ExecutionProvider, RunStats, Sink, Zoo,
};
use imagenetx_test_support::{fixture, temp_dir};

use crate::Recorder;

fn config(batch_size: usize, threads: usize) -> EvaluatorConfig {
    EvaluatorConfig {
        provider: ExecutionProvider::Cpu,
        batch_size,
        threads,
        ..EvaluatorConfig::new(fixture("models/nchw_dynamic.onnx"))
    }
}

fn run(config: EvaluatorConfig, images: &[ImageEntry], sink: &mut impl Sink) -> RunStats {
    let mut evaluator =
        Evaluator::new(config).expect("ONNX Runtime (`just setup-ort`) and the fixture models");
    let todo: Vec<usize> = (0..images.len()).collect();
    evaluator.run(images, &todo, sink).expect("run")
}

fn photos() -> Vec<ImageEntry> {
    discover_images(&fixture("photos"), None)
        .expect("fixture photos")
        .images
}

/// Checks what must hold of any run's times.
fn check_adds_up(stats: &RunStats, threads: usize) {
    let t = stats.pipeline;
    let slack = Duration::from_millis(5);
    assert_eq!(t.decode_threads, threads);
    assert!(!t.wall.is_zero() && !t.decoding.is_zero(), "{t:?}");
    assert!(
        !t.consuming.is_zero() && !stats.inference.is_zero(),
        "{stats:?}"
    );
    // The model's side either waits or consumes; inference is part of consuming.
    assert!(
        t.waiting_for_images + t.consuming <= t.wall + slack,
        "{t:?}"
    );
    assert!(stats.inference <= t.consuming, "{stats:?}");
    // The decoding threads cannot be busy longer than they exist.
    assert!(t.decoding <= t.wall * threads as u32 + slack, "{t:?}");
    assert!(t.bottleneck().is_some());
}

#[test]
fn the_times_of_a_run_add_up() {
    let images = photos();
    let mut sink = Collect::default();
    let stats = run(config(2, 2), &images, &mut sink);
    assert_eq!(stats.predicted, images.len());
    check_adds_up(&stats, 2);
}

#[test]
fn a_slow_model_side_is_the_bottleneck() {
    let images = photos();
    // A sink that takes 300 ms a batch: a slow model side.
    let mut sink = Recorder {
        delay_per_batch: Duration::from_millis(300),
        ..Recorder::default()
    };
    let stats = run(config(1, 2), &images, &mut sink);
    check_adds_up(&stats, 2);
    let t = stats.pipeline;
    assert_eq!(t.bottleneck(), Some(Bottleneck::Model), "{t:?}");
    assert!(t.consuming >= Duration::from_millis(300) * images.len() as u32);
    assert!(t.waiting_share() < 0.5, "{t:?}");
}

/// `count` 4000x3000 JPEGs of smooth colour and noise, in `dir`.
fn large_jpegs(dir: &Path, count: usize) -> Vec<ImageEntry> {
    let (w, h) = (4000u32, 3000u32);
    let mut state = 0x9e37_79b9_u32;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state >> 24) as u8 / 4
    };
    for k in 0..count {
        let image = image::RgbImage::from_fn(w, h, |x, y| {
            let base = [
                (x / 16) as u8,
                (y / 12) as u8,
                ((x + y) / 28) as u8 ^ (k as u8 * 40),
            ];
            image::Rgb(base.map(|c| c.wrapping_add(noise())))
        });
        image
            .save(dir.join(format!("large_{k}.jpg")))
            .expect("write a large JPEG");
    }
    discover_images(dir, None).expect("the large JPEGs").images
}

#[test]
fn large_images_and_a_cheap_model_make_decoding_the_bottleneck() {
    let dir = temp_dir();
    let images = large_jpegs(dir.path(), 4);
    let mut sink = Collect::default();
    // One decoding thread, one image a batch: each 12-megapixel image takes tens of
    // milliseconds to decode and resize, the fixture model well under one to run.
    let stats = run(config(1, 1), &images, &mut sink);
    assert_eq!(stats.predicted, images.len());
    check_adds_up(&stats, 1);
    let t = stats.pipeline;
    assert_eq!(t.bottleneck(), Some(Bottleneck::Decoding), "{t:?}");
    assert!(t.decoding_busy() > 0.5, "{t:?}");
}

#[test]
fn the_models_of_a_pass_share_their_groups_times() {
    let images = photos();
    let models = [
        fixture("models/nchw_dynamic.onnx"),
        fixture("models/softmax.onnx"),
        fixture("models/input160.onnx"),
    ];
    let mut zoo = Zoo::new(&models, &config(2, 2)).expect("zoo");
    assert_eq!(zoo.groups(), [vec![0, 1], vec![2]]);
    let all: Vec<usize> = (0..images.len()).collect();
    let todos = vec![all.clone(), all.clone(), all];
    let mut sinks: Vec<Collect> = (0..3).map(|_| Collect::default()).collect();
    let outcomes = zoo.run(&images, &todos, &mut sinks).expect("pass");
    let stats: Vec<RunStats> = outcomes.into_iter().map(|o| o.expect("model")).collect();
    for s in &stats {
        check_adds_up(s, 2);
    }
    assert_eq!(stats[0].pipeline, stats[1].pipeline, "one group, one pass");
    assert_ne!(
        stats[0].pipeline, stats[2].pipeline,
        "two groups, two passes"
    );
    assert_ne!(
        stats[0].inference, stats[1].inference,
        "each model its own inference"
    );
}
