//! Many models in one pass: models grouped by their resolved preprocessing, each image decoded
//! and preprocessed once per group and its tensor fed to every model of the group.
//!
//! [`Zoo::new`] loads every model with the same settings ([`EvaluatorConfig`], its `model`
//! replaced by each model in turn); a model that cannot be loaded is a [`ModelFailure`], not an
//! error of the whole. Models whose whole [`PreprocessConfig`] (size, resize, interpolation,
//! mean, std, scale, layout, channel order…) is equal share a group. [`Zoo::run`] runs the
//! groups one after the other through the same decode pipeline as [`Evaluator::run`], each
//! model with its own list of images to predict (its journal's, on a resume) and its own
//! [`Sink`]; a model that fails during the pass (an inference error, a sink that cannot
//! write) is dropped from the pass with its error while the others go on.
//!
//! ```no_run
//! use imagenetx::{Collect, EvaluatorConfig, Zoo, dataset::discover_images};
//!
//! let models = ["a.onnx".into(), "b.onnx".into()];
//! let mut zoo = Zoo::new(&models, &EvaluatorConfig::new(""))?;
//! let images = discover_images("imagenet/val".as_ref(), None)?;
//! let all: Vec<usize> = (0..images.images.len()).collect();
//! let todos = vec![all; zoo.members().len()];
//! let mut sinks = vec![Collect::default(); zoo.members().len()];
//! for (member, outcome) in zoo.run(&images.images, &todos, &mut sinks)?.iter().enumerate() {
//!     println!("{} (group {}): {:?}", zoo.name(member), zoo.group_of(member), outcome.is_ok());
//! }
//! # Ok::<(), imagenetx::Error>(())
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use imagenetx_dataset::ImageEntry;
use imagenetx_imaging::PreprocessConfig;

use crate::evaluate::{Decode, Evaluator, EvaluatorConfig, RunStats, Sink, feed, model_name};
use crate::{Error, Result};

/// A model that was left out of the pass, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelFailure {
    /// The model as given.
    pub model: PathBuf,
    /// Why it was left out (the error's whole text).
    pub reason: String,
}

/// Models evaluated together, grouped by preprocessing.
#[derive(Debug)]
pub struct Zoo {
    members: Vec<Evaluator>,
    /// `groups[g]`: the members (indices into `members`) sharing one preprocessing, in the
    /// order the models were given.
    groups: Vec<Vec<usize>>,
    group_of: Vec<usize>,
    failures: Vec<ModelFailure>,
    /// Each member's memory when loaded (bytes; see [`Zoo::footprint`]).
    footprints: Vec<u64>,
    /// Bytes of loaded models allowed at once.
    budget: u64,
}

impl Zoo {
    /// Loads every model of `models` with the settings of `base` (its `model` is not used) and
    /// groups them by their resolved preprocessing. Two models with the same name (file stem)
    /// are refused, naming both; a model that cannot be loaded is listed in
    /// [`Zoo::failures`]. An error only when no model is given. The loaded models are kept
    /// under [`default_memory_budget`] (see [`Zoo::with_budget`]).
    pub fn new(models: &[PathBuf], base: &EvaluatorConfig) -> Result<Self> {
        Self::with_budget(models, base, default_memory_budget())
    }

