//! Paired comparison of two models on the images both of them scored.
//!
//! Per factor: the accuracy difference `B − A` and the error-ratio difference `ER_B − ER_A`
//! (each model's error ratio computed over the paired images), both with a paired
//! percentile bootstrap interval; an exact McNemar test on the discordant pairs; and Holm's
//! step-down correction across the factors tested.
//!
//! The paired bootstrap resamples images jointly (an image brings both models' outcomes).
//! The statistics depend on the images only through the counts per cell
//! (factor set, A correct, B correct), so each replicate is a multinomial draw over those
//! cells, sampled by conditional binomials, with one ChaCha8 stream per replicate index:
//! see [`intervals`](crate::intervals) for the equivalence, the percentile definition and the
//! undefined-replicate rule, which apply here unchanged.
//!
//! McNemar (exact, two-sided): with `b` images only A got right and `c` images only B got
//! right, `p = min(1, 2·P(X ≤ min(b, c)))` for `X ~ Bin(b + c, 1/2)`, and `p = 1` when
//! `b + c = 0` (`statsmodels.stats.contingency_tables.mcnemar(exact=True)`).
//!
//! Holm (`statsmodels.stats.multitest.multipletests(method="holm")`): with the `m` p-values
//! sorted ascending, `p̃_(i) = min(1, max_{j ≤ i} (m − j + 1)·p_(j))`. The family is the
//! factors with at least one paired image; a factor is significant when `p̃ ≤ α`,
//! `α = 1 − confidence`.

use std::collections::HashMap;

use serde::Serialize;

use crate::analysis::{Counts, Outcome};
use crate::intervals::{
    Interval, IntervalOptions, bootstrap_cells, error_ratio, percentile_interval, set_key,
};
use crate::{Error, Result};
use imagenetx_vocab::{Annotations, N_FACTORS};
use imagenetx_vocab::{Factor, FactorSet};

/// Paired counts of a group of images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PairedCounts {
    /// Images both models scored.
    pub images: u64,
    /// Of them, predicted correctly by A.
    pub a_correct: u64,
    /// Of them, predicted correctly by B.
    pub b_correct: u64,
    /// Correct for A and wrong for B (McNemar's `b`).
    pub a_only: u64,
    /// Wrong for A and correct for B (McNemar's `c`).
    pub b_only: u64,
}

impl PairedCounts {
    fn add(&mut self, a: bool, b: bool, x: u64) {
        self.images += x;
        self.a_correct += if a { x } else { 0 };
        self.b_correct += if b { x } else { 0 };
        self.a_only += if a && !b { x } else { 0 };
        self.b_only += if b && !a { x } else { 0 };
    }

    /// A's counts.
    pub fn a(&self) -> Counts {
        Counts {
            images: self.images,
            correct: self.a_correct,
        }
    }

    /// B's counts.
    pub fn b(&self) -> Counts {
        Counts {
            images: self.images,
            correct: self.b_correct,
        }
    }

    /// Accuracy of B minus accuracy of A; `None` without images.
    pub fn accuracy_diff(&self) -> Option<f64> {
        Some(self.b().accuracy()? - self.a().accuracy()?)
    }
}

/// `ER_B − ER_A` of a factor group within an overall group.
fn error_ratio_diff(factor: &PairedCounts, overall: &PairedCounts) -> Option<f64> {
    Some(error_ratio(factor.b(), overall.b())? - error_ratio(factor.a(), overall.a())?)
}

/// The comparison on one factor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FactorComparison {
    /// The factor.
    pub factor: Factor,
    /// Paired counts on the factor's images.
    pub counts: PairedCounts,
    /// A's accuracy on the factor.
    pub accuracy_a: Option<f64>,
    /// B's accuracy on the factor.
    pub accuracy_b: Option<f64>,
    /// `accuracy_b − accuracy_a`.
    pub accuracy_diff: Option<f64>,
    /// Paired bootstrap interval of the accuracy difference.
    pub accuracy_diff_interval: Option<Interval>,
    /// A's error ratio on the paired images.
    pub error_ratio_a: Option<f64>,
    /// B's error ratio on the paired images.
    pub error_ratio_b: Option<f64>,
    /// `error_ratio_b − error_ratio_a`.
    pub error_ratio_diff: Option<f64>,
    /// Paired bootstrap interval of the error-ratio difference.
    pub error_ratio_diff_interval: Option<Interval>,
    /// Replicates where the error-ratio difference was undefined (dropped).
    pub undefined_replicates: u32,
    /// Exact McNemar p-value; `None` when the factor has no paired image (not tested).
    pub p_value: Option<f64>,
    /// Holm-adjusted p-value across the factors tested.
    pub p_holm: Option<f64>,
    /// `p_holm ≤ 1 − confidence`.
    pub significant: bool,
    /// Fewer paired images than the small-sample threshold.
    pub small_sample: bool,
}

