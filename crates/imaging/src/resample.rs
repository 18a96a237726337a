//! Pillow's `ImagingResample` for 8-bit RGB, restricted to a crop window.
//!
//! This is a transcription of Pillow 13's `src/libImaging/Resample.c`:
//! separable convolution, the filter support scaled by the downscale factor,
//! `f64` coefficients normalised per output pixel then rounded to fixed point
//! with 22 fractional bits, a 32-bit integer accumulator starting at one half,
//! and a clip to 0..=255 after each pass (the intermediate image is 8-bit).
//! Pillow runs the horizontal pass first unless the height shrinks by more
//! than twice as much as the width; the order changes the rounding, so it is
//! kept. Each output pixel depends only on its own coefficients, so computing
//! just the pixels of a crop window gives the same values as resizing the
//! whole image and cropping afterwards, with less work.

use std::ops::Range;

use crate::config::Interpolation;

/// `PRECISION_BITS = 32 - 8 - 2` in Pillow.
const PRECISION_BITS: u32 = 32 - 8 - 2;
const HALF: i32 = 1 << (PRECISION_BITS - 1);

fn bilinear_filter(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

fn bicubic_filter(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Fixed-point coefficients of one axis: for each output pixel of a range,
/// the first input pixel and the weights of the input pixels it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coefficients {
    in_size: u32,
    out_size: u32,
    /// The output pixels covered (all of them, or a crop window's).
    outputs: Range<usize>,
    ksize: usize,
    /// `(first input pixel, number of taps)` per output pixel.
    bounds: Vec<(usize, usize)>,
    /// `out_size * ksize` weights, 22 fractional bits.
    weights: Vec<i32>,
    /// The same weights in windows of exactly `wsize` taps (the largest tap
    /// count of any output pixel), shifted left at the right edge and
    /// zero-filled (zero taps do not change the integer sums):
    /// `(window starts, out_size * wsize weights)`. `None` when the input is
    /// shorter than `wsize`.
    windows: Option<(Vec<usize>, Vec<i32>)>,
    wsize: usize,
}

impl Coefficients {
    /// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`, for
    /// the box `0..in_size`, every output pixel.
    pub fn new(in_size: u32, out_size: u32, interpolation: Interpolation) -> Self {
        Self::for_outputs(in_size, out_size, interpolation, 0..out_size as usize)
    }

    /// [`Coefficients::new`] for the output pixels `outputs` only (clamped to
    /// `0..out_size`): the same values, without the memory for the rest.
    pub fn for_outputs(
        in_size: u32,
        out_size: u32,
        interpolation: Interpolation,
        outputs: Range<usize>,
    ) -> Self {
        let outputs = outputs.start.min(out_size as usize)..outputs.end.min(out_size as usize);
        let (filter, support): (fn(f64) -> f64, f64) = match interpolation {
            Interpolation::Bilinear => (bilinear_filter, 1.0),
            Interpolation::Bicubic => (bicubic_filter, 2.0),
        };
        // Pillow passes the box as C floats: in1 - in0 is a float subtraction.
        let (in0, in1) = (0.0f32, in_size as f32);
        let scale = f64::from(in1 - in0) / f64::from(out_size);
        let filterscale = scale.max(1.0);
        let support = support * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let inv_filterscale = 1.0 / filterscale;
        let in_len = in_size as i64;
        let mut bounds = Vec::with_capacity(outputs.len());
        let mut weights = vec![0i32; outputs.len() * ksize];
        let mut k = vec![0f64; ksize];
        for (i, xx) in outputs.clone().enumerate() {
            let center = f64::from(in0) + (xx as f64 + 0.5) * scale;
            // C's (int) cast truncates toward zero, as `as i64` does.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_len) - xmin;
            let taps = xmax.max(0) as usize;
            let mut ww = 0.0;
            for (x, kx) in k.iter_mut().enumerate().take(taps) {
                let w = filter(((x as i64 + xmin) as f64 - center + 0.5) * inv_filterscale);
                *kx = w;
                ww += w;
            }
            if ww != 0.0 {
                for kx in k.iter_mut().take(taps) {
                    *kx /= ww;
                }
            }
            let row = &mut weights[i * ksize..i * ksize + taps];
            for (dst, &w) in row.iter_mut().zip(&k) {
                let fixed = w * f64::from(1u32 << PRECISION_BITS);
                *dst = if w < 0.0 {
                    (-0.5 + fixed) as i32
                } else {
                    (0.5 + fixed) as i32
                };
            }
            bounds.push((xmin as usize, taps));
        }
        let wsize = bounds.iter().map(|b| b.1).max().unwrap_or(0).max(1);
        let windows = (in_size as usize >= wsize).then(|| {
            let mut starts = Vec::with_capacity(bounds.len());
            let mut padded = vec![0i32; bounds.len() * wsize];
            for (xx, &(first, taps)) in bounds.iter().enumerate() {
                let start = first.min(in_size as usize - wsize);
                let shift = first - start;
                padded[xx * wsize + shift..xx * wsize + shift + taps]
                    .copy_from_slice(&weights[xx * ksize..xx * ksize + taps]);
                starts.push(start);
            }
            (starts, padded)
        });
        Self {
            in_size,
            out_size,
            outputs,
            ksize,
            bounds,
            weights,
            windows,
            wsize,
        }
    }

    /// Input length this was computed for.
    pub fn in_size(&self) -> u32 {
        self.in_size
    }

    /// Output length this was computed for.
    pub fn out_size(&self) -> u32 {
        self.out_size
    }

    /// The output pixels these coefficients cover.
    pub fn outputs(&self) -> Range<usize> {
        self.outputs.clone()
    }

    fn taps(&self, out: usize) -> (usize, &[i32]) {
        let i = out - self.outputs.start;
        let (first, n) = self.bounds[i];
        (first, &self.weights[i * self.ksize..i * self.ksize + n])
    }

    /// Taps as the horizontal pass reads them: fixed-size windows when
    /// available.
    fn window(&self, out: usize) -> (usize, &[i32]) {
        match &self.windows {
            Some((starts, w)) => {
                let i = out - self.outputs.start;
                (starts[i], &w[i * self.wsize..(i + 1) * self.wsize])
            }
            None => self.taps(out),
        }
    }

    /// Input pixels read by the output pixels `out` ([`Coefficients::taps`]).
    fn input_span(&self, out: &Range<usize>) -> Range<usize> {
        if out.is_empty() {
            return 0..0;
        }
        let (first, _) = self.taps(out.start);
        let (last, k) = self.taps(out.end - 1);
        first..last + k.len()
    }

    /// Input pixels read by the output pixels `out` ([`Coefficients::window`]).
    fn window_span(&self, out: &Range<usize>) -> Range<usize> {
        if out.is_empty() {
            return 0..0;
        }
        let (first, _) = self.window(out.start);
        let (last, k) = self.window(out.end - 1);
        first..last + k.len()
    }
}

#[inline(always)]
fn clip8(v: i32) -> u8 {
    // clamp(v >> 22, 0, 255) without branches: negative -> 0, then anything
    // above 255 -> all ones, whose low byte is 255.
    let v = v >> PRECISION_BITS;
    let v = v & !(v >> 31);
    (v | ((255 - v) >> 31)) as u8
}

/// A packed RGB8 image view: `stride` bytes per row.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
}

