//! SVG charts of a factor analysis, drawn with `plotters`' SVG backend.
//!
//! Every chart takes plain data (names, numbers, optional intervals and small-sample flags)
//! and returns a standalone `<svg>` document as a `String`, ready to inline in HTML or write
//! to a `.svg` file. Text is emitted as SVG `<text>` in the generic `sans-serif` family, so
//! drawing needs no font files; the viewer picks the font.
//!
//! ```
//! use imagenetx_report::plots::{ErrorRatioChart, ErrorRatioSeries, FactorValue, error_ratio_svg};
//!
//! let chart = ErrorRatioChart {
//!     title: "Error ratio per factor".into(),
//!     factors: vec!["pose".into(), "background".into()],
//!     series: vec![ErrorRatioSeries {
//!         model: "resnet50".into(),
//!         values: vec![
//!             FactorValue { value: Some(1.4), interval: Some((1.2, 1.6)), small_sample: false },
//!             FactorValue { value: Some(0.8), interval: None, small_sample: true },
//!         ],
//!     }],
//! };
//! let svg = error_ratio_svg(&chart);
//! assert!(svg.starts_with("<svg") && svg.contains("resnet50"));
//! ```

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One model's value on one factor, with its interval and small-sample flag.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FactorValue {
    /// The value (an error ratio); `None` when undefined (no images, no errors).
    pub value: Option<f64>,
    /// A confidence interval `(low, high)` around the value, drawn as a whisker.
    pub interval: Option<(f64, f64)>,
    /// Too few images for the value to mean much: drawn faded.
    pub small_sample: bool,
}

/// One model's error ratios, one [`FactorValue`] per factor of the chart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorRatioSeries {
    /// The model's name (legend).
    pub model: String,
    /// One value per entry of [`ErrorRatioChart::factors`], in the same order; missing
    /// entries count as undefined.
    pub values: Vec<FactorValue>,
}

/// Error ratio per factor for one or more models (the toolkit's `model_comparison` plot).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorRatioChart {
    /// Title above the chart.
    pub title: String,
    /// Factor names, in x-axis order.
    pub factors: Vec<String>,
    /// One series per model: grouped bars.
    pub series: Vec<ErrorRatioSeries>,
}

impl ErrorRatioChart {
    /// Reorders the factors by the first model's value, highest first (undefined last); the
    /// toolkit's plots sort the same way.
    pub fn sort_by_first_model(&mut self) {
        let Some(first) = self.series.first() else {
            return;
        };
        let key = |i: usize| first.values.get(i).and_then(|v| v.value);
        let mut order: Vec<usize> = (0..self.factors.len()).collect();
        order.sort_by(|&a, &b| match (key(a), key(b)) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.cmp(&b),
        });
        self.factors = order.iter().map(|&i| self.factors[i].clone()).collect();
        for series in &mut self.series {
            series.values = order
                .iter()
                .map(|&i| series.values.get(i).copied().unwrap_or_default())
                .collect();
        }
    }
}

/// One heatmap cell.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HeatCell {
    /// The value (an error ratio); `None` leaves the cell empty.
    pub value: Option<f64>,
    /// Too few images: the cell is drawn faded.
    pub small_sample: bool,
}

/// A grid of error ratios, e.g. factor × metaclass, coloured on a diverging scale centred
/// at 1 (blue below, red above, log scale clamped to [1/4, 4]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Heatmap {
    /// Title above the chart.
    pub title: String,
    /// Row names (y axis, top to bottom).
    pub rows: Vec<String>,
    /// Column names (x axis, left to right).
    pub columns: Vec<String>,
    /// `cells[row][column]`; missing entries are empty cells.
    pub cells: Vec<Vec<HeatCell>>,
}

/// One model in an accuracy vs error-ratio scatter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScatterPoint {
    /// The model's name, written beside its point.
    pub model: String,
    /// Overall accuracy (x).
    pub accuracy: f64,
    /// Error ratio on the chosen factor (y).
    pub error_ratio: f64,
    /// Interval of the error ratio, drawn as a vertical whisker.
    pub interval: Option<(f64, f64)>,
    /// Drawn faded when set.
    pub small_sample: bool,
}

