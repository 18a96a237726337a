//! The report's data model: everything the HTML report ([`crate::html`]), the Markdown
//! summary ([`crate::markdown`]) and the plot files ([`crate::figures`]) show, as plain data,
//! with the rules that fill it from an analysis (numbers, gallery sampling, the thumbnail
//! budget, paired differences).
//!
//! ```
//! use imagenetx_report::model::{FactorStats, ModelReport};
//!
//! let model = ModelReport {
//!     name: "resnet50".into(),
//!     factors: vec![
//!         FactorStats { factor: "pose".into(), error_ratio: Some(1.4), ..Default::default() },
//!         FactorStats { factor: "style".into(), error_ratio: Some(2.1), ..Default::default() },
//!     ],
//!     ..Default::default()
//! };
//! assert_eq!(model.worst_factor().map(|f| f.factor.as_str()), Some("style"));
//! ```

use imagenetx_factors::compare::Comparison;
use imagenetx_factors::{Factor, Metaclass, ModelAnalysis};

use crate::plots::HeatCell;
use crate::table::{fixed, p_value};

/// Factor cells with fewer images than this are flagged as small samples by
/// [`ModelReport::from_analysis`] (until intervals say otherwise).
pub const DEFAULT_MIN_IMAGES: u64 = 100;
/// Metaclass × factor heatmap cells with fewer images than this are drawn faded.
pub const HEATMAP_MIN_IMAGES: u64 = 30;
/// Default budget of embedded thumbnails, in bytes of `data:` URI: with it the report stays
/// under 10 MB (tables, plots and card text take well under 1 MB).
pub const THUMBNAIL_BUDGET: usize = 8 * 1024 * 1024;

/// Everything the report shows, as plain data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportInput {
    /// Page title and top heading.
    pub title: String,
    /// One line on what was analysed (error type, factor selection, partition, images).
    pub description: String,
    /// The tool and version that wrote the report ("imagenetx 0.1.0").
    pub generator: String,
    /// How intervals were computed ("95% Wilson intervals for accuracies, ..."), shown under
    /// the table; `None` when there are no intervals.
    pub interval_note: Option<String>,
    /// The models, in display order; the first one orders the factors.
    pub models: Vec<ModelReport>,
    /// Metaclass names: the columns of each model's heatmap.
    pub metaclasses: Vec<String>,
    /// Annotated images per factor, for the distribution chart; empty to leave it out.
    pub factor_counts: Vec<(String, u64)>,
    /// Misclassified-image galleries, one per model.
    pub galleries: Vec<Gallery>,
    /// Paired comparisons of the models (the first against each other one; see
    /// [`differences`]); empty to leave the section
    /// out.
    pub differences: Vec<Difference>,
}

/// One model's numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelReport {
    /// The model's name.
    pub name: String,
    /// Run metadata as `(key, value)` rows (model SHA-256, preprocessing, provider, versions).
    pub metadata: Vec<(String, String)>,
    /// Images scored.
    pub images: u64,
    /// Images predicted correctly.
    pub correct: u64,
    /// Accuracy over every image scored.
    pub accuracy: Option<f64>,
    /// Interval of the accuracy.
    pub accuracy_interval: Option<(f64, f64)>,
    /// Annotated images without a prediction (left out of every number).
    pub missing: u64,
    /// Per-factor numbers, in table order.
    pub factors: Vec<FactorStats>,
    /// Error ratio of each factor within each metaclass: `metaclass_cells[factor][metaclass]`,
    /// rows in [`ModelReport::factors`] order, columns in [`ReportInput::metaclasses`] order;
    /// empty to leave the heatmap out.
    pub metaclass_cells: Vec<Vec<HeatCell>>,
}

/// One model's numbers on one factor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FactorStats {
    /// The factor's name.
    pub factor: String,
    /// Images with the factor.
    pub images: u64,
    /// Of which predicted correctly.
    pub correct: u64,
    /// Accuracy on the factor.
    pub accuracy: Option<f64>,
    /// Interval of the accuracy (e.g. Wilson).
    pub accuracy_interval: Option<(f64, f64)>,
    /// Error ratio of the factor.
    pub error_ratio: Option<f64>,
    /// Interval of the error ratio (e.g. bootstrap percentile).
    pub error_ratio_interval: Option<(f64, f64)>,
    /// Too few images for the numbers to be trusted.
    pub small_sample: bool,
}

/// Misclassified images of one model, by factor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gallery {
    /// The model.
    pub model: String,
    /// One section per factor with errors.
    pub sections: Vec<GallerySection>,
}

/// A sample of one factor's misclassified images.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GallerySection {
    /// The factor.
    pub factor: String,
    /// How many images with the factor the model got wrong (the cards are a sample).
    pub errors: u64,
    /// The sampled images.
    pub cards: Vec<GalleryCard>,
}

