//! Decoding image bytes to packed 8-bit RGB, as Pillow's
//! `Image.open(path).convert("RGB")` does.
//!
//! The format is detected from the bytes, never from the file name. JPEG goes
//! through the bundled libjpeg-turbo (TurboJPEG API, accurate integer IDCT,
//! fancy upsampling: Pillow's decoder settings), so the pixels are Pillow's.
//! Every other format goes through the `image` crate, followed by Pillow's
//! conversion rules to RGB:
//!
//! | source | RGB value |
//! |---|---|
//! | gray (`L`), gray + alpha (`LA`) | `(l, l, l)`, alpha dropped |
//! | palette (`P`) | the palette entry, transparency ignored |
//! | RGBA | alpha dropped (no compositing) |
//! | 16-bit gray (`I;16`) | `min(v, 255)` replicated (Pillow's `I16_RGB`) |
//! | 16-bit RGB / RGBA / gray + alpha | the high byte of each sample |
//! | CMYK JPEG | samples inverted (Pillow assumes Adobe polarity), then `cmyk2rgb` |
//!
//! Truncated JPEGs are errors ([`Error::Truncated`]), as in Pillow with its
//! default `LOAD_TRUNCATED_IMAGES = False` (`OSError: image file is
//! truncated`). Other libjpeg warnings (for example extraneous bytes before a
//! marker, corrupt Huffman data) are tolerated, as Pillow tolerates them.
//! The test for truncation is "libjpeg warned and no end-of-image marker
//! follows the last scan header". One edge case differs from Pillow: a
//! baseline JPEG whose scan data is complete but whose final `FF D9` marker is
//! missing decodes in Pillow and is reported as truncated here.

use std::ffi::{CStr, c_int};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat};
use turbojpeg::raw;

use crate::error::{Error, Result};
use crate::limits::{Gate, ReadLimits};

/// Largest image decoded by default, in pixels: Pillow refuses images over twice its
/// `MAX_IMAGE_PIXELS` (`DecompressionBombError`), and so do we, in every format. The limit
/// in force is [`ReadLimits::max_pixels`].
pub const MAX_PIXELS: i64 = 2 * 89_478_485;

/// A decoded image: packed 8-bit RGB, row-major, no padding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RgbImage {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl RgbImage {
    /// An image from packed RGB bytes; `None` unless `data.len() == 3 * width * height`.
    pub fn from_raw(width: u32, height: u32, data: Vec<u8>) -> Option<Self> {
        (data.len() == 3 * width as usize * height as usize).then_some(Self {
            width,
            height,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Packed RGB bytes, `3 * width * height` of them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The packed RGB bytes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }

    /// Sets the size and returns the buffer, all zeros.
    pub(crate) fn reset(&mut self, width: u32, height: u32) -> &mut Vec<u8> {
        self.width = width;
        self.height = height;
        self.data.clear();
        self.data.resize(3 * width as usize * height as usize, 0);
        &mut self.data
    }

    /// Bytes allocated for the pixels.
    pub(crate) fn capacity(&self) -> usize {
        self.data.capacity()
    }

    /// Sets the size and returns the buffer, with stale contents: for callers
    /// that overwrite every byte.
    pub(crate) fn reset_for_overwrite(&mut self, width: u32, height: u32) -> &mut Vec<u8> {
        self.width = width;
        self.height = height;
        self.data.resize(3 * width as usize * height as usize, 0);
        &mut self.data
    }
}

/// Image container formats recognised from their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SniffedFormat {
    /// JPEG (`FF D8 FF`), decoded by libjpeg-turbo.
    Jpeg,
    /// Any other format the `image` crate decodes (PNG, GIF, BMP, TIFF, WebP).
    Other(ImageFormat),
}

