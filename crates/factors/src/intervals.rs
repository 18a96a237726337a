//! Confidence intervals for per-factor accuracies and error ratios.
//!
//! * Accuracy: the Wilson score interval, in closed form
//!   (`statsmodels.stats.proportion.proportion_confint(method="wilson")`, bounds clipped to
//!   [0, 1] as statsmodels clips them).
//! * Error ratio: a percentile bootstrap over images. Each replicate resamples the model's
//!   scored images with replacement and recomputes both the factor accuracy and the average
//!   from that one resample, so numerator and denominator move together.
//!
//! # Resampling by cells
//!
//! Every statistic here depends on the images only through how many of them fall in each
//! distinct *cell* (for one model: a pair (factor set, correct)). Drawing `n` images with
//! replacement from `n` images and counting them per cell gives cell counts that follow a
//! multinomial distribution with `n` trials and cell probabilities `c_k / n` (`c_k` the
//! observed count of cell `k`): each draw picks image `i` with probability `1/n`, hence cell
//! `k` with probability `c_k / n`, independently. A multinomial draw is sampled exactly by
//! conditional binomials: `x_1 ~ Bin(n, c_1 / n)`, then
//! `x_k ~ Bin(n − x_1 − … − x_{k−1}, c_k / (c_k + … + c_K))`, and the last cell takes what is
//! left. That is `O(cells)` work per replicate instead of `O(n)`, with the same distribution
//! of the statistic as resampling images one by one.
//!
//! # Reproducibility
//!
//! Replicate `r` draws from its own ChaCha8 stream: seeded with the user's seed and
//! `set_stream(r)`. A replicate's values depend only on `(seed, r)`, so results are the same
//! whatever the number of threads the replicates run on.
//!
//! # Percentiles
//!
//! Interval bounds are the `α/2` and `1 − α/2` quantiles (`α = 1 − confidence`) of the
//! defined replicate values, with numpy's default definition (`np.quantile(x, q)`,
//! `method="linear"`, Hyndman & Fan type 7): with the values sorted, `h = (m − 1)·q`,
//! `lo = ⌊h⌋`, `g = h − lo`, result `x[lo] + g·(x[lo+1] − x[lo])` when `g < 0.5` and
//! `x[lo+1] − (1 − g)·(x[lo+1] − x[lo])` otherwise (numpy's `_lerp`), `x[m−1]` when
//! `h ≥ m − 1`. See [`quantile_linear`].
//!
//! # Undefined replicates
//!
//! A replicate's error ratio is undefined when the resample has no image of the factor or
//! no error at all. Such replicates are dropped and counted
//! ([`FactorIntervals::undefined_replicates`]). When more than `α/2` of the replicates are
//! undefined, a percentile bound would be conditioned on an event that is itself not rare
//! at the interval's level, so no interval is reported (`None`).

use std::collections::HashMap;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_distr::{Binomial, Distribution};
use rayon::prelude::*;
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

use crate::analysis::{Counts, Outcome};
use crate::calibration::pandas_ratio;
use crate::{Error, Result};
use imagenetx_vocab::{Annotations, N_FACTORS};
use imagenetx_vocab::{Factor, FactorSet};

/// Default number of bootstrap replicates.
pub const DEFAULT_REPLICATES: u32 = 2000;
/// Default confidence level.
pub const DEFAULT_CONFIDENCE: f64 = 0.95;
/// Default seed of the bootstrap.
pub const DEFAULT_SEED: u64 = 0;
/// Default small-sample threshold: a factor with fewer images is flagged. At 100 images a
/// 95% Wilson interval around an accuracy of 0.8 is already ±0.08 wide, and the error
/// ratio's interval several tenths wide: differences between models there are rarely real.
pub const DEFAULT_MIN_IMAGES: u64 = 100;

/// A confidence level outside (0, 1).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("confidence level {0} is not strictly between 0 and 1 (use e.g. 0.95)")]
pub struct InvalidConfidence(pub f64);

/// How intervals are computed. Build it with [`IntervalOptions::new`], which validates it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IntervalOptions {
    confidence: f64,
    replicates: u32,
    seed: u64,
    min_images: u64,
}