/// Accuracy vs error ratio across models, for one factor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scatter {
    /// Title above the chart.
    pub title: String,
    /// Label of the y axis (e.g. "error ratio: pose").
    pub y_label: String,
    /// One point per model.
    pub points: Vec<ScatterPoint>,
}

/// Image counts per factor of the annotations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Distribution {
    /// Title above the chart.
    pub title: String,
    /// `(factor, images)` in x-axis order.
    pub bars: Vec<(String, u64)>,
}

/// Categorical colours (Tableau 10), one per model in order.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

/// Colour of the reference line at error ratio 1.
pub const REFERENCE_COLOR: RGBColor = RGBColor(0x55, 0x55, 0x55);
/// Colour of interval whiskers.
pub const WHISKER_COLOR: RGBColor = RGBColor(0x22, 0x22, 0x22);
/// Opacity of values flagged as small samples.
const FADED: f64 = 0.35;

/// The colour of the `i`-th model.
pub fn model_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// `#rrggbb` of a colour, as the SVG backend writes it (upper case).
pub fn hex(color: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", color.0, color.1, color.2)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws into an SVG string of `size`; a drawing failure yields an SVG that says so.
fn render(
    size: (u32, u32),
    title: &str,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult,
) -> String {
    let mut svg = String::new();
    let mut failure = None;
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let result = root
            .fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Into::into));
        if let Err(e) = result {
            failure = Some(e.to_string());
        }
    }
    if let Some(message) = failure {
        return format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"40\" role=\"img\"><text x=\"4\" y=\"24\">{}</text></svg>",
            size.0,
            xml_escape(&format!("cannot draw {title}: {message}"))
        );
    }
    label_svg(svg, title)
}

/// Adds `role="img"`, `aria-label` and a `<title>` to the root element.
fn label_svg(svg: String, title: &str) -> String {
    let Some(start) = svg.find("<svg") else {
        return svg;
    };
    let Some(end) = svg[start..].find('>').map(|e| start + e) else {
        return svg;
    };
    let title = xml_escape(title);
    format!(
        "{} role=\"img\" aria-label=\"{title}\"><title>{title}</title>{}",
        &svg[start..end],
        &svg[end + 1..]
    )
}

/// Escapes `&`, `<`, `>`, `"` and `'` for XML text and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A font of `size` pixels (the SVG backend writes `size / 1.24`).
fn font(size: f64) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size * 1.24).into_font())
}

/// Text for the SVG backend, which escapes what it writes.
fn label(text: &str) -> String {
    text.to_string()
}

/// Writes `names` vertically under x positions `xs` (pixels), ending just below `top`.
fn vertical_labels(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    names: &[String],
    xs: &[i32],
    top: i32,
) -> DrawResult {
    let style = font(12.0)
        .transform(FontTransform::Rotate270)
        .pos(Pos::new(HPos::Right, VPos::Center));
    for (name, x) in names.iter().zip(xs) {
        root.draw(&Text::new(label(name), (*x, top + 6), style.clone()))?;
    }
    Ok(())
}

fn value_range(values: impl Iterator<Item = f64>, floor: f64) -> f64 {
    let max = values.filter(|v| v.is_finite()).fold(floor, f64::max);
    max * 1.08
}

