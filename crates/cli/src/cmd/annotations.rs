//! `imagenetx annotations`: how often each factor is annotated, per metaclass, and how
//! factors and metaclasses co-occur.

use std::path::PathBuf;

use imagenetx_dataset::AnnotatedSet;
use imagenetx_factors::correlation::{indicators, spearman_matrix};
use imagenetx_factors::{Factor, Metaclass, N_FACTORS, prevalence_shift};
use imagenetx_report::{Cell, Table};

use crate::Outcome;
use crate::common::{AnnotationArgs, Format, ensure_dir, write_atomic};

/// Arguments of `imagenetx annotations`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub annotations: AnnotationArgs,
    /// Format of the counts printed on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write `factor_counts.csv`, `metaclass_prevalence_shift.csv`,
    /// `factor_correlation.csv` and `factor_correlation_pvalues.csv` into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Runs `imagenetx annotations`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let dir = args.annotations.dir()?;
    let set = args.annotations.load_set(&dir)?;
    let counts = factor_counts(&set);
    if let Some(out) = &args.out {
        ensure_dir(out)?;
        write_atomic(&out.join("factor_counts.csv"), counts.to_csv().as_bytes())?;
        write_atomic(
            &out.join("metaclass_prevalence_shift.csv"),
            metaclass_prevalence_shift(&set).to_csv().as_bytes(),
        )?;
        let (rho, p) = correlations(&set);
        write_atomic(&out.join("factor_correlation.csv"), rho.to_csv().as_bytes())?;
        write_atomic(
            &out.join("factor_correlation_pvalues.csv"),
            p.to_csv().as_bytes(),
        )?;
    }
    let o = set.options;
    let title = format!(
        "images annotated with each factor ({} partition, {} factor, {} images{})",
        o.partition.name(),
        o.selection.name(),
        set.len(),
        if o.keep_prototypes {
            ", prototypes kept".to_string()
        } else {
            format!(", {} prototypes left out", set.prototypes_removed)
        }
    );
    // Factors as rows read better on a terminal.
    let view = transpose(&counts);
    let text = match args.format {
        Format::Table => format!("{title}\n\n{}", view.to_text(0)),
        Format::Markdown => format!("{title}\n\n{}", view.to_markdown(0)),
        Format::Csv => counts.to_csv(),
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&counts.to_json())?),
    };
    print!("{text}");
    Ok(Outcome::Done)
}

fn factor_columns(lead: &str, tail: &[&str]) -> Vec<String> {
    std::iter::once(lead)
        .chain(Factor::ALL.iter().map(|f| f.name()))
        .chain(tail.iter().copied())
        .map(String::from)
        .collect()
}

/// Rows: each metaclass, then `all`; columns: images with each factor, then images.
fn factor_counts(set: &AnnotatedSet) -> Table {
    let per_metaclass = set.annotations.metaclass_factor_totals();
    let mut images = [0u64; Metaclass::ALL.len()];
    for i in 0..set.len() {
        images[set.annotations.metaclass_of(i).index()] += 1;
    }
    let mut table = Table::new(factor_columns("metaclass", &["images"]));
    for metaclass in Metaclass::ALL {
        let mut row = vec![Cell::text(metaclass.name())];
        row.extend(
            per_metaclass[metaclass.index()]
                .iter()
                .map(|c| Cell::Int(*c)),
        );
        row.push(Cell::Int(images[metaclass.index()]));
        table.push(row);
    }
    let mut all = vec![Cell::text("all")];
    all.extend(
        set.annotations
            .factor_totals()
            .iter()
            .map(|c| Cell::Int(*c)),
    );
    all.push(Cell::Int(set.len() as u64));
    table.push(all);
    table
}

fn transpose(table: &Table) -> Table {
    let mut columns = vec![table.columns[0].clone()];
    columns.extend(table.rows.iter().map(|r| r[0].csv()));
    let mut out = Table::new(columns);
    for (c, name) in table.columns.iter().enumerate().skip(1) {
        let mut row = vec![Cell::text(name)];
        row.extend(table.rows.iter().map(|r| r[c].clone()));
        out.push(row);
    }
    out.columns[0] = "factor".to_string();
    out
}

/// The toolkit's `compute_metaclass_prevalence_shift`: per metaclass, (prevalence of the
/// factor in the metaclass − overall prevalence) / overall prevalence.
fn metaclass_prevalence_shift(set: &AnnotatedSet) -> Table {
    let per_metaclass = set.annotations.metaclass_factor_totals();
    let overall: [u64; N_FACTORS] = set.annotations.factor_totals();
    let mut table = Table::new(factor_columns("metaclass", &[]));
    for metaclass in Metaclass::ALL {
        if per_metaclass[metaclass.index()].iter().all(|c| *c == 0) {
            continue;
        }
        let shift = prevalence_shift(&per_metaclass[metaclass.index()], &overall);
        let mut row = vec![Cell::text(metaclass.name())];
        row.extend(shift.iter().map(|s| Cell::Num(Some(*s))));
        table.push(row);
    }
    table
}

/// Spearman correlation (and p-values) between the factors and metaclass indicators.
fn correlations(set: &AnnotatedSet) -> (Table, Table) {
    let columns = indicators(&set.annotations);
    let matrix = spearman_matrix(&columns);
    let names: Vec<String> = std::iter::once("factor".to_string())
        .chain(columns.iter().map(|c| c.name.clone()))
        .collect();
    let (mut rho, mut p) = (Table::new(names.clone()), Table::new(names));
    for (column, row) in columns.iter().zip(&matrix) {
        let mut r = vec![Cell::text(&column.name)];
        let mut q = vec![Cell::text(&column.name)];
        r.extend(row.iter().map(|c| Cell::Num(c.map(|c| c.rho))));
        q.extend(row.iter().map(|c| Cell::Num(c.map(|c| c.p_value))));
        rho.push(r);
        p.push(q);
    }
    (rho, p)
}
