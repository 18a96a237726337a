//! Simulation with a known truth: do the 95% intervals cover the true accuracy and the true
//! error ratio in 93–97% of the draws?
//!
//! Three factors of 40, 200 and 2,000 images (one factor per image) with set accuracies
//! 0.70, 0.80 and 0.90. Each draw samples every image's correctness independently at its
//! factor's accuracy and computes the intervals. The true error ratio of factor `f` is
//! `(1 − p_f) / (1 − Σ_g w_g p_g)`, `w_g` the share of the images that have factor `g`.
//! The bootstrap runs 400 replicates per draw (2,000 by default on the command line).

use imagenetx_factors::intervals::{IntervalOptions, model_intervals};
use imagenetx_factors::{AnnotatedImage, Annotations, Factor, FactorSet, Metaclass, Outcome};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_distr::{Bernoulli, Distribution};
use rayon::prelude::*;

const DRAWS: u64 = 2000;
const REPLICATES: u32 = 400;
const DESIGN: [(Factor, usize, f64); 3] = [
    (Factor::Pose, 40, 0.70),
    (Factor::Background, 200, 0.80),
    (Factor::Pattern, 2000, 0.90),
];

fn annotations() -> Annotations {
    let images = DESIGN
        .iter()
        .flat_map(|&(factor, n, _)| {
            (0..n).map(move |_| AnnotatedImage {
                class: 0,
                factors: FactorSet::from_iter([factor]),
                real: None,
            })
        })
        .collect();
    Annotations::new(images, vec![Metaclass::Dog]).expect("valid annotations")
}

fn draw_outcomes(draw: u64) -> Vec<Outcome> {
    let mut rng = ChaCha8Rng::seed_from_u64(20_240_601);
    rng.set_stream(draw);
    DESIGN
        .iter()
        .flat_map(|&(_, n, p)| {
            let bernoulli = Bernoulli::new(p).expect("valid p");
            (0..n)
                .map(|_| Outcome::Scored {
                    correct: bernoulli.sample(&mut rng),
                    probability: 0.5,
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn wilson_and_bootstrap_intervals_cover_the_truth_at_their_level() {
    let annotations = annotations();
    let total: usize = DESIGN.iter().map(|d| d.1).sum();
    let average: f64 = DESIGN.iter().map(|&(_, n, p)| n as f64 * p).sum::<f64>() / total as f64;
    let started = std::time::Instant::now();
    // Per factor: (accuracy covered, error ratio covered, error-ratio interval missing).
    let covered: Vec<[(u64, u64, u64); 3]> = (0..DRAWS)
        .into_par_iter()
        .map(|draw| {
            let options = IntervalOptions::new(0.95, REPLICATES, draw, 100).expect("valid");
            let outcomes = draw_outcomes(draw);
            let m = model_intervals(&annotations, &outcomes, &options).expect("aligned");
            DESIGN.map(|(factor, n, p)| {
                let f = &m.factors[factor.index()];
                assert_eq!(f.counts.images, n as u64);
                assert_eq!(f.small_sample, n < 100);
                let truth = (1.0 - p) / (1.0 - average);
                (
                    u64::from(f.accuracy_interval.is_some_and(|i| i.contains(p))),
                    u64::from(f.error_ratio_interval.is_some_and(|i| i.contains(truth))),
                    u64::from(f.error_ratio_interval.is_none()),
                )
            })
        })
        .collect();
    let elapsed = started.elapsed();
    for (k, (factor, n, p)) in DESIGN.iter().enumerate() {
        let acc = covered.iter().map(|c| c[k].0).sum::<u64>() as f64 / DRAWS as f64;
        let ratio = covered.iter().map(|c| c[k].1).sum::<u64>() as f64 / DRAWS as f64;
        let missing = covered.iter().map(|c| c[k].2).sum::<u64>();
        println!(
            "{factor} ({n} images, accuracy {p}): Wilson coverage {acc:.4}, bootstrap error-ratio coverage {ratio:.4} ({missing} draws without interval)"
        );
        assert!(
            (0.93..=0.97).contains(&acc),
            "{factor}: Wilson coverage {acc}"
        );
        assert!(
            (0.93..=0.97).contains(&ratio),
            "{factor}: error-ratio coverage {ratio}"
        );
    }
    println!("{DRAWS} draws × {REPLICATES} replicates in {elapsed:.2?}");
}