/// Detects the format from the leading bytes (the extension is ignored).
pub fn sniff_format(bytes: &[u8]) -> Option<SniffedFormat> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(SniffedFormat::Jpeg);
    }
    match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => Some(SniffedFormat::Jpeg),
        Ok(
            f @ (ImageFormat::Png
            | ImageFormat::Gif
            | ImageFormat::Bmp
            | ImageFormat::Tiff
            | ImageFormat::WebP),
        ) => Some(SniffedFormat::Other(f)),
        _ => None,
    }
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "PNG",
        ImageFormat::Gif => "GIF",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Tiff => "TIFF",
        ImageFormat::WebP => "WebP",
        _ => "image",
    }
}

/// Owns a TurboJPEG decompressor handle and decodes JPEGs with Pillow's
/// settings.
#[derive(Debug)]
pub struct JpegDecoder {
    handle: raw::tjhandle,
}

// SAFETY: a TurboJPEG handle has no thread affinity; it only must not be used
// from two threads at once, which `&mut self` on every use guarantees.
unsafe impl Send for JpegDecoder {}

impl Drop for JpegDecoder {
    fn drop(&mut self) {
        // SAFETY: `handle` came from `tj3Init` and is destroyed exactly once.
        unsafe { raw::tj3Destroy(self.handle) }
    }
}

/// How a TurboJPEG call failed.
enum TjFailure {
    Warning(String),
    Fatal(String),
}

impl JpegDecoder {
    /// A new decompressor. Fails only when TurboJPEG cannot allocate one.
    pub fn new() -> Result<Self> {
        // SAFETY: plain constructor call; a null return is checked.
        let handle = unsafe { raw::tj3Init(raw::TJINIT_TJINIT_DECOMPRESS as c_int) };
        if handle.is_null() {
            return Err(Error::Unsupported {
                path: "<memory>".into(),
                format: "JPEG",
                detail: "cannot initialise the TurboJPEG decompressor".into(),
            });
        }
        Ok(Self { handle })
    }

    fn failure(&mut self) -> TjFailure {
        // SAFETY: the handle is valid; the returned string is owned by it and
        // copied before the next call.
        let (code, msg) = unsafe {
            let code = raw::tj3GetErrorCode(self.handle);
            let msg = CStr::from_ptr(raw::tj3GetErrorStr(self.handle));
            (code, msg.to_string_lossy().into_owned())
        };
        if code != raw::TJERR_TJERR_WARNING as c_int {
            // A fatal error can leave libjpeg's state mid-stream, which breaks
            // the next image: start over with a fresh handle.
            // SAFETY: plain constructor call; a null return is checked.
            let fresh = unsafe { raw::tj3Init(raw::TJINIT_TJINIT_DECOMPRESS as c_int) };
            if !fresh.is_null() {
                // SAFETY: the old handle is valid and not used again.
                unsafe { raw::tj3Destroy(self.handle) };
                self.handle = fresh;
            }
        }
        if code == raw::TJERR_TJERR_WARNING as c_int {
            TjFailure::Warning(msg)
        } else {
            TjFailure::Fatal(msg)
        }
    }

    fn get(&mut self, param: raw::TJPARAM) -> c_int {
        // SAFETY: valid handle, a parameter id from the bindings.
        unsafe { raw::tj3Get(self.handle, param as c_int) }
    }

    /// Decodes `bytes` (a JPEG) into `out`. `path` names the file in errors. Images over
    /// the default [`ReadLimits::max_pixels`] are refused ([`Error::TooManyPixels`]).
    pub fn decode(&mut self, bytes: &[u8], path: &Path, out: &mut RgbImage) -> Result<()> {
        let mut gate = Gate::new(ReadLimits::default(), None);
        self.decode_gated(bytes, path, out, &mut gate)
    }