    /// [`Zoo::new`] keeping at most `budget` bytes of models loaded at once: each model is
    /// loaded to inspect it and its session released when keeping it would pass the budget;
    /// [`Zoo::run`] then runs a group whose models do not fit together in several decode
    /// passes ([`Zoo::passes`]), each with the models that fit, opened for it and released
    /// after. A model's bytes are its [`footprint`](Zoo::footprint).
    pub fn with_budget(models: &[PathBuf], base: &EvaluatorConfig, budget: u64) -> Result<Self> {
        check_names(models)?;
        let mut zoo = Zoo {
            members: Vec::new(),
            groups: Vec::new(),
            group_of: Vec::new(),
            failures: Vec::new(),
            footprints: Vec::new(),
            budget,
        };
        let mut loaded = 0u64;
        let mut keys: HashMap<(String, usize), usize> = HashMap::new();
        for model in models {
            let config = EvaluatorConfig {
                model: model.clone(),
                ..base.clone()
            };
            // What it takes: the growth of the resident memory while it loaded and while it
            // ran one batch of the pass's size (ONNX Runtime keeps the buffers of its largest
            // batch), at least the size of its files (a freed arena may have been reused).
            let before = resident_bytes();
            let loaded_and_run = Evaluator::new(config).and_then(|mut evaluator| {
                let grown = measure_batch(&mut evaluator, before)?;
                Ok((evaluator, grown))
            });
            let (mut evaluator, grown) = match loaded_and_run {
                Ok(both) => both,
                Err(err) => {
                    zoo.failures.push(ModelFailure {
                        model: model.clone(),
                        reason: err.to_string(),
                    });
                    continue;
                }
            };
            let key = (
                group_key(&evaluator.preprocessing().config)?,
                evaluator.batch_size(),
            );
            let member = zoo.members.len();
            let group = *keys.entry(key).or_insert_with(|| {
                zoo.groups.push(Vec::new());
                zoo.groups.len() - 1
            });
            zoo.groups[group].push(member);
            zoo.group_of.push(group);
            let footprint = grown.max(model_bytes(&evaluator.config().model));
            if loaded.saturating_add(footprint) > budget {
                evaluator.classifier.release();
            } else {
                loaded += footprint;
            }
            zoo.footprints.push(footprint);
            zoo.members.push(evaluator);
        }
        Ok(zoo)
    }

    /// The memory member `member` took when it was loaded: the growth of the process's
    /// resident memory while it loaded (its weights, ONNX Runtime's buffers and the probe) and
    /// while it ran one batch of the pass's size, at least the size of its files.
    pub fn footprint(&self, member: usize) -> u64 {
        self.footprints[member]
    }

    /// The bytes of loaded models allowed at once.
    pub fn memory_budget(&self) -> u64 {
        self.budget
    }

    /// The decode passes of group `group`: its members cut, in order, into runs whose
    /// footprints fit the budget together (a model larger than the budget alone is a pass of
    /// its own). One pass when they all fit.
    pub fn passes(&self, group: usize) -> Vec<Vec<usize>> {
        let mut passes: Vec<Vec<usize>> = Vec::new();
        let mut bytes = 0u64;
        for &m in &self.groups[group] {
            let fits = bytes.saturating_add(self.footprints[m]) <= self.budget;
            match passes.last_mut() {
                Some(pass) if fits => pass.push(m),
                _ => {
                    passes.push(vec![m]);
                    bytes = 0;
                }
            }
            bytes = bytes.saturating_add(self.footprints[m]);
        }
        passes
    }

    /// The models that were loaded, in the order given (failed ones left out).
    pub fn members(&self) -> &[Evaluator] {
        &self.members
    }

    /// The name of member `member`: its model's file stem (as [`model_name`]).
    pub fn name(&self, member: usize) -> String {
        model_name(&self.members[member].config().model)
    }

    /// The groups: each the members (indices into [`Zoo::members`]) whose images are decoded
    /// once, with the preprocessing of its first member.
    pub fn groups(&self) -> &[Vec<usize>] {
        &self.groups
    }

    /// The group of member `member`.
    pub fn group_of(&self, member: usize) -> usize {
        self.group_of[member]
    }

    /// The models that could not be loaded, with the reason.
    pub fn failures(&self) -> &[ModelFailure] {
        &self.failures
    }

