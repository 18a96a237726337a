//! A Markdown summary for a pull-request comment or a CI job summary: headline accuracy per
//! model, each model's worst factors with intervals, and the significant differences of a
//! comparison.
//!
//! ```
//! use imagenetx_report::model::{FactorStats, ModelReport};
//! use imagenetx_report::markdown::{Summary, summary};
//!
//! let model = ModelReport {
//!     name: "resnet50".into(),
//!     images: 1000,
//!     correct: 760,
//!     accuracy: Some(0.76),
//!     factors: vec![FactorStats {
//!         factor: "pose".into(),
//!         images: 400,
//!         error_ratio: Some(1.4),
//!         error_ratio_interval: Some((1.3, 1.5)),
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! };
//! let text = summary(&Summary { models: vec![model], worst: 3, ..Default::default() });
//! assert!(text.contains("| resnet50 | 0.7600 |"));
//! assert!(text.contains("| pose | 400 | — | 1.40 [1.30, 1.50] |"));
//! ```

use crate::table::{fixed, with_interval};
use std::fmt::Write as _;

use crate::model::{Difference, ModelReport, ReportInput};

/// What the summary shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Heading; "ImageNet-X summary" when empty.
    pub title: String,
    /// One line on what was analysed.
    pub description: String,
    /// The models.
    pub models: Vec<ModelReport>,
    /// How many worst factors to list per model (by error ratio).
    pub worst: usize,
    /// Differences from a comparison; only the significant ones are listed.
    pub differences: Vec<Difference>,
    /// How intervals were computed, printed under the tables.
    pub interval_note: Option<String>,
}

impl Summary {
    /// The summary of a report: its title, description, models, differences and interval
    /// note, with the `worst` factors of each model.
    pub fn of_report(input: &ReportInput, worst: usize) -> Self {
        Summary {
            title: input.title.clone(),
            description: input.description.clone(),
            models: input.models.clone(),
            worst,
            differences: input.differences.clone(),
            interval_note: input.interval_note.clone(),
        }
    }
}