    /// [`JpegDecoder::decode`] under a gate: the header's size is checked and the decode
    /// memory reserved before any pixel buffer is allocated.
    pub(crate) fn decode_gated(
        &mut self,
        bytes: &[u8],
        path: &Path,
        out: &mut RgbImage,
        gate: &mut Gate,
    ) -> Result<()> {
        let corrupt = |detail: String| Error::Corrupt {
            path: path.to_owned(),
            format: "JPEG",
            detail,
        };
        let Ok(len) = raw::size_t::try_from(bytes.len()) else {
            return Err(corrupt(format!("{} bytes is too large", bytes.len())));
        };
        // SAFETY: pointer and length describe `bytes`.
        let rc = unsafe { raw::tj3DecompressHeader(self.handle, bytes.as_ptr(), len) };
        if rc != 0 {
            match self.failure() {
                TjFailure::Warning(_) => {}
                TjFailure::Fatal(msg) => return Err(truncated_or(path, msg, corrupt)),
            }
        }
        let width = self.get(raw::TJPARAM_TJPARAM_JPEGWIDTH);
        let height = self.get(raw::TJPARAM_TJPARAM_JPEGHEIGHT);
        let precision = self.get(raw::TJPARAM_TJPARAM_PRECISION);
        let colorspace = self.get(raw::TJPARAM_TJPARAM_COLORSPACE);
        let lossless = self.get(raw::TJPARAM_TJPARAM_LOSSLESS);
        let unsupported = |detail: String| Error::Unsupported {
            path: path.to_owned(),
            format: "JPEG",
            detail,
        };
        if width <= 0 || height <= 0 {
            return Err(corrupt(format!("invalid size {width}x{height}")));
        }
        if precision != 8 || lossless == 1 {
            // Pillow: "cannot handle 12-bit layers" and likewise.
            return Err(unsupported(format!(
                "{precision}-bit samples (lossless: {})",
                lossless == 1
            )));
        }
        let cmyk = colorspace == raw::TJCS_TJCS_CMYK as c_int
            || colorspace == raw::TJCS_TJCS_YCCK as c_int;
        let progressive = self.get(raw::TJPARAM_TJPARAM_PROGRESSIVE) == 1;
        let (w, h) = (width as usize, height as usize);
        // Decode memory: the RGB image, the CMYK image first for CMYK JPEGs, and libjpeg's
        // whole-image coefficient buffers (2 bytes a sample) for progressive ones.
        let px = u64::from(width.unsigned_abs()) * u64::from(height.unsigned_abs());
        let components = if cmyk { 4 } else { 3 };
        let need = 3 * px
            + if cmyk { 4 * px } else { 0 }
            + if progressive { 2 * components * px } else { 0 };
        gate.admit(
            path,
            "JPEG",
            width.unsigned_abs(),
            height.unsigned_abs(),
            need,
        )?;
        let (format, channels) = if cmyk {
            (raw::TJPF_TJPF_CMYK, 4)
        } else {
            (raw::TJPF_TJPF_RGB, 3)
        };
        let pitch = w
            .checked_mul(channels)
            .and_then(|p| c_int::try_from(p).ok());
        let Some(pitch) = pitch else {
            return Err(unsupported(format!("{w}x{h} is too large")));
        };
        let mut cmyk_buf = Vec::new();
        let buf: &mut Vec<u8> = if cmyk {
            cmyk_buf.resize(w * h * 4, 0);
            &mut cmyk_buf
        } else {
            out.reset_for_overwrite(w as u32, h as u32)
        };
        // SAFETY: `buf` holds `pitch * height` bytes, exactly what a
        // `format` image of the header's size needs.
        let rc = unsafe {
            raw::tj3Decompress8(
                self.handle,
                bytes.as_ptr(),
                len,
                buf.as_mut_ptr(),
                pitch,
                format,
            )
        };
        if rc != 0 {
            match self.failure() {
                // libjpeg reports only its first warning; running out of
                // data always warns, so a warning plus no end-of-image marker
                // after the last scan header means the data ended early.
                TjFailure::Warning(msg)
                    if msg.contains("Premature end of JPEG file")
                        || !ends_after_last_scan(bytes) =>
                {
                    return Err(Error::Truncated {
                        path: path.to_owned(),
                        detail: msg,
                    });
                }
                TjFailure::Warning(_) => {}
                TjFailure::Fatal(msg) => return Err(truncated_or(path, msg, corrupt)),
            }
        }
        if cmyk {
            let rgb = out.reset_for_overwrite(w as u32, h as u32);
            cmyk_inverted_to_rgb(&cmyk_buf, rgb);
        }
        Ok(())
    }
}

