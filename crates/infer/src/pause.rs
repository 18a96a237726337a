//! A seam for crash tests: `IMAGENETX_PAUSE_AT=NAME` makes the process stop at the named point
//! of its output writing, print `imagenetx: paused at NAME (pid N)` on stderr and wait there
//! forever, so that a test can kill it exactly there (with SIGKILL, as an out-of-memory kill
//! or a pre-emption would). `NAME:K` stops at the K-th time the point is reached. Unset, it
//! costs one environment lookup per process.
//!
//! `IMAGENETX_THROTTLE_MS=N` makes [`throttle`] sleep N milliseconds (once per batch in
//! `imagenetx evaluate`), so that a test can signal a run while it is surely still going.
//!
//! Points: `started` (the run record and an empty journal are written, no image predicted),
//! `checkpoint` (a journal checkpoint is on disk), `final-csv` (inside the final write of the
//! predictions CSV: the temporary file is complete, not yet renamed), `after-csv` (the CSV is
//! in place, the journal not yet compacted), `after-journal` (the journal is compacted, the
//! run record not yet final).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

/// Stops here when `IMAGENETX_PAUSE_AT` names this point (see the module docs).
#[doc(hidden)]
pub fn point(name: &str) {
    let target = TARGET.get_or_init(|| {
        let value = std::env::var("IMAGENETX_PAUSE_AT").ok()?;
        Some(match value.split_once(':') {
            Some((point, k)) => (point.to_string(), k.parse().unwrap_or(1)),
            None => (value, 1),
        })
    });
    let Some((point, k)) = target else { return };
    if point != name || HITS.fetch_add(1, Ordering::SeqCst) + 1 != *k {
        return;
    }
    eprintln!("imagenetx: paused at {name} (pid {})", std::process::id());
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

static THROTTLE: OnceLock<Option<u64>> = OnceLock::new();

/// Sleeps as long as `IMAGENETX_THROTTLE_MS` says (see the module docs); nothing when unset.
#[doc(hidden)]
pub fn throttle() {
    let ms = THROTTLE.get_or_init(|| std::env::var("IMAGENETX_THROTTLE_MS").ok()?.parse().ok());
    if let Some(ms) = ms {
        std::thread::sleep(std::time::Duration::from_millis(*ms));
    }
}
