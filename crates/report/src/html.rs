//! The HTML report: one self-contained file (inline CSS and SVG, thumbnails as `data:` URIs,
//! no network reference of any kind) that opens from disk.
//!
//! Build a [`ReportInput`] from plain data, or start from [`ModelReport::from_analysis`] and
//! fill in intervals, metadata and galleries, then call [`render`].
//!
//! ```
//! use imagenetx_report::html::{FactorStats, ModelReport, ReportInput, render};
//!
//! let model = ModelReport {
//!     name: "resnet50".into(),
//!     images: 100,
//!     correct: 76,
//!     accuracy: Some(0.76),
//!     factors: vec![FactorStats {
//!         factor: "pose".into(),
//!         images: 40,
//!         correct: 25,
//!         accuracy: Some(0.625),
//!         error_ratio: Some(1.5625),
//!         error_ratio_interval: Some((1.2, 1.9)),
//!         small_sample: true,
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! };
//! let html = render(&ReportInput { title: "ImageNet-X report".into(), models: vec![model], ..Default::default() });
//! assert!(html.starts_with("<!DOCTYPE html>"));
//! assert!(html.contains("1.56 [1.20, 1.90]"));
//! ```

use crate::markdown::Difference;
use crate::table::{fixed, with_interval};
use std::fmt::Write as _;

use imagenetx_factors::{Factor, Metaclass, ModelAnalysis};

use crate::plots::{
    self, Distribution, ErrorRatioChart, ErrorRatioSeries, FactorValue, HeatCell, Heatmap, Scatter,
    ScatterPoint,
};

/// Factor cells with fewer images than this are flagged as small samples by
/// [`ModelReport::from_analysis`] (until intervals say otherwise).
pub const DEFAULT_MIN_IMAGES: u64 = 100;
/// Metaclass × factor heatmap cells with fewer images than this are drawn faded.
pub const HEATMAP_MIN_IMAGES: u64 = 30;
/// Heatmaps are drawn for at most this many models.
pub const MAX_HEATMAPS: usize = 4;
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
    /// [`markdown::differences`](crate::markdown::differences)); empty to leave the section
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

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    plots::xml_escape(text)
}

