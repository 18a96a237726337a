//! Wilson bounds, exact McNemar p-values, Holm adjustments and percentile quantiles against
//! statsmodels and numpy, run by `python/stats_reference.py` with the reference venv
//! (`IMAGENETX_VENV`, default `<workspace>/.cache/venv`, made by `just venv`) on the same
//! counts.
//!
//! Floats travel as shortest round-trip strings. Values must agree to 1e-12 relative; a
//! Wilson bound that is 0 or 1 mathematically (0/n, n/n) may differ by rounding noise below
//! 1e-15 absolute. Quantiles must agree exactly (same definition, same arithmetic).

use std::io::Write;
use std::process::Stdio;

use imagenetx_factors::compare::{holm, mcnemar_exact};
use imagenetx_factors::intervals::{IntervalOptions, quantile_linear, wilson};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_distr::{Distribution, Gamma};
use serde_json::{Value, json};

fn reference(request: &Value) -> Value {
    let mut child = imagenetx_test_support::python_script("stats_reference.py")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the reference script");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write the request");
    let output = child.wait_with_output().expect("run the reference script");
    assert!(
        output.status.success(),
        "stats_reference.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON from the reference script")
}

/// The answer's list under `key`, which must be there and hold one entry per case: a missing
/// or renamed key, or a short list, fails instead of comparing nothing.
fn answers<'a>(answer: &'a Value, key: &str, cases: usize) -> &'a [Value] {
    let list = answer
        .get(key)
        .unwrap_or_else(|| panic!("stats_reference.py answered no `{key}`: {answer}"))
        .as_array()
        .unwrap_or_else(|| panic!("stats_reference.py: `{key}` is not a list"));
    assert!(cases > 0, "no `{key}` cases");
    assert_eq!(
        list.len(),
        cases,
        "stats_reference.py: {} `{key}` answers for {cases} cases",
        list.len()
    );
    list
}

fn float(v: &Value) -> f64 {
    v.as_str()
        .expect("float as string")
        .parse()
        .expect("a float")
}

fn relative(ours: f64, theirs: f64) -> f64 {
    if ours == theirs {
        0.0
    } else {
        (ours - theirs).abs() / ours.abs().max(theirs.abs())
    }
}

fn close(ours: f64, theirs: f64, abs: f64) -> bool {
    ours == theirs
        || (ours - theirs).abs() <= 1e-12 * ours.abs().max(theirs.abs())
        || (ours - theirs).abs() <= abs
}

