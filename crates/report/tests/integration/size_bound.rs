//! The HTML report stays under 10 MB at the largest gallery the command makes: four models
//! (heatmaps are drawn for at most four), 16 factors, 12 cards per factor with long annotator
//! text, and thumbnails of pure noise (the worst case for JPEG) limited by
//! `THUMBNAIL_BUDGET`.

use imagenetx_report::html;
use imagenetx_report::model::{
    self, FactorStats, Gallery, GalleryCard, GallerySection, ModelReport, ReportInput,
    THUMBNAIL_BUDGET, Thumbnail,
};
use imagenetx_report::plots::HeatCell;

const LIMIT: usize = 10 * 1024 * 1024;
const FACTORS: usize = 16;
const METACLASSES: usize = 17;
const PER_FACTOR: usize = 12;

/// A 128 × 128 JPEG of uniform noise (from a fixed LCG).
fn noise_thumbnail(seed: u64) -> Thumbnail {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let rgb: Vec<u8> = (0..128 * 128 * 3)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect();
    Thumbnail::jpeg_from_rgb(128, 128, &rgb, 128).expect("encode noise")
}

fn input(thumbnails: bool) -> ReportInput {
    let noise: Vec<Thumbnail> = if thumbnails {
        (0..64).map(noise_thumbnail).collect()
    } else {
        Vec::new()
    };
    let models: Vec<ModelReport> = (0..4)
        .map(|m| ModelReport {
            name: format!("model-{m}"),
            metadata: vec![("model sha256".into(), "0".repeat(64))],
            images: 48_000,
            correct: 36_000,
            accuracy: Some(0.75),
            accuracy_interval: Some((0.746, 0.754)),
            missing: 0,
            factors: (0..FACTORS)
                .map(|f| FactorStats {
                    factor: format!("factor_{f}"),
                    images: 3000,
                    correct: 2000,
                    accuracy: Some(0.6667),
                    accuracy_interval: Some((0.65, 0.68)),
                    error_ratio: Some(0.5 + f as f64 / 8.0),
                    error_ratio_interval: Some((0.4 + f as f64 / 8.0, 0.6 + f as f64 / 8.0)),
                    small_sample: f % 5 == 0,
                })
                .collect(),
            metaclass_cells: (0..FACTORS)
                .map(|f| {
                    (0..METACLASSES)
                        .map(|c| HeatCell {
                            value: ((f + c) % 7 != 0).then_some(0.3 + ((f * c) % 11) as f64 / 3.0),
                            small_sample: c % 4 == 0,
                        })
                        .collect()
                })
                .collect(),
        })
        .collect();
    let mut galleries: Vec<Gallery> = (0..4)
        .map(|m| Gallery {
            model: format!("model-{m}"),
            sections: (0..FACTORS)
                .map(|f| GallerySection {
                    factor: format!("factor_{f}"),
                    errors: 1000,
                    cards: (0..PER_FACTOR)
                        .map(|i| GalleryCard {
                            file_name: format!("ILSVRC2012_val_{:08}.JPEG", m * 1000 + f * 20 + i),
                            true_class: "Egyptian cat (285)".into(),
                            predicted_class: "tiger cat (282)".into(),
                            probability: Some(0.42),
                            one_word: Some("pose & <angle>".into()),
                            justification: Some(
                                "The cat is seen from behind, \"curled\" on a sofa; only the tail and one ear are visible. "
                                    .repeat(3),
                            ),
                            thumbnail: noise.get((m * 97 + f * 13 + i) % 64).cloned(),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    let dropped = model::limit_thumbnails(&mut galleries, THUMBNAIL_BUDGET);
    if thumbnails {
        assert!(dropped > 0, "noise thumbnails should exceed the budget");
    }
    ReportInput {
        title: "size bound".into(),
        description: "48000 annotated images".into(),
        generator: "imagenetx test".into(),
        interval_note: Some("95% intervals".into()),
        models,
        metaclasses: (0..METACLASSES).map(|c| format!("metaclass_{c}")).collect(),
        factor_counts: (0..FACTORS)
            .map(|f| (format!("factor_{f}"), 3000))
            .collect(),
        galleries,
        differences: Vec::new(),
    }
}

#[test]
fn report_without_thumbnails_is_small() {
    let html = html::render(&input(false));
    println!("report without thumbnails: {} bytes", html.len());
    assert_eq!(
        html.matches("<figure class=\"card\">").count(),
        4 * FACTORS * PER_FACTOR
    );
    assert!(html.len() < 2 * 1024 * 1024, "{} bytes", html.len());
}

#[test]
fn report_with_worst_case_thumbnails_stays_under_10_mb() {
    let html = html::render(&input(true));
    let images = html.matches("<img src=\"data:image/jpeg;base64,").count();
    println!(
        "report with thumbnails: {} bytes, {images} thumbnails",
        html.len()
    );
    assert!(images > 100, "only {images} thumbnails kept");
    assert!(html.len() <= LIMIT, "{} bytes", html.len());
}
