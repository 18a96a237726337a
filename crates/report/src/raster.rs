//! PNG versions of the SVG plots, for slides, issue trackers and documents that take no SVG.
//!
//! The SVGs of [`crate::plots`] are rasterised by `resvg`. Their text is drawn with DejaVu
//! Sans, built into the binary (the `dejavu` crate; Bitstream Vera licence, see
//! `crates/report/DEJAVU-LICENSE`), never with the machine's fonts: a PNG looks the same on
//! a laptop, a CI runner without fonts and an edge box. (`plotters`' own bitmap backend
//! needs system fonts through fontconfig, which is why it is not used.)
//!
//! ```
//! use imagenetx_report::raster::svg_to_png;
//!
//! let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">
//!   <rect width="40" height="20" fill="red"/></svg>"#;
//! let png = svg_to_png(svg, 2.0)?;
//! assert_eq!(&png[1..4], b"PNG");
//! # Ok::<(), imagenetx_report::raster::RasterError>(())
//! ```

use std::sync::{Arc, OnceLock};

use resvg::tiny_skia;
use resvg::usvg::{self, fontdb};

/// The one font family the rasteriser knows.
pub const FONT_FAMILY: &str = "DejaVu Sans";

/// Why an SVG could not be turned into a PNG.
#[derive(Debug)]
pub enum RasterError {
    /// The SVG did not parse.
    Svg(String),
    /// The scaled image would be empty or too large (`width`, `height` in pixels).
    Size {
        /// Width after scaling.
        width: f32,
        /// Height after scaling.
        height: f32,
    },
    /// PNG encoding failed.
    Png(String),
}

impl std::fmt::Display for RasterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RasterError::Svg(e) => write!(f, "not a valid SVG: {e}"),
            RasterError::Size { width, height } => write!(
                f,
                "cannot rasterise at {width}×{height} pixels (expected 1 to {MAX_SIDE} per side)"
            ),
            RasterError::Png(e) => write!(f, "cannot encode PNG: {e}"),
        }
    }
}

impl std::error::Error for RasterError {}

/// Largest side of a rasterised plot, in pixels.
pub const MAX_SIDE: u32 = 16_384;

/// DejaVu Sans (regular and bold), loaded once, standing in for every generic family.
fn fonts() -> Arc<fontdb::Database> {
    static FONTS: OnceLock<Arc<fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = fontdb::Database::new();
            db.load_font_data(dejavu::sans::regular().to_vec());
            db.load_font_data(dejavu::sans::bold().to_vec());
            db.set_sans_serif_family(FONT_FAMILY);
            db.set_serif_family(FONT_FAMILY);
            db.set_monospace_family(FONT_FAMILY);
            db.set_cursive_family(FONT_FAMILY);
            db.set_fantasy_family(FONT_FAMILY);
            Arc::new(db)
        })
        .clone()
}

/// Rasterises an SVG document to PNG bytes at `scale` × its own size (2.0 for sharp text on
/// high-density screens), on a white background.
pub fn svg_to_png(svg: &str, scale: f32) -> Result<Vec<u8>, RasterError> {
    let options = usvg::Options {
        font_family: FONT_FAMILY.into(),
        fontdb: fonts(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| RasterError::Svg(e.to_string()))?;
    let (width, height) = (tree.size().width() * scale, tree.size().height() * scale);
    let fits = |side: f32| side.is_finite() && side >= 1.0 && side <= MAX_SIDE as f32;
    if !(scale.is_finite() && scale > 0.0 && fits(width) && fits(height)) {
        return Err(RasterError::Size { width, height });
    }
    let mut pixmap = tiny_skia::Pixmap::new(width.ceil() as u32, height.ceil() as u32)
        .ok_or(RasterError::Size { width, height })?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| RasterError::Png(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png: &[u8]) -> image::RgbaImage {
        image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .expect("a PNG")
            .to_rgba8()
    }

    fn dark_pixels(img: &image::RgbaImage) -> usize {
        img.pixels()
            .filter(|p| p.0[..3].iter().map(|&c| u32::from(c)).sum::<u32>() < 300)
            .count()
    }

    #[test]
    fn text_is_drawn_with_the_built_in_font() {
        let with_text = |text: &str| {
            format!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><text x="5" y="28" font-family="sans-serif" font-size="24" fill="black">{text}</text></svg>"#
            )
        };
        let blank = decode(&svg_to_png(&with_text(""), 1.0).unwrap());
        let text = decode(&svg_to_png(&with_text("pose 1.97"), 1.0).unwrap());
        assert_eq!(blank.dimensions(), (200, 40));
        assert_eq!(dark_pixels(&blank), 0, "no text, no ink");
        // "pose 1.97" at 24 px covers a few hundred dark pixels in any sans font.
        assert!(dark_pixels(&text) > 200, "text was not drawn");
    }

    #[test]
    fn scale_multiplies_the_size_and_bad_input_is_an_error() {
        let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="30" height="10"><rect width="30" height="10" fill="blue"/></svg>"#;
        let img = decode(&svg_to_png(svg, 2.0).unwrap());
        assert_eq!(img.dimensions(), (60, 20));
        assert_eq!(img.get_pixel(30, 10).0, [0, 0, 255, 255]);
        assert!(matches!(svg_to_png("<svg", 1.0), Err(RasterError::Svg(_))));
        assert!(matches!(
            svg_to_png(svg, 0.0),
            Err(RasterError::Size { .. })
        ));
        assert!(matches!(
            svg_to_png(svg, 1e6),
            Err(RasterError::Size { .. })
        ));
    }
}