/// Scratch buffers reused across images.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    tmp: Vec<u8>,
    acc: Vec<i32>,
}

/// Resamples `src` to `out_w x out_h` with Pillow's algorithm and writes the
/// output pixels `rows x cols` into `dst` (packed RGB, `cols.len() * 3` bytes
/// per row). `horiz` and `vert` must have been built for `src`'s width and
/// height and the output size.
pub(crate) fn resample_window(
    src: View<'_>,
    horiz: &Coefficients,
    vert: &Coefficients,
    rows: Range<usize>,
    cols: Range<usize>,
    dst: &mut [u8],
    scratch: &mut Scratch,
) {
    let (in_w, in_h) = (src.width as i64, src.height as i64);
    let (out_w, out_h) = (i64::from(horiz.out_size), i64::from(vert.out_size));
    let need_h = out_w != in_w;
    let need_v = out_h != in_h;
    let horizontal_first = !((in_h - out_h) > 0 && (in_h - out_h) > (in_w - out_w) * 2);
    let cw = cols.len();
    match (need_h, need_v) {
        (false, false) => copy_window(src, rows, cols, dst),
        (true, false) => {
            horizontal_pass(src, rows, horiz, cols, 0, dst);
        }
        (false, true) => {
            vertical_pass(src, 0, cols.start, cw, vert, rows, dst, &mut scratch.acc);
        }
        (true, true) if horizontal_first => {
            let span = vert.input_span(&rows);
            scratch.tmp.clear();
            scratch.tmp.resize(span.len() * cw * 3, 0);
            horizontal_pass(src, span.clone(), horiz, cols, 0, &mut scratch.tmp);
            let tmp = View {
                data: &scratch.tmp,
                width: cw,
                height: span.len(),
            };
            vertical_pass(tmp, span.start, 0, cw, vert, rows, dst, &mut scratch.acc);
        }
        (true, true) => {
            let span = horiz.window_span(&cols);
            scratch.tmp.clear();
            scratch.tmp.resize(rows.len() * span.len() * 3, 0);
            let rh = rows.len();
            vertical_pass(
                src,
                0,
                span.start,
                span.len(),
                vert,
                rows,
                &mut scratch.tmp,
                &mut scratch.acc,
            );
            let tmp = View {
                data: &scratch.tmp,
                width: span.len(),
                height: rh,
            };
            horizontal_pass(tmp, 0..rh, horiz, cols, span.start, dst);
        }
    }
}