/// Whether an end-of-image marker (`FF D9`) follows the last start-of-scan
/// marker (`FF DA`). Entropy-coded data cannot contain either byte pair
/// (0xFF is stuffed as `FF 00`), so a file cut inside its last scan has none.
fn ends_after_last_scan(bytes: &[u8]) -> bool {
    let Some(eoi) = bytes.windows(2).rposition(|w| w == [0xFF, 0xD9]) else {
        return false;
    };
    match bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) {
        Some(sos) => eoi > sos,
        None => false,
    }
}

fn truncated_or(path: &Path, msg: String, corrupt: impl FnOnce(String) -> Error) -> Error {
    if msg.contains("Premature end") || msg.contains("premature end") {
        Error::Truncated {
            path: path.to_owned(),
            detail: msg,
        }
    } else {
        corrupt(msg)
    }
}

/// Pillow's `CMYK;I` unpacking (inverted samples) followed by `cmyk2rgb`:
/// `nk = 255 - k; out = clip(nk - muldiv255(c, nk))` with the stored `k` and
/// `c` inverted first.
fn cmyk_inverted_to_rgb(cmyk: &[u8], rgb: &mut [u8]) {
    #[inline(always)]
    fn muldiv255(a: i32, b: i32) -> i32 {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    }
    for (o, p) in rgb.chunks_exact_mut(3).zip(cmyk.chunks_exact(4)) {
        let nk = 255 - (255 - i32::from(p[3]));
        for c in 0..3 {
            let v = nk - muldiv255(255 - i32::from(p[c]), nk);
            o[c] = v.clamp(0, 255) as u8;
        }
    }
}

/// Decodes a non-JPEG image with the `image` crate and converts it to RGB
/// with Pillow's rules.
pub(crate) fn decode_other(
    bytes: &[u8],
    format: ImageFormat,
    path: &Path,
    out: &mut RgbImage,
    gate: &mut Gate,
) -> Result<()> {
    let name = format_name(format);
    let map_err = |e| image_error(e, path, name);
    // The header first, without the `image` crate's limits, so that an image too large is
    // refused by the pixel limit with its size rather than by an allocation limit.
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    reader.no_limits();
    let mut decoder = reader.into_decoder().map_err(map_err)?;
    let (mut width, mut height) = decoder.dimensions();
    let mut extra = 0u64;
    if format == ImageFormat::Gif
        && let Some((canvas_w, canvas_h, frame_px)) = gif_first_frame(bytes)
    {
        // Pillow grows a GIF's size to hold its first frame, and checks that size.
        (width, height) = (width.max(canvas_w), height.max(canvas_h));
        extra = 4 * frame_px;
    }
    let px = u64::from(width) * u64::from(height);
    gate.admit(
        path,
        name,
        width,
        height,
        decoder
            .total_bytes()
            .saturating_add(px.saturating_mul(3))
            .saturating_add(extra),
    )?;
    // Allocation cap for the decoders' own buffers: the largest image allowed in the widest
    // pixel type (16-bit RGBA), plus the file.
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(
        gate.limits
            .max_pixels
            .saturating_mul(8)
            .saturating_add(bytes.len() as u64),
    );
    decoder.set_limits(limits).map_err(map_err)?;
    let img = DynamicImage::from_decoder(decoder).map_err(map_err)?;
    convert_to_rgb(img, format, bytes, path, out)
}

/// The `image` crate's error as ours.
fn image_error(e: image::ImageError, path: &Path, name: &'static str) -> Error {
    match e {
        image::ImageError::Unsupported(u) => Error::Unsupported {
            path: path.to_owned(),
            format: name,
            detail: u.to_string(),
        },
        image::ImageError::Limits(l) => Error::Unsupported {
            path: path.to_owned(),
            format: name,
            detail: l.to_string(),
        },
        other => {
            let detail = other.to_string();
            if detail.contains("end of file")
                || detail.contains("EOF")
                || detail.contains("unexpected end")
            {
                Error::Truncated {
                    path: path.to_owned(),
                    detail,
                }
            } else {
                Error::Corrupt {
                    path: path.to_owned(),
                    format: name,
                    detail,
                }
            }
        }
    }
}