    /// Predicts, for each member `m`, the images `todos[m]` (indices into `images`) and hands
    /// its results to `sinks[m]`, group by group: each image in some member's list is decoded
    /// once per group. Returns each member's outcome: its [`RunStats`], or the error that
    /// dropped it from the pass (what its sink received before is its to keep). A sink's
    /// [`Sink::should_stop`] stops the whole pass (every member's stats say `stopped`).
    ///
    /// An error only for what concerns every model: `todos` or `sinks` not one per member,
    /// an index outside `images`, the decoding threads not starting.
    pub fn run<S: Sink + Send>(
        &mut self,
        images: &[ImageEntry],
        todos: &[Vec<usize>],
        sinks: &mut [S],
    ) -> Result<Vec<Result<RunStats>>> {
        let n = self.members.len();
        if todos.len() != n || sinks.len() != n {
            return Err(Error::invalid(format!(
                "{n} models, but {} lists of images and {} sinks",
                todos.len(),
                sinks.len()
            )));
        }
        if let Some(bad) = todos.iter().flatten().find(|&&i| i >= images.len()) {
            return Err(Error::invalid(format!(
                "image index {bad} is outside the list of {} images",
                images.len()
            )));
        }
        let mut outcomes: Vec<Result<RunStats>> = (0..n).map(|_| Ok(RunStats::default())).collect();
        let mut stopped = false;
        let passes: Vec<Vec<usize>> = (0..self.groups.len())
            .flat_map(|g| self.passes(g))
            .collect();
        for group in &passes {
            if stopped {
                break;
            }
            let Some(&first) = group.first() else {
                continue;
            };
            // This pass's models open, the others released if keeping them would pass the
            // budget; a model that cannot be opened again is dropped with the reason.
            let open: u64 = (0..n)
                .filter(|m| !group.contains(m) && self.members[*m].classifier.is_open())
                .map(|m| self.footprints[m])
                .sum();
            let needed: u64 = group.iter().map(|&m| self.footprints[m]).sum();
            if open.saturating_add(needed) > self.budget {
                for (m, member) in self.members.iter_mut().enumerate() {
                    if !group.contains(&m) {
                        member.classifier.release();
                    }
                }
            }
            for &m in group {
                if outcomes[m].is_ok() {
                    let runtime = self.members[m].runtime();
                    if let Err(err) = self.members[m].classifier.reopen(runtime) {
                        outcomes[m] = Err(err.into());
                    }
                }
            }
            let lead = &self.members[first];
            let config = lead.preprocessing().config.clone();
            let tensor_len = config.tensor_len();
            // Which images each member of the group wants, and the union the group decodes.
            let mut union = vec![false; images.len()];
            let wanted: Vec<Vec<bool>> = group
                .iter()
                .map(|&m| {
                    let mut mask = vec![false; images.len()];
                    for &i in &todos[m] {
                        mask[i] = true;
                        union[i] = true;
                    }
                    mask
                })
                .collect();
            let todo: Vec<usize> = (0..images.len()).filter(|&i| union[i]).collect();
            drop(union);
            let decode = Decode {
                images,
                config: &config,
                limits: lead.config().read_limits,
                batch_size: lead.batch_size(),
                threads: lead.config().threads,
            };
            let members = &mut self.members;
            let outcomes = &mut outcomes;
            let stopped = &mut stopped;
            let times = decode.run(&todo, |batch| {
                let live: Vec<usize> = (0..group.len())
                    .filter(|&k| outcomes[group[k]].is_ok())
                    .collect();
                if live.is_empty() {
                    return Ok(false);
                }
                if live.iter().any(|&k| sinks[group[k]].should_stop()) {
                    *stopped = true;
                    for &k in &live {
                        if let Ok(stats) = &mut outcomes[group[k]] {
                            stats.stopped = true;
                        }
                    }
                    return Ok(false);
                }
                // The group's live models, each with its own classifier, sink and outcome,
                // are fed the batch side by side, one thread each (one model: on this one).
                let mut work: Vec<Work<'_, S>> = Vec::with_capacity(live.len());
                let in_group = |m: usize| group.binary_search(&m).ok();
                for ((m, member), (sink, outcome)) in members
                    .iter_mut()
                    .enumerate()
                    .zip(sinks.iter_mut().zip(outcomes.iter_mut()))
                {
                    if let (Some(k), true) = (in_group(m), outcome.is_ok()) {
                        work.push(Work {
                            wanted: &wanted[k],
                            member,
                            sink,
                            outcome,
                        });
                    }
                }
                let feed_one = |work: Work<'_, S>| {
                    let part = batch.subset(work.wanted, tensor_len);
                    let part = part.as_ref().unwrap_or(batch);
                    let Ok(stats) = work.outcome.as_mut() else {
                        return;
                    };
                    let fed = feed(
                        &mut work.member.classifier,
                        &config,
                        images,
                        part,
                        work.sink,
                        stats,
                    )
                    .and_then(|()| work.sink.batch_done(part.len()));
                    if let Err(err) = fed {
                        *work.outcome = Err(err);
                    }
                };
                if work.len() == 1 {
                    work.into_iter().for_each(feed_one);
                } else {
                    std::thread::scope(|scope| {
                        for one in work {
                            scope.spawn(|| feed_one(one));
                        }
                    });
                }
                Ok(true)
            })?;
            // Each model of the group shares the group's pass.
            for &m in group {
                if let Ok(stats) = &mut outcomes[m] {
                    stats.pipeline = times;
                }
            }
        }
        Ok(outcomes)
    }
}