/// One misclassified image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GalleryCard {
    /// The image's file name.
    pub file_name: String,
    /// The annotated class (name, or index when names are unknown).
    pub true_class: String,
    /// The predicted class.
    pub predicted_class: String,
    /// The model's probability for its prediction.
    pub probability: Option<f64>,
    /// The annotators' one-word summary.
    pub one_word: Option<String>,
    /// The annotators' justification.
    pub justification: Option<String>,
    /// An embedded thumbnail.
    pub thumbnail: Option<Thumbnail>,
}

/// An encoded image, embedded as a `data:` URI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Thumbnail {
    /// MIME type (`image/jpeg`).
    pub mime: String,
    /// The encoded bytes.
    pub bytes: Vec<u8>,
}

impl Thumbnail {
    /// A JPEG thumbnail of an 8-bit RGB image (`rgb.len() == 3 * width * height`), scaled
    /// to fit `max_side` × `max_side` (never enlarged). `None` when the buffer does not fit
    /// the size or the encoder fails.
    pub fn jpeg_from_rgb(width: u32, height: u32, rgb: &[u8], max_side: u32) -> Option<Self> {
        let image = image::RgbImage::from_raw(width, height, rgb.to_vec())?;
        let scale = f64::from(max_side.max(1)) / f64::from(width.max(height).max(1));
        let image = if scale < 1.0 {
            let w = ((f64::from(width) * scale).round() as u32).max(1);
            let h = ((f64::from(height) * scale).round() as u32).max(1);
            image::imageops::thumbnail(&image, w, h)
        } else {
            image
        };
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 80)
            .encode(
                image.as_raw(),
                image.width(),
                image.height(),
                image::ExtendedColorType::Rgb8,
            )
            .ok()?;
        Some(Thumbnail {
            mime: "image/jpeg".into(),
            bytes,
        })
    }

    /// Length of [`Thumbnail::data_uri`] in bytes.
    pub fn data_uri_len(&self) -> usize {
        "data:;base64,".len() + self.mime.len() + self.bytes.len().div_ceil(3) * 4
    }

    /// `data:<mime>;base64,...`.
    pub fn data_uri(&self) -> String {
        format!("data:{};base64,{}", self.mime, base64(&self.bytes))
    }
}

impl ModelReport {
    /// The numbers of an analysis, without intervals: factors in [`Factor::ALL`] order,
    /// small-sample flags for factors with fewer than [`DEFAULT_MIN_IMAGES`] images, and
    /// the metaclass cells in [`Metaclass::ALL`] order (see [`metaclass_names`]).
    pub fn from_analysis(analysis: &ModelAnalysis) -> Self {
        let factors = Factor::ALL
            .iter()
            .map(|f| {
                let counts = analysis.counts.factors[f.index()];
                FactorStats {
                    factor: f.name().to_string(),
                    images: counts.images,
                    correct: counts.correct,
                    accuracy: analysis.accuracy(*f),
                    accuracy_interval: None,
                    error_ratio: analysis.error_ratio(*f),
                    error_ratio_interval: None,
                    small_sample: counts.images < DEFAULT_MIN_IMAGES,
                }
            })
            .collect();
        let metaclass_cells = Factor::ALL
            .iter()
            .map(|f| {
                Metaclass::ALL
                    .iter()
                    .map(|m| {
                        let group = &analysis.metaclasses[m.index()];
                        HeatCell {
                            value: group.error_ratio(*f),
                            small_sample: group.factors[f.index()].images < HEATMAP_MIN_IMAGES,
                        }
                    })
                    .collect()
            })
            .collect();
        ModelReport {
            name: analysis.model.clone(),
            metadata: Vec::new(),
            images: analysis.counts.overall.images,
            correct: analysis.counts.overall.correct,
            accuracy: analysis.average(),
            accuracy_interval: None,
            missing: analysis.missing as u64,
            factors,
            metaclass_cells,
        }
    }

    /// The factor with the highest error ratio among those not flagged as small samples
    /// (any factor when all are).
    pub fn worst_factor(&self) -> Option<&FactorStats> {
        let best = |small: bool| {
            self.factors
                .iter()
                .filter(|f| small || !f.small_sample)
                .filter(|f| f.error_ratio.is_some_and(f64::is_finite))
                .max_by(|a, b| {
                    a.error_ratio
                        .unwrap_or(0.0)
                        .total_cmp(&b.error_ratio.unwrap_or(0.0))
                })
        };
        best(false).or_else(|| best(true))
    }
}

/// Metaclass names in [`Metaclass::ALL`] order (the columns of
/// [`ModelReport::from_analysis`]'s cells).
pub fn metaclass_names() -> Vec<String> {
    Metaclass::ALL
        .iter()
        .map(|m| m.name().to_string())
        .collect()
}

