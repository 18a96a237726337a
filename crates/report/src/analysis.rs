//! The tables of a factor analysis, in the paper toolkit's layouts.

use imagenetx_factors::{Factor, Metaclass, ModelAnalysis};
use serde_json::{Map, Value, json};

use crate::table::{Cell, Table};

fn factor_names() -> impl Iterator<Item = &'static str> {
    Factor::ALL.iter().map(|f| f.name())
}

fn columns(lead: &[&'static str], tail: &[&'static str]) -> Vec<&'static str> {
    lead.iter()
        .copied()
        .chain(factor_names())
        .chain(tail.iter().copied())
        .collect()
}

/// `accuracies_per_factor.csv` of the toolkit's `aggregate`: per model, the accuracy on each
/// factor, `worst_factor`, `average` and `worst_100_classes`.
pub fn accuracies(results: &[ModelAnalysis]) -> Table {
    let mut table = Table::new(columns(
        &["model"],
        &["worst_factor", "average", "worst_100_classes"],
    ));
    for r in results {
        let mut row = vec![Cell::text(&r.model)];
        row.extend(Factor::ALL.iter().map(|f| Cell::Num(r.accuracy(*f))));
        row.push(Cell::Num(r.worst_factor()));
        row.push(Cell::Num(r.average()));
        row.push(Cell::Num(r.worst_100_classes));
        table.push(row);
    }
    table
}

/// `accuracies_per_factor_metaclass.csv`: the same per (model, metaclass), rows in the
/// toolkit's order (metaclass, then model); a model without images of a metaclass has no row.
pub fn metaclass_accuracies(results: &[ModelAnalysis]) -> Table {
    let mut table = Table::new(columns(
        &["model", "metaclass"],
        &["worst_factor", "average"],
    ));
    for metaclass in Metaclass::ALL {
        for r in results {
            let group = &r.metaclasses[metaclass.index()];
            if group.overall.images == 0 {
                continue;
            }
            let mut row = vec![Cell::text(&r.model), Cell::text(metaclass.name())];
            row.extend(Factor::ALL.iter().map(|f| Cell::Num(group.accuracy(*f))));
            row.push(Cell::Num(group.worst_factor()));
            row.push(Cell::Num(group.average()));
            table.push(row);
        }
    }
    table
}

/// `error_ratios.csv`: per model, (1 − accuracy on the factor) / (1 − average).
pub fn error_ratios(results: &[ModelAnalysis]) -> Table {
    let mut table = Table::new(columns(&["model"], &[]));
    for r in results {
        let mut row = vec![Cell::text(&r.model)];
        row.extend(Factor::ALL.iter().map(|f| Cell::Num(r.error_ratio(*f))));
        table.push(row);
    }
    table
}

/// `calibration.csv`: per model, the 15-bin expected calibration error on each factor, the
/// worst (highest) of them and over all images.
pub fn calibration(results: &[ModelAnalysis]) -> Table {
    let mut table = Table::new(columns(&["model"], &["worst_factor", "average"]));
    for r in results {
        let mut row = vec![Cell::text(&r.model)];
        row.extend(r.calibration.iter().map(|c| Cell::Num(*c)));
        row.push(Cell::Num(r.calibration_worst()));
        row.push(Cell::Num(r.calibration_average));
        table.push(row);
    }
    table
}

/// `prevalence_shift.csv`: per model, how much more (or less) common each factor is among its
/// errors than among its images.
pub fn prevalence_shift(results: &[ModelAnalysis]) -> Table {
    let mut table = Table::new(columns(&["model"], &[]));
    for r in results {
        let mut row = vec![Cell::text(&r.model)];
        row.extend(r.prevalence_shift.iter().map(|s| Cell::Num(Some(*s))));
        table.push(row);
    }
    table
}

/// `prevalence_shift_metaclass.csv`: the same within each metaclass (relative to the
/// metaclass's prevalence over all annotations), with the model's accuracy there.
pub fn metaclass_prevalence_shift(results: &[ModelAnalysis]) -> Table {
    let mut table = Table::new(columns(&["model", "metaclass"], &["accuracy"]));
    for r in results {
        for shift in &r.metaclass_prevalence_shift {
            let mut row = vec![Cell::text(&r.model), Cell::text(shift.metaclass.name())];
            row.extend(shift.shift.iter().map(|s| Cell::Num(Some(*s))));
            row.push(Cell::Num(shift.accuracy));
            table.push(row);
        }
    }
    table
}

/// The error-ratio table for people: factors as rows and models as columns when there are
/// few models, models as rows otherwise; with each factor's image count and the averages.
pub fn error_ratio_view(results: &[ModelAnalysis], max_model_columns: usize) -> Table {
    if results.len() > max_model_columns {
        let mut table = Table::new(columns(&["model"], &["accuracy", "images"]));
        for r in results {
            let mut row = vec![Cell::text(&r.model)];
            row.extend(Factor::ALL.iter().map(|f| Cell::Num(r.error_ratio(*f))));
            row.push(Cell::Num(r.average()));
            row.push(Cell::Int(r.counts.overall.images));
            table.push(row);
        }
        return table;
    }
    let mut names = vec!["factor".to_string(), "images".to_string()];
    names.extend(results.iter().map(|r| r.model.clone()));
    let mut table = Table::new(names);
    let images_of = |f: Factor| {
        results
            .first()
            .map_or(0, |r| r.counts.factors[f.index()].images)
    };
    for factor in Factor::ALL {
        let mut row = vec![Cell::text(factor.name()), Cell::Int(images_of(factor))];
        row.extend(results.iter().map(|r| Cell::Num(r.error_ratio(factor))));
        table.push(row);
    }
    let overall = results.first().map_or(0, |r| r.counts.overall.images);
    let mut accuracy = vec![Cell::text("accuracy (average)"), Cell::Int(overall)];
    accuracy.extend(results.iter().map(|r| Cell::Num(r.average())));
    table.push(accuracy);
    table
}

/// One model's numbers as JSON, keyed by factor name.
pub fn model_json(r: &ModelAnalysis) -> Value {
    let factors: Map<String, Value> = Factor::ALL
        .iter()
        .map(|f| {
            let counts = r.counts.factors[f.index()];
            (
                f.name().to_string(),
                json!({
                    "images": counts.images,
                    "correct": counts.correct,
                    "accuracy": r.accuracy(*f),
                    "error_ratio": r.error_ratio(*f),
                    "calibration_error": r.calibration[f.index()],
                    "prevalence_shift": r.prevalence_shift[f.index()],
                }),
            )
        })
        .collect();
    let metaclasses: Map<String, Value> = Metaclass::ALL
        .iter()
        .filter(|m| r.metaclasses[m.index()].overall.images > 0)
        .map(|m| {
            let g = &r.metaclasses[m.index()];
            (
                m.name().to_string(),
                json!({
                    "images": g.overall.images,
                    "correct": g.overall.correct,
                    "accuracy": g.average(),
                    "worst_factor": g.worst_factor(),
                }),
            )
        })
        .collect();
    json!({
        "model": r.model,
        "annotated": r.annotated,
        "missing": r.missing,
        "excluded": r.excluded,
        "images": r.counts.overall.images,
        "correct": r.counts.overall.correct,
        "average": r.average(),
        "worst_factor": r.worst_factor(),
        "worst_100_classes": r.worst_100_classes,
        "calibration_error": r.calibration_average,
        "factors": factors,
        "metaclasses": metaclasses,
    })
}