/// Escapes characters that would break a Markdown table cell or start markup.
pub fn escape_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' | '\\' | '*' | '`' | '[' | ']' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Renders the summary as GitHub-flavoured Markdown.
pub fn summary(input: &Summary) -> String {
    let mut out = String::new();
    let title = if input.title.is_empty() {
        "ImageNet-X summary"
    } else {
        input.title.as_str()
    };
    let _ = writeln!(out, "### {}\n", escape_cell(title));
    if !input.description.is_empty() {
        let _ = writeln!(out, "{}\n", escape_cell(&input.description));
    }
    out.push_str(
        "| model | accuracy | interval | correct / images | worst factor (error ratio) |\n",
    );
    out.push_str("|---|---:|---:|---:|---|\n");
    for m in &input.models {
        let worst = m
            .worst_factor()
            .map(|f| format!("{} ({})", escape_cell(&f.factor), fixed(f.error_ratio, 2)))
            .unwrap_or_else(|| "—".into());
        let interval = m
            .accuracy_interval
            .map(|(lo, hi)| format!("[{lo:.4}, {hi:.4}]"))
            .unwrap_or_else(|| "—".into());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} / {} | {} |",
            escape_cell(&m.name),
            fixed(m.accuracy, 4),
            interval,
            m.correct,
            m.images,
            worst
        );
    }
    if input.worst > 0 {
        for m in &input.models {
            let mut factors: Vec<_> = m
                .factors
                .iter()
                .filter(|f| f.error_ratio.is_some_and(f64::is_finite))
                .collect();
            factors.sort_by(|a, b| {
                b.error_ratio
                    .unwrap_or(0.0)
                    .total_cmp(&a.error_ratio.unwrap_or(0.0))
            });
            factors.truncate(input.worst);
            if factors.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "\n**{}**: worst factors\n\n| factor | images | accuracy | error ratio |\n|---|---:|---:|---:|",
                escape_cell(&m.name)
            );
            for f in factors {
                let _ = writeln!(
                    out,
                    "| {}{} | {} | {} | {} |",
                    escape_cell(&f.factor),
                    if f.small_sample { " †" } else { "" },
                    f.images,
                    with_interval(f.accuracy, f.accuracy_interval, 3),
                    with_interval(f.error_ratio, f.error_ratio_interval, 2)
                );
            }
        }
    }
    let significant: Vec<&Difference> =
        input.differences.iter().filter(|d| d.significant).collect();
    if !input.differences.is_empty() {
        if significant.is_empty() {
            let _ = writeln!(
                out,
                "\nNo significant difference among the {} compared.",
                input.differences.len()
            );
        } else {
            out.push_str("\n**Significant differences**\n\n| metric | a | b | value a | value b | b − a | interval | p |\n|---|---|---|---:|---:|---:|---:|---:|\n");
            for d in significant {
                // Metric and model names are text to escape; the rest are numbers.
                let cells: Vec<String> = d
                    .cells()
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| if i < 3 { escape_cell(&c) } else { c })
                    .collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
        }
    }
    let any_small = input
        .models
        .iter()
        .any(|m| m.factors.iter().any(|f| f.small_sample));
    if let Some(note) = &input.interval_note {
        let _ = writeln!(out, "\n{}", escape_cell(note));
    }
    if input.worst > 0 && any_small {
        out.push_str("\n† small sample: too few images for the numbers to be trusted.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FactorStats, differences};

    fn model(name: &str) -> ModelReport {
        let f = |factor: &str, er: f64, small: bool| FactorStats {
            factor: factor.into(),
            images: 50,
            correct: 20,
            accuracy: Some(0.4),
            accuracy_interval: Some((0.3, 0.5)),
            error_ratio: Some(er),
            error_ratio_interval: Some((er - 0.25, er + 0.25)),
            small_sample: small,
        };
        ModelReport {
            name: name.into(),
            images: 2000,
            correct: 1500,
            accuracy: Some(0.75),
            accuracy_interval: Some((0.73, 0.77)),
            factors: vec![
                f("pose", 1.5, false),
                f("style", 3.0, true),
                f("color", 0.5, false),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn summary_lists_headline_worst_factors_and_significant_differences() {
        let text = summary(&Summary {
            title: String::new(),
            description: "class | top".into(),
            models: vec![model("a|b"), model("dino")],
            worst: 2,
            differences: vec![
                Difference {
                    metric: "pose error ratio".into(),
                    model_a: "a|b".into(),
                    model_b: "dino".into(),
                    value_a: Some(1.5),
                    value_b: Some(1.2),
                    difference: -0.3,
                    interval: Some((-0.5, -0.1)),
                    p_value: Some(0.003),
                    significant: true,
                },
                Difference {
                    metric: "color error ratio".into(),
                    significant: false,
                    ..Default::default()
                },
            ],
            interval_note: Some("95% bootstrap".into()),
        });
        assert!(text.starts_with("### ImageNet-X summary\n"));
        assert!(text.contains("class \\| top"));
        // The worst factor skips small samples.
        assert!(text.contains("| a\\|b | 0.7500 | [0.7300, 0.7700] | 1500 / 2000 | pose (1.50) |"));
        // Worst factors: style (3.0, small) then pose; color left out.
        assert!(text.contains("| style † | 50 | 0.400 [0.300, 0.500] | 3.00 [2.75, 3.25] |"));
        assert!(text.contains("| pose | 50 |"));
        assert!(!text.contains("| color |"));
        assert!(text.contains("| pose error ratio | a\\|b | dino | 1.500 | 1.200 | -0.300 | [-0.500, -0.100] | 0.0030 |"));
        assert!(!text.contains("color error ratio"));
        assert!(text.contains("† small sample"));
        // Every table row has the header's number of cells.
        for line in text.lines().filter(|l| l.starts_with('|')) {
            let cells = line.replace("\\|", "").matches('|').count();
            assert!(cells == 6 || cells == 5 || cells == 9, "{line}");
        }
    }

    #[test]
    fn no_significant_difference_is_said() {
        let text = summary(&Summary {
            models: vec![model("m")],
            differences: vec![Difference::default()],
            ..Default::default()
        });
        assert!(text.contains("No significant difference among the 1 compared."));
    }

    #[test]
    fn differences_of_a_comparison_keep_its_significance() {
        use imagenetx_factors::compare::compare;
        use imagenetx_factors::intervals::IntervalOptions;
        use imagenetx_factors::{
            AnnotatedImage, Annotations, Factor, FactorSet, Metaclass, Outcome,
        };
        // 300 pose images: A gets all wrong, B all right; 300 style images: both right.
        let images: Vec<AnnotatedImage> = (0..600)
            .map(|i| AnnotatedImage {
                class: 0,
                factors: FactorSet::from_iter([if i < 300 { Factor::Pose } else { Factor::Style }]),
                real: None,
            })
            .collect();
        let annotations = Annotations::new(images, vec![Metaclass::Dog]).expect("annotations");
        let scored = |correct: bool| Outcome::Scored {
            correct,
            probability: 0.5,
        };
        let a: Vec<Outcome> = (0..600).map(|i| scored(i >= 300)).collect();
        let b: Vec<Outcome> = (0..600).map(|_| scored(true)).collect();
        let options = IntervalOptions::new(0.95, 200, 0, 100).expect("options");
        let c = compare(&annotations, "a", &a, "b", &b, &options).expect("compare");
        let d = differences(&c);
        let pose = d
            .iter()
            .find(|d| d.metric == "pose accuracy")
            .expect("pose");
        assert!(pose.significant);
        assert_eq!(
            (pose.value_a, pose.value_b, pose.difference),
            (Some(0.0), Some(1.0), 1.0)
        );
        assert!(d[0].significant && d[0].metric == "accuracy (all images)");
        assert!((d[0].difference - 0.5).abs() < 1e-12);
        if let Some(style) = d.iter().find(|d| d.metric == "style accuracy") {
            assert!(!style.significant);
        }
        let text = summary(&Summary {
            differences: d,
            ..Default::default()
        });
        assert!(
            text.contains("| pose accuracy | a | b | 0.000 | 1.000 | +1.000 |"),
            "{text}"
        );
    }
}