fn copy_window(src: View<'_>, rows: Range<usize>, cols: Range<usize>, dst: &mut [u8]) {
    let cw = cols.len() * 3;
    for (i, y) in rows.enumerate() {
        let line = &src.data[y * src.width * 3..(y + 1) * src.width * 3];
        dst[i * cw..(i + 1) * cw].copy_from_slice(&line[cols.start * 3..cols.end * 3]);
    }
}

/// Horizontal pass over the rows `rows` of `src`, output columns `cols`;
/// `src` holds the input columns from `col_base` on.
fn horizontal_pass(
    src: View<'_>,
    rows: Range<usize>,
    horiz: &Coefficients,
    cols: Range<usize>,
    col_base: usize,
    dst: &mut [u8],
) {
    match horiz.windows.as_ref().map(|_| horiz.wsize) {
        Some(1) => horizontal_fixed::<1>(src, rows, horiz, cols, col_base, dst),
        Some(2) => horizontal_fixed::<2>(src, rows, horiz, cols, col_base, dst),
        Some(3) => horizontal_fixed::<3>(src, rows, horiz, cols, col_base, dst),
        Some(4) => horizontal_fixed::<4>(src, rows, horiz, cols, col_base, dst),
        Some(5) => horizontal_fixed::<5>(src, rows, horiz, cols, col_base, dst),
        Some(6) => horizontal_fixed::<6>(src, rows, horiz, cols, col_base, dst),
        Some(7) => horizontal_fixed::<7>(src, rows, horiz, cols, col_base, dst),
        Some(8) => horizontal_fixed::<8>(src, rows, horiz, cols, col_base, dst),
        Some(9) => horizontal_fixed::<9>(src, rows, horiz, cols, col_base, dst),
        Some(10) => horizontal_fixed::<10>(src, rows, horiz, cols, col_base, dst),
        Some(11) => horizontal_fixed::<11>(src, rows, horiz, cols, col_base, dst),
        Some(12) => horizontal_fixed::<12>(src, rows, horiz, cols, col_base, dst),
        Some(13) => horizontal_fixed::<13>(src, rows, horiz, cols, col_base, dst),
        _ => horizontal_any(src, rows, horiz, cols, col_base, dst),
    }
}

