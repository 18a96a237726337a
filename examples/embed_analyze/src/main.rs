//! Predictions CSVs in the toolkit's format (`file_name,predicted_class,predicted_probability`)
//! → the ImageNet-X toolkit's tables, as `imagenetx analyze --out DIR` writes them.
//!
//! `embed_analyze OUT_DIR PREDICTIONS.csv... [--image-annotations FILE]` (the annotations
//! folder found as the CLI finds it)
use imagenetx::factors::{AnalysisOptions, analyze};
use imagenetx::{AnnotationOptions, dataset::read_predictions};

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
    let options = AnnotationOptions {
        image_annotations,
        ..AnnotationOptions::default()
    };
    let set = options.load_set(&options.annotation_dir()?)?;
    let mut results = Vec::new();
    for file in files {
        let aligned = read_predictions(file.as_ref(), &set, false)?;
        let model = imagenetx::evaluate::model_name(file.as_ref());
        let analysis = analyze(
            &set.annotations,
            &model,
            &aligned.predictions,
            AnalysisOptions::default(),
        )?;
        println!(
            "{model}: error ratio of pose {:?}",
            analysis.error_ratio(imagenetx::vocab::Factor::Pose)
        );
        results.push(analysis);
    }
    let write = |name: &str, table: imagenetx::report::Table| {
        let path = std::path::Path::new(out).join(name);
        std::fs::write(&path, table.to_csv()).map_err(|e| imagenetx::Error::io(path, e))
    };
    use imagenetx::report::analysis as tables;
    write("accuracies_per_factor.csv", tables::accuracies(&results))?;
    write("error_ratios.csv", tables::error_ratios(&results))?;
    write(
        "accuracies_per_factor_metaclass.csv",
        tables::metaclass_accuracies(&results),
    )?;
    Ok(())
}