/// The size of a GIF's logical screen grown to hold its first frame, and the first frame's
/// pixel count; `None` when the header or frame descriptor cannot be read (the decoder then
/// reports it).
fn gif_first_frame(bytes: &[u8]) -> Option<(u32, u32, u64)> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    // Only descriptors are read here, no pixels.
    options.set_memory_limit(gif::MemoryLimit::Unlimited);
    let mut decoder = options.read_info(std::io::Cursor::new(bytes)).ok()?;
    let (screen_w, screen_h) = (u32::from(decoder.width()), u32::from(decoder.height()));
    let frame = decoder.next_frame_info().ok()??;
    let right = u32::from(frame.left) + u32::from(frame.width);
    let bottom = u32::from(frame.top) + u32::from(frame.height);
    Some((
        screen_w.max(right),
        screen_h.max(bottom),
        u64::from(frame.width) * u64::from(frame.height),
    ))
}

/// Pillow's conversion to RGB of a decoded image. 8-bit images are converted in their own
/// buffer (no second full-size allocation).
fn convert_to_rgb(
    img: DynamicImage,
    format: ImageFormat,
    bytes: &[u8],
    path: &Path,
    out: &mut RgbImage,
) -> Result<()> {
    let name = format_name(format);
    // PNG colour type 0 (gray) with tRNS decodes as gray + alpha, but Pillow
    // opens it as I;16 without alpha, which clamps rather than shifts.
    let png_gray = format == ImageFormat::Png && bytes.len() > 25 && bytes[25] == 0;
    let (w, h) = (img.width(), img.height());
    let in_place = |raw: Vec<u8>, channels: usize, f: fn(&[u8]) -> [u8; 3]| {
        to_rgb_in_place(raw, channels, w as usize * h as usize, f)
            .and_then(|data| RgbImage::from_raw(w, h, data))
            .ok_or_else(|| Error::Corrupt {
                path: path.to_owned(),
                format: name,
                detail: format!("decoder returned a buffer of the wrong size for {w}x{h}"),
            })
    };
    match img {
        DynamicImage::ImageLuma8(b) => *out = in_place(b.into_raw(), 1, |p| [p[0]; 3])?,
        DynamicImage::ImageLumaA8(b) => *out = in_place(b.into_raw(), 2, |p| [p[0]; 3])?,
        DynamicImage::ImageRgb8(b) => *out = in_place(b.into_raw(), 3, |p| [p[0], p[1], p[2]])?,
        DynamicImage::ImageRgba8(b) => *out = in_place(b.into_raw(), 4, |p| [p[0], p[1], p[2]])?,
        _ => convert_16bit(img, png_gray, path, name, out.reset_for_overwrite(w, h))?,
    }
    Ok(())
}

/// Converts packed `channels`-sample 8-bit pixels to RGB within the same buffer: forwards
/// when pixels shrink, backwards after growing the buffer when they grow; 3-sample pixels
/// are RGB already and kept as they are. `None` when `raw` does not hold `pixels` pixels.
fn to_rgb_in_place(
    mut raw: Vec<u8>,
    channels: usize,
    pixels: usize,
    f: fn(&[u8]) -> [u8; 3],
) -> Option<Vec<u8>> {
    if channels == 0 || raw.len() != pixels.checked_mul(channels)? {
        return None;
    }
    let rgb_len = pixels.checked_mul(3)?;
    if channels == 3 {
        return Some(raw);
    }
    if channels >= 3 {
        // Pixel i is read from i*channels before bytes 3i..3i+3 (<= its own) are written.
        for i in 0..pixels {
            let px = f(&raw[i * channels..(i + 1) * channels]);
            raw[3 * i..3 * i + 3].copy_from_slice(&px);
        }
        raw.truncate(rgb_len);
        raw.shrink_to_fit();
    } else {
        // Backwards: pixel i's output 3i..3i+3 lies at or after every unread input byte.
        raw.resize(rgb_len, 0);
        for i in (0..pixels).rev() {
            let px = f(&raw[i * channels..(i + 1) * channels]);
            raw[3 * i..3 * i + 3].copy_from_slice(&px);
        }
    }
    Some(raw)
}