/// Grouped bars of error ratio per factor, one colour per model, interval whiskers, a line
/// at 1.0 and a legend. Bars of small samples are faded.
pub fn error_ratio_svg(chart: &ErrorRatioChart) -> String {
    let n = chart.factors.len().max(1);
    let models = chart.series.len().max(1);
    let width = (160 + n * (18 + 10 * models).max(44)).clamp(640, 1400) as u32;
    render((width, 520), &chart.title, |root| {
        let y_max = value_range(
            chart.series.iter().flat_map(|s| {
                s.values
                    .iter()
                    .flat_map(|v| [v.value, v.interval.map(|i| i.1)])
                    .flatten()
            }),
            1.2,
        );
        let mut ctx = ChartBuilder::on(root)
            .caption(label(&chart.title), font(18.0))
            .margin(12)
            .x_label_area_size(120)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..y_max)?;
        ctx.configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("error ratio")
            .y_label_formatter(&|v| format!("{v:.1}"))
            .light_line_style(RGBColor(0xf2, 0xf2, 0xf2))
            .y_max_light_lines(1)
            .axis_desc_style(font(14.0))
            .draw()?;
        let group = 0.8;
        let bar = group / models as f64;
        for (m, series) in chart.series.iter().enumerate() {
            let color = model_color(m);
            let bars = series.values.iter().enumerate().filter_map(|(i, v)| {
                let value = v.value.filter(|x| x.is_finite())?;
                let x0 = i as f64 - group / 2.0 + m as f64 * bar;
                let style = if v.small_sample {
                    color.mix(FADED).filled()
                } else {
                    color.filled()
                };
                Some(Rectangle::new(
                    [(x0 + bar * 0.06, 0.0), (x0 + bar * 0.94, value)],
                    style,
                ))
            });
            ctx.draw_series(bars)?
                .label(label(&series.model))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
            let whiskers = series.values.iter().enumerate().filter_map(|(i, v)| {
                let (lo, hi) = v.interval.filter(|(a, b)| a.is_finite() && b.is_finite())?;
                let xc = i as f64 - group / 2.0 + (m as f64 + 0.5) * bar;
                let cap = bar * 0.2;
                Some(PathElement::new(
                    vec![
                        (xc - cap, lo),
                        (xc + cap, lo),
                        (xc, lo),
                        (xc, hi),
                        (xc - cap, hi),
                        (xc + cap, hi),
                    ],
                    WHISKER_COLOR.stroke_width(1),
                ))
            });
            ctx.draw_series(whiskers)?;
        }
        ctx.draw_series(std::iter::once(PathElement::new(
            vec![(-0.5, 1.0), (n as f64 - 0.5, 1.0)],
            REFERENCE_COLOR.stroke_width(2),
        )))?;
        ctx.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(font(13.0))
            .draw()?;
        let xs: Vec<i32> = (0..chart.factors.len())
            .map(|i| ctx.backend_coord(&(i as f64, 0.0)).0)
            .collect();
        let bottom = ctx.backend_coord(&(0.0, 0.0)).1;
        vertical_labels(root, &chart.factors, &xs, bottom)
    })
}

