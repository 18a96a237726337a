//! Tables for ImageNet-X factor analyses: the paper toolkit's CSV layouts, Markdown for pull
//! requests, aligned text for terminals and JSON for machines; SVG charts ([`plots`]), the
//! self-contained HTML report ([`html::render`]) and a Markdown summary
//! ([`markdown::summary`]), all from plain data.
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

pub mod analysis;
pub mod html;
pub mod markdown;
pub mod plots;
pub mod raster;
pub mod table;

pub use table::{Cell, Table};