impl Default for IntervalOptions {
    fn default() -> Self {
        IntervalOptions {
            confidence: DEFAULT_CONFIDENCE,
            replicates: DEFAULT_REPLICATES,
            seed: DEFAULT_SEED,
            min_images: DEFAULT_MIN_IMAGES,
        }
    }
}

impl IntervalOptions {
    /// Validated options: `confidence` strictly between 0 and 1; `replicates` 0 turns the
    /// bootstrap off (no error-ratio intervals); factors with fewer than `min_images` images
    /// are flagged as small samples.
    pub fn new(
        confidence: f64,
        replicates: u32,
        seed: u64,
        min_images: u64,
    ) -> std::result::Result<Self, InvalidConfidence> {
        if !(confidence > 0.0 && confidence < 1.0) {
            return Err(InvalidConfidence(confidence));
        }
        Ok(IntervalOptions {
            confidence,
            replicates,
            seed,
            min_images,
        })
    }

    /// The confidence level.
    pub fn confidence(&self) -> f64 {
        self.confidence
    }

    /// `1 − confidence`: the significance level of the paired tests.
    pub fn alpha(&self) -> f64 {
        1.0 - self.confidence
    }

    /// Bootstrap replicates (0: no bootstrap).
    pub fn replicates(&self) -> u32 {
        self.replicates
    }

    /// Seed of the bootstrap.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The small-sample threshold.
    pub fn min_images(&self) -> u64 {
        self.min_images
    }

    /// The lower and upper quantile levels of a two-sided interval: `α/2` and `1 − α/2`.
    pub fn quantile_levels(&self) -> (f64, f64) {
        let half = self.alpha() / 2.0;
        (half, 1.0 - half)
    }
}

/// A two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

impl Interval {
    /// Whether `x` lies in the closed interval.
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// The standard normal quantile `z` with `P(Z > z) = tail` (scipy's `norm.isf(tail)`).
pub fn normal_isf(tail: f64) -> f64 {
    // `Normal::standard()` has valid parameters by construction.
    let normal = Normal::standard();
    -normal.inverse_cdf(tail)
}

/// The Wilson score interval for `correct` successes out of `images` at `confidence`, with
/// statsmodels' formula and its clipping to [0, 1]; the lower bound of 0/n is exactly 0 and
/// the upper bound of n/n exactly 1. `None` when `images` is 0.
pub fn wilson(correct: u64, images: u64, confidence: f64) -> Option<Interval> {
    if images == 0 {
        return None;
    }
    let n = images as f64;
    let q = correct as f64 / n;
    let crit = normal_isf((1.0 - confidence) / 2.0);
    let crit2 = crit * crit;
    let denom = 1.0 + crit2 / n;
    let center = (q + crit2 / (2.0 * n)) / denom;
    let dist = crit * (q * (1.0 - q) / n + crit2 / (4.0 * (n * n))).sqrt() / denom;
    // At 0/n and n/n the bound is 0 (1) exactly; the formula leaves rounding noise there.
    Some(Interval {
        low: if correct == 0 {
            0.0
        } else {
            (center - dist).clamp(0.0, 1.0)
        },
        high: if correct == images {
            1.0
        } else {
            (center + dist).clamp(0.0, 1.0)
        },
    })
}

/// The `q`-quantile of `sorted` (ascending, no NaN) with numpy's default linear definition
/// (see the module docs). `None` for an empty slice.
pub fn quantile_linear(sorted: &[f64], q: f64) -> Option<f64> {
    let m = sorted.len();
    if m == 0 {
        return None;
    }
    let h = (m - 1) as f64 * q;
    if h >= (m - 1) as f64 {
        return Some(sorted[m - 1]);
    }
    if h < 0.0 {
        return Some(sorted[0]);
    }
    let lo = h.floor();
    let g = h - lo;
    let lo = lo as usize;
    let (a, b) = (sorted[lo], sorted[lo + 1]);
    let diff = b - a;
    Some(if g >= 0.5 {
        b - diff * (1.0 - g)
    } else {
        a + diff * g
    })
}

/// The percentile interval of bootstrap values with the undefined-replicate rule of the
/// module docs, and how many values were undefined.
pub(crate) fn percentile_interval(
    values: impl Iterator<Item = Option<f64>>,
    options: &IntervalOptions,
) -> (Option<Interval>, u32) {
    let mut defined: Vec<f64> = Vec::new();
    let mut undefined = 0u32;
    for v in values {
        match v {
            Some(x) if !x.is_nan() => defined.push(x),
            _ => undefined += 1,
        }
    }
    let total = defined.len() as f64 + f64::from(undefined);
    if defined.is_empty() || f64::from(undefined) > options.alpha() / 2.0 * total {
        return (None, undefined);
    }
    defined.sort_by(f64::total_cmp);
    let (ql, qh) = options.quantile_levels();
    let interval = quantile_linear(&defined, ql)
        .zip(quantile_linear(&defined, qh))
        .map(|(low, high)| Interval { low, high });
    (interval, undefined)
}

/// Draws cell counts of one bootstrap replicate: `n = Σ weights` draws with replacement,
/// cell `k` with probability `weights[k] / n`, as conditional binomials (module docs).
fn multinomial_draw(rng: &mut ChaCha8Rng, weights: &[u64], out: &mut [u64]) {
    let mut left_n: u64 = weights.iter().sum();
    let mut left_w = left_n;
    for (k, (&w, x)) in weights.iter().zip(out.iter_mut()).enumerate() {
        if left_n == 0 || w == 0 {
            *x = 0;
        } else if w == left_w || k + 1 == weights.len() {
            *x = left_n;
        } else {
            let p = w as f64 / left_w as f64;
            // 0 < p < 1 here, so the distribution is valid; fall back to the mean otherwise.
            *x = Binomial::new(left_n, p)
                .map(|b| b.sample(rng))
                .unwrap_or(left_n);
        }
        left_n -= *x;
        left_w -= w;
    }
}

/// Runs `replicates` bootstrap replicates over cells with observed counts `weights`,
/// evaluating `statistic` on each replicate's cell counts. Replicate `r` uses ChaCha8 stream
/// `r` of `seed`; the result is in replicate order whatever the thread count.
pub(crate) fn bootstrap_cells<T, F>(
    weights: &[u64],
    replicates: u32,
    seed: u64,
    statistic: F,
) -> Vec<T>
where
    T: Send,
    F: Fn(&[u64]) -> T + Sync,
{
    (0..replicates)
        .into_par_iter()
        .map_init(
            || vec![0u64; weights.len()],
            |counts, r| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(u64::from(r));
                multinomial_draw(&mut rng, weights, counts);
                statistic(counts)
            },
        )
        .collect()
}

