//! The tables of a factor analysis and of the annotations, in the paper toolkit's layouts.

use imagenetx_factors::compare::Comparison;
use imagenetx_factors::correlation::{indicators, spearman_matrix};
use imagenetx_factors::intervals::{Interval, IntervalOptions, ModelIntervals};
use imagenetx_factors::{Annotations, Factor, Metaclass, ModelAnalysis, N_FACTORS};
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

/// `true`/`false` as CSV and JSON write a flag.
fn flag(x: bool) -> Cell {
    Cell::text(if x { "true" } else { "false" })
}

fn low(i: Option<Interval>) -> Cell {
    Cell::Num(i.map(|i| i.low))
}

fn high(i: Option<Interval>) -> Cell {
    Cell::Num(i.map(|i| i.high))
}

/// `intervals.csv`: one row per (model, factor): counts, accuracy with its Wilson interval,
/// error ratio with its bootstrap percentile interval, replicates dropped as undefined and
/// the small-sample flag. Models in the order given.
pub fn intervals(models: &[(&str, &ModelIntervals)]) -> Table {
    let mut table = Table::new([
        "model",
        "factor",
        "images",
        "correct",
        "accuracy",
        "accuracy_low",
        "accuracy_high",
        "error_ratio",
        "error_ratio_low",
        "error_ratio_high",
        "small_sample",
        "undefined_replicates",
    ]);
    for (model, m) in models {
        for f in &m.factors {
            table.push(vec![
                Cell::text(*model),
                Cell::text(f.factor.name()),
                Cell::Int(f.counts.images),
                Cell::Int(f.counts.correct),
                Cell::Num(f.accuracy),
                low(f.accuracy_interval),
                high(f.accuracy_interval),
                Cell::Num(f.error_ratio),
                low(f.error_ratio_interval),
                high(f.error_ratio_interval),
                flag(f.small_sample),
                Cell::Int(u64::from(f.undefined_replicates)),
            ]);
        }
    }
    table
}

/// Mark appended to the values of a factor with fewer images than the small-sample
/// threshold.
pub const SMALL_SAMPLE_MARK: &str = "†";

/// `x [low, high]`: `x` with `decimals` decimals (6 gives the paper's precision), the bounds
/// with at most 3 (their own uncertainty makes more noise); `—` when `x` is undefined.
pub fn with_interval(x: Option<f64>, interval: Option<Interval>, decimals: usize) -> String {
    match interval {
        Some(i) if x.is_some() => format!(
            "{} [{}, {}]",
            crate::table::fixed(x, decimals),
            crate::table::fixed(Some(i.low), decimals.min(3)),
            crate::table::fixed(Some(i.high), decimals.min(3))
        ),
        _ => crate::table::fixed(x, decimals),
    }
}

/// The error-ratio table for people with intervals: factors as rows, one column per model
/// holding `ratio [low, high]`, marked with [`SMALL_SAMPLE_MARK`] for small samples; the
/// last row is each model's accuracy with its Wilson interval. `results[i]` and
/// `intervals[i]` describe the same model.
pub fn error_ratio_interval_view(
    results: &[ModelAnalysis],
    intervals: &[ModelIntervals],
    decimals: usize,
) -> Table {
    let mut names = vec!["factor".to_string(), "images".to_string()];
    names.extend(results.iter().map(|r| r.model.clone()));
    let mut table = Table::new(names);
    for factor in Factor::ALL {
        let images = results
            .first()
            .map_or(0, |r| r.counts.factors[factor.index()].images);
        let mut row = vec![Cell::text(factor.name()), Cell::Int(images)];
        row.extend(intervals.iter().map(|m| {
            let f = &m.factors[factor.index()];
            let mark = if f.small_sample {
                SMALL_SAMPLE_MARK
            } else {
                ""
            };
            Cell::text(format!(
                "{}{mark}",
                with_interval(f.error_ratio, f.error_ratio_interval, decimals)
            ))
        }));
        table.push(row);
    }
    let overall = results.first().map_or(0, |r| r.counts.overall.images);
    let mut accuracy = vec![Cell::text("accuracy (average)"), Cell::Int(overall)];
    accuracy.extend(intervals.iter().map(|m| {
        Cell::text(with_interval(
            m.overall.accuracy(),
            m.average_interval,
            decimals,
        ))
    }));
    table.push(accuracy);
    table
}