/// The paired comparison of model B against model A.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Model A (the baseline).
    pub model_a: String,
    /// Model B.
    pub model_b: String,
    /// How intervals and tests were computed.
    pub options: IntervalOptions,
    /// Paired counts over every image both models scored.
    pub overall: PairedCounts,
    /// Images scored by A only (left out).
    pub scored_by_a_only: u64,
    /// Images scored by B only (left out).
    pub scored_by_b_only: u64,
    /// Paired bootstrap interval of the overall accuracy difference.
    pub accuracy_diff_interval: Option<Interval>,
    /// Exact McNemar p-value over every paired image (not part of the Holm family).
    pub p_value: f64,
    /// Per factor, in [`Factor::ALL`] order.
    pub factors: [FactorComparison; N_FACTORS],
}

impl Comparison {
    /// The factors where the models differ significantly, in [`Factor::ALL`] order.
    pub fn significant(&self) -> impl Iterator<Item = &FactorComparison> {
        self.factors.iter().filter(|f| f.significant)
    }
}

/// Exact two-sided McNemar p-value for `b` and `c` discordant pairs.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    (2.0 * binomial_half_cdf(b.min(c), n)).min(1.0)
}

/// `P(X ≤ k)` for `X ~ Bin(n, 1/2)`, `k ≤ n / 2`, to a few ulps.
///
/// statrs' binomial CDF (a regularized incomplete beta by continued fraction) drifts by
/// up to ~1e-11 relative from scipy's for `n` in the thousands, which is where McNemar
/// tests on ImageNet-X factors live. Here the largest term `P(X = k)` comes from Loader's
/// saddle-point expansion (R's `dbinom_raw`, accurate to a few ulps for any `n`), and the
/// tail is `P(X = k) · Σ_j Π_{i=k−j+1}^{k} i / (n − i + 1)`, summed smallest term first.
/// Up to `n = 120` the sum of binomial coefficients is exact in integers instead.
fn binomial_half_cdf(k: u64, n: u64) -> f64 {
    if k >= n {
        return 1.0;
    }
    if n <= 120 {
        // Exact: the binomial coefficients fit in u128, the sum is rounded once and the
        // power of two is exact.
        let mut coefficient: u128 = 1;
        let mut sum: u128 = 1;
        for i in 1..=u128::from(k) {
            coefficient = coefficient * (u128::from(n) - i + 1) / i;
            sum += coefficient;
        }
        return sum as f64 * 0.5f64.powi(n as i32);
    }
    let top = binomial_half_pmf(k, n);
    // Ratios P(X = i − 1) / P(X = i) = i / (n − i + 1) ≤ 1 for i ≤ k ≤ n / 2.
    let mut terms = Vec::new();
    let mut term = 1.0f64;
    terms.push(term);
    for i in (1..=k).rev() {
        term *= i as f64 / (n - i + 1) as f64;
        if term < 1e-18 {
            break;
        }
        terms.push(term);
    }
    let sum: f64 = terms.iter().rev().sum();
    (top * sum).min(1.0)
}

/// `P(X = x)` for `X ~ Bin(n, 1/2)` by Loader's saddle-point expansion.
fn binomial_half_pmf(x: u64, n: u64) -> f64 {
    if x == 0 || x == n {
        return 0.5f64.powi(i32::try_from(n).unwrap_or(i32::MAX));
    }
    let (xf, nf) = (x as f64, n as f64);
    let half = nf / 2.0;
    let lc = stirlerr(nf) - stirlerr(xf) - stirlerr(nf - xf) - bd0(xf, half) - bd0(nf - xf, half);
    let lf = (2.0 * std::f64::consts::PI).ln() + xf.ln() + (-xf / nf).ln_1p();
    (lc - 0.5 * lf).exp()
}

