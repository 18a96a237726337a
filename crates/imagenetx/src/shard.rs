//! Shards: one image list cut into `N` slices, one per process, node or array task, each
//! evaluated as a run of its own and put back together by [`crate::merge()`].
//!
//! # The rule
//!
//! The list is sorted by file name (the name each image has in the predictions CSV, compared
//! by bytes); shard `K` of `N`, **0-based** (`0 <= K < N`), is the contiguous range
//!
//! ```text
//! [floor(K * n / N), floor((K + 1) * n / N))      n = images in the list
//! ```
//!
//! so every image is in exactly one shard, shard sizes differ by at most one, and the slice
//! depends only on the names, never on the order a file system lists them in: every machine
//! that sees the same images cuts the same slices. Shards are 0-based because the indices
//! clusters hand out are (`sbatch --array=0-(N-1)`, Kubernetes' `JOB_COMPLETION_INDEX`).
//! Because each shard is a contiguous range of the name order and a predictions CSV is
//! sorted by name, the merged CSV is the shards' rows one after another.
//!
//! The list is identified by [`ImageListId`] (the SHA-256 of the sorted names, each followed
//! by a NUL byte), recorded by every run; shards of one evaluation share it.
//!
//! Entries that discovery skipped (FIFOs, dangling links, … named like images) are not in
//! the list; shard 0 reports them, so a merge lists each once.
//!
//! ```
//! use imagenetx::shard::Shard;
//!
//! let shard: Shard = "1/3".parse()?;
//! assert_eq!(shard.bounds(10), 3..6); // shards of 10 images: 0..3, 3..6, 6..10
//! assert_eq!(
//!     shard.predictions_path("out/m.predictions.csv".as_ref()),
//!     std::path::Path::new("out/m.shard-1-of-3.predictions.csv")
//! );
//! # Ok::<(), imagenetx::Error>(())
//! ```

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use imagenetx_dataset::{ImageEntry, ImageList};
use imagenetx_infer::{ImageListId, ShardRecord};

use crate::{Error, Result};

/// Shard `index` of `count` (0-based; see the [module docs](self) for the rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// The shard, `0..count`.
    pub index: usize,
    /// How many shards the list is cut into (at least 1).
    pub count: usize,
}