/// `error_ratios.csv`'s layout followed by `<factor>_low` and `<factor>_high` columns with
/// the bootstrap interval of each error ratio (the stdout CSV of `analyze`).
pub fn error_ratios_with_intervals(
    results: &[ModelAnalysis],
    intervals: &[ModelIntervals],
) -> Table {
    let mut names: Vec<String> = columns(&["model"], &[])
        .into_iter()
        .map(String::from)
        .collect();
    for f in Factor::ALL {
        names.push(format!("{}_low", f.name()));
        names.push(format!("{}_high", f.name()));
    }
    let mut table = Table::new(names);
    for (r, m) in results.iter().zip(intervals) {
        let mut row = vec![Cell::text(&r.model)];
        row.extend(Factor::ALL.iter().map(|f| Cell::Num(r.error_ratio(*f))));
        for f in &m.factors {
            row.push(low(f.error_ratio_interval));
            row.push(high(f.error_ratio_interval));
        }
        table.push(row);
    }
    table
}

/// Adds interval fields to a [`model_json`] object: inside each factor object
/// `accuracy_low`, `accuracy_high`, `error_ratio_low`, `error_ratio_high`, `small_sample`
/// and `undefined_replicates`; at model level `average_low`, `average_high` and an
/// `intervals` object with the settings. Existing keys are kept.
pub fn add_intervals_json(model: &mut Value, m: &ModelIntervals) {
    let Some(object) = model.as_object_mut() else {
        return;
    };
    let bound = |x: Option<f64>| json!(x);
    if let Some(Value::Object(factors)) = object.get_mut("factors") {
        for f in &m.factors {
            if let Some(Value::Object(entry)) = factors.get_mut(f.factor.name()) {
                entry.insert(
                    "accuracy_low".into(),
                    bound(f.accuracy_interval.map(|i| i.low)),
                );
                entry.insert(
                    "accuracy_high".into(),
                    bound(f.accuracy_interval.map(|i| i.high)),
                );
                entry.insert(
                    "error_ratio_low".into(),
                    bound(f.error_ratio_interval.map(|i| i.low)),
                );
                entry.insert(
                    "error_ratio_high".into(),
                    bound(f.error_ratio_interval.map(|i| i.high)),
                );
                entry.insert("small_sample".into(), json!(f.small_sample));
                entry.insert("undefined_replicates".into(), json!(f.undefined_replicates));
            }
        }
    }
    object.insert(
        "average_low".into(),
        bound(m.average_interval.map(|i| i.low)),
    );
    object.insert(
        "average_high".into(),
        bound(m.average_interval.map(|i| i.high)),
    );
    object.insert("intervals".into(), interval_settings_json(&m.options));
}

/// The interval settings as JSON (`confidence`, `bootstrap_replicates`, `seed`,
/// `min_images`, and the method names).
pub fn interval_settings_json(o: &IntervalOptions) -> Value {
    json!({
        "confidence": o.confidence(),
        "bootstrap_replicates": o.replicates(),
        "seed": o.seed(),
        "min_images": o.min_images(),
        "accuracy_method": "wilson",
        "error_ratio_method": "bootstrap percentile over images (numpy linear quantile)",
    })
}

/// `comparisons.csv`: one row per (comparison, factor): paired counts, both models'
/// accuracies and error ratios, the differences `B − A` with their paired bootstrap
/// intervals, the discordant pairs, McNemar's exact p-value, Holm's adjusted p-value and
/// whether the difference is significant at `1 − confidence`.
pub fn comparisons(comparisons: &[Comparison]) -> Table {
    let mut table = Table::new([
        "model_a",
        "model_b",
        "factor",
        "images",
        "accuracy_a",
        "accuracy_b",
        "accuracy_diff",
        "accuracy_diff_low",
        "accuracy_diff_high",
        "error_ratio_a",
        "error_ratio_b",
        "error_ratio_diff",
        "error_ratio_diff_low",
        "error_ratio_diff_high",
        "a_only_correct",
        "b_only_correct",
        "p_value",
        "p_holm",
        "significant",
        "small_sample",
    ]);
    for c in comparisons {
        for f in &c.factors {
            table.push(vec![
                Cell::text(&c.model_a),
                Cell::text(&c.model_b),
                Cell::text(f.factor.name()),
                Cell::Int(f.counts.images),
                Cell::Num(f.accuracy_a),
                Cell::Num(f.accuracy_b),
                Cell::Num(f.accuracy_diff),
                low(f.accuracy_diff_interval),
                high(f.accuracy_diff_interval),
                Cell::Num(f.error_ratio_a),
                Cell::Num(f.error_ratio_b),
                Cell::Num(f.error_ratio_diff),
                low(f.error_ratio_diff_interval),
                high(f.error_ratio_diff_interval),
                Cell::Int(f.counts.a_only),
                Cell::Int(f.counts.b_only),
                Cell::Num(f.p_value),
                Cell::Num(f.p_holm),
                flag(f.significant),
                flag(f.small_sample),
            ]);
        }
    }
    table
}

