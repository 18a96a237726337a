//! Limits on what reading and decoding one image may cost: [`ReadLimits`] (file size, pixel
//! count, as Pillow), [`DecodeBudget`] (decode memory shared by all threads) and
//! [`DecodeWarning`] (images over Pillow's warning size).

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

/// Pillow's `Image.MAX_IMAGE_PIXELS`: above it Pillow warns (`DecompressionBombWarning`).
pub const WARN_PIXELS: u64 = 89_478_485;

/// Twice [`WARN_PIXELS`]: above it Pillow refuses the image (`DecompressionBombError`).
pub const REFUSE_PIXELS: u64 = 2 * WARN_PIXELS;

/// Default [`ReadLimits::max_file_bytes`]: 256 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 256 << 20;

/// Default capacity of [`DecodeBudget::global`]: 512 MiB.
pub const DEFAULT_DECODE_BUDGET: u64 = 512 << 20;

/// Bounds on one image file: checked before the file is read and before pixels are
/// allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest file read, in bytes; larger files are refused before any byte is read
    /// (the CLI's `--max-file-size`). Default 256 MiB.
    pub max_file_bytes: u64,
    /// Largest image decoded, in pixels (width × height, any format). Default
    /// 178,956,970: Pillow's decompression-bomb limit, `2 * Image.MAX_IMAGE_PIXELS`.
    pub max_pixels: u64,
    /// Images over this many pixels are decoded but recorded as a [`DecodeWarning`].
    /// Default 89,478,485: Pillow's `Image.MAX_IMAGE_PIXELS`.
    pub warn_pixels: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_pixels: REFUSE_PIXELS,
            warn_pixels: WARN_PIXELS,
        }
    }
}

/// An image decoded although it is over [`ReadLimits::warn_pixels`] (Pillow's
/// `DecompressionBombWarning`). Collected by the
/// [`Preprocessor`](super::Preprocessor); take them with
/// [`Preprocessor::take_warnings`](super::Preprocessor::take_warnings).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{}: {width}x{height} = {pixels} pixels exceeds {limit} (Pillow's \
     DecompressionBombWarning limit); decoded anyway",
    path.display()
)]
pub struct DecodeWarning {
    /// The file.
    pub path: PathBuf,
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// `width * height`.
    pub pixels: u64,
    /// The warning limit it exceeds.
    pub limit: u64,
}

/// Decode memory shared by threads: a counting semaphore over bytes.
///
/// Each [`Preprocessor`](super::Preprocessor) reserves the memory an image will need (the
/// file's bytes, the decoder's buffers, the RGB image) before allocating it, and releases it
/// when the image is done, so that N threads decoding huge images do not need N times the
/// memory: a thread waits until enough is free. A request larger than the whole budget
/// waits until nothing else is reserved and then takes the whole budget, so it runs alone
/// and never waits forever. Requests are served in arrival order (a large request waiting
/// for memory is not overtaken by a stream of small ones). Each thread holds at most one
/// reservation at a time, which rules out deadlocks. Cloning gives another handle to the
/// same budget.
#[derive(Debug, Clone)]
pub struct DecodeBudget {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    capacity: u64,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Bytes reserved.
    used: u64,
    /// The ticket the next request gets.
    next_ticket: u64,
    /// The ticket served next: requests wait for their turn, then for memory.
    serving: u64,
}

impl DecodeBudget {
    /// A budget of `bytes` (at least 1).
    pub fn new(bytes: u64) -> Self {
        Self {
            shared: Arc::new(Shared {
                capacity: bytes.max(1),
                state: Mutex::new(State::default()),
                freed: Condvar::new(),
            }),
        }
    }

