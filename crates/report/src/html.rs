//! The HTML report: one self-contained file (inline CSS and SVG, thumbnails as `data:` URIs,
//! no network reference of any kind) that opens from disk.
//!
//! Build a [`ReportInput`] from plain data (or assemble it from analyses with
//! [`crate::assemble::build_report`]), then call [`render`].
//!
//! ```
//! use imagenetx_report::html::render;
//! use imagenetx_report::model::{FactorStats, ModelReport, ReportInput};
//!
//! let model = ModelReport {
//!     name: "resnet50".into(),
//!     images: 100,
//!     correct: 76,
//!     accuracy: Some(0.76),
//!     factors: vec![FactorStats {
//!         factor: "pose".into(),
//!         images: 40,
//!         correct: 25,
//!         accuracy: Some(0.625),
//!         error_ratio: Some(1.5625),
//!         error_ratio_interval: Some((1.2, 1.9)),
//!         small_sample: true,
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! };
//! let html = render(&ReportInput { title: "ImageNet-X report".into(), models: vec![model], ..Default::default() });
//! assert!(html.starts_with("<!DOCTYPE html>"));
//! assert!(html.contains("1.56 [1.20, 1.90]"));
//! ```

use std::fmt::Write as _;

use crate::figures::{ERROR_RATIO_FIGURE, Figure, figures};
use crate::model::{Difference, Gallery, GalleryCard, ReportInput, factor_order, find};
use crate::plots;
use crate::table::{fixed, with_interval};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    plots::xml_escape(text)
}