/// One model's share of a batch: what it wants of it, and its own classifier, sink and
/// outcome (borrowed apart from the other models', so the models run side by side).
struct Work<'a, S> {
    wanted: &'a [bool],
    member: &'a mut Evaluator,
    sink: &'a mut S,
    outcome: &'a mut Result<RunStats>,
}

/// What happened to one model of a pass, for the pass record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelOutcome {
    /// The model as given.
    pub model: PathBuf,
    /// Its name (file stem): its outputs are `NAME.predictions.csv` and `NAME.run.json`.
    pub name: String,
    /// Its preprocessing group (`None`: it was not loaded).
    pub group: Option<usize>,
    /// `complete`, `failed` or `interrupted`.
    pub state: String,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its predictions CSV, when complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predictions: Option<PathBuf>,
    /// Predictions in its CSV.
    pub predicted: usize,
    /// Images it skipped.
    pub skipped: usize,
}

/// One preprocessing group, for the pass record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GroupRecord {
    /// The group's number (in the order of its first model).
    pub group: usize,
    /// The preprocessing all its models share.
    pub preprocessing: PreprocessConfig,
    /// Its models' names.
    pub models: Vec<String>,
}

/// The record of a pass (`zoo.json` in the output folder; a shard's is
/// `zoo.shard-K-of-N.json`): the groups, and each model's outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PassRecord {
    /// The preprocessing groups.
    pub groups: Vec<GroupRecord>,
    /// Each model given, in order.
    pub models: Vec<ModelOutcome>,
    /// The whole image list the pass (or its shards) took its images from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_list: Option<imagenetx_infer::ImageListId>,
    /// The shard of a sharded pass (`evaluate --out-dir --shard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<imagenetx_infer::ShardRecord>,
    /// The shards merged into this record (`merge --out-dir`): how many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_shards: Option<usize>,
}

impl Zoo {
    /// The groups, for the pass record.
    pub fn group_records(&self) -> Vec<GroupRecord> {
        self.groups
            .iter()
            .enumerate()
            .map(|(group, members)| GroupRecord {
                group,
                preprocessing: members
                    .first()
                    .map(|&m| self.members[m].preprocessing().config.clone())
                    .unwrap_or_else(PreprocessConfig::torchvision),
                models: members.iter().map(|&m| self.name(m)).collect(),
            })
            .collect()
    }
}

impl PassRecord {
    /// The file name of the record in the output folder.
    pub const FILE_NAME: &'static str = "zoo.json";

    /// The record's path in the output folder `out_dir`: `zoo.json`, or for a shard
    /// `zoo.shard-K-of-N.json`.
    pub fn path(out_dir: &Path, shard: Option<crate::Shard>) -> PathBuf {
        let path = out_dir.join(Self::FILE_NAME);
        match shard {
            Some(shard) => shard.predictions_path(&path),
            None => path,
        }
    }

    /// Reads a record written by [`PassRecord::write`].
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::invalid(format!(
                "{}: not a pass record (zoo.json) of imagenetx evaluate --out-dir: {e}",
                path.display()
            ))
        })
    }

    /// Writes the record as pretty JSON (atomically).
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::invalid(format!("cannot serialise the pass record: {e}")))?;
        crate::write_file(path, &json)
    }
}

