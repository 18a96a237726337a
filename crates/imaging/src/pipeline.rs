//! [`Preprocessor`]: decode, resize, crop and normalise one image at a time,
//! reusing buffers and resampling coefficients between images.

use std::io::Read;
use std::path::Path;

use crate::config::{ChannelOrder, Layout, PixelScale, PreprocessConfig};
use crate::decode::{JpegDecoder, RgbImage, SniffedFormat, decode_other, sniff_format};
use crate::error::{Error, Result};
use crate::geometry::{center_crop_span, resized_size};
use crate::limits::{DecodeBudget, DecodeWarning, Gate, ReadLimits};
use crate::resample::{Coefficients, Scratch, View, resample_window};

/// Turns image files into model inputs according to a [`PreprocessConfig`].
///
/// One per worker thread (it is `Send`, not `Sync`): it owns a JPEG
/// decompressor, scratch buffers and the coefficients of the last resize, so
/// a stream of same-sized images allocates nothing per image beyond what the
/// decoders allocate internally.
///
/// Every file read is bounded by its [`ReadLimits`]: only regular files are read
/// (opened non-blocking, checked on the open handle), files over
/// [`ReadLimits::max_file_bytes`] are refused before reading, images over
/// [`ReadLimits::max_pixels`] (any format) are refused from their header, and
/// images over [`ReadLimits::warn_pixels`] are decoded and recorded as
/// [`DecodeWarning`]s ([`Preprocessor::take_warnings`]). Decode memory is
/// reserved from a [`DecodeBudget`] shared by all preprocessors
/// ([`DecodeBudget::global`] unless [`Preprocessor::with_budget`] gives
/// another) before it is allocated, and released when the image is done;
/// buffers over [`RETAIN_MAX_BYTES`] are not kept for the next image.
#[derive(Debug)]
pub struct Preprocessor {
    config: PreprocessConfig,
    limits: ReadLimits,
    budget: DecodeBudget,
    warnings: Vec<DecodeWarning>,
    jpeg: JpegDecoder,
    decoded: RgbImage,
    cropped: RgbImage,
    scratch: Scratch,
    horiz: Option<Coefficients>,
    vert: Option<Coefficients>,
    /// `lut[c][p]`: the normalised value of pixel value `p` in RGB channel `c`.
    lut: [[f32; 256]; 3],
}

/// Buffers a [`Preprocessor`] keeps between images are dropped after an image
/// that made them larger than this (64 MiB), so one huge image does not pin its
/// memory for the rest of the run.
pub const RETAIN_MAX_BYTES: usize = 64 << 20;

impl Preprocessor {
    /// Validates `config` and prepares a preprocessor for it, with the default
    /// [`ReadLimits`] and the [`DecodeBudget::global`] budget.
    pub fn new(config: PreprocessConfig) -> Result<Self> {
        Self::with_limits(config, ReadLimits::default())
    }

    /// [`Preprocessor::new`] with other [`ReadLimits`].
    pub fn with_limits(config: PreprocessConfig, limits: ReadLimits) -> Result<Self> {
        config.validate()?;
        let lut = normalisation_table(&config);
        Ok(Self {
            config,
            limits,
            budget: DecodeBudget::global().clone(),
            warnings: Vec::new(),
            jpeg: JpegDecoder::new()?,
            decoded: RgbImage::default(),
            cropped: RgbImage::default(),
            scratch: Scratch::default(),
            horiz: None,
            vert: None,
            lut,
        })
    }