/// Drops thumbnails beyond `budget` bytes of `data:` URIs, keeping them spread evenly: the
/// first card of every section is served first, then every second card, and so on. Returns
/// how many thumbnails were dropped.
pub fn limit_thumbnails(galleries: &mut [Gallery], budget: usize) -> usize {
    let depth = galleries
        .iter()
        .flat_map(|g| g.sections.iter())
        .map(|s| s.cards.len())
        .max()
        .unwrap_or(0);
    let mut used = 0usize;
    let mut dropped = 0;
    for rank in 0..depth {
        for section in galleries.iter_mut().flat_map(|g| g.sections.iter_mut()) {
            let Some(card) = section.cards.get_mut(rank) else {
                continue;
            };
            let Some(thumbnail) = &card.thumbnail else {
                continue;
            };
            let size = thumbnail.data_uri_len();
            if used + size <= budget {
                used += size;
            } else {
                card.thumbnail = None;
                dropped += 1;
            }
        }
    }
    dropped
}

/// Picks up to `n` of `keys` at random but reproducibly: the same keys, `n` and `seed` give
/// the same picks whatever the order of `keys`. Returns positions into `keys`, in the order
/// the sample ranks them.
pub fn sample_indices(keys: &[&str], n: usize, seed: u64) -> Vec<usize> {
    let mut ranked: Vec<(u64, usize)> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| (mix(fnv1a(key.as_bytes()) ^ mix(seed)), i))
        .collect();
    if n < ranked.len() {
        ranked.select_nth_unstable(n);
        ranked.truncate(n);
    }
    ranked.sort_unstable();
    ranked.into_iter().map(|(_, i)| i).collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Factor names in table order: the first model's order.
pub(crate) fn factor_order(input: &ReportInput) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for model in &input.models {
        for f in &model.factors {
            if !names.contains(&f.factor) {
                names.push(f.factor.clone());
            }
        }
    }
    names
}

pub(crate) fn find<'a>(model: &'a ModelReport, factor: &str) -> Option<&'a FactorStats> {
    model.factors.iter().find(|f| f.factor == factor)
}

/// One difference between two models found by a comparison.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Difference {
    /// What differs ("pose error ratio", "accuracy").
    pub metric: String,
    /// The first model.
    pub model_a: String,
    /// The second model.
    pub model_b: String,
    /// Value of the first model.
    pub value_a: Option<f64>,
    /// Value of the second model.
    pub value_b: Option<f64>,
    /// Estimated difference (b − a).
    pub difference: f64,
    /// Interval of the difference.
    pub interval: Option<(f64, f64)>,
    /// p-value of the test, if one was run.
    pub p_value: Option<f64>,
    /// Whether the difference is significant at the comparison's level.
    pub significant: bool,
}

impl Difference {
    /// The difference as table cells for people, unescaped: metric, model a, model b, value a,
    /// value b, b − a, interval, p-value (the column order of every differences table).
    pub fn cells(&self) -> [String; 8] {
        [
            self.metric.clone(),
            self.model_a.clone(),
            self.model_b.clone(),
            fixed(self.value_a, 3),
            fixed(self.value_b, 3),
            format!("{:+.3}", self.difference),
            self.interval
                .map(|(lo, hi)| format!("[{lo:+.3}, {hi:+.3}]"))
                .unwrap_or_else(|| "—".into()),
            p_value(self.p_value),
        ]
    }
}