/// Mark of a significant difference in [`comparison_view`].
pub const SIGNIFICANT_MARK: &str = "*";

/// One comparison for people: a row per factor (toolkit order) with the paired images,
/// the accuracy difference and the error-ratio difference with their intervals, the
/// discordant pairs, the Holm-adjusted p-value, and a last column with [`SIGNIFICANT_MARK`]
/// where the models really differ and [`SMALL_SAMPLE_MARK`] for small factors.
pub fn comparison_view(c: &Comparison, decimals: usize) -> Table {
    let mut table = Table::new([
        "factor",
        "images",
        "accuracy B−A",
        "error ratio B−A",
        "A only",
        "B only",
        "p (Holm)",
        "",
    ]);
    for f in &c.factors {
        let mark = format!(
            "{}{}",
            if f.significant { SIGNIFICANT_MARK } else { "" },
            if f.small_sample {
                SMALL_SAMPLE_MARK
            } else {
                ""
            }
        );
        table.push(vec![
            Cell::text(f.factor.name()),
            Cell::Int(f.counts.images),
            Cell::text(with_interval(
                f.accuracy_diff,
                f.accuracy_diff_interval,
                decimals,
            )),
            Cell::text(with_interval(
                f.error_ratio_diff,
                f.error_ratio_diff_interval,
                decimals,
            )),
            Cell::Int(f.counts.a_only),
            Cell::Int(f.counts.b_only),
            Cell::text(f.p_holm.map_or("—".to_string(), format_p)),
            Cell::text(mark),
        ]);
    }
    table
}

/// A p-value for people: 4 significant digits, scientific below 0.001.
pub fn format_p(p: f64) -> String {
    if p < 1e-3 {
        format!("{p:.2e}")
    } else {
        format!("{p:.4}")
    }
}

/// One comparison as JSON: models, settings, overall paired counts and test, and the
/// [`comparisons`] row of each factor keyed by factor name.
pub fn comparison_json(c: &Comparison) -> Value {
    let rows = comparisons(std::slice::from_ref(c)).to_json();
    let factors: Map<String, Value> = Factor::ALL
        .iter()
        .zip(rows.as_array().into_iter().flatten())
        .map(|(f, row)| {
            let mut row = row.clone();
            if let Some(object) = row.as_object_mut() {
                for key in ["model_a", "model_b", "factor"] {
                    object.remove(key);
                }
                for key in ["significant", "small_sample"] {
                    let value = object.get(key) == Some(&Value::from("true"));
                    object.insert(key.into(), Value::Bool(value));
                }
            }
            (f.name().to_string(), row)
        })
        .collect();
    json!({
        "model_a": c.model_a,
        "model_b": c.model_b,
        "settings": interval_settings_json(&c.options),
        "images": c.overall.images,
        "scored_by_a_only": c.scored_by_a_only,
        "scored_by_b_only": c.scored_by_b_only,
        "accuracy_a": c.overall.a().accuracy(),
        "accuracy_b": c.overall.b().accuracy(),
        "accuracy_diff": c.overall.accuracy_diff(),
        "accuracy_diff_low": c.accuracy_diff_interval.map(|i| i.low),
        "accuracy_diff_high": c.accuracy_diff_interval.map(|i| i.high),
        "a_only_correct": c.overall.a_only,
        "b_only_correct": c.overall.b_only,
        "p_value": c.p_value,
        "significant_factors": c.significant().map(|f| f.factor.name()).collect::<Vec<_>>(),
        "factors": factors,
    })
}

