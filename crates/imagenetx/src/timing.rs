//! Where a run's time went: whether decoding kept the model busy, or the model kept the
//! decoding threads waiting.
//!
//! The pipeline has two sides: the decoding threads, which read, decode and preprocess images
//! into batches, and the thread that feeds each batch to the model(s) and hands the results on.
//! The second side either runs (inference, and the sinks' work) or waits for the next decoded
//! batch. When it waits for most of the run, decoding is what limits the run; when it hardly
//! waits, the model is.

use std::time::Duration;

/// The share of the run the model's side may wait for decoded images before decoding is said
/// to limit the run.
pub const DECODING_LIMITS_FROM: f64 = 0.5;

/// Where the time of one pass over the images went (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineTimes {
    /// From the start of decoding to the last batch consumed.
    pub wall: Duration,
    /// Decoding threads.
    pub decode_threads: usize,
    /// Time spent reading, decoding and preprocessing images, summed over the decoding threads
    /// (on a run stopped early, also the batch or two decoded ahead and never consumed).
    pub decoding: Duration,
    /// Time the model's side waited for a decoded batch.
    pub waiting_for_images: Duration,
    /// Time the model's side spent on batches: inference and the sinks' work (for a pass of
    /// several models, all of them, side by side).
    pub consuming: Duration,
    /// Batches the model's side consumed.
    pub batches: usize,
}

/// The share of their time the decoding threads must be busy for more of them to help (below
/// it, they wait too: for want of images or of work to share out).
pub const BUSY_DECODERS_FROM: f64 = 0.75;

/// What limits a run, by [`PipelineTimes::bottleneck`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bottleneck {
    /// The model's side waited for decoded images for at least [`DECODING_LIMITS_FROM`] of
    /// the run: more decoding threads (or cores) would make it faster.
    Decoding,
    /// The model's side was busy for most of the run: decoding keeps up with it.
    Model,
}

impl PipelineTimes {
    /// The share of the run the model's side waited for decoded images (0 for an empty run).
    pub fn waiting_share(&self) -> f64 {
        share(self.waiting_for_images, self.wall)
    }

    /// The share of the decoding threads' time they spent decoding (0 for an empty run).
    pub fn decoding_busy(&self) -> f64 {
        share(self.decoding, self.wall * self.decode_threads.max(1) as u32)
    }

    /// What limits the run, or `None` when no batch was consumed.
    pub fn bottleneck(&self) -> Option<Bottleneck> {
        if self.batches == 0 || self.wall.is_zero() {
            return None;
        }
        Some(if self.waiting_share() >= DECODING_LIMITS_FROM {
            Bottleneck::Decoding
        } else {
            Bottleneck::Model
        })
    }

    /// One line on the run of `images` images: images/s, how busy each side was, and what
    /// limits it. `inference`: the time in the model the line is about.
    pub fn summary(&self, images: usize, inference: Duration) -> String {
        let secs = self.wall.as_secs_f64();
        let rate = if secs > 0.0 {
            format!("{:.0} images/s", images as f64 / secs)
        } else {
            "no time".to_string()
        };
        let model_share = 100.0 * share(inference, self.wall);
        let verdict = match self.bottleneck() {
            Some(Bottleneck::Decoding) if self.decoding_busy() >= BUSY_DECODERS_FROM => {
                ": decoding limits this run (more --threads or cores would speed it up)"
            }
            Some(Bottleneck::Decoding) => {
                ": decoding limits this run, and its threads were often idle too (too few \
                 images to fill the pipeline, or batches too small to share out)"
            }
            Some(Bottleneck::Model) => ": the model limits this run, decoding keeps up",
            None => "",
        };
        format!(
            "{images} images in {secs:.2} s ({rate}); the model ran {model_share:.0}% of it, waited for decoded images {:.0}% of it; {} decoding thread{} busy {:.0}%{verdict}",
            100.0 * self.waiting_share(),
            self.decode_threads,
            if self.decode_threads == 1 { "" } else { "s" },
            100.0 * self.decoding_busy(),
        )
    }
}

fn share(part: Duration, whole: Duration) -> f64 {
    if whole.is_zero() {
        0.0
    } else {
        (part.as_secs_f64() / whole.as_secs_f64()).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(wall: u64, waiting: u64, consuming: u64, decoding: u64) -> PipelineTimes {
        PipelineTimes {
            wall: Duration::from_millis(wall),
            decode_threads: 4,
            decoding: Duration::from_millis(decoding),
            waiting_for_images: Duration::from_millis(waiting),
            consuming: Duration::from_millis(consuming),
            batches: 10,
        }
    }

    #[test]
    fn a_model_side_that_mostly_waits_means_decoding_limits_the_run() {
        let t = times(1000, 800, 200, 3900);
        assert_eq!(t.bottleneck(), Some(Bottleneck::Decoding));
        assert!((t.waiting_share() - 0.8).abs() < 1e-9);
        assert!((t.decoding_busy() - 0.975).abs() < 1e-9);
        let line = t.summary(2000, Duration::from_millis(150));
        assert_eq!(
            line,
            "2000 images in 1.00 s (2000 images/s); the model ran 15% of it, waited for decoded \
             images 80% of it; 4 decoding threads busy 98%: decoding limits this run (more \
             --threads or cores would speed it up)"
        );
    }

    #[test]
    fn a_busy_model_side_means_the_model_limits_the_run() {
        let t = times(1000, 100, 900, 1200);
        assert_eq!(t.bottleneck(), Some(Bottleneck::Model));
        assert!(
            t.summary(10, Duration::ZERO)
                .ends_with("the model limits this run, decoding keeps up")
        );
        let idle = times(1000, 500, 500, 1000);
        assert_eq!(idle.bottleneck(), Some(Bottleneck::Decoding));
        assert!(
            idle.summary(10, Duration::ZERO).ends_with(
                "its threads were often idle too (too few images to fill the pipeline, or \
                 batches too small to share out)"
            ),
            "{}",
            idle.summary(10, Duration::ZERO)
        );
    }

    #[test]
    fn an_empty_run_has_no_verdict() {
        assert_eq!(PipelineTimes::default().bottleneck(), None);
        // Nothing to do (a finished run resumed): a wait for the end of the images, no batch.
        let nothing = PipelineTimes {
            batches: 0,
            ..times(1, 1, 0, 0)
        };
        assert_eq!(nothing.bottleneck(), None);
        assert_eq!(PipelineTimes::default().waiting_share(), 0.0);
        assert_eq!(
            PipelineTimes::default().summary(0, Duration::ZERO),
            "0 images in 0.00 s (no time); the model ran 0% of it, waited for decoded images 0% \
             of it; 0 decoding threads busy 0%"
        );
    }
}
