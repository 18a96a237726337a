//! Image decoding and preprocessing, bit-identical to Pillow + torchvision.
//!
//! [`Preprocessor`] turns an image file into one model input following a
//! [`PreprocessConfig`]: decode (format sniffed from the bytes; JPEG through
//! libjpeg-turbo with Pillow's settings), convert to RGB with Pillow's rules,
//! resize with Pillow's own resampling algorithm (bilinear or bicubic, fixed
//! point; to a shorter side, an exact size, or timm's keep-ratio box), centre crop with
//! torchvision's offsets (or Hugging Face's, [`CropRounding`]; padding black or a
//! [`PreprocessConfig::pad_fill`] colour), then
//! `(p / 255 - mean) / std` in `f32`, written straight into a caller's
//! buffer in NCHW or NHWC. The uint8 crop is available too
//! ([`Preprocessor::crop_file`]). [`decode_file`] decodes an image for display, with the
//! same rules and limits and no preprocessing. An image held elsewhere (an archive member)
//! goes through [`Preprocessor::preprocess_read`], with the same file limits.
//!
//! For the default [`PreprocessConfig::torchvision`] the output equals, bit
//! for bit, torchvision's
//! `Normalize(mean, std)(ToTensor()(CenterCrop(224)(Resize(256)(Image.open(p).convert("RGB")))))`
//! with Pillow 13.0.0; the integration tests (`tests/integration/imaging_parity.rs`,
//! reference `python/preprocess_reference.py`) check this against Pillow on
//! real photos and generated images: JPEG (4:2:0, 4:2:2, 4:4:4, progressive,
//! grayscale, CMYK, EXIF-rotated, 1x1 to 2000x3), PNG (RGB, RGBA, L, LA, P
//! with and without transparency, 1/2/4/16-bit), BMP, TIFF, GIF and WebP
//! (lossless and lossy), under six configs (both filters, padding, exact
//! resize, BGR, NHWC).
//!
//! Limits of the exact claim: other encoders' GIF/TIFF/WebP variants are
//! decoded by the `image` crate and were not all compared; 12-bit and
//! lossless JPEGs are rejected (as Pillow rejects them); EXIF orientation and
//! ICC profiles are ignored, as Pillow's `Image.open` ignores them.
//!
//! Hostile inputs are bounded ([`ReadLimits`], [`DecodeBudget`]): only regular
//! files are read, opened non-blocking and checked on the open handle (a FIFO
//! or device is [`Error::NotRegularFile`]); files over
//! [`ReadLimits::max_file_bytes`] (256 MiB) are refused before any byte is read
//! ([`Error::FileTooLarge`]); every format's header size is checked against
//! Pillow's decompression-bomb limit before pixels are allocated
//! ([`Error::TooManyPixels`], 178,956,970 pixels), and images over Pillow's
//! warning size (89,478,485) are decoded and recorded as [`DecodeWarning`]s
//! ([`Preprocessor::take_warnings`]); decode memory is reserved from a budget
//! shared by all threads (512 MiB by default), so that several huge images are
//! decoded one after another rather than all at once.
//!
//! ```
//! use imagenetx_imaging::{PreprocessConfig, Preprocessor, RgbImage};
//!
//! let mut pre = Preprocessor::new(PreprocessConfig::torchvision())?;
//! // A 300x200 grey image: resized to 384x256, cropped to 224x224.
//! let image = RgbImage::from_raw(300, 200, vec![128; 300 * 200 * 3]).expect("sized");
//! let crop = pre.resize_crop(&image);
//! assert_eq!((crop.width(), crop.height()), (224, 224));
//! let mut tensor = vec![0f32; pre.tensor_len()];
//! pre.write_tensor(&crop, &mut tensor)?;
//! assert_eq!(tensor[0], (128.0f32 / 255.0 - 0.485) / 0.229);
//! # Ok::<(), imagenetx_imaging::Error>(())
//! ```

#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod config;
mod decode;
mod error;
mod geometry;
mod limits;
mod pipeline;
mod resample;

pub use config::{
    ChannelOrder, CropRounding, DEFAULT_CROP_PCT, IMAGENET_MEAN, IMAGENET_STD, Interpolation,
    Layout, MAX_SIDE, PRESET_NAMES, PixelScale, PreprocessConfig, Resize, scale_size,
};
pub use decode::{JpegDecoder, MAX_PIXELS, RgbImage, SniffedFormat, sniff_format};
pub use error::{Error, Result};
pub use geometry::{CropSpan, center_crop_span, resized_size};
pub use limits::{
    BudgetPermit, DEFAULT_DECODE_BUDGET, DEFAULT_MAX_FILE_BYTES, DecodeBudget, DecodeWarning,
    REFUSE_PIXELS, ReadLimits, WARN_PIXELS,
};
pub use pipeline::{Preprocessor, RETAIN_MAX_BYTES, decode_file, decode_read};
pub use resample::Coefficients;