    /// Uses `budget` (shared with whichever preprocessors hold a clone of it)
    /// instead of [`DecodeBudget::global`].
    #[must_use]
    pub fn with_budget(mut self, budget: DecodeBudget) -> Self {
        self.budget = budget;
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &PreprocessConfig {
        &self.config
    }

    /// The read limits in use.
    pub fn limits(&self) -> &ReadLimits {
        &self.limits
    }

    /// The warnings recorded since the last call (images decoded although over
    /// [`ReadLimits::warn_pixels`], as Pillow's `DecompressionBombWarning`),
    /// oldest first; the list is emptied.
    pub fn take_warnings(&mut self) -> Vec<DecodeWarning> {
        std::mem::take(&mut self.warnings)
    }

    fn gate(&self) -> Gate {
        Gate::new(self.limits, Some(self.budget.clone()))
    }

    /// Keeps the gate's warnings; the gate's reservation is released when it
    /// is dropped.
    fn finish(&mut self, gate: Gate) {
        self.warnings.extend(gate.warnings);
    }

    /// Drops kept buffers that one large image made larger than
    /// [`RETAIN_MAX_BYTES`].
    fn trim(&mut self) {
        if self.decoded.capacity() > RETAIN_MAX_BYTES {
            self.decoded = RgbImage::default();
            self.scratch = Default::default();
            self.horiz = None;
            self.vert = None;
        }
    }

    /// Number of `f32` one image fills: `3 * crop_height * crop_width`.
    pub fn tensor_len(&self) -> usize {
        self.config.tensor_len()
    }

    /// Reads and decodes a file to RGB, like Pillow's
    /// `Image.open(path).convert("RGB")`.
    ///
    /// The budget reservation ends when this returns: the caller holds the
    /// image outside the budget.
    pub fn decode_file(&mut self, path: &Path) -> Result<RgbImage> {
        let mut gate = self.gate();
        let result = read_and_decode(&mut self.jpeg, path, &mut gate);
        self.finish(gate);
        result
    }

    /// Decodes in-memory bytes to RGB; `path` only names them in errors.
    pub fn decode_bytes(&mut self, bytes: &[u8], path: &Path) -> Result<RgbImage> {
        let mut gate = self.gate();
        let mut out = RgbImage::default();
        let result = decode_into(&mut self.jpeg, bytes, path, &mut out, &mut gate);
        self.finish(gate);
        result.map(|()| out)
    }

    /// Resizes and centre-crops a decoded image: the uint8 RGB crop that the
    /// tensor is computed from (torchvision's `CenterCrop(Resize(img))`).
    pub fn resize_crop(&mut self, image: &RgbImage) -> RgbImage {
        let mut out = RgbImage::default();
        resize_crop_into(
            &self.config,
            image,
            &mut out,
            &mut self.horiz,
            &mut self.vert,
            &mut self.scratch,
        );
        out
    }

    /// Decodes a file and returns its uint8 RGB crop.
    pub fn crop_file(&mut self, path: &Path) -> Result<RgbImage> {
        let mut gate = self.gate();
        let result = read_file(path, &mut gate).and_then(|bytes| {
            decode_into(&mut self.jpeg, &bytes, path, &mut self.decoded, &mut gate)
        });
        let result = result.map(|()| {
            let mut out = RgbImage::default();
            resize_crop_into(
                &self.config,
                &self.decoded,
                &mut out,
                &mut self.horiz,
                &mut self.vert,
                &mut self.scratch,
            );
            out
        });
        self.trim();
        self.finish(gate);
        result
    }

    /// Writes the normalised tensor of a crop (as returned by
    /// [`Preprocessor::resize_crop`]) into `out`, which must hold exactly
    /// [`Preprocessor::tensor_len`] values, in the config's layout and
    /// channel order. Each value is `(scale(p) - mean[c]) / std[c]` in `f32`,
    /// bit for bit what `Normalize(ToTensor(crop))` gives.
    pub fn write_tensor(&self, crop: &RgbImage, out: &mut [f32]) -> Result<()> {
        let (h, w) = (self.config.crop_height, self.config.crop_width);
        if crop.width() != w || crop.height() != h {
            return Err(Error::InvalidConfig {
                field: "crop_height/crop_width",
                problem: format!(
                    "are {h}x{w} but the crop given is {}x{}",
                    crop.height(),
                    crop.width()
                ),
            });
        }
        if out.len() != self.tensor_len() {
            return Err(Error::OutputLength {
                expected: self.tensor_len(),
                got: out.len(),
                height: h,
                width: w,
            });
        }
        let order: [usize; 3] = match self.config.channel_order {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        };
        let px = crop.as_bytes();
        match self.config.layout {
            Layout::Nchw => {
                let plane = w as usize * h as usize;
                for (dst_c, &src_c) in order.iter().enumerate() {
                    let lut = &self.lut[src_c];
                    let dst = &mut out[dst_c * plane..(dst_c + 1) * plane];
                    for (o, p) in dst.iter_mut().zip(px.chunks_exact(3)) {
                        *o = lut[usize::from(p[src_c])];
                    }
                }
            }
            Layout::Nhwc => {
                for (o, p) in out.chunks_exact_mut(3).zip(px.chunks_exact(3)) {
                    for (dst_c, &src_c) in order.iter().enumerate() {
                        o[dst_c] = self.lut[src_c][usize::from(p[src_c])];
                    }
                }
            }
        }
        Ok(())
    }

    /// Decodes, resizes, crops and normalises one image file into `out`
    /// (one image's slot of a batch buffer; [`Preprocessor::tensor_len`]
    /// values).
    pub fn preprocess_file(&mut self, path: &Path, out: &mut [f32]) -> Result<()> {
        self.check_output(out)?;
        let mut gate = self.gate();
        let result = read_file(path, &mut gate)
            .and_then(|bytes| self.preprocess_gated(&bytes, path, out, &mut gate));
        self.finish(gate);
        result
    }

    /// [`Preprocessor::preprocess_file`] on bytes already in memory; `path`
    /// only names them in errors.
    pub fn preprocess_bytes(&mut self, bytes: &[u8], path: &Path, out: &mut [f32]) -> Result<()> {
        self.check_output(out)?;
        let mut gate = self.gate();
        let result = self.preprocess_gated(bytes, path, out, &mut gate);
        self.finish(gate);
        result
    }

    /// [`Preprocessor::preprocess_file`] on an image held elsewhere (an archive member),
    /// with the same limits: `read` is given the most bytes allowed and returns the image's
    /// bytes; `size`, when known beforehand, is checked against the limit and reserved in
    /// the decode budget before `read` is called (an image of unknown size is checked and
    /// reserved once read). `name` names the image in errors.
    pub fn preprocess_read(
        &mut self,
        name: &Path,
        size: Option<u64>,
        read: impl FnOnce(u64) -> std::io::Result<Vec<u8>>,
        out: &mut [f32],
    ) -> Result<()> {
        self.check_output(out)?;
        let mut gate = self.gate();
        let result = read_bounded(name, size, read, &mut gate)
            .and_then(|bytes| self.preprocess_gated(&bytes, name, out, &mut gate));
        self.finish(gate);
        result
    }

    fn check_output(&self, out: &[f32]) -> Result<()> {
        if out.len() != self.tensor_len() {
            return Err(Error::OutputLength {
                expected: self.tensor_len(),
                got: out.len(),
                height: self.config.crop_height,
                width: self.config.crop_width,
            });
        }
        Ok(())
    }

    fn preprocess_gated(
        &mut self,
        bytes: &[u8],
        path: &Path,
        out: &mut [f32],
        gate: &mut Gate,
    ) -> Result<()> {
        let decoded = decode_into(&mut self.jpeg, bytes, path, &mut self.decoded, gate);
        if let Err(e) = decoded {
            self.trim();
            return Err(e);
        }
        let mut cropped = std::mem::take(&mut self.cropped);
        resize_crop_into(
            &self.config,
            &self.decoded,
            &mut cropped,
            &mut self.horiz,
            &mut self.vert,
            &mut self.scratch,
        );
        let result = self.write_tensor(&cropped, out);
        self.cropped = cropped;
        self.trim();
        result
    }
}

/// Reads and decodes an image file to RGB, like Pillow's
/// `Image.open(path).convert("RGB")`: the decoding of
/// [`Preprocessor::decode_file`] without a preprocessing configuration (for
/// an image that is shown rather than fed to a model).
///
/// The file is bounded by `limits` as a [`Preprocessor`]'s files are (only a
/// regular file, at most [`ReadLimits::max_file_bytes`], at most
/// [`ReadLimits::max_pixels`] from its header), and its decode memory is
/// reserved from [`DecodeBudget::global`] until this returns. An image over
/// [`ReadLimits::warn_pixels`] is decoded; the warning is not kept.
pub fn decode_file(path: &Path, limits: ReadLimits) -> Result<RgbImage> {
    let mut gate = Gate::new(limits, Some(DecodeBudget::global().clone()));
    let mut jpeg = JpegDecoder::new()?;
    read_and_decode(&mut jpeg, path, &mut gate)
}

/// [`decode_file`] of an image held elsewhere (an archive member), with the same limits and
/// budget: `read` is given the most bytes allowed and returns the image's bytes; `size`, when
/// known beforehand, is checked and reserved before `read` is called (as
/// [`Preprocessor::preprocess_read`]). `name` names the image in errors.
pub fn decode_read(
    name: &Path,
    size: Option<u64>,
    read: impl FnOnce(u64) -> std::io::Result<Vec<u8>>,
    limits: ReadLimits,
) -> Result<RgbImage> {
    let mut gate = Gate::new(limits, Some(DecodeBudget::global().clone()));
    let mut jpeg = JpegDecoder::new()?;
    let bytes = read_bounded(name, size, read, &mut gate)?;
    let mut out = RgbImage::default();
    decode_into(&mut jpeg, &bytes, name, &mut out, &mut gate)?;
    Ok(out)
}

/// Reads `path` through `gate` and decodes it to RGB.
fn read_and_decode(jpeg: &mut JpegDecoder, path: &Path, gate: &mut Gate) -> Result<RgbImage> {
    let bytes = read_file(path, gate)?;
    let mut out = RgbImage::default();
    decode_into(jpeg, &bytes, path, &mut out, gate)?;
    Ok(out)
}

/// Opens `path` for reading without blocking: `O_NONBLOCK`, so that a FIFO
/// put in place of a file does not wait for a writer.
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// Reads a whole image file, bounded: only a regular file (checked on the
/// open handle), at most `max_file_bytes` (checked before reading, and again
/// while reading a file that grows). The file's bytes are reserved in the
/// gate's budget before they are allocated.
pub(crate) fn read_file(path: &Path, gate: &mut Gate) -> Result<Vec<u8>> {
    let read_error = |error| Error::Read {
        path: path.to_owned(),
        error,
    };
    let file = open_nonblocking(path).map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() {
        return Err(Error::NotRegularFile {
            path: path.to_owned(),
            kind: imagenetx_vocab::file_kind(&meta.file_type()),
        });
    }
    let limit = gate.limits.max_file_bytes;
    let too_large = |size| Error::FileTooLarge {
        path: path.to_owned(),
        size,
        limit,
    };
    if meta.len() > limit {
        return Err(too_large(meta.len()));
    }
    if meta.len() == 0 {
        return Err(Error::Empty {
            path: path.to_owned(),
        });
    }
    gate.hold_file(meta.len());
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(usize::try_from(meta.len()).unwrap_or(usize::MAX))
        .map_err(|e| read_error(std::io::Error::new(std::io::ErrorKind::OutOfMemory, e)))?;
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    let read = bytes.len() as u64;
    if read > limit {
        return Err(too_large(read));
    }
    if bytes.is_empty() {
        return Err(Error::Empty {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// Reads an image through `read` within the gate's limits: a known `size` is checked and
/// reserved before reading, and the bytes read are checked again.
fn read_bounded(
    name: &Path,
    size: Option<u64>,
    read: impl FnOnce(u64) -> std::io::Result<Vec<u8>>,
    gate: &mut Gate,
) -> Result<Vec<u8>> {
    let limit = gate.limits.max_file_bytes;
    let too_large = |size| Error::FileTooLarge {
        path: name.to_owned(),
        size,
        limit,
    };
    let empty = || Error::Empty {
        path: name.to_owned(),
    };
    match size {
        Some(size) if size > limit => return Err(too_large(size)),
        Some(0) => return Err(empty()),
        Some(size) => gate.hold_file(size),
        None => {}
    }
    let bytes = read(limit).map_err(|error| Error::Read {
        path: name.to_owned(),
        error,
    })?;
    let got = bytes.len() as u64;
    if got > limit {
        return Err(too_large(got));
    }
    if got == 0 {
        return Err(empty());
    }
    if size.is_none() {
        gate.hold_file(got);
    }
    Ok(bytes)
}

fn decode_into(
    jpeg: &mut JpegDecoder,
    bytes: &[u8],
    path: &Path,
    out: &mut RgbImage,
    gate: &mut Gate,
) -> Result<()> {
    if bytes.is_empty() {
        return Err(Error::Empty {
            path: path.to_owned(),
        });
    }
    match sniff_format(bytes) {
        Some(SniffedFormat::Jpeg) => jpeg.decode_gated(bytes, path, out, gate),
        Some(SniffedFormat::Other(format)) => decode_other(bytes, format, path, out, gate),
        None => Err(Error::UnsupportedFormat {
            path: path.to_owned(),
            magic: bytes
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" "),
        }),
    }
}

/// The cached coefficients for `in_size -> out_size`, output pixels
/// `outputs`, recomputed when any of them changes.
fn coefficients<'a>(
    slot: &'a mut Option<Coefficients>,
    in_size: u32,
    out_size: u32,
    outputs: std::ops::Range<usize>,
    config: &PreprocessConfig,
) -> &'a Coefficients {
    let fresh = |c: &Coefficients| {
        c.in_size() == in_size && c.out_size() == out_size && c.outputs() == outputs
    };
    match slot {
        Some(c) if fresh(c) => {}
        _ => {
            *slot = Some(Coefficients::for_outputs(
                in_size,
                out_size,
                config.interpolation,
                outputs.clone(),
            ))
        }
    }
    slot.get_or_insert_with(|| {
        Coefficients::for_outputs(in_size, out_size, config.interpolation, outputs)
    })
}

fn resize_crop_into(
    config: &PreprocessConfig,
    image: &RgbImage,
    out: &mut RgbImage,
    horiz: &mut Option<Coefficients>,
    vert: &mut Option<Coefficients>,
    scratch: &mut Scratch,
) {
    let (ch, cw) = (config.crop_height, config.crop_width);
    let (rw, rh) = resized_size(image.width(), image.height(), config.resize);
    let ys = center_crop_span(rh, ch, config.crop_rounding);
    let xs = center_crop_span(rw, cw, config.crop_rounding);
    let padded = ys.len < ch || xs.len < cw;
    let dst = if padded {
        let dst = out.reset(cw, ch);
        if config.pad_fill != [0; 3] {
            for px in dst.chunks_exact_mut(3) {
                px.copy_from_slice(&config.pad_fill);
            }
        }
        dst
    } else {
        out.reset_for_overwrite(cw, ch)
    };
    if image.width() == 0 || image.height() == 0 {
        return;
    }
    let rows = ys.src_start as usize..(ys.src_start + ys.len) as usize;
    let cols = xs.src_start as usize..(xs.src_start + xs.len) as usize;
    let src = View {
        data: image.as_bytes(),
        width: image.width() as usize,
        height: image.height() as usize,
    };
    let hc = coefficients(horiz, image.width(), rw, cols.clone(), config);
    let vc = coefficients(vert, image.height(), rh, rows.clone(), config);
    if !padded {
        resample_window(src, hc, vc, rows, cols, dst, scratch);
        return;
    }
    // Padded: resample the window into a temporary, then place it.
    let mut window = vec![0u8; rows.len() * cols.len() * 3];
    resample_window(
        src,
        hc,
        vc,
        rows.clone(),
        cols.clone(),
        &mut window,
        scratch,
    );
    let row_bytes = cols.len() * 3;
    for i in 0..rows.len() {
        let y = ys.dst_start as usize + i;
        let start = (y * cw as usize + xs.dst_start as usize) * 3;
        dst[start..start + row_bytes].copy_from_slice(&window[i * row_bytes..(i + 1) * row_bytes]);
    }
}

fn normalisation_table(config: &PreprocessConfig) -> [[f32; 256]; 3] {
    let mut lut = [[0f32; 256]; 3];
    for (c, table) in lut.iter_mut().enumerate() {
        for (p, v) in table.iter_mut().enumerate() {
            let x = match config.scale {
                PixelScale::UnitInterval => p as f32 / 255.0,
                PixelScale::Raw => p as f32,
            };
            *v = (x - config.mean[c]) / config.std[c];
        }
    }
    lut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preprocess_read_gives_the_file_tensor_within_the_file_limits() {
        let dir = tempfile::tempdir().expect("temp folder");
        let path = dir.path().join("rgb.png");
        let pixels: Vec<u8> = (0..40 * 30 * 3).map(|i| (i * 13 % 251) as u8).collect();
        image::save_buffer(&path, &pixels, 40, 30, image::ExtendedColorType::Rgb8).expect("png");
        let bytes = std::fs::read(&path).expect("read");
        let config = PreprocessConfig {
            resize: crate::Resize::ShorterSide { size: 20 },
            crop_height: 16,
            crop_width: 16,
            ..PreprocessConfig::torchvision()
        };
        let mut pre = Preprocessor::new(config.clone()).expect("valid");
        let mut from_file = vec![0f32; pre.tensor_len()];
        pre.preprocess_file(&path, &mut from_file).expect("file");
        let name = Path::new("a.tar/rgb.png");
        for size in [Some(bytes.len() as u64), None] {
            let mut from_read = vec![1f32; pre.tensor_len()];
            pre.preprocess_read(name, size, |_| Ok(bytes.clone()), &mut from_read)
                .expect("read");
            assert_eq!(from_read, from_file);
        }
        // Over the file limit: refused before reading when the size is known, after it when not.
        let limits = ReadLimits {
            max_file_bytes: 64,
            ..ReadLimits::default()
        };
        let mut small = Preprocessor::with_limits(config, limits).expect("valid");
        let mut out = vec![0f32; small.tensor_len()];
        let err = small
            .preprocess_read(name, Some(bytes.len() as u64), |_| panic!("read"), &mut out)
            .expect_err("too large");
        assert!(
            matches!(err, Error::FileTooLarge { limit: 64, .. }),
            "{err}"
        );
        let err = small
            .preprocess_read(name, None, |_| Ok(bytes.clone()), &mut out)
            .expect_err("too large");
        assert!(err.to_string().contains("a.tar/rgb.png"), "{err}");
        let err = small
            .preprocess_read(name, Some(0), |_| Ok(Vec::new()), &mut out)
            .expect_err("empty");
        assert!(matches!(err, Error::Empty { .. }), "{err}");
    }

    #[test]
    fn decode_file_decodes_as_the_preprocessor_within_the_limits() {
        let dir = tempfile::tempdir().expect("temp folder");
        let dir = dir.path();
        // A grey-alpha PNG: converted to RGB by Pillow's rules, not just copied.
        let path = dir.join("la.png");
        let pixels: Vec<u8> = (0..7 * 5)
            .flat_map(|i| [(i * 7) as u8, (255 - i * 3) as u8])
            .collect();
        image::save_buffer(&path, &pixels, 7, 5, image::ExtendedColorType::La8).expect("png");
        let plain = decode_file(&path, ReadLimits::default()).expect("decodes");
        let mut pre = Preprocessor::new(PreprocessConfig::torchvision()).expect("valid");
        let expected = pre.decode_file(&path).expect("decodes");
        assert_eq!((plain.width(), plain.height()), (7, 5));
        assert_eq!(plain.as_bytes(), expected.as_bytes());
        assert_eq!(&plain.as_bytes()[..3], &[0, 0, 0]);

        let small = ReadLimits {
            max_file_bytes: 8,
            ..ReadLimits::default()
        };
        assert!(matches!(
            decode_file(&path, small),
            Err(Error::FileTooLarge { limit: 8, .. })
        ));
        let few = ReadLimits {
            max_pixels: 34,
            ..ReadLimits::default()
        };
        assert!(matches!(
            decode_file(&path, few),
            Err(Error::TooManyPixels { .. })
        ));
        let missing =
            decode_file(&dir.join("missing.png"), ReadLimits::default()).expect_err("no such file");
        assert!(missing.to_string().contains("missing.png"), "{missing}");
    }

    #[test]
    fn preprocessor_moves_to_worker_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<Preprocessor>();
    }

    #[test]
    fn a_huge_decoded_buffer_is_not_kept_for_the_next_image() {
        let mut pre = Preprocessor::new(PreprocessConfig::torchvision())
            .expect("valid")
            .with_budget(DecodeBudget::new(1 << 30));
        // As if a huge image had just been decoded (zeroed pages cost nothing).
        let (w, h) = (8192u32, 4096u32);
        pre.decoded =
            RgbImage::from_raw(w, h, vec![0; 3 * w as usize * h as usize]).expect("sized");
        assert!(pre.decoded.capacity() > RETAIN_MAX_BYTES);
        let pixels = vec![90u8; 32 * 32 * 3];
        let jpeg = turbojpeg::compress(
            turbojpeg::Image {
                pixels: pixels.as_slice(),
                width: 32,
                pitch: 32 * 3,
                height: 32,
                format: turbojpeg::PixelFormat::RGB,
            },
            90,
            turbojpeg::Subsamp::Sub2x2,
        )
        .expect("encode");
        let mut out = vec![0f32; pre.tensor_len()];
        pre.preprocess_bytes(&jpeg, Path::new("small.JPEG"), &mut out)
            .expect("decodes");
        assert!(pre.decoded.capacity() <= RETAIN_MAX_BYTES);
        assert_eq!(pre.budget.in_use(), 0, "released after the image");
    }

    #[test]
    fn normalisation_is_torchvision_formula() {
        let lut = normalisation_table(&PreprocessConfig::torchvision());
        // (1/255 - 0.485) / 0.229 in f32, written out step by step.
        let x = 1.0f32 / 255.0f32;
        assert_eq!(lut[0][1].to_bits(), ((x - 0.485f32) / 0.229f32).to_bits());
        assert_eq!(lut[2][0], -0.406f32 / 0.225f32);
        let tfl = normalisation_table(&PreprocessConfig::tflite(224).expect("valid"));
        assert_eq!(tfl[1][127], 0.0);
        assert_eq!(tfl[1][255], 1.0);
        assert_eq!(tfl[1][255 - 254], -126.0 / 128.0);
    }

    #[test]
    fn small_image_is_zero_padded_like_torchvision() {
        let mut config = PreprocessConfig::torchvision();
        config.resize = crate::config::Resize::None;
        config.crop_height = 4;
        config.crop_width = 5;
        let mut p = Preprocessor::new(config).expect("valid");
        // 2x3 image, value = 10 * (row * 2 + col) + 10.
        let data: Vec<u8> = (0..6).flat_map(|i| [10 * (i + 1) as u8; 3]).collect();
        let img = RgbImage::from_raw(2, 3, data).expect("sized");
        let crop = p.resize_crop(&img);
        // Width pad (5 - 2) // 2 = 1 left; height pad (4 - 3) // 2 = 0 top.
        let at = |x: usize, y: usize| crop.as_bytes()[(y * 5 + x) * 3];
        assert_eq!([at(0, 0), at(1, 0), at(2, 0), at(3, 0)], [0, 10, 20, 0]);
        assert_eq!([at(1, 2), at(2, 2), at(1, 3)], [50, 60, 0]);
    }
}