/// [`horizontal_pass`] with windows of exactly `K` taps, fully unrolled.
fn horizontal_fixed<const K: usize>(
    src: View<'_>,
    rows: Range<usize>,
    horiz: &Coefficients,
    cols: Range<usize>,
    col_base: usize,
    dst: &mut [u8],
) {
    let Some((starts, weights)) = horiz.windows.as_ref() else {
        return horizontal_any(src, rows, horiz, cols, col_base, dst);
    };
    let o = horiz.outputs.start;
    let starts = &starts[cols.start - o..cols.end - o];
    let weights = &weights[(cols.start - o) * K..(cols.end - o) * K];
    let stride = src.width * 3;
    let cw = cols.len() * 3;
    for (i, y) in rows.enumerate() {
        let line = &src.data[y * stride..(y + 1) * stride];
        let out = &mut dst[i * cw..(i + 1) * cw];
        for ((o, &first), k) in out
            .chunks_exact_mut(3)
            .zip(starts)
            .zip(weights.chunks_exact(K))
        {
            let start = (first - col_base) * 3;
            let px = &line[start..start + 3 * K];
            let (mut s0, mut s1, mut s2) = (HALF, HALF, HALF);
            for j in 0..K {
                s0 += i32::from(px[3 * j]) * k[j];
                s1 += i32::from(px[3 * j + 1]) * k[j];
                s2 += i32::from(px[3 * j + 2]) * k[j];
            }
            o[0] = clip8(s0);
            o[1] = clip8(s1);
            o[2] = clip8(s2);
        }
    }
}

/// [`horizontal_pass`] for any tap count.
fn horizontal_any(
    src: View<'_>,
    rows: Range<usize>,
    horiz: &Coefficients,
    cols: Range<usize>,
    col_base: usize,
    dst: &mut [u8],
) {
    let stride = src.width * 3;
    let cw = cols.len() * 3;
    for (i, y) in rows.enumerate() {
        let line = &src.data[y * stride..(y + 1) * stride];
        let out = &mut dst[i * cw..(i + 1) * cw];
        for (o, xx) in out.chunks_exact_mut(3).zip(cols.clone()) {
            let (first, k) = horiz.window(xx);
            let start = (first - col_base) * 3;
            let px = &line[start..start + k.len() * 3];
            let (mut s0, mut s1, mut s2) = (HALF, HALF, HALF);
            for (p, &w) in px.chunks_exact(3).zip(k) {
                s0 += i32::from(p[0]) * w;
                s1 += i32::from(p[1]) * w;
                s2 += i32::from(p[2]) * w;
            }
            o[0] = clip8(s0);
            o[1] = clip8(s1);
            o[2] = clip8(s2);
        }
    }
}