    /// The process-wide budget ([`DEFAULT_DECODE_BUDGET`], 512 MiB) that every
    /// [`Preprocessor`](super::Preprocessor) uses unless given another.
    pub fn global() -> &'static DecodeBudget {
        static GLOBAL: OnceLock<DecodeBudget> = OnceLock::new();
        GLOBAL.get_or_init(|| DecodeBudget::new(DEFAULT_DECODE_BUDGET))
    }

    /// Its size in bytes.
    pub fn capacity(&self) -> u64 {
        self.shared.capacity
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> u64 {
        self.lock().used
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The counters stay consistent even if a holder panicked: no code that can panic
        // runs while the lock is held.
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Requests waiting for their turn or for memory.
    #[cfg(test)]
    fn waiting(&self) -> u64 {
        let state = self.lock();
        state.next_ticket.wrapping_sub(state.serving)
    }

    /// Reserves `bytes`, waiting until they are free (a request over the capacity waits
    /// until nothing is reserved and takes the whole budget). Released when the permit is
    /// dropped.
    pub fn reserve(&self, bytes: u64) -> BudgetPermit {
        let mut permit = BudgetPermit {
            budget: self.clone(),
            bytes: 0,
        };
        permit.resize(bytes);
        permit
    }

    /// Moves `held` bytes of a permit to `wanted` bytes: the held bytes are given back
    /// first (so a waiting thread holds nothing), then `wanted` is taken once it fits.
    /// Returns what was taken.
    fn exchange(&self, held: u64, wanted: u64) -> u64 {
        let capacity = self.shared.capacity;
        let take = wanted.min(capacity);
        let mut state = self.lock();
        state.used = state.used.saturating_sub(held);
        if held > 0 {
            self.shared.freed.notify_all();
        }
        let ticket = state.next_ticket;
        state.next_ticket = state.next_ticket.wrapping_add(1);
        while state.serving != ticket || state.used.saturating_add(take) > capacity {
            state = self
                .shared
                .freed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        state.serving = state.serving.wrapping_add(1);
        state.used += take;
        // The next in line may fit too.
        self.shared.freed.notify_all();
        take
    }
}

/// A reservation in a [`DecodeBudget`]; released on drop.
#[derive(Debug)]
pub struct BudgetPermit {
    budget: DecodeBudget,
    bytes: u64,
}

impl BudgetPermit {
    /// Bytes held (at most the budget's capacity).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Changes the reservation to `bytes`. A smaller one returns at once; a larger one
    /// first gives back what it holds, then waits like [`DecodeBudget::reserve`].
    pub fn resize(&mut self, bytes: u64) {
        let wanted = bytes.min(self.budget.capacity());
        if wanted <= self.bytes {
            let mut state = self.budget.lock();
            state.used = state.used.saturating_sub(self.bytes - wanted);
            self.bytes = wanted;
            self.budget.shared.freed.notify_all();
            return;
        }
        self.bytes = self.budget.exchange(self.bytes, wanted);
    }
}

impl Drop for BudgetPermit {
    fn drop(&mut self) {
        self.resize(0);
    }
}

/// The checks and the budget reservation of one image being read and decoded.
#[derive(Debug)]
pub(crate) struct Gate {
    pub(crate) limits: ReadLimits,
    budget: Option<DecodeBudget>,
    permit: Option<BudgetPermit>,
    file_bytes: u64,
    pub(crate) warnings: Vec<DecodeWarning>,
}

impl Gate {
    pub(crate) fn new(limits: ReadLimits, budget: Option<DecodeBudget>) -> Self {
        Self {
            limits,
            budget,
            permit: None,
            file_bytes: 0,
            warnings: Vec::new(),
        }
    }

    fn hold(&mut self, bytes: u64) {
        match (&mut self.permit, &self.budget) {
            (Some(permit), _) => permit.resize(bytes),
            (None, Some(budget)) => self.permit = Some(budget.reserve(bytes)),
            (None, None) => {}
        }
    }

    /// Reserves the bytes of a file about to be read.
    pub(crate) fn hold_file(&mut self, bytes: u64) {
        self.file_bytes = bytes;
        self.hold(bytes);
    }

    /// Checks an image's size from its header against the pixel limits (refusing it, or
    /// recording a warning), then reserves `need` bytes of decode memory (on top of the
    /// file's), waiting for them if the budget is short.
    pub(crate) fn admit(
        &mut self,
        path: &std::path::Path,
        format: &'static str,
        width: u32,
        height: u32,
        need: u64,
    ) -> super::Result<()> {
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.limits.max_pixels {
            return Err(super::Error::TooManyPixels {
                path: path.to_owned(),
                format,
                width,
                height,
                pixels,
                limit: self.limits.max_pixels,
            });
        }
        if pixels > self.limits.warn_pixels {
            self.warnings.push(DecodeWarning {
                path: path.to_owned(),
                width,
                height,
                pixels,
                limit: self.limits.warn_pixels,
            });
        }
        self.hold(self.file_bytes.saturating_add(need));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_pillows() {
        let limits = ReadLimits::default();
        assert_eq!(limits.max_pixels, 178_956_970);
        assert_eq!(limits.warn_pixels, 89_478_485);
        assert_eq!(limits.max_file_bytes, 256 * 1024 * 1024);
    }

    #[test]
    fn permits_release_on_drop_and_resize() {
        let budget = DecodeBudget::new(100);
        let mut a = budget.reserve(30);
        assert_eq!(budget.in_use(), 30);
        a.resize(80);
        assert_eq!((a.bytes(), budget.in_use()), (80, 80));
        a.resize(10);
        assert_eq!(budget.in_use(), 10);
        drop(a);
        assert_eq!(budget.in_use(), 0);
        // Over the capacity: takes all of it.
        let big = budget.reserve(1_000);
        assert_eq!((big.bytes(), budget.in_use()), (100, 100));
    }

    #[test]
    fn a_waiting_large_request_is_not_overtaken() {
        let budget = DecodeBudget::new(100);
        let first = budget.reserve(60);
        let order = Arc::new(Mutex::new(Vec::new()));
        let spawn = |name: &'static str, bytes: u64| {
            let (budget, order) = (budget.clone(), order.clone());
            std::thread::spawn(move || {
                let permit = budget.reserve(bytes);
                order.lock().expect("order").push(name);
                drop(permit);
            })
        };
        let wait_for = |n: u64| {
            while budget.waiting() < n {
                std::thread::yield_now();
            }
        };
        let large = spawn("large", 100);
        wait_for(1);
        // 10 bytes would fit now, but the large request came first.
        let small = spawn("small", 10);
        wait_for(2);
        assert_eq!(budget.in_use(), 60);
        drop(first);
        large.join().expect("large");
        small.join().expect("small");
        assert_eq!(*order.lock().expect("order"), ["large", "small"]);
        assert_eq!(budget.in_use(), 0);
    }
}
