//! The report's plots as standalone SVG documents ([`figures`]): drawn once from a
//! [`ReportInput`], embedded by the HTML report and written as files (SVG, and PNG through
//! [`crate::raster`]) by [`crate::assemble::write_plots`].

use crate::model::{ReportInput, factor_order, find};
use crate::plots::{
    self, Distribution, ErrorRatioChart, ErrorRatioSeries, FactorValue, Heatmap, Scatter,
    ScatterPoint,
};

/// Heatmaps are drawn for at most this many models.
pub const MAX_HEATMAPS: usize = 4;

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
pub(crate) const MAX_FIGURE_NAME: usize = 120;

/// `text` made safe as a file name: characters other than ASCII letters, digits, `-`, `_`
/// and `.` become `_`, and it is cut to [`MAX_FIGURE_NAME`] characters.
pub(crate) fn file_stem(text: &str) -> String {
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
/// written as files (see [`crate::assemble::write_plots`]).
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