/// Pillow's conversion of 16-bit (and other non-8-bit) images into `rgb`.
fn convert_16bit(
    img: DynamicImage,
    png_gray: bool,
    path: &Path,
    name: &'static str,
    rgb: &mut [u8],
) -> Result<()> {
    match img {
        DynamicImage::ImageLuma16(b) => expand(b.as_raw(), 1, rgb, |p| [clamp16(p[0]); 3]),
        DynamicImage::ImageLumaA16(b) if png_gray => {
            expand(b.as_raw(), 2, rgb, |p| [clamp16(p[0]); 3])
        }
        DynamicImage::ImageLumaA16(b) => expand(b.as_raw(), 2, rgb, |p| [high(p[0]); 3]),
        DynamicImage::ImageRgb16(b) => {
            expand(b.as_raw(), 3, rgb, |p| [high(p[0]), high(p[1]), high(p[2])])
        }
        DynamicImage::ImageRgba16(b) => {
            expand(b.as_raw(), 4, rgb, |p| [high(p[0]), high(p[1]), high(p[2])])
        }
        other => {
            return Err(Error::Unsupported {
                path: path.to_owned(),
                format: name,
                detail: format!("pixel type {:?}", other.color()),
            });
        }
    }
    Ok(())
}

fn clamp16(v: u16) -> u8 {
    v.min(255) as u8
}

fn high(v: u16) -> u8 {
    (v >> 8) as u8
}

fn expand<T: Copy>(src: &[T], channels: usize, rgb: &mut [u8], f: impl Fn(&[T]) -> [u8; 3]) {
    for (o, p) in rgb.chunks_exact_mut(3).zip(src.chunks_exact(channels)) {
        o.copy_from_slice(&f(p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_conversion_matches_pillow_formula_by_hand() {
        // Stored (inverted) C=255 M=0 Y=255 K=255 -> Pillow CMYK c=0 m=255 y=0 k=0
        // -> nk = 255, r = 255 - muldiv255(0, 255) = 255, g = 255 - 255 = 0, b = 255.
        let mut rgb = [0u8; 3];
        cmyk_inverted_to_rgb(&[255, 0, 255, 255], &mut rgb);
        assert_eq!(rgb, [255, 0, 255]);
        // k = 255 - 155 = 100 -> nk = 155; c = 255 - 205 = 50:
        // muldiv255(50, 155): t = 7878, (30 + 7878) >> 8 = 30 -> 125.
        cmyk_inverted_to_rgb(&[205, 255, 0, 155], &mut rgb);
        assert_eq!(rgb, [125, 155, 0]);
    }

    #[test]
    fn end_of_image_must_follow_the_last_scan() {
        assert!(ends_after_last_scan(b"\xff\xd8..\xff\xda scan \xff\xd9"));
        assert!(ends_after_last_scan(
            b"\xff\xda a \xff\xda b \xff\xd9 trailing"
        ));
        assert!(!ends_after_last_scan(
            b"\xff\xd8 thumb \xff\xd9 \xff\xda cut"
        ));
        assert!(!ends_after_last_scan(b"\xff\xd8 no scan \xff\xd9"));
    }

    #[test]
    fn sniffing_ignores_names() {
        assert_eq!(
            sniff_format(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(SniffedFormat::Jpeg)
        );
        assert_eq!(
            sniff_format(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(SniffedFormat::Other(ImageFormat::Png))
        );
        assert_eq!(sniff_format(b"hello"), None);
        assert_eq!(sniff_format(b""), None);
    }
}