/// Colour of an error ratio on the diverging scale: white at 1, blue towards 1/4 and below,
/// red towards 4 and above (log scale).
pub fn diverging_color(value: f64) -> RGBColor {
    let t = (value.max(1e-9).log2() / 2.0).clamp(-1.0, 1.0);
    let (end, t) = if t < 0.0 {
        ((0x21, 0x66, 0xac), -t)
    } else {
        ((0xb2, 0x18, 0x2b), t)
    };
    let mix = |e: u8| (255.0 + (f64::from(e) - 255.0) * t).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

/// A heatmap of error ratios with a colour key; empty cells for undefined values.
pub fn heatmap_svg(map: &Heatmap) -> String {
    let cols = map.columns.len().max(1);
    let rows = map.rows.len().max(1);
    let cell = 44;
    let width = (150 + cols * cell + 110) as u32;
    let height = (70 + rows * 30 + 140) as u32;
    render((width, height), &map.title, |root| {
        let (plot, key) = root.split_horizontally(width - 100);
        let mut ctx = ChartBuilder::on(&plot)
            .caption(label(&map.title), font(18.0))
            .margin(12)
            .x_label_area_size(130)
            .y_label_area_size(120)
            .build_cartesian_2d(0f64..cols as f64, rows as f64..0f64)?;
        ctx.configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .draw()?;
        let mut rects = Vec::new();
        let mut texts = Vec::new();
        let mut empty = Vec::new();
        for r in 0..map.rows.len() {
            for c in 0..map.columns.len() {
                let cell = map
                    .cells
                    .get(r)
                    .and_then(|row| row.get(c))
                    .copied()
                    .unwrap_or_default();
                let corners = [
                    (c as f64 + 0.03, r as f64 + 0.03),
                    (c as f64 + 0.97, r as f64 + 0.97),
                ];
                match cell.value.filter(|v| v.is_finite()) {
                    Some(v) => {
                        let color = diverging_color(v);
                        let alpha = if cell.small_sample { FADED } else { 1.0 };
                        rects.push(Rectangle::new(corners, color.mix(alpha).filled()));
                        let strong = (v.max(1e-9).log2() / 2.0).abs() > 0.6 && !cell.small_sample;
                        let ink: &'static RGBColor = if strong { &WHITE } else { &BLACK };
                        texts.push(Text::new(
                            format!("{v:.2}"),
                            (c as f64 + 0.5, r as f64 + 0.5),
                            font(10.0)
                                .color(ink)
                                .pos(Pos::new(HPos::Center, VPos::Center)),
                        ));
                    }
                    None => empty.push(Rectangle::new(
                        corners,
                        RGBColor(0xdd, 0xdd, 0xdd).stroke_width(1),
                    )),
                }
            }
        }
        ctx.draw_series(rects)?;
        ctx.draw_series(empty)?;
        ctx.draw_series(texts)?;
        let xs: Vec<i32> = (0..map.columns.len())
            .map(|c| ctx.backend_coord(&(c as f64 + 0.5, 0.0)).0)
            .collect();
        let bottom = ctx.backend_coord(&(0.0, rows as f64)).1;
        vertical_labels(root, &map.columns, &xs, bottom)?;
        let style = font(12.0).pos(Pos::new(HPos::Right, VPos::Center));
        for (r, name) in map.rows.iter().enumerate() {
            let (x, y) = ctx.backend_coord(&(0.0, r as f64 + 0.5));
            root.draw(&Text::new(label(name), (x - 6, y), style.clone()))?;
        }
        // Colour key: log2 from -2 to 2, top = 4.
        let top = 80;
        let steps = 40;
        let step_h = ((height as i32 - 140) / steps).clamp(2, 6);
        for s in 0..steps {
            let t = 2.0 - 4.0 * (s as f64 + 0.5) / steps as f64;
            let y = top + s * step_h;
            key.draw(&Rectangle::new(
                [(20, y), (40, y + step_h)],
                diverging_color(t.exp2()).filled(),
            ))?;
        }
        let style = font(11.0).pos(Pos::new(HPos::Left, VPos::Center));
        for (value, text) in [
            (4.0f64, "≥4"),
            (2.0, "2"),
            (1.0, "1"),
            (0.5, "0.5"),
            (0.25, "≤0.25"),
        ] {
            let y = top + ((2.0 - value.log2()) / 4.0 * (steps * step_h) as f64) as i32;
            key.draw(&PathElement::new(
                vec![(40, y), (45, y)],
                BLACK.stroke_width(1),
            ))?;
            key.draw(&Text::new(text.to_string(), (48, y), style.clone()))?;
        }
        key.draw(&Text::new(
            "error ratio".to_string(),
            (12, top - 20),
            font(12.0),
        ))?;
        Ok(())
    })
}

/// Accuracy (x) against error ratio on one factor (y), one labelled point per model, with
/// interval whiskers and the line at 1.0.
pub fn scatter_svg(scatter: &Scatter) -> String {
    render((720, 480), &scatter.title, |root| {
        let finite: Vec<&ScatterPoint> = scatter
            .points
            .iter()
            .filter(|p| p.accuracy.is_finite() && p.error_ratio.is_finite())
            .collect();
        let (mut x_lo, mut x_hi) = finite
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p.accuracy), hi.max(p.accuracy))
            });
        if !x_lo.is_finite() {
            (x_lo, x_hi) = (0.0, 1.0);
        }
        let pad = ((x_hi - x_lo) * 0.15).max(0.02);
        let (x_lo, x_hi) = ((x_lo - pad).max(0.0), (x_hi + pad).min(1.0));
        let y_max = value_range(
            finite
                .iter()
                .flat_map(|p| [Some(p.error_ratio), p.interval.map(|i| i.1)])
                .flatten(),
            1.2,
        );
        let mut ctx = ChartBuilder::on(root)
            .caption(label(&scatter.title), font(18.0))
            .margin(14)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(x_lo..x_hi, 0f64..y_max)?;
        ctx.configure_mesh()
            .x_desc("accuracy")
            .y_desc(label(&scatter.y_label))
            .x_label_formatter(&|v| format!("{v:.3}"))
            .x_labels(6)
            .y_label_formatter(&|v| format!("{v:.1}"))
            .light_line_style(RGBColor(0xf2, 0xf2, 0xf2))
            .max_light_lines(1)
            .axis_desc_style(font(14.0))
            .draw()?;
        ctx.draw_series(std::iter::once(PathElement::new(
            vec![(x_lo, 1.0), (x_hi, 1.0)],
            REFERENCE_COLOR.stroke_width(2),
        )))?;
        for (i, p) in scatter.points.iter().enumerate() {
            if !(p.accuracy.is_finite() && p.error_ratio.is_finite()) {
                continue;
            }
            let color = model_color(i);
            if let Some((lo, hi)) = p.interval.filter(|(a, b)| a.is_finite() && b.is_finite()) {
                ctx.draw_series(std::iter::once(PathElement::new(
                    vec![(p.accuracy, lo), (p.accuracy, hi)],
                    WHISKER_COLOR.stroke_width(1),
                )))?;
            }
            let alpha = if p.small_sample { FADED } else { 1.0 };
            ctx.draw_series(std::iter::once(Circle::new(
                (p.accuracy, p.error_ratio),
                6,
                color.mix(alpha).filled(),
            )))?;
            let (x, y) = ctx.backend_coord(&(p.accuracy, p.error_ratio));
            root.draw(&Text::new(
                label(&p.model),
                (x + 9, y),
                font(12.0).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        Ok(())
    })
}