/// A one-paragraph summary of a comparison for people (stdout above the table).
pub fn comparison_summary(c: &Comparison) -> String {
    let acc = |x: Option<f64>| x.map_or("—".to_string(), |x| format!("{x:.4}"));
    let significant: Vec<&str> = c.significant().map(|f| f.factor.name()).collect();
    format!(
        "{b} vs {a} on {n} images both scored: accuracy {acc_a} → {acc_b} (B−A {diff}), McNemar p = {p}; {a_only} images only {a} got right, {b_only} only {b}.\n\
         Factors where they differ (exact McNemar, Holm-corrected over the factors tested, level {alpha:.3}): {list}.",
        a = c.model_a,
        b = c.model_b,
        n = c.overall.images,
        acc_a = acc(c.overall.a().accuracy()),
        acc_b = acc(c.overall.b().accuracy()),
        diff = with_interval(c.overall.accuracy_diff(), c.accuracy_diff_interval, 4),
        p = format_p(c.p_value),
        a_only = c.overall.a_only,
        b_only = c.overall.b_only,
        alpha = c.options.alpha(),
        list = if significant.is_empty() {
            "none".to_string()
        } else {
            significant.join(", ")
        },
    )
}
/// `lead`, the factor names, then `tail`.
fn factor_columns(lead: &str, tail: &[&str]) -> Vec<String> {
    std::iter::once(lead)
        .chain(Factor::ALL.iter().map(|f| f.name()))
        .chain(tail.iter().copied())
        .map(String::from)
        .collect()
}

/// How often each factor is annotated. Rows: each metaclass, then `all`; columns: images
/// with each factor, then images.
pub fn annotation_counts(annotations: &Annotations) -> Table {
    let per_metaclass = annotations.metaclass_factor_totals();
    let mut images = [0u64; Metaclass::ALL.len()];
    for i in 0..annotations.len() {
        images[annotations.metaclass_of(i).index()] += 1;
    }
    let mut table = Table::new(factor_columns("metaclass", &["images"]));
    for metaclass in Metaclass::ALL {
        let mut row = vec![Cell::text(metaclass.name())];
        row.extend(
            per_metaclass[metaclass.index()]
                .iter()
                .map(|c| Cell::Int(*c)),
        );
        row.push(Cell::Int(images[metaclass.index()]));
        table.push(row);
    }
    let mut all = vec![Cell::text("all")];
    all.extend(annotations.factor_totals().iter().map(|c| Cell::Int(*c)));
    all.push(Cell::Int(annotations.len() as u64));
    table.push(all);
    table
}

/// [`annotation_counts`] with factors as rows (easier to read on a terminal): the first
/// column is `factor`, then one column per row of `table`.
pub fn factors_as_rows(table: &Table) -> Table {
    let mut columns = vec![table.columns[0].clone()];
    columns.extend(table.rows.iter().map(|r| r[0].csv()));
    let mut out = Table::new(columns);
    for (c, name) in table.columns.iter().enumerate().skip(1) {
        let mut row = vec![Cell::text(name)];
        row.extend(table.rows.iter().map(|r| r[c].clone()));
        out.push(row);
    }
    out.columns[0] = "factor".to_string();
    out
}

/// The toolkit's `compute_metaclass_prevalence_shift` on the annotations: per metaclass with
/// annotated factors, (prevalence of the factor in the metaclass − overall prevalence) /
/// overall prevalence.
pub fn annotation_metaclass_prevalence_shift(annotations: &Annotations) -> Table {
    let per_metaclass = annotations.metaclass_factor_totals();
    let overall: [u64; N_FACTORS] = annotations.factor_totals();
    let mut table = Table::new(factor_columns("metaclass", &[]));
    for metaclass in Metaclass::ALL {
        if per_metaclass[metaclass.index()].iter().all(|c| *c == 0) {
            continue;
        }
        let shift =
            imagenetx_factors::prevalence_shift(&per_metaclass[metaclass.index()], &overall);
        let mut row = vec![Cell::text(metaclass.name())];
        row.extend(shift.iter().map(|s| Cell::Num(Some(*s))));
        table.push(row);
    }
    table
}

/// Spearman correlations between the factors and metaclass indicators of the annotations,
/// and their p-values: `(rho, p)`, square tables with a leading `factor` column.
pub fn factor_correlations(annotations: &Annotations) -> (Table, Table) {
    let columns = indicators(annotations);
    let matrix = spearman_matrix(&columns);
    let names: Vec<String> = std::iter::once("factor".to_string())
        .chain(columns.iter().map(|c| c.name.clone()))
        .collect();
    let (mut rho, mut p) = (Table::new(names.clone()), Table::new(names));
    for (column, row) in columns.iter().zip(&matrix) {
        let mut r = vec![Cell::text(&column.name)];
        let mut q = vec![Cell::text(&column.name)];
        r.extend(row.iter().map(|c| Cell::Num(c.map(|c| c.rho))));
        q.extend(row.iter().map(|c| Cell::Num(c.map(|c| c.p_value))));
        rho.push(r);
        p.push(q);
    }
    (rho, p)
}
