//! Expected calibration error, as the toolkit's `aggregate.estimated_calibration_error`.
//!
//! The toolkit bins probabilities with `np.searchsorted(np.linspace(0, 1, 16)[1:-1], p)`
//! (a probability on an inner edge goes to the lower bin), sums each bin in data order
//! (`np.bincount` with weights), and adds the per-bin terms with `np.sum`'s pairwise
//! summation. Each step is reproduced here in the same order, so results agree bit for bit.

/// Number of bins.
pub const N_BINS: usize = 15;

/// The inner bin edges `np.linspace(0.0, 1.0, 16)[1:-1]`: `k * (1 / 15)` for k in 1..15.
fn inner_edges() -> [f64; N_BINS - 1] {
    let step = 1.0 / N_BINS as f64;
    std::array::from_fn(|k| (k + 1) as f64 * step)
}

/// The bin of a probability: the number of inner edges strictly below it.
pub fn bin_of(probability: f64) -> usize {
    inner_edges()
        .iter()
        .filter(|edge| **edge < probability)
        .count()
}

/// `a / b`, or `None` where pandas would produce NaN or ±inf (a division by zero).
pub fn pandas_ratio(a: f64, b: f64) -> Option<f64> {
    let ratio = a / b;
    ratio.is_finite().then_some(ratio)
}

/// Running per-bin sums of one group of predictions.
#[derive(Debug, Clone, Copy, Default)]
pub struct EceBins {
    confidence: [f64; N_BINS],
    correct: [f64; N_BINS],
    total: [u64; N_BINS],
    len: u64,
}

impl EceBins {
    /// Adds one prediction, in data order.
    pub fn add(&mut self, probability: f64, correct: bool) {
        let bin = bin_of(probability);
        self.confidence[bin] += probability;
        self.correct[bin] += f64::from(u8::from(correct));
        self.total[bin] += 1;
        self.len += 1;
    }

    /// The expected calibration error; `None` for an empty group.
    pub fn ece(&self) -> Option<f64> {
        if self.len == 0 {
            return None;
        }
        let terms: Vec<f64> = (0..N_BINS)
            .filter(|b| self.total[*b] != 0)
            .map(|b| {
                let total = self.total[b] as f64;
                let accuracy = self.correct[b] / total;
                let confidence = self.confidence[b] / total;
                (accuracy - confidence).abs() * (total / self.len as f64)
            })
            .collect();
        Some(numpy_sum(&terms))
    }
}

/// `np.sum` of a short contiguous float64 array: plain loop under 8 elements, else eight
/// interleaved accumulators combined pairwise, then the remainder (numpy's `pairwise_sum`
/// for n ≤ 128).
pub fn numpy_sum(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 8 {
        return values.iter().fold(-0.0, |acc, v| acc + v);
    }
    debug_assert!(n <= 128, "only the unblocked branch is reproduced");
    let mut r = [0.0f64; 8];
    r.copy_from_slice(&values[..8]);
    let whole = n - n % 8;
    for chunk in values[8..whole].chunks_exact(8) {
        for (acc, v) in r.iter_mut().zip(chunk) {
            *acc += v;
        }
    }
    let mut sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for v in &values[whole..] {
        sum += v;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_send_boundary_values_to_the_lower_bin() {
        assert_eq!(bin_of(0.0), 0);
        assert_eq!(bin_of(1.0 / 15.0), 0);
        assert_eq!(bin_of(1.0 / 15.0 + 1e-12), 1);
        assert_eq!(bin_of(1.0), 14);
        assert_eq!(bin_of(0.5), 7);
    }

    #[test]
    fn ece_by_hand() {
        let mut bins = EceBins::default();
        assert_eq!(bins.ece(), None);
        bins.add(0.95, true);
        bins.add(0.95, false);
        bins.add(0.05, false);
        // Bin 14: accuracy 0.5, confidence 0.95, weight 2/3. Bin 0: 0 vs 0.05, weight 1/3.
        let want = (0.05f64 - 0.0).abs() * (1.0 / 3.0) + (0.5f64 - 0.95).abs() * (2.0 / 3.0);
        assert_eq!(bins.ece(), Some(want));
    }

    #[test]
    fn numpy_sum_follows_pairwise_order() {
        let v: Vec<f64> = (0..11).map(|i| 0.1 * f64::from(i)).collect();
        let r: Vec<f64> = (0..8)
            .map(|j| if j < 3 { v[j] + v[j + 8] } else { v[j] })
            .collect();
        let want = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        // 11 values: 8 accumulators, no full second block, then three added in order.
        let r8: Vec<f64> = v[..8].to_vec();
        let base = ((r8[0] + r8[1]) + (r8[2] + r8[3])) + ((r8[4] + r8[5]) + (r8[6] + r8[7]));
        assert_eq!(numpy_sum(&v), base + v[8] + v[9] + v[10]);
        assert!((numpy_sum(&v) - want).abs() < 1e-12);
        assert_eq!(numpy_sum(&[1.0, 2.0]), 3.0);
    }
}