/// Vertical pass: output rows `rows`; input row `y` is at `y - row_base` in
/// `src`; columns `col_start..col_start + width` of `src`.
#[allow(clippy::too_many_arguments)]
fn vertical_pass(
    src: View<'_>,
    row_base: usize,
    col_start: usize,
    width: usize,
    vert: &Coefficients,
    rows: Range<usize>,
    dst: &mut [u8],
    acc: &mut Vec<i32>,
) {
    let stride = src.width * 3;
    let w3 = width * 3;
    acc.clear();
    acc.resize(w3, 0);
    for (i, yy) in rows.enumerate() {
        let (first, k) = vert.taps(yy);
        acc.fill(HALF);
        for (j, &w) in k.iter().enumerate() {
            let y = first + j - row_base;
            let line = &src.data[y * stride + col_start * 3..y * stride + col_start * 3 + w3];
            for (a, &p) in acc.iter_mut().zip(line) {
                *a += i32::from(p) * w;
            }
        }
        for (o, &a) in dst[i * w3..(i + 1) * w3].iter_mut().zip(acc.iter()) {
            *o = clip8(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip8_is_a_clamp() {
        for v in [-512, -1, 0, 1, 254, 255, 256, 511] {
            assert_eq!(clip8(v << PRECISION_BITS), v.clamp(0, 255) as u8, "{v}");
        }
        assert_eq!(clip8((1 << PRECISION_BITS) - 1), 0);
        assert_eq!(clip8(i32::MIN), 0);
        assert_eq!(clip8(i32::MAX), 255);
    }

    #[test]
    fn identity_scale_bilinear_is_a_single_unit_tap() {
        // scale 1: support 1, centre 2.5 for output 2: xmin = int(2.0) = 2,
        // xmax = int(4.0) = 4, weights tri(0) = 1 and tri(1) = 0.
        let c = Coefficients::new(5, 5, Interpolation::Bilinear);
        let (first, k) = c.taps(2);
        assert_eq!(first, 2);
        assert_eq!(k, &[1 << 22, 0]);
        // Edge: taps 0..2, weights 1, 0.
        let (first, k) = c.taps(0);
        assert_eq!((first, k), (0, &[1 << 22, 0][..]));
    }

    #[test]
    fn halving_bilinear_averages_pairs_of_four_taps() {
        // 4 -> 2: scale 2, support 2, centre 1.0 for output 0: xmin 0,
        // xmax int(3.5) = 3; weights tri((x + 0.5 - 1) / 2) = 0.75, 0.75, 0.25
        // normalised by 1.75 -> 3/7, 3/7, 1/7.
        let c = Coefficients::new(4, 2, Interpolation::Bilinear);
        let (first, k) = c.taps(0);
        assert_eq!(first, 0);
        let third = |n: f64| (0.5 + n / 7.0 * f64::from(1u32 << 22)) as i32;
        assert_eq!(k, &[third(3.0), third(3.0), third(1.0)]);
    }

    #[test]
    fn window_equals_full_resize_then_crop() {
        let (w, h) = (37, 23);
        let data: Vec<u8> = (0..w * h * 3).map(|i| ((i * 7919) % 251) as u8).collect();
        let src = View {
            data: &data,
            width: w,
            height: h,
        };
        for interp in [Interpolation::Bilinear, Interpolation::Bicubic] {
            for &(ow, oh) in &[(20usize, 12usize), (50, 30), (37, 11), (13, 23), (60, 5)] {
                let hc = Coefficients::new(w as u32, ow as u32, interp);
                let vc = Coefficients::new(h as u32, oh as u32, interp);
                let mut scratch = Scratch::default();
                let mut full = vec![0u8; ow * oh * 3];
                resample_window(src, &hc, &vc, 0..oh, 0..ow, &mut full, &mut scratch);
                let (r, c) = (oh / 3..oh - oh / 4, ow / 5..ow - 1);
                let mut win = vec![0u8; r.len() * c.len() * 3];
                let hw = Coefficients::for_outputs(w as u32, ow as u32, interp, c.clone());
                let vw = Coefficients::for_outputs(h as u32, oh as u32, interp, r.clone());
                assert_eq!(hw.taps(c.start), hc.taps(c.start));
                resample_window(src, &hw, &vw, r.clone(), c.clone(), &mut win, &mut scratch);
                for (i, y) in r.clone().enumerate() {
                    let a = &full[(y * ow + c.start) * 3..(y * ow + c.end) * 3];
                    let b = &win[i * c.len() * 3..(i + 1) * c.len() * 3];
                    assert_eq!(a, b, "{interp:?} {ow}x{oh} row {y}");
                }
            }
        }
    }
}