/// A stable sort key for a factor set (its bits in [`Factor::ALL`] order).
pub(crate) fn set_key(set: FactorSet) -> u16 {
    set.iter().fold(0u16, |key, f| key | (1 << f.index()))
}

/// The error ratio `(1 − correct_f / n_f) / (1 − correct / n)` as the analysis computes it.
pub(crate) fn error_ratio(factor: Counts, overall: Counts) -> Option<f64> {
    let accuracy = factor.accuracy()?;
    let average = overall.accuracy()?;
    pandas_ratio(1.0 - accuracy, 1.0 - average)
}

/// The intervals of one factor for one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FactorIntervals {
    /// The factor.
    pub factor: Factor,
    /// Images of the factor and how many were correct.
    pub counts: Counts,
    /// Accuracy on the factor.
    pub accuracy: Option<f64>,
    /// Wilson interval of the accuracy.
    pub accuracy_interval: Option<Interval>,
    /// Error ratio of the factor.
    pub error_ratio: Option<f64>,
    /// Bootstrap percentile interval of the error ratio (`None` without bootstrap, when the
    /// error ratio is undefined, or when too many replicates were undefined).
    pub error_ratio_interval: Option<Interval>,
    /// Bootstrap replicates where the error ratio was undefined (dropped).
    pub undefined_replicates: u32,
    /// Fewer images than the small-sample threshold.
    pub small_sample: bool,
}

/// The intervals of one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelIntervals {
    /// How they were computed.
    pub options: IntervalOptions,
    /// Scored images.
    pub overall: Counts,
    /// Wilson interval of the average accuracy.
    pub average_interval: Option<Interval>,
    /// Per factor, in [`Factor::ALL`] order.
    pub factors: [FactorIntervals; N_FACTORS],
}

