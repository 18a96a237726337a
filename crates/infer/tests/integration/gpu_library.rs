//! The CUDA build of ONNX Runtime (`just setup-gpu`), alone in its test process because a
//! process loads one ONNX Runtime library: no other test of this binary may run with it.
//!
//! Ignored by default (it needs a 255 MB download): `cargo test -p imagenetx-infer --test
//! integration -- --ignored gpu_library::`. Without CUDA 13 / cuDNN 9 on the loader path, `--ep cuda` must
//! fail naming the missing library and `auto` must fall back to CPU; set
//! `IMAGENETX_EXPECT_CUDA=1` on a CUDA machine to require that CUDA is used instead, with the
//! same predictions as the CPU provider.

use crate::common;

use std::path::PathBuf;

use common::{fixture, golden_tensor};
use imagenetx_infer::{
    CPU_PROVIDER, CUDA_PROVIDER, Classifier, ClassifierConfig, Error, ExecutionProvider,
    ORT_LIBRARY_FILE, Runtime, RuntimeSearch,
};
use imagenetx_test_support::{OrtFlavour, ort_cache_dir};

fn gpu_library() -> PathBuf {
    let lib = ort_cache_dir(OrtFlavour::Gpu).join(ORT_LIBRARY_FILE);
    assert!(
        lib.is_file(),
        "{} is missing: run `just setup-gpu` first",
        lib.display()
    );
    lib
}

#[test]
#[ignore = "needs `just setup-gpu` (onnxruntime-gpu wheel, 255 MB)"]
fn cuda_build_registers_cuda_or_says_why_not() {
    let search = RuntimeSearch::default()
        .with_library(Some(gpu_library()))
        .with_prefer_gpu(true);
    let runtime = Runtime::find(&search).expect("load the GPU build");
    let model = fixture("nchw_dynamic.onnx");
    let cuda = Classifier::new(
        runtime,
        &ClassifierConfig::new(&model).with_provider(ExecutionProvider::Cuda),
    );
    let expect_cuda = std::env::var("IMAGENETX_EXPECT_CUDA").is_ok_and(|v| v == "1");
    if expect_cuda {
        let mut gpu = cuda.expect("CUDA must register when IMAGENETX_EXPECT_CUDA=1");
        assert_eq!(gpu.provider().used, CUDA_PROVIDER);
        let mut cpu = Classifier::new(
            runtime,
            &ClassifierConfig::new(&model).with_provider(ExecutionProvider::Cpu),
        )
        .expect("cpu session");
        let data = golden_tensor(4 * 3 * 224 * 224, 11);
        let a = gpu
            .classify_slice(&data, [4, 3, 224, 224])
            .expect("gpu run");
        let b = cpu
            .classify_slice(&data, [4, 3, 224, 224])
            .expect("cpu run");
        assert_eq!((a.len(), b.len()), (4, 4), "one result per image");
        for (x, y) in a.into_iter().zip(b) {
            let (x, y) = (x.expect("finite"), y.expect("finite"));
            assert_eq!(x.classes, y.classes);
            for (p, q) in x.probabilities.iter().zip(&y.probabilities) {
                assert!((p - q).abs() <= 2e-3, "{p} vs {q}");
            }
        }
    } else {
        let err = match cuda {
            Ok(_) => panic!("CUDA registered; set IMAGENETX_EXPECT_CUDA=1 on a CUDA machine"),
            Err(err) => err,
        };
        assert!(matches!(err, Error::ProviderFailed { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("libonnxruntime_providers_cuda.so"),
            "{message}"
        );
        assert!(message.contains("CUDA 13 and cuDNN 9"), "{message}");
        let auto =
            Classifier::new(runtime, &ClassifierConfig::new(&model)).expect("auto falls back");
        assert_eq!(auto.provider().used, CPU_PROVIDER);
        assert!(
            auto.provider()
                .fallback
                .as_deref()
                .is_some_and(|why| why.contains("libonnxruntime_providers_cuda.so"))
        );
    }
}
