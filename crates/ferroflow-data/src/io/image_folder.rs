//! `keras.utils.image_dataset_from_directory`: a folder with one sub-folder of images per class.
//!
//! Matches Keras 3:
//! - class names are the sub-folder names, sorted (or `class_names`, which must name the same
//!   folders, in the order that defines the labels); files are found recursively, sorted, and
//!   kept by extension (`.png`, `.jpg`, `.jpeg`, any case; other files are ignored);
//! - images are decoded from their content (PNG or JPEG, with the `image` crate), converted to
//!   `color_mode` (`"rgb"` 3 channels, `"grayscale"` 1, `"rgba"` 4; 16-bit images are reduced to
//!   8 bits) and resized to `image_size` = (height, width) like `tf.image.resize` without
//!   antialiasing (`"bilinear"` with half-pixel centers, or `"nearest"`), giving float32 values
//!   in 0..=255, batched NHWC as `(batch, height, width, channels)`;
//! - labels: `"int"` → int32 `(batch,)`, `"categorical"` → float32 one-hot
//!   `(batch, num_classes)`, `"binary"` → float32 `(batch, 1)` (exactly 2 classes), `"none"` →
//!   images only; defaults `batch_size` 32, `image_size` (256, 256), `shuffle` true;
//! - `validation_split` with `subset("training")`/`"validation"` (or [`ImageDatasetBuilder::build_both`]):
//!   the file list is shuffled once with `seed` (required when shuffling, so that both subsets
//!   agree), and the last `int(validation_split * n)` files are the validation subset;
//! - with `shuffle`, each pass also shuffles the subset's order through a buffer of
//!   `8 * batch_size` elements, differently on every pass, deterministically for a seed.
//!
//! Differences: the shuffles are ferroflow's own (SplitMix64), so the order for a seed differs
//! from Keras's; `.bmp` and `.gif` (allowed by Keras) are refused with an error naming the file
//! (only PNG and JPEG decoders are built in); `crop_to_aspect_ratio`/`pad_to_aspect_ratio` are
//! not implemented. A file whose content is not a decodable PNG/JPEG is an error naming it, when
//! the pass reaches it.
//!
//! ```no_run
//! use ferroflow_data::io::image_dataset_from_directory;
//! let (train, val) = image_dataset_from_directory("photos/")
//!     .image_size(180, 180)
//!     .batch_size(Some(32))
//!     .validation_split(0.2)
//!     .seed(123)
//!     .build_both()?;
//! println!("classes {:?}: {} training batches", train.class_names, train.dataset.cardinality().unwrap());
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ferroflow_core::{Error, Result, Tensor};

use crate::dataset::Dataset;
use crate::element::Element;

use super::{buffer_shuffle, file_error, io_error, random_seed, SplitMix};

/// `(file, label)` pairs.
type Labeled = Vec<(PathBuf, usize)>;

const OP: &str = "image_dataset_from_directory";

/// Starts `image_dataset_from_directory(directory)` with Keras's defaults.
pub fn image_dataset_from_directory(directory: impl AsRef<Path>) -> ImageDatasetBuilder {
    ImageDatasetBuilder {
        directory: directory.as_ref().to_path_buf(),
        label_mode: "int".into(),
        class_names: None,
        color_mode: "rgb".into(),
        batch_size: Some(32),
        image_size: (256, 256),
        shuffle: true,
        seed: None,
        validation_split: None,
        subset: None,
        interpolation: "bilinear".into(),
    }
}

/// A dataset built from an image folder, with what Keras attaches to it.
#[derive(Clone)]
pub struct ImageFolderDataset {
    /// The batches: `(images, labels)`, or `images` alone with `label_mode("none")`.
    pub dataset: Dataset,
    /// The class names, index = label.
    pub class_names: Vec<String>,
    /// The files of this subset, in their (shuffled) listing order.
    pub file_paths: Vec<PathBuf>,
}

/// Options of [`image_dataset_from_directory`], named and defaulted as in Keras.
#[derive(Clone, Debug)]
pub struct ImageDatasetBuilder {
    directory: PathBuf,
    label_mode: String,
    class_names: Option<Vec<String>>,
    color_mode: String,
    batch_size: Option<usize>,
    image_size: (usize, usize),
    shuffle: bool,
    seed: Option<u64>,
    validation_split: Option<f64>,
    subset: Option<String>,
    interpolation: String,
}