/// The differences of a paired comparison (B against A): the overall accuracy (exact
/// McNemar test) and each tested factor's accuracy (McNemar, Holm-corrected), with the paired
/// bootstrap intervals of `accuracy_b − accuracy_a`. Significance is the comparison's.
pub fn differences(c: &Comparison) -> Vec<Difference> {
    let alpha = 1.0 - c.options.confidence();
    let mut out = vec![Difference {
        metric: "accuracy (all images)".into(),
        model_a: c.model_a.clone(),
        model_b: c.model_b.clone(),
        value_a: ratio(c.overall.a_correct, c.overall.images),
        value_b: ratio(c.overall.b_correct, c.overall.images),
        difference: ratio(c.overall.b_correct, c.overall.images).unwrap_or(f64::NAN)
            - ratio(c.overall.a_correct, c.overall.images).unwrap_or(f64::NAN),
        interval: c.accuracy_diff_interval.map(|i| (i.low, i.high)),
        p_value: Some(c.p_value),
        significant: c.p_value <= alpha,
    }];
    for f in &c.factors {
        let (Some(difference), Some(p)) = (f.accuracy_diff, f.p_holm.or(f.p_value)) else {
            continue;
        };
        out.push(Difference {
            metric: format!("{} accuracy", f.factor.name()),
            model_a: c.model_a.clone(),
            model_b: c.model_b.clone(),
            value_a: f.accuracy_a,
            value_b: f.accuracy_b,
            difference,
            interval: f.accuracy_diff_interval.map(|i| (i.low, i.high)),
            p_value: Some(p),
            significant: f.significant,
        });
    }
    out
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn sampling_is_reproducible_bounded_and_order_free() {
        let keys: Vec<String> = (0..500).map(|i| format!("img_{i}.JPEG")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let a = sample_indices(&refs, 12, 7);
        assert_eq!(a.len(), 12);
        assert_eq!(a, sample_indices(&refs, 12, 7));
        assert_ne!(a, sample_indices(&refs, 12, 8));
        let mut reversed = refs.clone();
        reversed.reverse();
        let b: Vec<&str> = sample_indices(&reversed, 12, 7)
            .into_iter()
            .map(|i| reversed[i])
            .collect();
        let a: Vec<&str> = a.into_iter().map(|i| refs[i]).collect();
        assert_eq!(a, b);
        assert_eq!(sample_indices(&refs[..5], 12, 7).len(), 5);
    }

    #[test]
    fn thumbnail_is_a_scaled_jpeg() {
        let (w, h) = (300u32, 150u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        let t = Thumbnail::jpeg_from_rgb(w, h, &rgb, 128).expect("encodes");
        assert_eq!(&t.bytes[..2], &[0xff, 0xd8]);
        let decoded = image::load_from_memory(&t.bytes).expect("decodes");
        assert_eq!((decoded.width(), decoded.height()), (128, 64));
        assert!(t.data_uri().starts_with("data:image/jpeg;base64,/9j/"));
        assert!(Thumbnail::jpeg_from_rgb(10, 10, &rgb[..5], 128).is_none());
        assert_eq!(t.data_uri_len(), t.data_uri().len());
    }

    #[test]
    fn thumbnail_budget_keeps_the_first_cards_of_every_section() {
        let card = |n: usize| GalleryCard {
            file_name: format!("{n}.JPEG"),
            thumbnail: Some(Thumbnail {
                mime: "image/jpeg".into(),
                bytes: vec![0; 300],
            }),
            ..Default::default()
        };
        let section = |f: &str| GallerySection {
            factor: f.into(),
            errors: 10,
            cards: (0..5).map(card).collect(),
        };
        let mut galleries = vec![Gallery {
            model: "m".into(),
            sections: vec![section("pose"), section("style"), section("color")],
        }];
        let each = galleries[0].sections[0].cards[0]
            .thumbnail
            .as_ref()
            .map_or(0, Thumbnail::data_uri_len);
        // Room for 7 thumbnails: ranks 0 and 1 of every section, rank 2 of the first.
        let dropped = limit_thumbnails(&mut galleries, each * 7 + each / 2);
        assert_eq!(dropped, 15 - 7);
        let kept: Vec<usize> = galleries[0]
            .sections
            .iter()
            .map(|s| s.cards.iter().filter(|c| c.thumbnail.is_some()).count())
            .collect();
        assert_eq!(kept, [3, 2, 2]);
        assert!(galleries[0].sections[1].cards[1].thumbnail.is_some());
        assert!(galleries[0].sections[1].cards[2].thumbnail.is_none());
    }

    #[test]
    fn from_analysis_takes_the_analysis_numbers() {
        use imagenetx_factors::{
            AnalysisOptions, AnnotatedImage, Annotations, FactorSet, Prediction, analyze,
        };
        let image = |class, factor| AnnotatedImage {
            class,
            factors: FactorSet::from_iter([factor]),
            real: None,
        };
        let annotations = Annotations::new(
            vec![
                image(0, Factor::Pose),
                image(0, Factor::Pose),
                image(1, Factor::Style),
                image(1, Factor::Style),
            ],
            vec![Metaclass::Dog, Metaclass::Other],
        )
        .expect("annotations");
        let p = |class| {
            Some(Prediction {
                class,
                probability: 0.9,
            })
        };
        let a = analyze(
            &annotations,
            "m",
            &[p(0), p(1), p(1), p(1)],
            AnalysisOptions::default(),
        )
        .expect("analysis");
        let m = ModelReport::from_analysis(&a);
        assert_eq!((m.images, m.correct), (4, 3));
        let pose = &m.factors[Factor::Pose.index()];
        assert_eq!(
            (pose.images, pose.correct, pose.error_ratio),
            (2, 1, Some(2.0))
        );
        assert!(pose.small_sample);
        assert_eq!(m.metaclass_cells.len(), Factor::ALL.len());
        assert_eq!(m.metaclass_cells[0].len(), Metaclass::ALL.len());
        assert_eq!(m.worst_factor().map(|f| f.factor.as_str()), Some("pose"));
    }
}
