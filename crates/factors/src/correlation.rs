//! Spearman rank correlation between annotation columns (factors and metaclass indicators),
//! as the toolkit's `aggregate.spearman_corr_heatmaps`.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use imagenetx_vocab::Annotations;
use imagenetx_vocab::{Factor, Metaclass};

/// Spearman's rank correlation of two columns and its two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Correlation {
    /// Spearman's rho.
    pub rho: f64,
    /// Two-sided p-value of the null hypothesis rho = 0 (t-distribution, n − 2 degrees of
    /// freedom, as scipy's `spearmanr`).
    pub p_value: f64,
}

/// A named 0/1 column over the annotated images.
#[derive(Debug, Clone)]
pub struct Indicator {
    /// The column's name (a factor or a metaclass).
    pub name: String,
    /// One value per image.
    pub values: Vec<bool>,
}

/// The toolkit's columns: the 16 factors, then one indicator per metaclass that has images.
pub fn indicators(annotations: &Annotations) -> Vec<Indicator> {
    let images = annotations.images();
    let mut columns: Vec<Indicator> = Factor::ALL
        .iter()
        .map(|factor| Indicator {
            name: factor.name().to_string(),
            values: images.iter().map(|i| i.factors.contains(*factor)).collect(),
        })
        .collect();
    for metaclass in Metaclass::ALL {
        let values: Vec<bool> = (0..images.len())
            .map(|i| annotations.metaclass_of(i) == metaclass)
            .collect();
        if values.iter().any(|v| *v) {
            columns.push(Indicator {
                name: metaclass.name().to_string(),
                values,
            });
        }
    }
    columns
}

/// Spearman correlation of two 0/1 columns of equal length; `None` when either is constant
/// (scipy returns NaN) or they are shorter than 3.
pub fn spearman_binary(x: &[bool], y: &[bool]) -> Option<Correlation> {
    let n = x.len().min(y.len());
    let (mut a, mut b, mut both) = (0u64, 0u64, 0u64);
    for (xi, yi) in x.iter().zip(y) {
        a += u64::from(*xi);
        b += u64::from(*yi);
        both += u64::from(*xi && *yi);
    }
    let nf = n as f64;
    // With ties averaged, ranks are an affine map of the 0/1 values, so Spearman's rho is
    // the Pearson (phi) coefficient of the indicators.
    let (a, b, both) = (a as f64, b as f64, both as f64);
    let rho = (nf * both - a * b) / ((a * (nf - a)).sqrt() * (b * (nf - b)).sqrt());
    if !rho.is_finite() || n < 3 {
        return None;
    }
    let rho = rho.clamp(-1.0, 1.0);
    let df = nf - 2.0;
    let p_value = if rho.abs() == 1.0 {
        0.0
    } else {
        let t = rho * (df / ((rho + 1.0) * (1.0 - rho))).sqrt();
        match StudentsT::new(0.0, 1.0, df) {
            Ok(dist) => 2.0 * dist.sf(t.abs()),
            Err(_) => f64::NAN,
        }
    };
    Some(Correlation { rho, p_value })
}

/// The correlation matrix of `columns`: exactly 1 (p-value 0) on the diagonal of every
/// non-constant column, `None` for constant ones.
pub fn spearman_matrix(columns: &[Indicator]) -> Vec<Vec<Option<Correlation>>> {
    columns
        .iter()
        .enumerate()
        .map(|(i, x)| {
            columns
                .iter()
                .enumerate()
                .map(|(j, y)| {
                    let c = spearman_binary(&x.values, &y.values);
                    if i == j {
                        c.map(|_| Correlation {
                            rho: 1.0,
                            p_value: 0.0,
                        })
                    } else {
                        c
                    }
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_of_small_columns() {
        let x = [true, true, false, false, false];
        assert_eq!(spearman_binary(&x, &x).map(|c| c.rho), Some(1.0));
        let y = [false, false, true, true, true];
        assert_eq!(spearman_binary(&x, &y).map(|c| c.rho), Some(-1.0));
        let z = [true, false, true, false, false];
        // Pearson of the indicators: cov = 1/5 - 4/25, var_x = var_z = 6/25.
        let want = (1.0 / 5.0 - 4.0 / 25.0) / (6.0 / 25.0);
        let got = spearman_binary(&x, &z).expect("defined").rho;
        assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        assert_eq!(spearman_binary(&x, &[false; 5]), None);
    }
}