#[test]
fn statistics_equal_statsmodels_and_numpy() {
    let wilson_cases: Vec<(u64, u64, f64)> = vec![
        (0, 1, 0.95),
        (1, 1, 0.95),
        (0, 2, 0.95),
        (1, 2, 0.95),
        (2, 2, 0.95),
        (1, 3, 0.95),
        (0, 5, 0.95),
        (5, 5, 0.95),
        (3, 7, 0.95),
        (1, 10, 0.95),
        (9, 10, 0.95),
        (0, 40, 0.95),
        (28, 40, 0.95),
        (40, 40, 0.95),
        (0, 100, 0.95),
        (50, 100, 0.95),
        (100, 100, 0.95),
        (160, 200, 0.95),
        (1, 1000, 0.95),
        (999, 1000, 0.95),
        (1800, 2000, 0.95),
        (37_541, 46_152, 0.95),
        (3, 7, 0.9),
        (0, 12, 0.9),
        (12, 12, 0.9),
        (3, 7, 0.99),
        (250, 300, 0.99),
        (3, 7, 0.5),
        (5, 8, 0.999),
        (46_000, 46_152, 0.95),
    ];
    let mcnemar_cases: Vec<(u64, u64)> = vec![
        (0, 0),
        (1, 0),
        (0, 1),
        (1, 1),
        (5, 0),
        (0, 5),
        (3, 3),
        (1, 5),
        (7, 8),
        (10, 20),
        (20, 10),
        (12, 30),
        (0, 40),
        (100, 130),
        (130, 100),
        (500, 560),
        (1000, 1200),
        (2500, 2700),
        (3000, 3001),
        (1, 60),
        (40, 90),
        (2, 200),
        (4000, 4400),
        (25, 24),
        (0, 1000),
        (17, 0),
    ];
    // Holm on the Rust McNemar p-values (the same inputs on both sides), in families of 16
    // as across the factors, plus small hand-made ones with ties and ones.
    let ours_p: Vec<f64> = mcnemar_cases
        .iter()
        .map(|&(b, c)| mcnemar_exact(b, c))
        .collect();
    let mut holm_cases: Vec<Vec<f64>> = vec![
        ours_p[..16].to_vec(),
        ours_p[10..].to_vec(),
        vec![0.01, 0.04, 0.03, 0.5],
        vec![0.02, 0.02, 0.02, 0.9, 1.0],
        vec![1.0],
        vec![0.001; 16],
    ];
    holm_cases.push((1..=16).map(|i| 0.003 * f64::from(i)).collect());
    // Quantiles at the interval's levels, on gamma-distributed "bootstrap values".
    let options = IntervalOptions::new(0.95, 2000, 0, 100).expect("valid");
    let (ql, qh) = options.quantile_levels();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let gamma = Gamma::new(3.0, 0.5).expect("valid gamma");
    let mut quantile_cases: Vec<(Vec<f64>, f64)> = Vec::new();
    for size in [1usize, 2, 3, 10, 399, 400, 1999, 2000] {
        let values: Vec<f64> = (0..size).map(|_| gamma.sample(&mut rng)).collect();
        for q in [ql, qh, 0.5, 0.1] {
            quantile_cases.push((values.clone(), q));
        }
    }

    let request = json!({
        "wilson": wilson_cases,
        "mcnemar": mcnemar_cases,
        "holm": holm_cases,
        "quantile": quantile_cases,
    });
    let answer = reference(&request);

    let mut failures = Vec::new();
    let (mut worst_wilson, mut worst_mcnemar) = (0.0f64, 0.0f64);
    for (case, theirs) in wilson_cases
        .iter()
        .zip(answers(&answer, "wilson", wilson_cases.len()))
    {
        let (count, nobs, confidence) = *case;
        let ours = wilson(count, nobs, confidence).expect("nobs > 0");
        let (low, high) = (float(&theirs[0]), float(&theirs[1]));
        if count > 0 && count < nobs {
            worst_wilson = worst_wilson
                .max(relative(ours.low, low))
                .max(relative(ours.high, high));
        }
        if !close(ours.low, low, 1e-15) || !close(ours.high, high, 1e-15) {
            failures.push(format!(
                "wilson {case:?}: ours [{}, {}], statsmodels [{low}, {high}]",
                ours.low, ours.high
            ));
        }
    }
    for ((case, ours), theirs) in
        mcnemar_cases
            .iter()
            .zip(&ours_p)
            .zip(answers(&answer, "mcnemar", mcnemar_cases.len()))
    {
        let theirs = float(theirs);
        worst_mcnemar = worst_mcnemar.max(relative(*ours, theirs));
        if !close(*ours, theirs, 0.0) {
            failures.push(format!(
                "mcnemar {case:?}: ours {ours:e}, statsmodels {theirs:e}"
            ));
        }
    }
    for (case, theirs) in holm_cases
        .iter()
        .zip(answers(&answer, "holm", holm_cases.len()))
    {
        let ours = holm(case);
        let theirs_list = theirs.as_array().expect("list");
        assert_eq!(
            (ours.len(), theirs_list.len()),
            (case.len(), case.len()),
            "holm {case:?}: one adjusted p-value per p-value: ours {ours:?}, statsmodels {theirs}"
        );
        for (o, t) in ours.iter().zip(theirs_list) {
            if !close(*o, float(t), 0.0) {
                failures.push(format!(
                    "holm {case:?}: ours {ours:?}, statsmodels {theirs}"
                ));
                break;
            }
        }
    }
    for ((values, q), theirs) in
        quantile_cases
            .iter()
            .zip(answers(&answer, "quantile", quantile_cases.len()))
    {
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let ours = quantile_linear(&sorted, *q).expect("non-empty");
        let theirs = float(theirs);
        if ours != theirs {
            failures.push(format!(
                "quantile n={} q={q}: ours {ours}, numpy {theirs}",
                values.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "{} Wilson, {} McNemar, {} Holm and {} quantile cases agree; largest relative differences: Wilson (0 < count < n) {worst_wilson:e}, McNemar {worst_mcnemar:e}",
        wilson_cases.len(),
        mcnemar_cases.len(),
        holm_cases.len(),
        quantile_cases.len()
    );
}