/// `ln(n!) − ln(√(2πn) (n/e)^n)` for an integer `n ≥ 1`.
fn stirlerr(n: f64) -> f64 {
    const S0: f64 = 1.0 / 12.0;
    const S1: f64 = 1.0 / 360.0;
    const S2: f64 = 1.0 / 1260.0;
    const S3: f64 = 1.0 / 1680.0;
    const S4: f64 = 1.0 / 1188.0;
    if n <= 15.0 {
        // n! is exact in f64 up to 15!, and the cancellation here is mild.
        let factorial: f64 = (1..=n as u32).map(f64::from).product();
        return factorial.ln() - (n + 0.5) * n.ln() + n - 0.5 * (2.0 * std::f64::consts::PI).ln();
    }
    let nn = n * n;
    if n > 500.0 {
        (S0 - S1 / nn) / n
    } else if n > 80.0 {
        (S0 - (S1 - S2 / nn) / nn) / n
    } else if n > 35.0 {
        (S0 - (S1 - (S2 - S3 / nn) / nn) / nn) / n
    } else {
        (S0 - (S1 - (S2 - (S3 - S4 / nn) / nn) / nn) / nn) / n
    }
}

/// `x ln(x / m) + m − x`, the deviance term of Loader's expansion, without cancellation.
fn bd0(x: f64, m: f64) -> f64 {
    if (x - m).abs() < 0.1 * (x + m) {
        let v = (x - m) / (x + m);
        let mut s = (x - m) * v;
        let mut ej = 2.0 * x * v;
        let v2 = v * v;
        for j in 1..1000 {
            ej *= v2;
            let s1 = s + ej / f64::from(2 * j + 1);
            if s1 == s {
                return s1;
            }
            s = s1;
        }
        s
    } else {
        x * (x / m).ln() + m - x
    }
}

/// Holm's step-down adjusted p-values, in the order given (see the module docs). Ties keep
/// their input order; the adjusted values do not depend on it.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p_values[i].total_cmp(&p_values[j]));
    let mut adjusted = vec![0.0; m];
    let mut running = f64::NEG_INFINITY;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max((m - rank) as f64 * p_values[i]);
        adjusted[i] = running.min(1.0);
    }
    adjusted
}