impl Shard {
    /// Shard `index` of `count`; an error unless `0 <= index < count`.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 {
            return Err(Error::invalid(
                "a shard count of 0: expected at least 1 shard",
            ));
        }
        if index >= count {
            return Err(Error::invalid(format!(
                "shard {index} of {count}: shards are numbered from 0 to {} (0-based)",
                count - 1
            )));
        }
        Ok(Shard { index, count })
    }

    /// The positions, in the list sorted by file name, of this shard's images, for a list of
    /// `images`: `floor(K * n / N)..floor((K + 1) * n / N)`.
    pub fn bounds(&self, images: usize) -> Range<usize> {
        let at = |k: usize| (k as u128 * images as u128 / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
    }

    /// The shard and its slice of a list of `images`, as the run record holds them.
    pub fn record(&self, images: usize) -> ShardRecord {
        let bounds = self.bounds(images);
        ShardRecord {
            index: self.index,
            count: self.count,
            start: bounds.start,
            end: bounds.end,
        }
    }

    /// The predictions CSV of this shard of an output `out`: `.shard-K-of-N` inserted before
    /// `.predictions.csv` (else before the last extension, else at the end), so the shards of
    /// one output never collide: `m.predictions.csv` → `m.shard-0-of-4.predictions.csv`,
    /// `preds.csv` → `preds.shard-0-of-4.csv`.
    pub fn predictions_path(&self, out: &Path) -> PathBuf {
        let tag = format!(".shard-{}-of-{}", self.index, self.count);
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = if let Some(stem) = name.strip_suffix(".predictions.csv") {
            format!("{stem}{tag}.predictions.csv")
        } else if let Some(dot) = name.rfind('.').filter(|&d| d > 0) {
            format!("{}{tag}{}", &name[..dot], &name[dot..])
        } else {
            format!("{name}{tag}")
        };
        out.with_file_name(name)
    }

    /// The shard a cluster's environment names (`var` reads a variable; `shards` is
    /// `--shards N`):
    ///
    /// - Slurm job arrays: `SLURM_ARRAY_TASK_ID`, with `SLURM_ARRAY_TASK_MIN` and
    ///   `SLURM_ARRAY_TASK_MAX` (K = ID − MIN, N = MAX − MIN + 1) or `SLURM_ARRAY_TASK_COUNT`
    ///   (N; K = ID − MIN, MIN being 0 when unset). An array with a step (`--array=0-9:2`)
    ///   is refused: its indices are not 0..N.
    /// - Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX` (K) with `--shards N`.
    ///
    /// `--shards`, when given, must agree with what Slurm says. Missing or inconsistent
    /// variables are an error naming them.
    pub fn from_env(shards: Option<usize>, var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let number = |name: &str| -> Result<Option<usize>> {
            match var(name) {
                None => Ok(None),
                Some(text) => text.trim().parse::<usize>().map(Some).map_err(|_| {
                    Error::invalid(format!(
                        "--shard auto: {name}={text:?} is not a non-negative integer"
                    ))
                }),
            }
        };
        let task = number("SLURM_ARRAY_TASK_ID")?;
        let kube = number("JOB_COMPLETION_INDEX")?;
        match (task, kube) {
            (Some(_), Some(_)) => Err(Error::invalid(
                "--shard auto: both SLURM_ARRAY_TASK_ID (a Slurm job array) and \
                 JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) are set; give --shard K/N",
            )),
            (Some(id), None) => {
                let min = number("SLURM_ARRAY_TASK_MIN")?;
                let max = number("SLURM_ARRAY_TASK_MAX")?;
                let count = number("SLURM_ARRAY_TASK_COUNT")?;
                let first = min.unwrap_or(0);
                let from_range = match (min, max) {
                    (Some(min), Some(max)) if max >= min => Some(max - min + 1),
                    (Some(min), Some(max)) => {
                        return Err(Error::invalid(format!(
                            "--shard auto: SLURM_ARRAY_TASK_MAX={max} is below SLURM_ARRAY_TASK_MIN={min}"
                        )));
                    }
                    _ => None,
                };
                let n = match (from_range, count) {
                    (Some(a), Some(b)) if a != b => {
                        return Err(Error::invalid(format!(
                            "--shard auto: SLURM_ARRAY_TASK_COUNT={b} but SLURM_ARRAY_TASK_MIN..MAX \
                             spans {a} indices: an array with a step or gaps; submit \
                             --array=0-{} instead",
                            b.saturating_sub(1)
                        )));
                    }
                    (Some(n), _) | (None, Some(n)) => n,
                    (None, None) => {
                        return Err(Error::invalid(
                            "--shard auto: SLURM_ARRAY_TASK_ID is set but neither \
                             SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MIN and \
                             SLURM_ARRAY_TASK_MAX are: cannot tell how many shards there are",
                        ));
                    }
                };
                if id < first {
                    return Err(Error::invalid(format!(
                        "--shard auto: SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={first}"
                    )));
                }
                if let Some(shards) = shards
                    && shards != n
                {
                    return Err(Error::invalid(format!(
                        "--shards {shards} disagrees with the Slurm array, which has {n} tasks \
                         (SLURM_ARRAY_TASK_COUNT / SLURM_ARRAY_TASK_MIN..MAX)"
                    )));
                }
                Shard::new(id - first, n).map_err(|e| {
                    Error::invalid(format!("--shard auto: from SLURM_ARRAY_TASK_ID={id}: {e}"))
                })
            }
            (None, Some(index)) => {
                let Some(n) = shards else {
                    return Err(Error::invalid(format!(
                        "--shard auto: JOB_COMPLETION_INDEX={index} (a Kubernetes Indexed Job) \
                         needs --shards N, the Job's completions"
                    )));
                };
                Shard::new(index, n).map_err(|e| {
                    Error::invalid(format!(
                        "--shard auto: from JOB_COMPLETION_INDEX={index} and --shards {n}: {e}"
                    ))
                })
            }
            (None, None) => Err(Error::invalid(
                "--shard auto: neither SLURM_ARRAY_TASK_ID (Slurm job array) nor \
                 JOB_COMPLETION_INDEX (Kubernetes Indexed Job) is set; give --shard K/N",
            )),
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// `K/N`, 0-based.
    fn from_str(s: &str) -> Result<Self> {
        let parsed = s
            .split_once('/')
            .and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
        let Some((index, count)) = parsed else {
            return Err(Error::invalid(format!(
                "shard {s:?}: expected K/N (shard K of N, 0-based, e.g. 0/4) or auto"
            )));
        };
        Shard::new(index, count)
    }
}

/// `--shard`: a shard given, or `auto` (from the cluster's environment, [`Shard::from_env`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardRequest {
    /// `K/N`.
    Fixed(Shard),
    /// `auto`.
    Auto,
}

impl FromStr for ShardRequest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if s.trim() == "auto" {
            Ok(ShardRequest::Auto)
        } else {
            s.parse().map(ShardRequest::Fixed)
        }
    }
}