impl ImageDatasetBuilder {
    /// `label_mode`: `"int"` (default), `"categorical"`, `"binary"` or `"none"`.
    pub fn label_mode(mut self, m: &str) -> Self {
        self.label_mode = m.to_string();
        self
    }
    /// `class_names`: the sub-folders to use, in label order (must match the folders).
    pub fn class_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.class_names = Some(names.into_iter().map(Into::into).collect());
        self
    }
    /// `color_mode`: `"rgb"` (default), `"grayscale"` or `"rgba"`.
    pub fn color_mode(mut self, m: &str) -> Self {
        self.color_mode = m.to_string();
        self
    }
    /// `batch_size` (default `Some(32)`; `None` yields single images).
    pub fn batch_size(mut self, b: Option<usize>) -> Self {
        self.batch_size = b;
        self
    }
    /// `image_size = (height, width)` (default 256 × 256).
    pub fn image_size(mut self, height: usize, width: usize) -> Self {
        self.image_size = (height, width);
        self
    }
    /// `shuffle` (default true).
    pub fn shuffle(mut self, yes: bool) -> Self {
        self.shuffle = yes;
        self
    }
    /// `seed` for the shuffles.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
    /// `validation_split`: the fraction (0 < f < 1) held out for validation.
    pub fn validation_split(mut self, f: f64) -> Self {
        self.validation_split = Some(f);
        self
    }
    /// `subset`: `"training"` or `"validation"` (with `validation_split`); for `"both"` use
    /// [`ImageDatasetBuilder::build_both`].
    pub fn subset(mut self, s: &str) -> Self {
        self.subset = Some(s.to_string());
        self
    }
    /// `interpolation`: `"bilinear"` (default) or `"nearest"`.
    pub fn interpolation(mut self, m: &str) -> Self {
        self.interpolation = m.to_string();
        self
    }

    /// The dataset (the whole folder, or the `subset` chosen).
    pub fn build(self) -> Result<ImageFolderDataset> {
        let subset = self.subset.clone();
        match (self.validation_split, subset.as_deref()) {
            (None, None) => {}
            (Some(_), Some("training" | "validation")) => {}
            (Some(_), Some("both")) => {
                return Err(Error::invalid(
                    OP,
                    "subset \"both\" returns two datasets: use build_both()",
                ))
            }
            (Some(_), None) => return Err(Error::invalid(
                OP,
                "validation_split needs subset \"training\" or \"validation\" (or build_both())",
            )),
            (None, Some(_)) => return Err(Error::invalid(OP, "subset needs a validation_split")),
            (Some(_), Some(s)) => {
                return Err(Error::invalid(
                    OP,
                    format!("unknown subset '{s}' (valid: \"training\", \"validation\", \"both\")"),
                ))
            }
        }
        let (classes, files) = self.index()?;
        let files = match (self.validation_split, subset.as_deref()) {
            (Some(f), Some(s)) => split(files, f, s == "validation"),
            _ => files,
        };
        self.dataset(classes, files, 0)
    }

    /// `subset="both"`: the training and validation datasets of `validation_split`.
    pub fn build_both(self) -> Result<(ImageFolderDataset, ImageFolderDataset)> {
        let f = self
            .validation_split
            .ok_or_else(|| Error::invalid(OP, "build_both needs a validation_split"))?;
        let (classes, files) = self.index()?;
        let train = split(files.clone(), f, false);
        let val = split(files, f, true);
        Ok((
            self.dataset(classes.clone(), train, 0)?,
            self.dataset(classes, val, 1)?,
        ))
    }

    /// Validates the options and lists `(file, label)` pairs, shuffled once when `shuffle`.
    fn index(&self) -> Result<(Vec<String>, Labeled)> {
        if !matches!(
            self.label_mode.as_str(),
            "int" | "categorical" | "binary" | "none"
        ) {
            return Err(Error::invalid(
                OP,
                format!(
                    "unknown label_mode '{}' (valid: \"int\", \"categorical\", \"binary\", \"none\")",
                    self.label_mode
                ),
            ));
        }
        channels(&self.color_mode)?;
        if !matches!(self.interpolation.as_str(), "bilinear" | "nearest") {
            return Err(Error::invalid(
                OP,
                format!(
                    "unknown interpolation '{}' (valid: \"bilinear\", \"nearest\")",
                    self.interpolation
                ),
            ));
        }
        if self.image_size.0 == 0 || self.image_size.1 == 0 || self.batch_size == Some(0) {
            return Err(Error::invalid(
                OP,
                "image_size and batch_size must be positive",
            ));
        }
        if let Some(f) = self.validation_split {
            if !(f > 0.0 && f < 1.0) {
                return Err(Error::invalid(
                    OP,
                    format!("validation_split must be between 0 and 1, got {f}"),
                ));
            }
            if self.shuffle && self.seed.is_none() {
                return Err(Error::invalid(
                    OP,
                    "if using validation_split and shuffling the data, you must provide a seed, \
                     so that the training and validation subsets do not overlap",
                ));
            }
        }
        let dir = &self.directory;
        let mut subdirs: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| io_error(OP, dir, e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        subdirs.sort();
        let classes = match &self.class_names {
            None => subdirs,
            Some(names) => {
                let mut a = names.clone();
                a.sort();
                if a != subdirs {
                    return Err(Error::invalid(
                        OP,
                        format!(
                            "class_names {names:?} must match the sub-folders of {}: {subdirs:?}",
                            dir.display()
                        ),
                    ));
                }
                names.clone()
            }
        };
        if self.label_mode == "binary" && classes.len() != 2 {
            return Err(Error::invalid(
                OP,
                format!(
                    "label_mode \"binary\" needs exactly 2 classes, found {}: {classes:?}",
                    classes.len()
                ),
            ));
        }
        let mut files = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let mut found = Vec::new();
            walk(&dir.join(class), &mut found)?;
            found.sort();
            files.extend(found.into_iter().map(|p| (p, label)));
        }
        if files.is_empty() {
            return Err(Error::invalid(
                OP,
                format!(
                    "no images found in directory {} (allowed formats: .png, .jpg, .jpeg)",
                    dir.display()
                ),
            ));
        }
        if self.shuffle {
            let seed = self.seed.unwrap_or_else(random_seed);
            SplitMix(seed).shuffle(&mut files);
        }
        Ok((classes, files))
    }

    fn dataset(
        &self,
        classes: Vec<String>,
        files: Vec<(PathBuf, usize)>,
        stream: u64,
    ) -> Result<ImageFolderDataset> {
        let cfg = Arc::new(Decode {
            height: self.image_size.0,
            width: self.image_size.1,
            channels: channels(&self.color_mode)?,
            color_mode: self.color_mode.clone(),
            nearest: self.interpolation == "nearest",
            label_mode: self.label_mode.clone(),
            num_classes: classes.len(),
        });
        let n = files.len();
        let batch = self.batch_size;
        let buffer = batch.map_or(1024, |b| 8 * b);
        let shuffle = self.shuffle;
        let seed =
            self.seed.unwrap_or_else(random_seed) ^ stream.wrapping_mul(0x5851_F42D_4C95_7F2D);
        let passes = Arc::new(AtomicU64::new(0));
        let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
        let files = Arc::new(files);
        let dataset = Dataset::from_generator(
            move || {
                let files = files.clone();
                let cfg = cfg.clone();
                let pass = passes.fetch_add(1, Ordering::Relaxed);
                let mut order: Vec<usize> = (0..n).collect();
                if shuffle {
                    let mut rng = SplitMix(seed ^ SplitMix(pass).next_u64());
                    order = buffer_shuffle(&order, buffer, &mut rng);
                }
                let step = batch.unwrap_or(1);
                let mut pos = 0;
                Box::new(std::iter::from_fn(move || {
                    if pos >= n {
                        return None;
                    }
                    let idx = &order[pos..(pos + step).min(n)];
                    pos += step;
                    Some(cfg.element(&files, idx, batch.is_some()))
                }))
            },
            Some(match batch {
                Some(b) => n.div_ceil(b),
                None => n,
            }),
        );
        Ok(ImageFolderDataset {
            dataset,
            class_names: classes,
            file_paths: paths,
        })
    }
}