/// Compares model B against model A on the images both scored. `outcomes_a` and
/// `outcomes_b` are the models' [`outcomes`](crate::outcomes), aligned with `annotations`.
pub fn compare(
    annotations: &Annotations,
    model_a: &str,
    outcomes_a: &[Outcome],
    model_b: &str,
    outcomes_b: &[Outcome],
    options: &IntervalOptions,
) -> Result<Comparison> {
    for (model, outcomes) in [(model_a, outcomes_a), (model_b, outcomes_b)] {
        if outcomes.len() != annotations.len() {
            return Err(Error::Misaligned {
                model: model.to_string(),
                predictions: outcomes.len(),
                images: annotations.len(),
            });
        }
    }
    type Cell = (FactorSet, bool, bool);
    let mut index: HashMap<Cell, usize> = HashMap::new();
    let mut cells: Vec<Cell> = Vec::new();
    let mut weights: Vec<u64> = Vec::new();
    let (mut only_a, mut only_b) = (0u64, 0u64);
    for ((image, a), b) in annotations.images().iter().zip(outcomes_a).zip(outcomes_b) {
        let (a, b) = match (a.correct(), b.correct()) {
            (Some(a), Some(b)) => (a, b),
            (Some(_), None) => {
                only_a += 1;
                continue;
            }
            (None, Some(_)) => {
                only_b += 1;
                continue;
            }
            (None, None) => continue,
        };
        let k = *index.entry((image.factors, a, b)).or_insert_with(|| {
            cells.push((image.factors, a, b));
            weights.push(0);
            cells.len() - 1
        });
        weights[k] += 1;
    }
    let mut order: Vec<usize> = (0..cells.len()).collect();
    order.sort_by_key(|&k| (set_key(cells[k].0), cells[k].1, cells[k].2));
    let cells: Vec<Cell> = order.iter().map(|&k| cells[k]).collect();
    let weights: Vec<u64> = order.iter().map(|&k| weights[k]).collect();

    let members: Vec<Vec<usize>> = cells
        .iter()
        .map(|(set, _, _)| set.iter().map(Factor::index).collect())
        .collect();
    let tally = |counts: &[u64]| {
        let mut overall = PairedCounts::default();
        let mut factors = [PairedCounts::default(); N_FACTORS];
        for ((&(_, a, b), factor_indices), &x) in cells.iter().zip(&members).zip(counts) {
            if x == 0 {
                continue;
            }
            overall.add(a, b, x);
            for &f in factor_indices {
                factors[f].add(a, b, x);
            }
        }
        (overall, factors)
    };
    let (overall, factor_counts) = tally(&weights);
    // Per replicate: overall accuracy difference, then per factor (accuracy difference,
    // error-ratio difference).
    let replicates = bootstrap_cells(&weights, options.replicates(), options.seed(), |counts| {
        let (overall, factors) = tally(counts);
        (
            overall.accuracy_diff(),
            factors.map(|f| (f.accuracy_diff(), error_ratio_diff(&f, &overall))),
        )
    });
    let (accuracy_diff_interval, _) = percentile_interval(replicates.iter().map(|r| r.0), options);

    let p_values: [Option<f64>; N_FACTORS] =
        factor_counts.map(|c| (c.images > 0).then(|| mcnemar_exact(c.a_only, c.b_only)));
    let tested: Vec<f64> = p_values.iter().flatten().copied().collect();
    let mut adjusted = holm(&tested).into_iter();
    let p_holm: [Option<f64>; N_FACTORS] = p_values.map(|p| p.and_then(|_| adjusted.next()));

    let factors = Factor::ALL.map(|factor| {
        let f = factor.index();
        let counts = factor_counts[f];
        let accuracy_diff = counts.accuracy_diff();
        let (acc_interval, _) = percentile_interval(replicates.iter().map(|r| r.1[f].0), options);
        let error_ratio_diff = error_ratio_diff(&counts, &overall);
        let (er_interval, undefined) =
            percentile_interval(replicates.iter().map(|r| r.1[f].1), options);
        FactorComparison {
            factor,
            counts,
            accuracy_a: counts.a().accuracy(),
            accuracy_b: counts.b().accuracy(),
            accuracy_diff,
            accuracy_diff_interval: acc_interval.filter(|_| accuracy_diff.is_some()),
            error_ratio_a: error_ratio(counts.a(), overall.a()),
            error_ratio_b: error_ratio(counts.b(), overall.b()),
            error_ratio_diff,
            error_ratio_diff_interval: er_interval.filter(|_| error_ratio_diff.is_some()),
            undefined_replicates: undefined,
            p_value: p_values[f],
            p_holm: p_holm[f],
            significant: p_holm[f].is_some_and(|p| p <= options.alpha()),
            small_sample: counts.images < options.min_images(),
        }
    });
    Ok(Comparison {
        model_a: model_a.to_string(),
        model_b: model_b.to_string(),
        options: *options,
        overall,
        scored_by_a_only: only_a,
        scored_by_b_only: only_b,
        accuracy_diff_interval,
        p_value: mcnemar_exact(overall.a_only, overall.b_only),
        factors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_by_hand() {
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        assert_eq!(mcnemar_exact(3, 3), 1.0);
        // b + c = 5, min 0: 2 · (1/2)^5.
        assert!((mcnemar_exact(5, 0) - 2.0 / 32.0).abs() < 1e-15);
        // min 1 of 6: 2 · 7/64.
        assert!((mcnemar_exact(1, 5) - 14.0 / 64.0).abs() < 1e-15);
        // Loader's pmf against exact small cases: C(20, 7) / 2^20 and C(100, 50) / 2^100;
        // the saddle-point CDF against the exact one at n = 120.
        let exact = 77_520.0 / 1_048_576.0;
        assert!((binomial_half_pmf(7, 20) / exact - 1.0).abs() < 1e-14);
        let c100_50 = 1.008_913_445_455_642e29;
        let exact = c100_50 / 2f64.powi(100);
        assert!((binomial_half_pmf(50, 100) / exact - 1.0).abs() < 1e-14);
        for k in [3, 20, 45, 60] {
            let exact = binomial_half_cdf(k, 120);
            let top = binomial_half_pmf(k, 120);
            let mut sum = 0.0;
            let mut term = 1.0;
            for i in (0..=k).rev() {
                sum += term;
                term *= i as f64 / (120 - i + 1) as f64;
            }
            assert!((top * sum / exact - 1.0).abs() < 1e-13, "k = {k}");
        }
    }

    #[test]
    fn holm_by_hand() {
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.5]);
        // Sorted 0.01·4, 0.03·3, 0.04·2, 0.5·1 → 0.04, 0.09, 0.09 (max), 0.5.
        let expected = [0.04, 0.09, 0.09, 0.5];
        for (a, e) in adjusted.iter().zip(expected) {
            assert!((a - e).abs() < 1e-15, "{adjusted:?}");
        }
        assert_eq!(holm(&[0.6, 0.6]), vec![1.0, 1.0]);
        assert!(holm(&[]).is_empty());
    }
}
