//! `imagenetx evaluate A.onnx B.onnx … --out-dir DIR`: the models of an [`imagenetx::Zoo`] in
//! one pass, each into its own journaled [`RunOutput`] under DIR, with a progress bar and the
//! signals of a single run; then a table of every model, the pass record and the report.
//!
//! Exit code: 0 when every model completed without skipping an image; 1 when some model failed
//! or some image was skipped (each listed); 2 when no model could run.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use imagenetx::shard::image_list_id;
use imagenetx::zoo::{expand_models, predictions_path, read_model_list};
use imagenetx::{ModelOutcome, PassRecord, ReportRequest, RunOutput, Truth, Zoo, take_shard};
use imagenetx_dataset::discover_images_in;
use imagenetx_infer::CheckpointPolicy;
use imagenetx_report::{Cell, Table};

use super::{
    Args, CliSink, StopSignal, check_outputs_writable, evaluator_config, print_finished,
    print_pipeline, progress_bar, write_html_report,
};
use crate::Outcome;
use crate::common::ensure_dir;

/// Runs the pass.
pub(super) fn run(
    args: &Args,
    out_dir: &Path,
    policy: CheckpointPolicy,
) -> anyhow::Result<Outcome> {
    let mut given = args.models.clone();
    if let Some(list) = &args.models_from {
        given.extend(read_model_list(list)?);
    }
    let models = expand_models(&given)?;
    imagenetx::zoo::check_names(&models)?;
    let shard = args
        .shard
        .map(|request| request.resolve(args.shards))
        .transpose()?;
    // Fail early: every output is taken and checked writable before any image is read.
    ensure_dir(out_dir)?;
    let mut outputs: Vec<RunOutput> = models
        .iter()
        .map(|model| {
            let out = predictions_path(out_dir, model);
            RunOutput::prepare(&shard.map_or(out.clone(), |s| s.predictions_path(&out)))
        })
        .collect::<Result<_, _>>()?;
    check_outputs_writable(args)?;
    let mut list = discover_images_in(&args.images, args.limit)?;
    let image_list = Some(image_list_id(&list.images));
    let mut shard_record = None;
    if let Some(shard) = shard {
        let sharded = take_shard(list, shard);
        super::print_shard(&sharded);
        outputs = outputs
            .into_iter()
            .map(|output| output.for_shard(&sharded))
            .collect();
        shard_record = Some(sharded.shard);
        list = sharded.list;
    }

    let budget = match args.model_memory {
        None => imagenetx::zoo::default_memory_budget(),
        Some(gib) if gib.is_finite() && gib > 0.0 => (gib * f64::from(1u32 << 30)) as u64,
        Some(gib) => bail!("--model-memory {gib}: expected a positive number of GiB"),
    };
    let zoo = Zoo::with_budget(&models, &evaluator_config(args, PathBuf::new()), budget)?;
    let mut outcomes: Vec<ModelOutcome> = models
        .iter()
        .map(|model| ModelOutcome {
            model: model.clone(),
            name: imagenetx::evaluate::model_name(model),
            group: None,
            state: "failed".into(),
            reason: None,
            predictions: None,
            predicted: 0,
            skipped: 0,
        })
        .collect();
    // Members are the loaded models, in order: member m is the model of index `given_of[m]`.
    let given_of: Vec<usize> = zoo
        .members()
        .iter()
        .map(|e| {
            models
                .iter()
                .position(|m| *m == e.config().model)
                .unwrap_or_default()
        })
        .collect();
    for failure in zoo.failures() {
        eprintln!(
            "model {} failed: {}",
            failure.model.display(),
            failure.reason
        );
        if let Some(o) = outcomes.iter_mut().find(|o| o.model == failure.model) {
            o.reason = Some(failure.reason.clone());
        }
    }
    for (group, members) in zoo.groups().iter().enumerate() {
        let config = &zoo.members()[members[0]].preprocessing().config;
        let names: Vec<String> = members.iter().map(|&m| zoo.name(m)).collect();
        let passes = zoo.passes(group).len();
        let decoded = if passes == 1 {
            "images decoded once".to_string()
        } else {
            format!(
                "images decoded in {passes} passes: together the models pass --model-memory {:.2} GiB",
                zoo.memory_budget() as f64 / f64::from(1u32 << 30)
            )
        };
        eprintln!(
            "group {group} ({} input {}x{}, {decoded}): {}",
            config.layout,
            config.crop_height,
            config.crop_width,
            names.join(", ")
        );
    }
    for (m, evaluator) in zoo.members().iter().enumerate() {
        outcomes[given_of[m]].group = Some(zoo.group_of(m));
        for notice in evaluator.notices() {
            eprintln!("{}: {notice}", zoo.name(m));
        }
    }

    // Each loaded model's output started (afresh or resumed); one that cannot be is failed.
    let mut todos = Vec::with_capacity(zoo.members().len());
    let mut journals = Vec::with_capacity(zoo.members().len());
    for (m, evaluator) in zoo.members().iter().enumerate() {
        let output = &outputs[given_of[m]];
        match output.start(evaluator, &list.images, &list.skipped, args.resume, policy) {
            Ok(started) => {
                for warning in &started.warnings {
                    tracing::warn!("{}: {warning}", zoo.name(m));
                }
                for message in &started.messages {
                    eprintln!("{}: {message}", zoo.name(m));
                }
                todos.push(started.todo);
                journals.push(Some(started.sink));
            }
            Err(err) => {
                eprintln!("model {} failed: {err}", evaluator.config().model.display());
                outcomes[given_of[m]].reason = Some(err.to_string());
                todos.push(Vec::new());
                journals.push(None);
            }
        }
    }
    let mut zoo = zoo;
    let progress = progress_bar(args.quiet, todos.iter().map(Vec::len).sum());
    let stop = StopSignal::install()?;
    let mut sinks: Vec<CliSink<'_, '_>> = journals
        .into_iter()
        .map(|journal| CliSink {
            journal,
            progress: &progress,
            stop: &stop,
        })
        .collect();
    let results = zoo.run(&list.images, &todos, &mut sinks)?;
    progress.finish_and_clear();
    let interrupted = stop.requested();

    let truth = Truth::load(&args.annotations.options(), &list.images)?;
    let mut table = Table::new([
        "model",
        "group",
        "predictions",
        "skipped",
        "top-1",
        "top-5",
        "state",
    ]);
    let mut how = Vec::new();
    let mut skipped_any = false;
    for ((m, sink), result) in sinks.into_iter().enumerate().zip(results) {
        let outcome = &mut outcomes[given_of[m]];
        let Some(journal) = sink.journal else {
            continue;
        };
        let stats = match result {
            Ok(stats) => stats,
            Err(err) => {
                let (resume, _) = journal.interrupt();
                eprintln!("model {} failed: {err} ({resume})", outcome.model.display());
                outcome.reason = Some(err.to_string());
                continue;
            }
        };
        if interrupted.is_some() {
            let (resume, saved) = journal.interrupt();
            saved.with_context(|| format!("{}: {resume}", outcome.name))?;
            outcome.state = "interrupted".into();
            how.push(format!("{}: {resume}", outcome.name));
            continue;
        }
        let finished = journal.finish()?;
        let files = outputs[given_of[m]].files();
        print_finished(files, &finished, &format!("{}: ", outcome.name));
        print_pipeline(args.quiet, &stats, &format!("{}: ", outcome.name));
        skipped_any |= !finished.skipped.is_empty();
        let mut rows = finished.rows;
        let scores = truth.score(&outcome.name, &list.images, |i| {
            Ok(rows.get(i)?.map(|row| row.top_k()))
        })?;
        let a = scores.accuracy;
        let ratio = |n: u64| (a.labelled > 0).then(|| n as f64 / a.labelled as f64);
        table.push(vec![
            Cell::text(&outcome.name),
            Cell::Int(zoo.group_of(m) as u64),
            Cell::Int(finished.predictions as u64),
            Cell::Int(finished.skipped.len() as u64),
            Cell::Num(ratio(a.top1)),
            Cell::Num(ratio(a.top5)),
            Cell::text("complete"),
        ]);
        outcome.state = "complete".into();
        outcome.predictions = Some(files.predictions.clone());
        outcome.predicted = finished.predictions;
        outcome.skipped = finished.skipped.len();
    }
    let record = PassRecord {
        groups: zoo.group_records(),
        models: outcomes,
        image_list,
        shard: shard_record,
        merged_shards: None,
    };
    let record_path = PassRecord::path(out_dir, shard);
    record.write(&record_path)?;
    if let Some(signal) = interrupted {
        bail!(
            "interrupted by {signal}: to continue, run the same command with --resume\n{}",
            how.join("\n")
        );
    }
    for failed in record.models.iter().filter(|o| o.state == "failed") {
        table.push(vec![
            Cell::text(&failed.name),
            failed
                .group
                .map_or(Cell::text("—"), |g| Cell::Int(g as u64)),
            Cell::Int(0),
            Cell::Int(0),
            Cell::Num(None),
            Cell::Num(None),
            Cell::text("failed"),
        ]);
    }
    println!("{}", table.to_text(4));
    eprintln!("wrote the pass record {}", record_path.display());
    let complete: Vec<PathBuf> = record
        .models
        .iter()
        .filter_map(|o| o.predictions.clone())
        .collect();
    if complete.is_empty() {
        bail!(
            "no model could run ({} given, each named above with the reason)",
            record.models.len()
        );
    }
    if let Some(path) = &args.report {
        write_report(args, path, &complete)?;
    }
    let failed = record.models.iter().filter(|o| o.state == "failed").count();
    if failed > 0 {
        eprintln!(
            "{failed} of {} models failed (named above)",
            record.models.len()
        );
    }
    Ok(if failed > 0 || skipped_any {
        Outcome::Skipped
    } else {
        Outcome::Done
    })
}

/// One report of every model that completed (as `imagenetx report` makes it).
fn write_report(args: &Args, path: &Path, predictions: &[PathBuf]) -> anyhow::Result<()> {
    let request = ReportRequest {
        annotations: args.annotations.options(),
        images: args.images.clone(),
        ..ReportRequest::default()
    };
    let input = imagenetx::assemble_report(predictions, &request)?;
    write_html_report(path, &input)?;
    Ok(())
}