impl ShardRequest {
    /// The shard: as given (`shards`, when given too, must agree with its N), or from the
    /// process environment.
    pub fn resolve(&self, shards: Option<usize>) -> Result<Shard> {
        match *self {
            ShardRequest::Fixed(shard) => match shards {
                Some(n) if n != shard.count => Err(Error::invalid(format!(
                    "--shards {n} disagrees with --shard {shard}"
                ))),
                _ => Ok(shard),
            },
            ShardRequest::Auto => Shard::from_env(shards, |name| std::env::var(name).ok()),
        }
    }
}

/// The positions of `images` sorted by file name (the order of the predictions CSV and of
/// the shard rule).
pub fn name_order(images: &[ImageEntry]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..images.len()).collect();
    order.sort_unstable_by(|&a, &b| images[a].file_name().cmp(images[b].file_name()));
    order
}

/// The identity of the list `images` (see [`ImageListId`]).
pub fn image_list_id(images: &[ImageEntry]) -> ImageListId {
    ImageListId::of(
        name_order(images)
            .into_iter()
            .map(|i| images[i].file_name()),
    )
}

/// One shard of an image list, ready to evaluate.
#[derive(Debug, Clone)]
pub struct ShardedList {
    /// The shard's images, in path order (as discovery lists them), and the skipped entries
    /// it reports (discovery's, for shard 0; none otherwise).
    pub list: ImageList,
    /// The whole list's identity.
    pub image_list: ImageListId,
    /// The shard and its bounds.
    pub shard: ShardRecord,
}

