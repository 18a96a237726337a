//! A plain table of text and numbers, rendered as CSV, Markdown, aligned text or JSON.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text (a model or factor name).
    Text(String),
    /// A count.
    Int(u64),
    /// A real number; `None` where it is undefined (written empty in CSV, `null` in JSON,
    /// `—` in text).
    Num(Option<f64>),
}

impl Cell {
    /// A text cell.
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    /// The cell as CSV writes it: shortest round-trip decimals, empty when undefined.
    pub fn csv(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Num(Some(x)) => format_float(*x),
            Cell::Num(None) => String::new(),
        }
    }

    fn display(&self, decimals: usize) -> String {
        match self {
            Cell::Num(Some(x)) => format!("{x:.decimals$}"),
            Cell::Num(None) => "—".to_string(),
            other => other.csv(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Int(n) => Value::from(*n),
            Cell::Num(Some(x)) => {
                serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number)
            }
            Cell::Num(None) => Value::Null,
        }
    }

    fn is_numeric(&self) -> bool {
        !matches!(self, Cell::Text(_))
    }
}

/// The shortest decimal that reads back as exactly `x`.
pub fn format_float(x: f64) -> String {
    if x == 0.0 {
        // Keep the sign of -0.0 out of tables.
        return "0".to_string();
    }
    format!("{x}")
}

/// A number with `decimals` decimals for people; `—` when undefined or not finite.
pub fn fixed(x: Option<f64>, decimals: usize) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "—".to_string(),
    }
}

/// A p-value for people: four decimals, `<0.0001` below that, `—` when there is none.
pub fn p_value(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 1e-4 => "<0.0001".into(),
        Some(p) => format!("{p:.4}"),
        None => "—".into(),
    }
}

/// `value [low, high]` for people: the value with `decimals` decimals, the interval bounds
/// with as many; just the value when there is no interval, `—` when it is undefined.
pub fn with_interval(x: Option<f64>, interval: Option<(f64, f64)>, decimals: usize) -> String {
    match (x, interval) {
        (Some(_), Some((low, high))) => format!(
            "{} [{}, {}]",
            fixed(x, decimals),
            fixed(Some(low), decimals),
            fixed(Some(high), decimals)
        ),
        _ => fixed(x, decimals),
    }
}

/// A table: named columns and rows of cells.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Table {
        Table {
            columns: columns.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len(), "row width");
        self.rows.push(row);
    }

    /// As CSV (RFC 4180 quoting where needed), header first.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, cells: Vec<String>| {
            let quoted: Vec<String> = cells.into_iter().map(|c| csv_quote(&c)).collect();
            out.push_str(&quoted.join(","));
            out.push('\n');
        };
        line(&mut out, self.columns.clone());
        for row in &self.rows {
            line(&mut out, row.iter().map(Cell::csv).collect());
        }
        out
    }

    /// As a GitHub-flavoured Markdown table, numbers with `decimals` decimals.
    pub fn to_markdown(&self, decimals: usize) -> String {
        let mut out = String::new();
        let escape = |s: &str| s.replace('|', "\\|");
        let header: Vec<String> = self.columns.iter().map(|c| escape(c)).collect();
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let align: Vec<&str> = (0..self.columns.len())
            .map(|i| {
                if self.rows.first().is_some_and(|r| r[i].is_numeric()) {
                    "---:"
                } else {
                    "---"
                }
            })
            .collect();
        let _ = writeln!(out, "|{}|", align.join("|"));
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(|c| escape(&c.display(decimals))).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out
    }

    /// As aligned plain text for a terminal, numbers with `decimals` decimals.
    pub fn to_text(&self, decimals: usize) -> String {
        let rendered: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| row.iter().map(|c| c.display(decimals)).collect())
            .collect();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                rendered
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([self.columns[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let numeric: Vec<bool> = (0..self.columns.len())
            .map(|i| self.rows.first().is_some_and(|r| r[i].is_numeric()))
            .collect();
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| pad(c, widths[i], numeric[i]))
                .collect();
            let _ = writeln!(out, "{}", parts.join("  ").trim_end());
        };
        line(&self.columns);
        for row in &rendered {
            line(row);
        }
        out
    }

    /// As a JSON array of objects keyed by column name.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|row| {
                    let object: Map<String, Value> = self
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(name, cell)| (name.clone(), cell.json()))
                        .collect();
                    Value::Object(object)
                })
                .collect(),
        )
    }
}

fn pad(s: &str, width: usize, right: bool) -> String {
    let fill = width.saturating_sub(s.chars().count());
    if right {
        format!("{}{s}", " ".repeat(fill))
    } else {
        format!("{s}{}", " ".repeat(fill))
    }
}

fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(["model", "n", "pose"]);
        t.push(vec![Cell::text("a,b"), Cell::Int(3), Cell::Num(Some(0.1))]);
        t.push(vec![Cell::text("c"), Cell::Int(10), Cell::Num(None)]);
        t
    }

    #[test]
    fn csv_is_round_trip_and_empty_when_undefined() {
        assert_eq!(sample().to_csv(), "model,n,pose\n\"a,b\",3,0.1\nc,10,\n");
        assert_eq!(format_float(1.0 / 3.0).parse::<f64>(), Ok(1.0 / 3.0));
        assert_eq!(format_float(-0.0), "0");
    }

    #[test]
    fn text_markdown_and_json() {
        let text = sample().to_text(2);
        assert_eq!(text, "model   n  pose\na,b     3  0.10\nc      10     —\n");
        let md = sample().to_markdown(2);
        assert!(
            md.starts_with("| model | n | pose |\n|---|---:|---:|\n| a,b | 3 | 0.10 |"),
            "{md}"
        );
        let json = sample().to_json();
        assert_eq!(json[1]["pose"], Value::Null);
        assert_eq!(json[0]["n"], Value::from(3));
    }
}
