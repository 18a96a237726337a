//! Tables, plots and reports for ImageNet-X factor analyses.
//!
//! - [`table`] and [`tables`]: the paper toolkit's CSV layouts, Markdown for pull requests,
//!   aligned text for terminals and JSON for machines;
//! - [`model`]: the report's data model, plain data shared by every renderer;
//! - [`plots`] and [`figures`]: SVG charts, and the report's figures (`raster`, with the
//!   default `png` feature, makes PNGs);
//! - [`html`]: the self-contained HTML report ([`html::render`]); [`markdown`]: a Markdown
//!   summary ([`markdown::summary`]);
//! - [`assemble`]: a report assembled from analyses, annotated images and image files
//!   ([`assemble::build_report`]), and its plots written as files.
//!
//! ```
//! use imagenetx_report::table::{Cell, Table};
//!
//! let mut table = Table::new(["model", "pose"]);
//! table.push(vec![Cell::text("resnet50"), Cell::Num(Some(0.694739))]);
//! table.push(vec![Cell::text("broken"), Cell::Num(None)]);
//! assert_eq!(table.to_csv(), "model,pose\nresnet50,0.694739\nbroken,\n");
//! ```
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod assemble;
mod error;
pub mod figures;
pub mod html;
pub mod markdown;
pub mod model;
pub mod plots;
#[cfg(feature = "png")]
pub mod raster;
pub mod table;
pub mod tables;

pub use error::{Error, Result};
pub use table::{Cell, Table};