/// Takes shard `shard` of `list` (the [rule](self)).
pub fn take_shard(list: ImageList, shard: Shard) -> ShardedList {
    let ImageList {
        layout,
        images,
        skipped,
    } = list;
    let order = name_order(&images);
    let image_list = ImageListId::of(order.iter().map(|&i| images[i].file_name()));
    let record = shard.record(images.len());
    let mut keep = vec![false; images.len()];
    for &i in &order[record.start..record.end] {
        keep[i] = true;
    }
    drop(order);
    let images = images
        .into_iter()
        .zip(keep)
        .filter_map(|(image, keep)| keep.then_some(image))
        .collect();
    ShardedList {
        list: ImageList {
            layout,
            images,
            skipped: if shard.index == 0 {
                skipped
            } else {
                Vec::new()
            },
        },
        image_list,
        shard: record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn entries(names: &[String]) -> Vec<ImageEntry> {
        names
            .iter()
            .map(|n| ImageEntry::new(PathBuf::from("/images").join(n), false))
            .collect()
    }

    proptest! {
        /// Every image is in exactly one shard, the shards are contiguous and in order, and
        /// their sizes differ by at most one.
        #[test]
        fn shards_cover_the_list_exactly_once(n in 0usize..5000, count in 1usize..300) {
            let mut next = 0;
            let mut sizes = Vec::new();
            for k in 0..count {
                let b = Shard::new(k, count).unwrap().bounds(n);
                prop_assert_eq!(b.start, next);
                prop_assert!(b.end >= b.start);
                sizes.push(b.len());
                next = b.end;
            }
            prop_assert_eq!(next, n);
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            prop_assert!(max - min <= 1);
        }

        /// Huge lists do not overflow the rule.
        #[test]
        fn bounds_do_not_overflow(n in (usize::MAX / 2)..usize::MAX, count in 1usize..1000) {
            let last = Shard::new(count - 1, count).unwrap().bounds(n);
            prop_assert_eq!(last.end, n);
        }

        /// A shard's images depend on the names, not on the order discovery listed them in,
        /// and the shards of a list together are the list.
        #[test]
        fn shards_do_not_depend_on_discovery_order(
            names in proptest::collection::btree_set("[a-z]{1,6}\\.JPEG", 0..60),
            count in 1usize..8,
            seed in any::<u64>(),
        ) {
            let sorted: Vec<String> = names.into_iter().collect();
            let mut shuffled = sorted.clone();
            // A deterministic shuffle from the seed.
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let list = |names: &[String]| ImageList {
                layout: imagenetx_dataset::images::FolderLayout::Flat,
                images: entries(names),
                skipped: Vec::new(),
            };
            let mut all = Vec::new();
            for k in 0..count {
                let shard = Shard::new(k, count).unwrap();
                let a = take_shard(list(&sorted), shard);
                let b = take_shard(list(&shuffled), shard);
                let names_of = |s: &ShardedList| {
                    let mut v: Vec<String> =
                        s.list.images.iter().map(|i| i.file_name().to_string()).collect();
                    v.sort();
                    v
                };
                prop_assert_eq!(names_of(&a), names_of(&b));
                prop_assert_eq!(&a.image_list, &b.image_list);
                prop_assert_eq!(a.shard, b.shard);
                all.extend(names_of(&a));
            }
            prop_assert_eq!(all, sorted);
        }
    }

    #[test]
    fn parses_k_of_n() {
        assert_eq!(
            "2/5".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 5 }
        );
        for bad in ["5/5", "1/0", "1", "a/b", "-1/3", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!("auto".parse::<ShardRequest>().unwrap(), ShardRequest::Auto);
        let err = ShardRequest::Fixed(Shard::new(0, 3).unwrap())
            .resolve(Some(4))
            .unwrap_err();
        assert!(err.to_string().contains("--shards 4"), "{err}");
    }

    #[test]
    fn slurm_and_kubernetes_variables() {
        let shard = |vars: &[(&str, &str)], shards| Shard::from_env(shards, env(vars));
        let ok = |k, n| Ok(Shard { index: k, count: n });
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "2"),
        ];
        assert_eq!(shard(&slurm, None).map_err(|e| e.to_string()), ok(2, 3));
        assert_eq!(
            shard(&slurm[..2], None).map_err(|e| e.to_string()),
            ok(2, 3)
        );
        // 1-based arrays: --array=1-4.
        let one_based = [
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "4"),
        ];
        assert_eq!(shard(&one_based, None).map_err(|e| e.to_string()), ok(0, 4));
        assert_eq!(
            shard(&[("JOB_COMPLETION_INDEX", "3")], Some(4)).map_err(|e| e.to_string()),
            ok(3, 4)
        );
        /// Variables, `--shards`, words the error must hold.
        type Refusal<'a> = (&'a [(&'a str, &'a str)], Option<usize>, &'a [&'a str]);
        let refused: &[Refusal] = &[
            (&[], None, &["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"]),
            (
                &[("SLURM_ARRAY_TASK_ID", "0")],
                None,
                &["SLURM_ARRAY_TASK_COUNT"],
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "x"),
                    ("SLURM_ARRAY_TASK_COUNT", "2"),
                ],
                None,
                &["SLURM_ARRAY_TASK_ID=\"x\""],
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "3"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                ],
                None,
                &["SLURM_ARRAY_TASK_ID=3"],
            ),
            (&slurm, Some(4), &["--shards 4"]),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "2"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                    ("SLURM_ARRAY_TASK_MIN", "0"),
                    ("SLURM_ARRAY_TASK_MAX", "4"),
                ],
                None,
                &["SLURM_ARRAY_TASK_COUNT=3", "step"],
            ),
            (&[("JOB_COMPLETION_INDEX", "0")], None, &["--shards N"]),
            (
                &[("JOB_COMPLETION_INDEX", "4")],
                Some(4),
                &["JOB_COMPLETION_INDEX=4"],
            ),
            (
                &[("JOB_COMPLETION_INDEX", "0"), ("SLURM_ARRAY_TASK_ID", "0")],
                Some(1),
                &["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"],
            ),
        ];
        for (vars, shards, words) in refused {
            let err = shard(vars, *shards).expect_err("refused").to_string();
            for word in *words {
                assert!(err.contains(word), "{vars:?}: {err:?} lacks {word:?}");
            }
        }
    }

    #[test]
    fn shard_output_names() {
        let s = Shard::new(0, 4).unwrap();
        assert_eq!(
            s.predictions_path(Path::new("m.predictions.csv")),
            Path::new("m.shard-0-of-4.predictions.csv")
        );
        assert_eq!(
            s.predictions_path(Path::new("d/preds.csv")),
            Path::new("d/preds.shard-0-of-4.csv")
        );
        assert_eq!(
            s.predictions_path(Path::new("preds")),
            Path::new("preds.shard-0-of-4")
        );
    }
}