const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg-soft: #f6f8fa; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); margin: 0 auto; padding: 24px 32px 64px; max-width: 1240px; line-height: 1.45; }
h1 { font-size: 1.8rem; margin: 0 0 4px; }
h2 { font-size: 1.35rem; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.1rem; margin: 22px 0 8px; }
p.lead, p.note, .muted { color: var(--muted); }
p.note { font-size: 0.88rem; }
nav { margin: 12px 0 0; font-size: 0.95rem; }
nav a { margin-right: 14px; color: #0969da; text-decoration: none; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 8px 0; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: right; vertical-align: top; }
th { background: var(--bg-soft); font-weight: 600; }
td.name, th.name { text-align: left; }
td.small { color: var(--muted); font-style: italic; }
tr.significant td { font-weight: 600; }
td.small::after { content: " †"; }
.scroll { overflow-x: auto; }
.pair { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.pair > figure { flex: 1 1 560px; margin-top: 8px; }
.headline { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.headline .card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 200px; background: var(--bg-soft); }
.headline .value { font-size: 1.6rem; font-weight: 600; }
figure { margin: 12px 0 20px; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 0.88rem; }
details.meta, details.all-differences { margin: 6px 0; }
details.meta table td { text-align: left; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.8rem; word-break: break-all; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 12px; }
.gallery figure.card { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 8px; background: #fff; font-size: 0.82rem; }
.gallery img { display: block; width: 100%; max-width: 176px; height: auto; margin: 0 auto 6px; border-radius: 4px; }
.gallery .file { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: var(--muted); word-break: break-all; }
.gallery .truth { color: #1a7f37; }
.gallery .pred { color: #cf222e; }
.gallery .word { font-weight: 600; }
.gallery .why { color: var(--muted); }
footer { margin-top: 40px; color: var(--muted); font-size: 0.85rem; }
"#;

/// Renders the report: a complete HTML document, self-contained.
pub fn render(input: &ReportInput) -> String {
    render_with_figures(input, &figures(input))
}

/// [`render`] with the report's [`figures`] already drawn (for a caller that also writes
/// them as files).
pub fn render_with_figures(input: &ReportInput, figures: &[Figure]) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = if input.title.is_empty() {
        "ImageNet-X report"
    } else {
        input.title.as_str()
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    if !input.description.is_empty() {
        let _ = writeln!(out, "<p class=\"lead\">{}</p>", escape(&input.description));
    }
    out.push_str("<nav><a href=\"#summary\">Summary</a><a href=\"#error-ratios\">Error ratios</a>");
    if !input.differences.is_empty() {
        out.push_str("<a href=\"#differences\">Differences</a>");
    }
    if input
        .galleries
        .iter()
        .any(|g| g.sections.iter().any(|s| !s.cards.is_empty()))
    {
        out.push_str("<a href=\"#gallery\">Misclassified images</a>");
    }
    out.push_str("<a href=\"#plots\">More plots</a></nav>\n</header>\n<main>\n");
    summary(&mut out, input);
    error_ratio_section(&mut out, input, figures);
    differences_section(&mut out, input);
    galleries(&mut out, input);
    plots_section(&mut out, figures);
    out.push_str("</main>\n<footer>");
    if !input.generator.is_empty() {
        let _ = write!(out, "Written by {}. ", escape(&input.generator));
    }
    out.push_str("Error ratio = (1 − accuracy on the factor) / (1 − overall accuracy): above 1, the factor makes the model fail more often than on average. Annotations: ImageNet-X (CC BY-NC 4.0).</footer>\n</body>\n</html>\n");
    out
}

fn summary(out: &mut String, input: &ReportInput) {
    out.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"headline\">\n");
    for model in &input.models {
        let _ = writeln!(
            out,
            "<div class=\"card\"><div class=\"muted\">{}</div><div class=\"value\">{}</div><div class=\"muted\">top-1 accuracy{} · {} / {} images</div></div>",
            escape(&model.name),
            fixed(model.accuracy, 4),
            model
                .accuracy_interval
                .map(|(lo, hi)| format!(" [{lo:.4}, {hi:.4}]"))
                .unwrap_or_default(),
            model.correct,
            model.images
        );
    }
    out.push_str("</div>\n");
    for model in &input.models {
        if model.missing > 0 {
            let _ = writeln!(
                out,
                "<p class=\"note\">{}: {} annotated images have no prediction and are left out of every number.</p>",
                escape(&model.name),
                model.missing
            );
        }
        if model.metadata.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "<details class=\"meta\"><summary>Run of {}</summary><table>",
            escape(&model.name)
        );
        for (key, value) in &model.metadata {
            let _ = writeln!(
                out,
                "<tr><th class=\"name\">{}</th><td>{}</td></tr>",
                escape(key),
                escape(value)
            );
        }
        out.push_str("</table></details>\n");
    }
    out.push_str("</section>\n");
}

fn error_ratio_section(out: &mut String, input: &ReportInput, figures: &[Figure]) {
    out.push_str("<section id=\"error-ratios\">\n<h2>Error ratio per factor</h2>\n<div class=\"pair\">\n<div class=\"scroll\"><table class=\"ratios\">\n<thead><tr><th class=\"name\" rowspan=\"2\">factor</th>");
    for model in &input.models {
        let _ = write!(out, "<th colspan=\"3\">{}</th>", escape(&model.name));
    }
    out.push_str("</tr>\n<tr>");
    for _ in &input.models {
        out.push_str("<th>images</th><th>accuracy</th><th>error ratio</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let mut any_small = false;
    for factor in factor_order(input) {
        let _ = write!(out, "<tr><td class=\"name\">{}</td>", escape(&factor));
        for model in &input.models {
            match find(model, &factor) {
                Some(f) => {
                    // A factor without images has nothing to flag.
                    let small = f.small_sample && f.images > 0;
                    any_small |= small;
                    let class = if small { " class=\"small\"" } else { "" };
                    let shade = f
                        .error_ratio
                        .filter(|v| v.is_finite() && !f.small_sample)
                        .map(|v| {
                            let c = plots::diverging_color(v);
                            // A light tint of the heatmap colour.
                            let tint = |x: u8| 255 - (255 - u16::from(x)) * 2 / 5;
                            format!(
                                " style=\"background:#{:02x}{:02x}{:02x}\"",
                                tint(c.0),
                                tint(c.1),
                                tint(c.2)
                            )
                        })
                        .unwrap_or_default();
                    let _ = write!(
                        out,
                        "<td>{}</td><td{class}>{}</td><td{class}{shade}>{}</td>",
                        f.images,
                        with_interval(f.accuracy, f.accuracy_interval, 3),
                        with_interval(f.error_ratio, f.error_ratio_interval, 2)
                    );
                }
                None => out.push_str("<td></td><td></td><td></td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    for f in figures.iter().filter(|f| f.name == ERROR_RATIO_FIGURE) {
        figure(out, f);
    }
    out.push_str("</div>\n");
    if let Some(note) = &input.interval_note {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(note));
    }
    if any_small {
        out.push_str("<p class=\"note\">† small sample: too few images for the numbers to be trusted; drawn faded in the plots.</p>\n");
    }
    out.push_str("</section>\n");
}

/// Drops the XML namespace declaration: inline SVG in HTML needs none, and the report holds
/// no URL at all.
fn inline_svg(svg: &str) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

fn figure(out: &mut String, figure: &Figure) {
    let _ = writeln!(
        out,
        "<figure id=\"figure-{}\">{}<figcaption>{}</figcaption></figure>",
        escape(&figure.name),
        inline_svg(&figure.svg),
        escape(&figure.caption)
    );
}

fn plots_section(out: &mut String, figures: &[Figure]) {
    out.push_str("<section id=\"plots\">\n<h2>More plots</h2>\n");
    for f in figures.iter().filter(|f| f.name != ERROR_RATIO_FIGURE) {
        figure(out, f);
    }
    out.push_str("</section>\n");
}

fn differences_section(out: &mut String, input: &ReportInput) {
    if input.differences.is_empty() {
        return;
    }
    out.push_str("<section id=\"differences\">\n<h2>Differences between models</h2>\n<p class=\"note\">Paired on the images both models scored: accuracy differences (b − a) with paired bootstrap intervals, exact McNemar tests on the discordant images, Holm-corrected across the factors.</p>\n");
    let significant: Vec<&Difference> =
        input.differences.iter().filter(|d| d.significant).collect();
    let row = |out: &mut String, d: &Difference| {
        let _ = write!(
            out,
            "<tr{}>",
            if d.significant {
                " class=\"significant\""
            } else {
                ""
            }
        );
        for (i, cell) in d.cells().iter().enumerate() {
            // Metric and model names are text; the rest numbers.
            let class = if i < 3 { " class=\"name\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    };
    const HEAD: &str = "<div class=\"scroll\"><table class=\"differences\">\n<thead><tr><th class=\"name\">metric</th><th class=\"name\">a</th><th class=\"name\">b</th><th>value a</th><th>value b</th><th>b − a</th><th>interval</th><th>p</th></tr></thead>\n<tbody>\n";
    if significant.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"verdict\">No significant difference among the {} compared.</p>",
            input.differences.len()
        );
    } else {
        let _ = writeln!(
            out,
            "<p class=\"verdict\">{} significant of {} compared.</p>",
            significant.len(),
            input.differences.len()
        );
        out.push_str(HEAD);
        for d in &significant {
            row(out, d);
        }
        out.push_str("</tbody></table></div>\n");
    }
    let _ = writeln!(
        out,
        "<details class=\"all-differences\"><summary>All {} comparisons</summary>",
        input.differences.len()
    );
    out.push_str(HEAD);
    for d in &input.differences {
        row(out, d);
    }
    out.push_str("</tbody></table></div></details>\n</section>\n");
}

fn galleries(out: &mut String, input: &ReportInput) {
    let cards = |g: &Gallery| g.sections.iter().any(|s| !s.cards.is_empty());
    if !input.galleries.iter().any(cards) {
        return;
    }
    out.push_str("<section id=\"gallery\">\n<h2>Misclassified images</h2>\n<p class=\"note\">A reproducible sample of each factor's errors, with the annotators' one-word summary and justification.</p>\n");
    for gallery in input.galleries.iter().filter(|g| cards(g)) {
        let _ = writeln!(out, "<h3>{}</h3>", escape(&gallery.model));
        for section in gallery.sections.iter().filter(|s| !s.cards.is_empty()) {
            let _ = writeln!(
                out,
                "<details class=\"factor\" open><summary><strong>{}</strong> — {} of {} errors</summary>\n<div class=\"gallery\">",
                escape(&section.factor),
                section.cards.len(),
                section.errors
            );
            for card in &section.cards {
                card_html(out, card);
            }
            out.push_str("</div></details>\n");
        }
    }
    out.push_str("</section>\n");
}

fn card_html(out: &mut String, card: &GalleryCard) {
    out.push_str("<figure class=\"card\">");
    if let Some(t) = &card.thumbnail {
        let _ = write!(
            out,
            "<img src=\"{}\" alt=\"{}\" loading=\"lazy\">",
            t.data_uri(),
            escape(&card.file_name)
        );
    }
    let _ = write!(
        out,
        "<figcaption><div class=\"file\">{}</div><div class=\"truth\">true: {}</div><div class=\"pred\">predicted: {}{}</div>",
        escape(&card.file_name),
        escape(&card.true_class),
        escape(&card.predicted_class),
        card.probability
            .map(|p| format!(" ({p:.2})"))
            .unwrap_or_default()
    );
    if let Some(word) = &card.one_word {
        let _ = write!(out, "<div class=\"word\">“{}”</div>", escape(word));
    }
    if let Some(why) = &card.justification {
        let _ = write!(out, "<div class=\"why\">{}</div>", escape(why));
    }
    out.push_str("</figcaption></figure>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::{MAX_FIGURE_NAME, figures, file_stem};
    use crate::model::{FactorStats, GallerySection, ModelReport, Thumbnail};
    use crate::plots::HeatCell;

    fn input() -> ReportInput {
        let factor = |name: &str, er: f64, small: bool| FactorStats {
            factor: name.into(),
            images: if small { 12 } else { 400 },
            correct: 7,
            accuracy: Some(0.5),
            accuracy_interval: Some((0.45, 0.55)),
            error_ratio: Some(er),
            error_ratio_interval: Some((er - 0.1, er + 0.1)),
            small_sample: small,
        };
        let model = |name: &str| ModelReport {
            name: name.into(),
            metadata: vec![("model sha256".into(), "ab<cd>".into())],
            images: 1000,
            correct: 760,
            accuracy: Some(0.76),
            accuracy_interval: Some((0.73, 0.79)),
            missing: 3,
            factors: vec![factor("pose", 1.5, false), factor("style", 2.5, true)],
            metaclass_cells: vec![
                vec![
                    HeatCell {
                        value: Some(1.2),
                        small_sample: false,
                    },
                    HeatCell::default(),
                ],
                vec![
                    HeatCell::default(),
                    HeatCell {
                        value: Some(0.5),
                        small_sample: true,
                    },
                ],
            ],
        };
        ReportInput {
            title: "Report <1>".into(),
            description: "class error, top factor".into(),
            generator: "imagenetx 0.1.0".into(),
            interval_note: Some("95% intervals".into()),
            models: vec![model("resnet50"), model("dino & co")],
            metaclasses: vec!["dog".into(), "bird".into()],
            factor_counts: vec![("pose".into(), 400), ("style".into(), 12)],
            galleries: vec![Gallery {
                model: "resnet50".into(),
                sections: vec![GallerySection {
                    factor: "pose".into(),
                    errors: 30,
                    cards: vec![GalleryCard {
                        file_name: "a.JPEG".into(),
                        true_class: "tabby".into(),
                        predicted_class: "tiger cat".into(),
                        probability: Some(0.38),
                        one_word: Some("<b>odd</b>".into()),
                        justification: Some(
                            "cat \"looks\" away & <script>alert(1)</script>".into(),
                        ),
                        thumbnail: Some(Thumbnail {
                            mime: "image/jpeg".into(),
                            bytes: vec![0xff, 0xd8, 0xff],
                        }),
                    }],
                }],
            }],
            differences: vec![
                Difference {
                    metric: "pose accuracy".into(),
                    model_a: "resnet50".into(),
                    model_b: "dino & co".into(),
                    value_a: Some(0.5),
                    value_b: Some(0.625),
                    difference: 0.125,
                    interval: Some((0.05, 0.2)),
                    p_value: Some(0.00002),
                    significant: true,
                },
                Difference {
                    metric: "style accuracy".into(),
                    model_a: "resnet50".into(),
                    model_b: "dino & co".into(),
                    value_a: Some(0.5),
                    value_b: Some(0.45),
                    difference: -0.05,
                    interval: Some((-0.2, 0.1)),
                    p_value: Some(0.61),
                    significant: false,
                },
            ],
        }
    }

    #[test]
    fn differences_section_lists_the_significant_ones_first() {
        let html = render(&input());
        assert!(html.contains("<a href=\"#differences\">Differences</a>"));
        let section = &html[html.find("<section id=\"differences\">").expect("section")..];
        let section = &section[..section.find("</section>").expect("end")];
        assert!(section.contains("1 significant of 2 compared."));
        let (top, all) = section.split_once("<details").expect("details");
        assert!(top.contains("<tr class=\"significant\"><td class=\"name\">pose accuracy</td><td class=\"name\">resnet50</td><td class=\"name\">dino &amp; co</td><td>0.500</td><td>0.625</td><td>+0.125</td><td>[+0.050, +0.200]</td><td>&lt;0.0001</td></tr>"));
        assert!(!top.contains("style accuracy"));
        assert!(all.contains("<td>-0.050</td><td>[-0.200, +0.100]</td><td>0.6100</td>"));

        let mut none = input();
        none.differences.retain(|d| !d.significant);
        let html = render(&none);
        assert!(html.contains("No significant difference among the 1 compared."));
        none.differences.clear();
        assert!(!render(&none).contains("id=\"differences\""));
    }

    #[test]
    fn figures_have_distinct_file_names_in_page_order() {
        let mut input = input();
        input.models.push(ModelReport {
            name: "DINO ! co".into(),
            ..input.models[1].clone()
        });
        let names: Vec<String> = figures(&input).into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "error_ratio",
                "scatter_pose",
                "heatmap_resnet50",
                "heatmap_dino___co",
                "heatmap_DINO___co_2",
                "factor_distribution"
            ]
        );
        // Very long model names are cut to a file name that fits.
        assert_eq!(file_stem(&"x".repeat(1000)).len(), MAX_FIGURE_NAME);
        let html = render(&input);
        for name in &names {
            assert!(
                html.contains(&format!("<figure id=\"figure-{name}\">")),
                "{name}"
            );
        }
    }

    #[test]
    fn report_escapes_text_and_holds_every_part() {
        let html = render(&input());
        assert!(html.contains("<title>Report &lt;1&gt;</title>"));
        assert!(html.contains("dino &amp; co"));
        assert!(html.contains("ab&lt;cd&gt;"));
        assert!(html.contains("&lt;b&gt;odd&lt;/b&gt;"));
        assert!(html.contains("cat &quot;looks&quot; away &amp; &lt;script&gt;"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("<b>odd"));
        // Error ratio with interval, small-sample flag, accuracy interval.
        assert!(html.contains("1.50 [1.40, 1.60]"));
        assert!(html.contains("<td class=\"small\">2.50 [2.40, 2.60]</td>"));
        assert!(html.contains("0.500 [0.450, 0.550]"));
        assert!(html.contains("[0.7300, 0.7900]"));
        // Plots: error ratio, scatter (two models), two heatmaps, distribution.
        assert_eq!(html.matches("<svg").count(), 5);
        assert!(html.contains("src=\"data:image/jpeg;base64,/9j/\""));
        assert!(html.contains("1 of 30 errors"));
        assert!(html.contains("3 annotated images have no prediction"));
        // Nothing that would reach the network.
        for needle in ["http:", "https:", "//", "@import", "url("] {
            assert!(!html.contains(needle), "found {needle}");
        }
    }
}
