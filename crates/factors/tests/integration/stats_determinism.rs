//! Same seed, same intervals and comparisons, whatever the number of threads.

use imagenetx_factors::compare::compare;
use imagenetx_factors::intervals::{IntervalOptions, model_intervals};
use imagenetx_factors::{AnnotatedImage, Annotations, Factor, FactorSet, Metaclass, Outcome};

fn fixture() -> (Annotations, Vec<Outcome>, Vec<Outcome>) {
    let mut images = Vec::new();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..5000u32 {
        let mut factors = FactorSet::from_iter([Factor::ALL[(i % 7) as usize]]);
        if i % 11 == 0 {
            factors.insert(Factor::Style);
        }
        images.push(AnnotatedImage {
            class: 0,
            factors,
            real: None,
        });
        let scored = |correct| Outcome::Scored {
            correct,
            probability: 0.5,
        };
        a.push(scored(i % 5 != 0));
        b.push(if i % 13 == 0 {
            Outcome::Missing
        } else {
            scored(i % 3 != 0)
        });
    }
    let annotations = Annotations::new(images, vec![Metaclass::Dog]).expect("valid");
    (annotations, a, b)
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

#[test]
fn one_or_four_threads_give_identical_results() {
    let (annotations, a, b) = fixture();
    let options = IntervalOptions::new(0.95, 1000, 42, 100).expect("valid");
    let run = |threads| {
        pool(threads).install(|| {
            (
                model_intervals(&annotations, &a, &options).expect("aligned"),
                compare(&annotations, "a", &a, "b", &b, &options).expect("aligned"),
            )
        })
    };
    let (one, four) = (run(1), run(4));
    assert_eq!(one, four);
    assert!(one.0.factors[0].error_ratio_interval.is_some());
    assert!(one.1.factors[0].error_ratio_diff_interval.is_some());

    // Another seed gives other intervals: the seed is used.
    let other = IntervalOptions::new(0.95, 1000, 43, 100).expect("valid");
    let again = model_intervals(&annotations, &a, &other).expect("aligned");
    assert_ne!(
        one.0.factors[0].error_ratio_interval,
        again.factors[0].error_ratio_interval
    );
}

#[test]
fn identical_models_do_not_differ() {
    let (annotations, a, _) = fixture();
    let options = IntervalOptions::new(0.95, 200, 1, 100).expect("valid");
    let c = compare(&annotations, "a", &a, "a2", &a, &options).expect("aligned");
    assert_eq!(c.overall.images, 5000);
    assert_eq!(c.p_value, 1.0);
    for f in &c.factors {
        if f.counts.images == 0 {
            assert_eq!((f.p_value, f.p_holm), (None, None));
            continue;
        }
        assert_eq!((f.counts.a_only, f.counts.b_only), (0, 0));
        assert_eq!(
            (f.p_value, f.p_holm, f.significant),
            (Some(1.0), Some(1.0), false)
        );
        assert_eq!(f.accuracy_diff, Some(0.0));
        let i = f.accuracy_diff_interval.expect("interval");
        assert_eq!((i.low, i.high), (0.0, 0.0));
    }
}

#[test]
fn a_difference_confined_to_one_factor_is_found_there_only() {
    // B fixes every error of A on the images whose only factor is `color`, and is A
    // elsewhere.
    let (annotations, a, _) = fixture();
    let b: Vec<Outcome> = annotations
        .images()
        .iter()
        .zip(&a)
        .map(|(image, outcome)| {
            if image.factors == FactorSet::from_iter([Factor::Color]) {
                Outcome::Scored {
                    correct: true,
                    probability: 0.5,
                }
            } else {
                *outcome
            }
        })
        .collect();
    let options = IntervalOptions::new(0.95, 500, 7, 100).expect("valid");
    let c = compare(&annotations, "a", &a, "b", &b, &options).expect("aligned");
    let significant: Vec<Factor> = c.significant().map(|f| f.factor).collect();
    assert_eq!(significant, [Factor::Color]);
    let color = &c.factors[Factor::Color.index()];
    assert!(color.accuracy_diff.is_some_and(|d| d > 0.0));
    assert!(color.accuracy_diff_interval.is_some_and(|i| i.low > 0.0));
    assert_eq!(color.counts.a_only, 0);
}
