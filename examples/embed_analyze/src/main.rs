//! Predictions CSVs in the toolkit's format (`file_name,predicted_class,predicted_probability`)
//! → the ImageNet-X toolkit's tables, as `imagenetx analyze --out DIR` writes them.
//!
//! `embed_analyze OUT_DIR PREDICTIONS.csv... [--image-annotations FILE]` (the annotations
//! folder found as the CLI finds it)
use imagenetx::{AnalyzeOptions, AnnotationOptions, vocab::Factor};

fn main() -> Result<(), imagenetx::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, files @ ..] = args.as_slice() else {
        return Err(imagenetx::Error::invalid(
            "usage: embed_analyze OUT_DIR PREDICTIONS.csv...",
        ));
    };
    let (files, image_annotations) = match files {
        [files @ .., flag, file] if flag == "--image-annotations" => (files, Some(file.into())),
        files => (files, None),
    };
    let options = AnalyzeOptions {
        annotations: AnnotationOptions {
            image_annotations,
            ..AnnotationOptions::default()
        },
        ..AnalyzeOptions::default()
    };
    let files: Vec<std::path::PathBuf> = files.iter().map(Into::into).collect();
    let analysis = imagenetx::analyze(&files, &options)?;
    for run in &analysis.models {
        let pose = run.analysis.error_ratio(Factor::Pose);
        println!("{}: error ratio of pose {pose:?}", run.analysis.model);
    }
    analysis.write(out.as_ref())
}
