//! Measures session set-up and batch throughput of a model on random input.
//!
//! `cargo run --release -p imagenetx-infer --example throughput -- MODEL [BATCH] [BATCHES] [EP]`
//! (EP: any `--ep` name, e.g. auto, cpu, cuda, tensorrt; default cpu).

use std::time::Instant;

use imagenetx_infer::{
    Classifier, ClassifierConfig, ExecutionProvider, Layout, Runtime, RuntimeSearch,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .ok_or("usage: throughput MODEL [BATCH] [BATCHES] [EP]")?;
    let batch: usize = args.next().map_or(Ok(32), |s| s.parse())?;
    let batches: usize = args.next().map_or(Ok(10), |s| s.parse())?;
    let ep: ExecutionProvider = args
        .next()
        .map_or(Ok(ExecutionProvider::Cpu), |s| s.parse())?;

    let start = Instant::now();
    let runtime = Runtime::find(&RuntimeSearch::default().with_prefer_gpu(ep.wants_gpu()))?;
    let loaded = start.elapsed();
    let start = Instant::now();
    let mut classifier =
        Classifier::new(runtime, &ClassifierConfig::new(&model).with_provider(ep))?;
    let session = start.elapsed();
    let (h, w) = classifier.input_size().unwrap_or((224, 224));
    let shape = match classifier.layout() {
        Layout::Nchw => [batch, 3, h, w],
        Layout::Nhwc => [batch, h, w, 3],
    };
    let data: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|i| ((i * 7919) % 255) as f32 / 64.0 - 2.0)
        .collect();
    classifier.classify_slice(&data, shape)?; // warm-up
    let start = Instant::now();
    for _ in 0..batches {
        classifier.classify_slice(&data, shape)?;
    }
    let run = start.elapsed();
    let images = (batch * batches) as f64;
    // The rate at full precision (shortest round-trip): python/bench_eval.py reads it back as
    // the ONNX-Runtime-alone denominator, where rounding to whole images/s would move ratios.
    println!(
        "ONNX Runtime {} ({}); runtime load {:.1} ms; session + probe {:.1} ms; {} images in {:.1} ms: {} images/s",
        runtime.version(),
        classifier.provider(),
        loaded.as_secs_f64() * 1e3,
        session.as_secs_f64() * 1e3,
        images,
        run.as_secs_f64() * 1e3,
        images / run.as_secs_f64()
    );
    Ok(())
}