/// The bytes of loaded models a [`Zoo`] keeps at most by default: half of the memory
/// available now (Linux's `MemAvailable`), else 8 GiB.
pub fn default_memory_budget() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| kib_field(&text, "MemAvailable:"))
        .map_or(8 << 30, |available| available / 2)
}

/// Runs one batch of the pass's size (a constant, written so that its pages are resident
/// before the measurement) through a freshly loaded `evaluator`, and returns
/// how much the resident memory grew from `before` (taken before it loaded), the batch's own
/// input buffer left out; 0 when the resident memory is not known.
fn measure_batch(evaluator: &mut Evaluator, before: Option<u64>) -> Result<u64> {
    let loaded = resident_bytes();
    let config = &evaluator.preprocessing().config;
    let n = evaluator.batch_size();
    let shape = config
        .layout
        .shape(n, config.crop_height as usize, config.crop_width as usize);
    let zeros = vec![0.5f32; n * config.tensor_len()];
    let with_buffer = resident_bytes();
    evaluator
        .classifier
        .classify_slice(&zeros, shape)
        .map_err(|e| Error::from(e).context(format!("running a batch of {n}")))?;
    let after = resident_bytes();
    Ok(match (before, loaded, with_buffer, after) {
        (Some(before), Some(loaded), Some(with_buffer), Some(after)) => loaded
            .saturating_sub(before)
            .saturating_add(after.saturating_sub(with_buffer)),
        _ => 0,
    })
}

/// The resident memory of this process (Linux's `VmRSS`), if known.
fn resident_bytes() -> Option<u64> {
    kib_field(
        &std::fs::read_to_string("/proc/self/status").ok()?,
        "VmRSS:",
    )
}

/// A `NAME: N kB` line of a `/proc` file, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib.saturating_mul(1024))
}

/// The size of a model's file (its export folder's model file), 0 when unknown.
fn model_bytes(model: &Path) -> u64 {
    crate::sidefiles::model_file(model)
        .ok()
        .and_then(|file| std::fs::metadata(file).ok())
        .map_or(0, |m| m.len())
}

/// Refuses two models with the same name (file stem): their outputs would have the same
/// file names.
pub fn check_names(models: &[PathBuf]) -> Result<()> {
    if models.is_empty() {
        return Err(Error::invalid("no model given"));
    }
    let mut seen: HashMap<String, &Path> = HashMap::new();
    for model in models {
        let name = model_name(model);
        if let Some(first) = seen.insert(name.clone(), model) {
            return Err(Error::invalid(format!(
                "{} and {} have the same name `{name}`: their predictions would go to the same \
                 file; rename one (or evaluate them in two passes)",
                first.display(),
                model.display()
            )));
        }
    }
    Ok(())
}

/// The models named by `paths`: a file is a model; a folder is one model when it is an export
/// folder (it holds a `model.onnx`), else every `.onnx` file in it (sorted by name) is one.
pub fn expand_models(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut models = Vec::new();
    for path in paths {
        if !path.is_dir() || path.join("model.onnx").is_file() {
            models.push(path.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Error::io(path, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "onnx"))
            .collect();
        if found.is_empty() {
            return Err(Error::invalid(format!(
                "{}: a folder with no .onnx file (expected models, or an export folder with model.onnx)",
                path.display()
            )));
        }
        found.sort();
        models.extend(found);
    }
    Ok(models)
}

/// The models listed in `file`, one path per line (blank lines and lines starting with `#`
/// left out; a relative path is relative to the file's folder).
pub fn read_model_list(file: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    let base = file.parent().unwrap_or(Path::new(""));
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| base.join(line))
        .collect())
}

/// The predictions CSV of `model` in the output folder `out_dir` of a pass:
/// `OUT_DIR/MODEL_STEM.predictions.csv` (the run record beside it, as for one model).
pub fn predictions_path(out_dir: &Path, model: &Path) -> PathBuf {
    out_dir.join(crate::run::default_predictions_path(model))
}

/// The grouping key: the whole preprocessing, as its JSON (every field compared).
fn group_key(config: &PreprocessConfig) -> Result<String> {
    serde_json::to_string(config)
        .map_err(|e| Error::invalid(format!("cannot serialise the preprocessing: {e}")))
}