/// Keras's `get_training_or_validation_split`: the last `int(f * n)` files are validation.
fn split(files: Vec<(PathBuf, usize)>, f: f64, validation: bool) -> Vec<(PathBuf, usize)> {
    let n_val = (f * files.len() as f64) as usize;
    let cut = files.len() - n_val;
    if validation {
        files[cut..].to_vec()
    } else {
        files[..cut].to_vec()
    }
}

fn channels(color_mode: &str) -> Result<usize> {
    match color_mode {
        "rgb" => Ok(3),
        "grayscale" => Ok(1),
        "rgba" => Ok(4),
        other => Err(Error::invalid(
            OP,
            format!("unknown color_mode '{other}' (valid: \"grayscale\", \"rgb\", \"rgba\")"),
        )),
    }
}

/// Collects the image files under `dir`, recursively; `.bmp`/`.gif` are an error.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(OP, dir, e))? {
        let entry = entry.map_err(|e| io_error(OP, dir, e))?;
        let path = entry.path();
        let ty = entry.file_type().map_err(|e| io_error(OP, &path, e))?;
        if ty.is_dir() {
            walk(&path, out)?;
            continue;
        }
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "png" | "jpg" | "jpeg" => out.push(path),
            "bmp" | "gif" => {
                return Err(file_error(
                    OP,
                    &path,
                    "file",
                    format!(".{ext} images are not supported (only PNG and JPEG are decoded)"),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// How to turn files into an element.
struct Decode {
    height: usize,
    width: usize,
    channels: usize,
    color_mode: String,
    nearest: bool,
    label_mode: String,
    num_classes: usize,
}

impl Decode {
    fn element(&self, files: &[(PathBuf, usize)], idx: &[usize], batched: bool) -> Result<Element> {
        let (h, w, c) = (self.height, self.width, self.channels);
        let mut pixels = Vec::with_capacity(idx.len() * h * w * c);
        for &i in idx {
            pixels.extend(self.load(&files[i].0)?);
        }
        let b = idx.len();
        let labels: Vec<usize> = idx.iter().map(|&i| files[i].1).collect();
        let images = if batched {
            Tensor::from_vec(pixels, &[b, h, w, c])?
        } else {
            Tensor::from_vec(pixels, &[h, w, c])?
        };
        let lead: Vec<usize> = if batched { vec![b] } else { vec![] };
        let label = match self.label_mode.as_str() {
            "none" => return Ok(Element::Tensor(images)),
            "int" => Tensor::from_vec(labels.iter().map(|&l| l as i32).collect(), &lead)?,
            "binary" => {
                let mut s = lead.clone();
                s.push(1);
                Tensor::from_vec(labels.iter().map(|&l| l as f32).collect(), &s)?
            }
            _ => {
                let k = self.num_classes;
                let mut v = vec![0f32; labels.len() * k];
                for (r, &l) in labels.iter().enumerate() {
                    v[r * k + l] = 1.0;
                }
                let mut s = lead.clone();
                s.push(k);
                Tensor::from_vec(v, &s)?
            }
        };
        Ok(Element::Tuple(vec![
            Element::Tensor(images),
            Element::Tensor(label),
        ]))
    }

    /// Decodes, converts and resizes one file into `h * w * c` float32 values.
    fn load(&self, path: &Path) -> Result<Vec<f32>> {
        let bytes = std::fs::read(path).map_err(|e| io_error(OP, path, e))?;
        let img = image::load_from_memory(&bytes).map_err(|e| {
            file_error(
                OP,
                path,
                "file",
                format!("not a decodable PNG or JPEG image: {e}"),
            )
        })?;
        let (iw, ih) = (img.width() as usize, img.height() as usize);
        let raw: Vec<u8> = match self.color_mode.as_str() {
            "grayscale" => img.to_luma8().into_raw(),
            "rgba" => img.to_rgba8().into_raw(),
            _ => img.to_rgb8().into_raw(),
        };
        let src: Vec<f32> = raw.into_iter().map(f32::from).collect();
        Ok(resize(
            &src,
            ih,
            iw,
            self.channels,
            self.height,
            self.width,
            self.nearest,
        ))
    }
}

/// `tf.image.resize` (half-pixel centers, no antialiasing) of an HWC image.
pub(crate) fn resize(
    src: &[f32],
    ih: usize,
    iw: usize,
    c: usize,
    oh: usize,
    ow: usize,
    nearest: bool,
) -> Vec<f32> {
    if ih == oh && iw == ow {
        return src.to_vec();
    }
    let mut out = vec![0f32; oh * ow * c];
    let (sy, sx) = (ih as f32 / oh as f32, iw as f32 / ow as f32);
    if nearest {
        let near =
            |o: usize, s: f32, n: usize| (((o as f32 + 0.5) * s).floor() as usize).min(n - 1);
        for y in 0..oh {
            let yy = near(y, sy, ih);
            for x in 0..ow {
                let xx = near(x, sx, iw);
                let (d, s) = ((y * ow + x) * c, (yy * iw + xx) * c);
                out[d..d + c].copy_from_slice(&src[s..s + c]);
            }
        }
        return out;
    }
    // (lower, upper, lerp) along one axis, as TF's compute_interpolation_weights.
    let weights = |o: usize, s: f32, n: usize| {
        let v = (o as f32 + 0.5) * s - 0.5;
        let f = v.floor();
        let lo = (f.max(0.0)) as usize;
        let hi = (v.ceil().max(0.0) as usize).min(n - 1);
        (lo.min(n - 1), hi, v - f)
    };
    let xs: Vec<_> = (0..ow).map(|x| weights(x, sx, iw)).collect();
    for y in 0..oh {
        let (y0, y1, ly) = weights(y, sy, ih);
        for (x, &(x0, x1, lx)) in xs.iter().enumerate() {
            for k in 0..c {
                let p = |yy: usize, xx: usize| src[(yy * iw + xx) * c + k];
                let top = p(y0, x0) + (p(y0, x1) - p(y0, x0)) * lx;
                let bottom = p(y1, x0) + (p(y1, x1) - p(y1, x0)) * lx;
                out[(y * ow + x) * c + k] = top + (bottom - top) * ly;
            }
        }
    }
    out
}
