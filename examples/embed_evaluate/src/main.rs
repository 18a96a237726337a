//! A model and a folder of images → top-1 accuracy and ImageNet-X error ratios, the same
//! numbers (and predictions CSV) as `imagenetx evaluate`.
//!
//! `embed_evaluate MODEL IMAGES [IMAGE_ANNOTATIONS.jsonl] [PREDICTIONS.csv]`
use imagenetx::{AnnotationOptions, Evaluator, EvaluatorConfig, dataset::discover_images};

fn main() -> Result<(), imagenetx::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, images, rest @ ..] = args.as_slice() else {
        return Err(imagenetx::Error::invalid(
            "usage: embed_evaluate MODEL IMAGES [ANNOTATIONS] [CSV]",
        ));
    };
    let annotations = AnnotationOptions {
        image_annotations: rest.first().map(Into::into),
        ..AnnotationOptions::default()
    };
    let mut evaluator = Evaluator::new(EvaluatorConfig::new(model))?;
    let evaluation = evaluator.evaluate(&discover_images(images.as_ref(), None)?, &annotations)?;
    if let Some(csv) = rest.get(1) {
        evaluation.write_predictions(csv.as_ref())?;
    }
    println!(
        "top-1 accuracy {:?}",
        evaluation.scores.accuracy.top1_rate()
    );
    if let Some(analysis) = evaluation.analysis() {
        for factor in imagenetx::vocab::Factor::ALL {
            println!("{:<16} {:?}", factor.name(), analysis.error_ratio(factor));
        }
    }
    Ok(())
}