/// Computes accuracy and error-ratio intervals of one model from its
/// [`outcomes`](crate::outcomes) (aligned with `annotations`). Images left out (missing,
/// excluded) take no part, as in [`analyze`](crate::analyze).
pub fn model_intervals(
    annotations: &Annotations,
    outcomes: &[Outcome],
    options: &IntervalOptions,
) -> Result<ModelIntervals> {
    if outcomes.len() != annotations.len() {
        return Err(Error::Misaligned {
            model: String::new(),
            predictions: outcomes.len(),
            images: annotations.len(),
        });
    }
    // Cells (factor set, correct) with their counts, in a fixed order.
    let mut index: HashMap<(FactorSet, bool), usize> = HashMap::new();
    let mut cells: Vec<(FactorSet, bool)> = Vec::new();
    let mut weights: Vec<u64> = Vec::new();
    for (image, outcome) in annotations.images().iter().zip(outcomes) {
        let Some(correct) = outcome.correct() else {
            continue;
        };
        let k = *index.entry((image.factors, correct)).or_insert_with(|| {
            cells.push((image.factors, correct));
            weights.push(0);
            cells.len() - 1
        });
        weights[k] += 1;
    }
    let mut order: Vec<usize> = (0..cells.len()).collect();
    order.sort_by_key(|&k| (set_key(cells[k].0), cells[k].1));
    let cells: Vec<(FactorSet, bool)> = order.iter().map(|&k| cells[k]).collect();
    let weights: Vec<u64> = order.iter().map(|&k| weights[k]).collect();

    let members: Vec<Vec<usize>> = cells
        .iter()
        .map(|(set, _)| set.iter().map(Factor::index).collect())
        .collect();
    let tally = |counts: &[u64]| {
        let mut overall = Counts::default();
        let mut factors = [Counts::default(); N_FACTORS];
        for ((&(_, correct), factor_indices), &x) in cells.iter().zip(&members).zip(counts) {
            if x == 0 {
                continue;
            }
            let right = if correct { x } else { 0 };
            overall.images += x;
            overall.correct += right;
            for &f in factor_indices {
                factors[f].images += x;
                factors[f].correct += right;
            }
        }
        (overall, factors)
    };
    let (overall, factor_counts) = tally(&weights);
    let replicates = bootstrap_cells(&weights, options.replicates, options.seed, |counts| {
        let (overall, factors) = tally(counts);
        factors.map(|f| error_ratio(f, overall))
    });

    let factors = Factor::ALL.map(|factor| {
        let counts = factor_counts[factor.index()];
        let point = error_ratio(counts, overall);
        let (interval, undefined) =
            percentile_interval(replicates.iter().map(|r| r[factor.index()]), options);
        FactorIntervals {
            factor,
            counts,
            accuracy: counts.accuracy(),
            accuracy_interval: wilson(counts.correct, counts.images, options.confidence),
            error_ratio: point,
            error_ratio_interval: interval.filter(|_| point.is_some()),
            undefined_replicates: undefined,
            small_sample: counts.images < options.min_images,
        }
    });
    Ok(ModelIntervals {
        options: *options,
        overall,
        average_interval: wilson(overall.correct, overall.images, options.confidence),
        factors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_matches_numpy_by_hand() {
        let x = [1.0, 2.0, 4.0, 8.0];
        // h = 3 * 0.5 = 1.5 → g = 0.5 ≥ 0.5: 4 − 0.5·2 = 3.
        assert_eq!(quantile_linear(&x, 0.5), Some(3.0));
        // h = 0.3 → 1 + 0.3·1.
        assert_eq!(quantile_linear(&x, 0.1), Some(1.0 + 0.3 * 1.0));
        assert_eq!(quantile_linear(&x, 1.0), Some(8.0));
        assert_eq!(quantile_linear(&x, 0.0), Some(1.0));
        assert_eq!(quantile_linear(&[], 0.5), None);
        assert_eq!(quantile_linear(&[5.0], 0.975), Some(5.0));
    }

    #[test]
    fn wilson_is_inside_unit_interval_and_centered_by_hand() {
        let i = wilson(0, 10, 0.95).expect("n > 0");
        assert_eq!(i.low, 0.0);
        assert!(i.high > 0.0 && i.high < 0.4);
        let i = wilson(10, 10, 0.95).expect("n > 0");
        assert_eq!(i.high, 1.0);
        assert!(wilson(0, 0, 0.95).is_none());
        // 50/100 at z: center 0.5, half-width z·sqrt(0.25/100 + z²/40000)/(1 + z²/100).
        let z = normal_isf(0.025);
        let i = wilson(50, 100, 0.95).expect("n > 0");
        let half = z * (0.0025 + z * z / 40000.0).sqrt() / (1.0 + z * z / 100.0);
        assert!((i.low - (0.5 - half)).abs() < 1e-15 && (i.high - (0.5 + half)).abs() < 1e-15);
    }

    #[test]
    fn multinomial_draw_preserves_the_total_and_empty_cells() {
        let weights = [5, 0, 10, 1, 0];
        let mut out = [0u64; 5];
        for r in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            rng.set_stream(r);
            multinomial_draw(&mut rng, &weights, &mut out);
            assert_eq!(out.iter().sum::<u64>(), 16);
            assert_eq!((out[1], out[4]), (0, 0));
        }
    }

    /// The cell multinomial and resampling images one by one give the same distribution of
    /// the error ratio: equal means and standard deviations within Monte Carlo error.
    #[test]
    fn cell_draws_match_image_resampling_in_distribution() {
        use rand_distr::Uniform;
        // Images: (in factor, correct). 60 factor images (20 wrong), 240 others (30 wrong).
        let images: Vec<(bool, bool)> = (0..300)
            .map(|i| (i < 60, if i < 60 { i % 3 != 0 } else { i % 8 != 0 }))
            .collect();
        let ratio = |images: &mut dyn Iterator<Item = (bool, bool)>| {
            let (mut f, mut all) = (Counts::default(), Counts::default());
            for (in_factor, correct) in images {
                all.images += 1;
                all.correct += u64::from(correct);
                if in_factor {
                    f.images += 1;
                    f.correct += u64::from(correct);
                }
            }
            error_ratio(f, all).unwrap_or(f64::NAN)
        };
        let cells = [(true, true), (true, false), (false, true), (false, false)];
        let weights: Vec<u64> = cells
            .iter()
            .map(|c| images.iter().filter(|i| *i == c).count() as u64)
            .collect();
        const R: u32 = 20_000;
        let by_cells = bootstrap_cells(&weights, R, 11, |counts| {
            let mut it = cells
                .iter()
                .zip(counts)
                .flat_map(|(c, &x)| std::iter::repeat_n(*c, x as usize));
            ratio(&mut it)
        });
        let pick = Uniform::new(0, images.len()).expect("non-empty");
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let by_images: Vec<f64> = (0..R)
            .map(|_| {
                let mut it = (0..images.len()).map(|_| images[pick.sample(&mut rng)]);
                ratio(&mut it)
            })
            .collect();
        let moments = |x: &[f64]| {
            let n = x.len() as f64;
            let mean = x.iter().sum::<f64>() / n;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
            (mean, var.sqrt())
        };
        let ((m1, s1), (m2, s2)) = (moments(&by_cells), moments(&by_images));
        // Standard error of each mean is s/√R ≈ 0.0016 here; of each sd about s/√(2R).
        let se_mean = (s1 * s1 / f64::from(R) + s2 * s2 / f64::from(R)).sqrt();
        assert!((m1 - m2).abs() < 4.0 * se_mean, "means {m1} vs {m2}");
        let se_sd = s1 / f64::from(2 * R).sqrt() * 2f64.sqrt();
        assert!((s1 - s2).abs() < 4.0 * se_sd, "sds {s1} vs {s2}");
    }

    #[test]
    fn invalid_confidence_is_an_error() {
        assert!(IntervalOptions::new(1.0, 10, 0, 1).is_err());
        assert!(IntervalOptions::new(f64::NAN, 10, 0, 1).is_err());
        assert!(IntervalOptions::new(0.9, 0, 0, 1).is_ok());
    }

    #[test]
    fn too_many_undefined_replicates_give_no_interval() {
        let options = IntervalOptions::new(0.95, 100, 0, 1).expect("valid");
        // 2 of 100 undefined (≤ 2.5%): kept.
        let values = (0..100).map(|i| (i >= 2).then_some(f64::from(i)));
        let (interval, undefined) = percentile_interval(values, &options);
        assert_eq!(undefined, 2);
        assert!(interval.is_some());
        let values = (0..100).map(|i| (i >= 3).then_some(f64::from(i)));
        assert_eq!(percentile_interval(values, &options), (None, 3));
    }
}