const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg-soft: #f6f8fa; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); margin: 0 auto; padding: 24px 32px 64px; max-width: 1240px; line-height: 1.45; }
h1 { font-size: 1.8rem; margin: 0 0 4px; }
h2 { font-size: 1.35rem; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.1rem; margin: 22px 0 8px; }
p.lead, p.note, .muted { color: var(--muted); }
p.note { font-size: 0.88rem; }
nav { margin: 12px 0 0; font-size: 0.95rem; }
nav a { margin-right: 14px; color: #0969da; text-decoration: none; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 8px 0; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: right; vertical-align: top; }
th { background: var(--bg-soft); font-weight: 600; }
td.name, th.name { text-align: left; }
td.small { color: var(--muted); font-style: italic; }
tr.significant td { font-weight: 600; }
td.small::after { content: " †"; }
.scroll { overflow-x: auto; }
.pair { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.pair > figure { flex: 1 1 560px; margin-top: 8px; }
.headline { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.headline .card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 200px; background: var(--bg-soft); }
.headline .value { font-size: 1.6rem; font-weight: 600; }
figure { margin: 12px 0 20px; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 0.88rem; }
details.meta, details.all-differences { margin: 6px 0; }
details.meta table td { text-align: left; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.8rem; word-break: break-all; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 12px; }
.gallery figure.card { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 8px; background: #fff; font-size: 0.82rem; }
.gallery img { display: block; width: 100%; max-width: 176px; height: auto; margin: 0 auto 6px; border-radius: 4px; }
.gallery .file { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: var(--muted); word-break: break-all; }
.gallery .truth { color: #1a7f37; }
.gallery .pred { color: #cf222e; }
.gallery .word { font-weight: 600; }
.gallery .why { color: var(--muted); }
footer { margin-top: 40px; color: var(--muted); font-size: 0.85rem; }
"#;

/// Renders the report: a complete HTML document, self-contained.
pub fn render(input: &ReportInput) -> String {
    render_with_figures(input, &figures(input))
}

/// [`render`] with the report's [`figures`] already drawn (for a caller that also writes
/// them as files).
pub fn render_with_figures(input: &ReportInput, figures: &[Figure]) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = if input.title.is_empty() {
        "ImageNet-X report"
    } else {
        input.title.as_str()
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    if !input.description.is_empty() {
        let _ = writeln!(out, "<p class=\"lead\">{}</p>", escape(&input.description));
    }
    out.push_str("<nav><a href=\"#summary\">Summary</a><a href=\"#error-ratios\">Error ratios</a>");
    if !input.differences.is_empty() {
        out.push_str("<a href=\"#differences\">Differences</a>");
    }
    if input
        .galleries
        .iter()
        .any(|g| g.sections.iter().any(|s| !s.cards.is_empty()))
    {
        out.push_str("<a href=\"#gallery\">Misclassified images</a>");
    }
    out.push_str("<a href=\"#plots\">More plots</a></nav>\n</header>\n<main>\n");
    summary(&mut out, input);
    error_ratio_section(&mut out, input, figures);
    differences_section(&mut out, input);
    galleries(&mut out, input);
    plots_section(&mut out, figures);
    out.push_str("</main>\n<footer>");
    if !input.generator.is_empty() {
        let _ = write!(out, "Written by {}. ", escape(&input.generator));
    }
    out.push_str("Error ratio = (1 − accuracy on the factor) / (1 − overall accuracy): above 1, the factor makes the model fail more often than on average. Annotations: ImageNet-X (CC BY-NC 4.0).</footer>\n</body>\n</html>\n");
    out
}

fn summary(out: &mut String, input: &ReportInput) {
    out.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"headline\">\n");
    for model in &input.models {
        let _ = writeln!(
            out,
            "<div class=\"card\"><div class=\"muted\">{}</div><div class=\"value\">{}</div><div class=\"muted\">top-1 accuracy{} · {} / {} images</div></div>",
            escape(&model.name),
            fixed(model.accuracy, 4),
            model
                .accuracy_interval
                .map(|(lo, hi)| format!(" [{lo:.4}, {hi:.4}]"))
                .unwrap_or_default(),
            model.correct,
            model.images
        );
    }
    out.push_str("</div>\n");
    for model in &input.models {
        if model.missing > 0 {
            let _ = writeln!(
                out,
                "<p class=\"note\">{}: {} annotated images have no prediction and are left out of every number.</p>",
                escape(&model.name),
                model.missing
            );
        }
        if model.metadata.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "<details class=\"meta\"><summary>Run of {}</summary><table>",
            escape(&model.name)
        );
        for (key, value) in &model.metadata {
            let _ = writeln!(
                out,
                "<tr><th class=\"name\">{}</th><td>{}</td></tr>",
                escape(key),
                escape(value)
            );
        }
        out.push_str("</table></details>\n");
    }
    out.push_str("</section>\n");
}

/// Factor names in table order: the first model's order.
fn factor_order(input: &ReportInput) -> Vec<String> {
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

fn find<'a>(model: &'a ModelReport, factor: &str) -> Option<&'a FactorStats> {
    model.factors.iter().find(|f| f.factor == factor)
}

fn error_ratio_section(out: &mut String, input: &ReportInput, figures: &[Figure]) {
    out.push_str("<section id=\"error-ratios\">\n<h2>Error ratio per factor</h2>\n<div class=\"pair\">\n<div class=\"scroll\"><table class=\"ratios\">\n<thead><tr><th class=\"name\" rowspan=\"2\">factor</th>");
    for model in &input.models {
        let _ = write!(out, "<th colspan=\"3\">{}</th>", escape(&model.name));
    }
    out.push_str("</tr>\n<tr>");
    for _ in &input.models {
        out.push_str("<th>images</th><th>accuracy</th><th>error ratio</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let mut any_small = false;
    for factor in factor_order(input) {
        let _ = write!(out, "<tr><td class=\"name\">{}</td>", escape(&factor));
        for model in &input.models {
            match find(model, &factor) {
                Some(f) => {
                    // A factor without images has nothing to flag.
                    let small = f.small_sample && f.images > 0;
                    any_small |= small;
                    let class = if small { " class=\"small\"" } else { "" };
                    let shade = f
                        .error_ratio
                        .filter(|v| v.is_finite() && !f.small_sample)
                        .map(|v| {
                            let c = plots::diverging_color(v);
                            // A light tint of the heatmap colour.
                            let tint = |x: u8| 255 - (255 - u16::from(x)) * 2 / 5;
                            format!(
                                " style=\"background:#{:02x}{:02x}{:02x}\"",
                                tint(c.0),
                                tint(c.1),
                                tint(c.2)
                            )
                        })
                        .unwrap_or_default();
                    let _ = write!(
                        out,
                        "<td>{}</td><td{class}>{}</td><td{class}{shade}>{}</td>",
                        f.images,
                        with_interval(f.accuracy, f.accuracy_interval, 3),
                        with_interval(f.error_ratio, f.error_ratio_interval, 2)
                    );
                }
                None => out.push_str("<td></td><td></td><td></td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    for f in figures.iter().filter(|f| f.name == ERROR_RATIO_FIGURE) {
        figure(out, f);
    }
    out.push_str("</div>\n");
    if let Some(note) = &input.interval_note {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(note));
    }
    if any_small {
        out.push_str("<p class=\"note\">† small sample: too few images for the numbers to be trusted; drawn faded in the plots.</p>\n");
    }
    out.push_str("</section>\n");
}

/// Drops the XML namespace declaration: inline SVG in HTML needs none, and the report holds
/// no URL at all.
fn inline_svg(svg: &str) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

fn figure(out: &mut String, figure: &Figure) {
    let _ = writeln!(
        out,
        "<figure id=\"figure-{}\">{}<figcaption>{}</figcaption></figure>",
        escape(&figure.name),
        inline_svg(&figure.svg),
        escape(&figure.caption)
    );
}

/// File stem of the error-ratio chart, the one figure shown beside the table.
pub const ERROR_RATIO_FIGURE: &str = "error_ratio";

/// One plot of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// A file stem naming it (`error_ratio`, `scatter_pose`, `heatmap_resnet50`,
    /// `factor_distribution`): letters, digits, `_`, `-` and `.` only.
    pub name: String,
    /// What it shows, in a sentence.
    pub caption: String,
    /// The standalone SVG document.
    pub svg: String,
}

/// Longest figure name, in characters (file systems allow 255 bytes; room for a suffix and
/// an extension).
const MAX_FIGURE_NAME: usize = 120;

/// `text` made safe as a file name: characters other than ASCII letters, digits, `-`, `_`
/// and `.` become `_`, and it is cut to [`MAX_FIGURE_NAME`] characters.
fn file_stem(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_FIGURE_NAME)
        .collect()
}

/// Every plot of the report, in page order: the error-ratio chart, the accuracy vs
/// error-ratio scatter (two models or more), a factor × metaclass heatmap per model (at most
/// [`MAX_HEATMAPS`]), the factor distribution. The HTML embeds them; they can also be
/// written as files (see [`crate::raster`] for PNG).
pub fn figures(input: &ReportInput) -> Vec<Figure> {
    let mut out = Vec::new();
    out.extend(error_ratio_chart(input));
    out.extend(more_figures(input));
    // Figures whose names come out alike (after sanitising, or differing only in case, which
    // is the same file on case-insensitive file systems) get a numeric suffix.
    let mut seen = std::collections::HashSet::new();
    for f in &mut out {
        let base = f.name.clone();
        let mut k = 2;
        while !seen.insert(f.name.to_ascii_lowercase()) {
            f.name = format!("{base}_{k}");
            k += 1;
        }
    }
    out
}

fn error_ratio_chart(input: &ReportInput) -> Option<Figure> {
    let factors = factor_order(input);
    if input.models.is_empty() || factors.is_empty() {
        return None;
    }
    {
        let mut chart = ErrorRatioChart {
            title: "Error ratio per factor".into(),
            factors: factors.clone(),
            series: input
                .models
                .iter()
                .map(|m| ErrorRatioSeries {
                    model: m.name.clone(),
                    values: factors
                        .iter()
                        .map(|f| {
                            find(m, f).map_or_else(FactorValue::default, |s| FactorValue {
                                value: s.error_ratio,
                                interval: s.error_ratio_interval,
                                small_sample: s.small_sample,
                            })
                        })
                        .collect(),
                })
                .collect(),
        };
        chart.sort_by_first_model();
        Some(Figure {
            name: ERROR_RATIO_FIGURE.into(),
            caption: "Error ratio per factor, sorted by the first model; whiskers are intervals, the line marks 1 (the model's average error rate). Faded bars: small samples.".into(),
            svg: plots::error_ratio_svg(&chart),
        })
    }
}

fn plots_section(out: &mut String, figures: &[Figure]) {
    out.push_str("<section id=\"plots\">\n<h2>More plots</h2>\n");
    for f in figures.iter().filter(|f| f.name != ERROR_RATIO_FIGURE) {
        figure(out, f);
    }
    out.push_str("</section>\n");
}

fn more_figures(input: &ReportInput) -> Vec<Figure> {
    let mut out = Vec::new();
    if input.models.len() >= 2
        && let Some(worst) = input.models[0].worst_factor()
    {
        let points = input
            .models
            .iter()
            .filter_map(|m| {
                let f = find(m, &worst.factor)?;
                Some(ScatterPoint {
                    model: m.name.clone(),
                    accuracy: m.accuracy?,
                    error_ratio: f.error_ratio?,
                    interval: f.error_ratio_interval,
                    small_sample: f.small_sample,
                })
            })
            .collect();
        let scatter = Scatter {
            title: format!("Accuracy vs error ratio on {}", worst.factor),
            y_label: format!("error ratio: {}", worst.factor),
            points,
        };
        out.push(Figure {
            name: file_stem(&format!("scatter_{}", worst.factor)),
            caption: format!(
                "Overall accuracy against the error ratio of {}, the first model's worst factor.",
                worst.factor
            ),
            svg: plots::scatter_svg(&scatter),
        });
    }
    for model in input.models.iter().take(MAX_HEATMAPS) {
        if model.metaclass_cells.is_empty() || input.metaclasses.is_empty() {
            continue;
        }
        let map = Heatmap {
            title: format!("{}: error ratio by factor and metaclass", model.name),
            rows: model.factors.iter().map(|f| f.factor.clone()).collect(),
            columns: input.metaclasses.clone(),
            cells: model.metaclass_cells.clone(),
        };
        out.push(Figure {
            name: file_stem(&format!("heatmap_{}", model.name)),
            caption: format!("{}: error ratio of each factor within each metaclass (relative to the model's accuracy on the metaclass). Empty: no images or no errors; faded: few images.", model.name),
            svg: plots::heatmap_svg(&map),
        });
    }
    if !input.factor_counts.is_empty() {
        let dist = Distribution {
            title: "Annotated images per factor".into(),
            bars: input.factor_counts.clone(),
        };
        out.push(Figure {
            name: "factor_distribution".into(),
            caption: "How many annotated images carry each factor.".into(),
            svg: plots::distribution_svg(&dist),
        });
    }
    out
}

fn differences_section(out: &mut String, input: &ReportInput) {
    if input.differences.is_empty() {
        return;
    }
    out.push_str("<section id=\"differences\">\n<h2>Differences between models</h2>\n<p class=\"note\">Paired on the images both models scored: accuracy differences (b − a) with paired bootstrap intervals, exact McNemar tests on the discordant images, Holm-corrected across the factors.</p>\n");
    let significant: Vec<&Difference> =
        input.differences.iter().filter(|d| d.significant).collect();
    let row = |out: &mut String, d: &Difference| {
        let _ = write!(
            out,
            "<tr{}>",
            if d.significant {
                " class=\"significant\""
            } else {
                ""
            }
        );
        for (i, cell) in d.cells().iter().enumerate() {
            // Metric and model names are text; the rest numbers.
            let class = if i < 3 { " class=\"name\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    };
    const HEAD: &str = "<div class=\"scroll\"><table class=\"differences\">\n<thead><tr><th class=\"name\">metric</th><th class=\"name\">a</th><th class=\"name\">b</th><th>value a</th><th>value b</th><th>b − a</th><th>interval</th><th>p</th></tr></thead>\n<tbody>\n";
    if significant.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"verdict\">No significant difference among the {} compared.</p>",
            input.differences.len()
        );
    } else {
        let _ = writeln!(
            out,
            "<p class=\"verdict\">{} significant of {} compared.</p>",
            significant.len(),
            input.differences.len()
        );
        out.push_str(HEAD);
        for d in &significant {
            row(out, d);
        }
        out.push_str("</tbody></table></div>\n");
    }
    let _ = writeln!(
        out,
        "<details class=\"all-differences\"><summary>All {} comparisons</summary>",
        input.differences.len()
    );
    out.push_str(HEAD);
    for d in &input.differences {
        row(out, d);
    }
    out.push_str("</tbody></table></div></details>\n</section>\n");
}

fn galleries(out: &mut String, input: &ReportInput) {
    let cards = |g: &Gallery| g.sections.iter().any(|s| !s.cards.is_empty());
    if !input.galleries.iter().any(cards) {
        return;
    }
    out.push_str("<section id=\"gallery\">\n<h2>Misclassified images</h2>\n<p class=\"note\">A reproducible sample of each factor's errors, with the annotators' one-word summary and justification.</p>\n");
    for gallery in input.galleries.iter().filter(|g| cards(g)) {
        let _ = writeln!(out, "<h3>{}</h3>", escape(&gallery.model));
        for section in gallery.sections.iter().filter(|s| !s.cards.is_empty()) {
            let _ = writeln!(
                out,
                "<details class=\"factor\" open><summary><strong>{}</strong> — {} of {} errors</summary>\n<div class=\"gallery\">",
                escape(&section.factor),
                section.cards.len(),
                section.errors
            );
            for card in &section.cards {
                card_html(out, card);
            }
            out.push_str("</div></details>\n");
        }
    }
    out.push_str("</section>\n");
}

fn card_html(out: &mut String, card: &GalleryCard) {
    out.push_str("<figure class=\"card\">");
    if let Some(t) = &card.thumbnail {
        let _ = write!(
            out,
            "<img src=\"{}\" alt=\"{}\" loading=\"lazy\">",
            t.data_uri(),
            escape(&card.file_name)
        );
    }
    let _ = write!(
        out,
        "<figcaption><div class=\"file\">{}</div><div class=\"truth\">true: {}</div><div class=\"pred\">predicted: {}{}</div>",
        escape(&card.file_name),
        escape(&card.true_class),
        escape(&card.predicted_class),
        card.probability
            .map(|p| format!(" ({p:.2})"))
            .unwrap_or_default()
    );
    if let Some(word) = &card.one_word {
        let _ = write!(out, "<div class=\"word\">“{}”</div>", escape(word));
    }
    if let Some(why) = &card.justification {
        let _ = write!(out, "<div class=\"why\">{}</div>", escape(why));
    }
    out.push_str("</figcaption></figure>\n");
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

    fn input() -> ReportInput {
        let factor = |name: &str, er: f64, small: bool| FactorStats {
            factor: name.into(),
            images: if small { 12 } else { 400 },
            correct: 7,
            accuracy: Some(0.5),
            accuracy_interval: Some((0.45, 0.55)),
            error_ratio: Some(er),
            error_ratio_interval: Some((er - 0.1, er + 0.1)),
            small_sample: small,
        };
        let model = |name: &str| ModelReport {
            name: name.into(),
            metadata: vec![("model sha256".into(), "ab<cd>".into())],
            images: 1000,
            correct: 760,
            accuracy: Some(0.76),
            accuracy_interval: Some((0.73, 0.79)),
            missing: 3,
            factors: vec![factor("pose", 1.5, false), factor("style", 2.5, true)],
            metaclass_cells: vec![
                vec![
                    HeatCell {
                        value: Some(1.2),
                        small_sample: false,
                    },
                    HeatCell::default(),
                ],
                vec![
                    HeatCell::default(),
                    HeatCell {
                        value: Some(0.5),
                        small_sample: true,
                    },
                ],
            ],
        };
        ReportInput {
            title: "Report <1>".into(),
            description: "class error, top factor".into(),
            generator: "imagenetx 0.1.0".into(),
            interval_note: Some("95% intervals".into()),
            models: vec![model("resnet50"), model("dino & co")],
            metaclasses: vec!["dog".into(), "bird".into()],
            factor_counts: vec![("pose".into(), 400), ("style".into(), 12)],
            galleries: vec![Gallery {
                model: "resnet50".into(),
                sections: vec![GallerySection {
                    factor: "pose".into(),
                    errors: 30,
                    cards: vec![GalleryCard {
                        file_name: "a.JPEG".into(),
                        true_class: "tabby".into(),
                        predicted_class: "tiger cat".into(),
                        probability: Some(0.38),
                        one_word: Some("<b>odd</b>".into()),
                        justification: Some(
                            "cat \"looks\" away & <script>alert(1)</script>".into(),
                        ),
                        thumbnail: Some(Thumbnail {
                            mime: "image/jpeg".into(),
                            bytes: vec![0xff, 0xd8, 0xff],
                        }),
                    }],
                }],
            }],
            differences: vec![
                Difference {
                    metric: "pose accuracy".into(),
                    model_a: "resnet50".into(),
                    model_b: "dino & co".into(),
                    value_a: Some(0.5),
                    value_b: Some(0.625),
                    difference: 0.125,
                    interval: Some((0.05, 0.2)),
                    p_value: Some(0.00002),
                    significant: true,
                },
                Difference {
                    metric: "style accuracy".into(),
                    model_a: "resnet50".into(),
                    model_b: "dino & co".into(),
                    value_a: Some(0.5),
                    value_b: Some(0.45),
                    difference: -0.05,
                    interval: Some((-0.2, 0.1)),
                    p_value: Some(0.61),
                    significant: false,
                },
            ],
        }
    }

    #[test]
    fn differences_section_lists_the_significant_ones_first() {
        let html = render(&input());
        assert!(html.contains("<a href=\"#differences\">Differences</a>"));
        let section = &html[html.find("<section id=\"differences\">").expect("section")..];
        let section = &section[..section.find("</section>").expect("end")];
        assert!(section.contains("1 significant of 2 compared."));
        let (top, all) = section.split_once("<details").expect("details");
        assert!(top.contains("<tr class=\"significant\"><td class=\"name\">pose accuracy</td><td class=\"name\">resnet50</td><td class=\"name\">dino &amp; co</td><td>0.500</td><td>0.625</td><td>+0.125</td><td>[+0.050, +0.200]</td><td>&lt;0.0001</td></tr>"));
        assert!(!top.contains("style accuracy"));
        assert!(all.contains("<td>-0.050</td><td>[-0.200, +0.100]</td><td>0.6100</td>"));

        let mut none = input();
        none.differences.retain(|d| !d.significant);
        let html = render(&none);
        assert!(html.contains("No significant difference among the 1 compared."));
        none.differences.clear();
        assert!(!render(&none).contains("id=\"differences\""));
    }

    #[test]
    fn figures_have_distinct_file_names_in_page_order() {
        let mut input = input();
        input.models.push(ModelReport {
            name: "DINO ! co".into(),
            ..input.models[1].clone()
        });
        let names: Vec<String> = figures(&input).into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "error_ratio",
                "scatter_pose",
                "heatmap_resnet50",
                "heatmap_dino___co",
                "heatmap_DINO___co_2",
                "factor_distribution"
            ]
        );
        // Very long model names are cut to a file name that fits.
        assert_eq!(file_stem(&"x".repeat(1000)).len(), MAX_FIGURE_NAME);
        let html = render(&input);
        for name in &names {
            assert!(
                html.contains(&format!("<figure id=\"figure-{name}\">")),
                "{name}"
            );
        }
    }

    #[test]
    fn report_escapes_text_and_holds_every_part() {
        let html = render(&input());
        assert!(html.contains("<title>Report &lt;1&gt;</title>"));
        assert!(html.contains("dino &amp; co"));
        assert!(html.contains("ab&lt;cd&gt;"));
        assert!(html.contains("&lt;b&gt;odd&lt;/b&gt;"));
        assert!(html.contains("cat &quot;looks&quot; away &amp; &lt;script&gt;"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("<b>odd"));
        // Error ratio with interval, small-sample flag, accuracy interval.
        assert!(html.contains("1.50 [1.40, 1.60]"));
        assert!(html.contains("<td class=\"small\">2.50 [2.40, 2.60]</td>"));
        assert!(html.contains("0.500 [0.450, 0.550]"));
        assert!(html.contains("[0.7300, 0.7900]"));
        // Plots: error ratio, scatter (two models), two heatmaps, distribution.
        assert_eq!(html.matches("<svg").count(), 5);
        assert!(html.contains("src=\"data:image/jpeg;base64,/9j/\""));
        assert!(html.contains("1 of 30 errors"));
        assert!(html.contains("3 annotated images have no prediction"));
        // Nothing that would reach the network.
        for needle in ["http:", "https:", "//", "@import", "url("] {
            assert!(!html.contains(needle), "found {needle}");
        }
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