/// Bars of image counts per factor, each labelled with its count.
pub fn distribution_svg(dist: &Distribution) -> String {
    let n = dist.bars.len().max(1);
    let width = (120 + n * 44).clamp(560, 1200) as u32;
    render((width, 440), &dist.title, |root| {
        let top = dist.bars.iter().map(|(_, c)| *c).max().unwrap_or(0);
        let y_max = (top + top / 12 + 1).max(2);
        let mut ctx = ChartBuilder::on(root)
            .caption(label(&dist.title), font(18.0))
            .margin(12)
            .x_label_area_size(120)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0u64..y_max)?;
        ctx.configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(y_max.min(10) as usize)
            .y_desc("images")
            .light_line_style(RGBColor(0xf2, 0xf2, 0xf2))
            .y_max_light_lines(1)
            .axis_desc_style(font(14.0))
            .draw()?;
        let color = model_color(0);
        // A factor with images gets a visible bar however small its count (at least ~1 px;
        // the number above it is exact).
        let floor = y_max.div_ceil(250);
        ctx.draw_series(
            dist.bars
                .iter()
                .enumerate()
                .filter(|(_, (_, count))| *count > 0)
                .map(|(i, (_, count))| {
                    Rectangle::new(
                        [(i as f64 - 0.38, 0), (i as f64 + 0.38, (*count).max(floor))],
                        color.filled(),
                    )
                }),
        )?;
        ctx.draw_series(dist.bars.iter().enumerate().map(|(i, (_, count))| {
            Text::new(
                count.to_string(),
                (i as f64, *count),
                font(10.0).pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))?;
        let names: Vec<String> = dist.bars.iter().map(|(name, _)| name.clone()).collect();
        let xs: Vec<i32> = (0..names.len())
            .map(|i| ctx.backend_coord(&(i as f64, 0)).0)
            .collect();
        let bottom = ctx.backend_coord(&(0.0, 0)).1;
        vertical_labels(root, &names, &xs, bottom)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `<text>` element holding exactly `text`.
    fn has_text(svg: &str, text: &str) -> bool {
        svg.contains(&format!(">\n{text}\n</text>"))
    }

    fn count(svg: &str, needle: &str) -> usize {
        svg.matches(needle).count()
    }

    /// `<rect .../>` elements filled with `color` (bars and legend swatches).
    fn rects_filled(svg: &str, color: RGBColor) -> usize {
        svg.split("<rect")
            .skip(1)
            .filter(|r| {
                let tag = &r[..r.find("/>").unwrap_or(r.len())];
                tag.contains(&format!("fill=\"{}\"", hex(color)))
            })
            .count()
    }

    fn polylines_stroked(svg: &str, color: RGBColor) -> Vec<String> {
        svg.split("<polyline")
            .skip(1)
            .map(|p| p[..p.find("/>").unwrap_or(p.len())].to_string())
            .filter(|tag| tag.contains(&format!("stroke=\"{}\"", hex(color))))
            .collect()
    }

    fn chart() -> ErrorRatioChart {
        let factors: Vec<String> = ["pose", "background", "pattern", "color"]
            .map(String::from)
            .to_vec();
        let value = |v: f64| FactorValue {
            value: Some(v),
            interval: Some((v * 0.8, v * 1.2)),
            small_sample: false,
        };
        ErrorRatioChart {
            title: "Error ratios <A & B>".into(),
            factors,
            series: vec![
                ErrorRatioSeries {
                    model: "ResNet50".into(),
                    values: vec![value(1.5), value(0.7), value(2.5), FactorValue::default()],
                },
                ErrorRatioSeries {
                    model: "DINO".into(),
                    values: vec![value(1.2), value(0.9), value(2.0), value(1.1)],
                },
            ],
        }
    }

    #[test]
    fn error_ratio_chart_has_one_bar_per_defined_value_a_reference_line_and_a_legend() {
        let svg = error_ratio_svg(&chart());
        // 3 defined bars + 1 legend swatch for the first model, 4 + 1 for the second.
        assert_eq!(rects_filled(&svg, model_color(0)), 4, "{svg}");
        assert_eq!(rects_filled(&svg, model_color(1)), 5);
        // One whisker per interval: 3 + 4.
        assert_eq!(polylines_stroked(&svg, WHISKER_COLOR).len(), 7);
        // The reference line is horizontal.
        let reference = polylines_stroked(&svg, REFERENCE_COLOR);
        assert_eq!(reference.len(), 1);
        let points = reference[0].split("points=\"").nth(1).unwrap_or_default();
        let ys: Vec<&str> = points
            .split_whitespace()
            .filter_map(|p| p.split(',').nth(1))
            .map(|y| y.trim_end_matches('"'))
            .collect();
        assert_eq!(ys.len(), 2);
        assert_eq!(ys[0], ys[1]);
        for text in ["ResNet50", "DINO", "error ratio", "pose", "color"] {
            assert!(has_text(&svg, text), "missing {text}");
        }
        // The title is escaped.
        assert!(svg.contains("Error ratios &lt;A &amp; B&gt;"));
        assert!(!svg.contains("<A & B>"));
        assert!(svg.contains("role=\"img\""));
    }

    #[test]
    fn reference_line_sits_at_one() {
        // With values up to 1.0 the y axis is 0..1.2*1.08: the line is at 1/1.296 of the
        // plotting height from the bottom, below the top of the axis.
        let svg = error_ratio_svg(&ErrorRatioChart {
            title: "t".into(),
            factors: vec!["pose".into()],
            series: vec![ErrorRatioSeries {
                model: "m".into(),
                values: vec![FactorValue {
                    value: Some(1.0),
                    interval: None,
                    small_sample: false,
                }],
            }],
        });
        let bar = svg
            .split("<rect")
            .skip(1)
            .find(|r| r.contains(&format!("fill=\"{}\"", hex(model_color(0)))))
            .unwrap_or_default();
        let attr = |tag: &str, name: &str| -> f64 {
            tag.split(&format!(" {name}=\""))
                .nth(1)
                .and_then(|s| s.split('"').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(f64::NAN)
        };
        let bar_top = attr(bar, "y");
        let line = &polylines_stroked(&svg, REFERENCE_COLOR)[0];
        let line_y: f64 = line
            .split("points=\"")
            .nth(1)
            .and_then(|p| p.split(',').nth(1))
            .and_then(|y| y.split_whitespace().next())
            .and_then(|y| y.parse().ok())
            .unwrap_or(f64::NAN);
        assert!(
            (bar_top - line_y).abs() <= 1.0,
            "bar top {bar_top}, line {line_y}"
        );
    }

    #[test]
    fn sort_by_first_model_orders_descending_with_undefined_last() {
        let mut c = chart();
        c.sort_by_first_model();
        assert_eq!(c.factors, ["pattern", "pose", "background", "color"]);
        assert_eq!(c.series[1].values[0].value, Some(2.0));
        assert_eq!(c.series[0].values[3].value, None);
    }

    #[test]
    fn heatmap_fills_defined_cells_and_leaves_undefined_empty() {
        let map = Heatmap {
            title: "pose × metaclass".into(),
            rows: vec!["pose".into(), "pattern".into()],
            columns: vec!["dog".into(), "bird".into(), "device".into()],
            cells: vec![
                vec![
                    HeatCell {
                        value: Some(4.0),
                        small_sample: false,
                    },
                    HeatCell::default(),
                    HeatCell {
                        value: Some(1.0),
                        small_sample: true,
                    },
                ],
                vec![HeatCell {
                    value: Some(0.25),
                    small_sample: false,
                }],
            ],
        };
        let svg = heatmap_svg(&map);
        // 4 → full red, 0.25 → full blue, 1 → white (faded).
        assert_eq!(hex(diverging_color(4.0)), "#B2182B");
        assert_eq!(hex(diverging_color(0.25)), "#2166AC");
        assert_eq!(hex(diverging_color(1.0)), "#FFFFFF");
        assert_eq!(rects_filled(&svg, diverging_color(4.0)), 1);
        assert_eq!(rects_filled(&svg, diverging_color(0.25)), 1);
        // Cells, the 40 steps of the colour key, the background.
        assert!(count(&svg, "<rect") >= 3 + 3 + 40);
        // Three undefined cells (one explicit, two missing from the short second row).
        let empty = svg
            .split("<rect")
            .skip(1)
            .filter(|r| r[..r.find("/>").unwrap_or(r.len())].contains("stroke=\"#DDDDDD\""))
            .count();
        assert_eq!(empty, 3);
        for text in [
            "4.00",
            "0.25",
            "1.00",
            "dog",
            "device",
            "pattern",
            "error ratio",
        ] {
            assert!(has_text(&svg, text), "missing {text}");
        }
    }

    #[test]
    fn scatter_has_one_point_per_model_with_names() {
        let svg = scatter_svg(&Scatter {
            title: "Accuracy vs pose".into(),
            y_label: "error ratio: pose".into(),
            points: vec![
                ScatterPoint {
                    model: "ResNet50".into(),
                    accuracy: 0.76,
                    error_ratio: 1.4,
                    interval: Some((1.3, 1.5)),
                    small_sample: false,
                },
                ScatterPoint {
                    model: "DINO".into(),
                    accuracy: 0.80,
                    error_ratio: 1.2,
                    interval: None,
                    small_sample: false,
                },
                ScatterPoint {
                    model: "broken".into(),
                    accuracy: f64::NAN,
                    error_ratio: 1.0,
                    interval: None,
                    small_sample: false,
                },
            ],
        });
        assert_eq!(count(&svg, "<circle"), 2);
        assert_eq!(polylines_stroked(&svg, WHISKER_COLOR).len(), 1);
        assert_eq!(polylines_stroked(&svg, REFERENCE_COLOR).len(), 1);
        for text in ["ResNet50", "DINO", "accuracy", "error ratio: pose"] {
            assert!(has_text(&svg, text), "missing {text}");
        }
        assert!(!has_text(&svg, "broken"));
    }

    #[test]
    fn distribution_has_one_bar_per_factor() {
        let svg = distribution_svg(&Distribution {
            title: "Images per factor".into(),
            bars: vec![
                ("pose".into(), 12000),
                ("background".into(), 4321),
                ("style".into(), 0),
                ("brighter".into(), 3),
            ],
        });
        // No bar for a factor without images; a visible one (never 0 px high) for 3 images.
        assert_eq!(rects_filled(&svg, model_color(0)), 3);
        assert!(!svg.contains("height=\"0\""), "a zero-height bar");
        for text in ["12000", "4321", "3", "pose", "style", "brighter", "images"] {
            assert!(has_text(&svg, text), "missing {text}");
        }
    }
}
