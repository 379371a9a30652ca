//! `ferroflow convert IN OUT`: between Keras's and ferroflow's model and weight files, the
//! format chosen by each file's extension:
//!
//! | extension | holds | read | write |
//! | --- | --- | --- | --- |
//! | `.keras` | architecture, compile config, weights, optimizer state (Keras 3's zip) | yes | yes |
//! | `.h5` / `.hdf5` | a legacy Keras full model (`model_config` attribute), or legacy weights | yes | yes (a full model, as Keras 3's `model.save("m.h5")`) |
//! | `.weights.h5` | weights and optimizer state (Keras 3's `save_weights`) | yes | yes |
//! | `.safetensors` | weights by variable name | yes | yes |
//! | `.npz` | weights by variable name (numpy's zip of `.npy`) | yes | yes |
//!
//! A weights-only input carries no architecture: it needs `--model ARCH`, a `.keras` or legacy
//! `.h5` model or a Keras `config.json` (the object a `.keras` zip holds), into which the weights
//! are loaded (matched by structure, as Keras does). Converting a file to the same format
//! rewrites it byte for byte the same (`.weights.h5`, `.safetensors`, `.npz`).

use std::path::{Path, PathBuf};

use ferroflow_keras::Model;

use super::common::{load_model, msg};

/// `ferroflow convert`'s arguments.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  ferroflow convert model.keras model.weights.h5\n  ferroflow convert legacy.h5 model.keras\n  ferroflow convert model.weights.h5 model.safetensors --model model.keras\n  ferroflow convert weights.npz model.keras --model config.json"
)]
pub struct Args {
    /// The file to read (`.keras`, `.h5`, `.weights.h5`, `.safetensors`, `.npz`).
    pub input: PathBuf,
    /// The file to write (`.keras`, `.weights.h5`, `.safetensors`, `.npz`), atomically.
    pub output: PathBuf,
    /// The architecture for a weights-only input: a `.keras` / legacy `.h5` model or a Keras
    /// `config.json`.
    #[arg(short, long)]
    pub model: Option<PathBuf>,
}

/// A file format, by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Keras 3's `.keras` zip.
    Keras,
    /// A legacy `.h5` (full model or weights).
    LegacyH5,
    /// Keras 3's `.weights.h5`.
    WeightsH5,
    /// `.safetensors`.
    Safetensors,
    /// `.npz`.
    Npz,
}

/// The format of `path` by its extension.
pub fn format_of(path: &Path) -> Result<Format, String> {
    let p = path.to_string_lossy().to_lowercase();
    Ok(if p.ends_with(".keras") {
        Format::Keras
    } else if p.ends_with(".weights.h5") {
        Format::WeightsH5
    } else if p.ends_with(".h5") || p.ends_with(".hdf5") {
        Format::LegacyH5
    } else if p.ends_with(".safetensors") {
        Format::Safetensors
    } else if p.ends_with(".npz") {
        Format::Npz
    } else {
        return Err(format!(
            "{}: unknown extension; use .keras, .h5, .weights.h5, .safetensors or .npz",
            path.display()
        ));
    })
}

/// Whether a legacy `.h5` holds a whole model (a `model_config` attribute).
fn is_full_h5(path: &Path) -> Result<bool, String> {
    let f = ferroflow_io::hdf5::File::open(path).map_err(msg)?;
    Ok(f.root().map_err(msg)?.attr("model_config").is_ok())
}

/// The architecture given by `--model`: a saved model, or a Keras `config.json`.
pub fn architecture(path: &Path) -> Result<Model, String> {
    if path.extension().is_some_and(|e| e == "json") {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut model = ferroflow_io::keras_config::model_from_config(&v)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(cc) = v.get("compile_config") {
            ferroflow_io::keras_config::compile_from(&mut model, cc)
                .map_err(|e| format!("{}: compile_config: {e}", path.display()))?;
            ferroflow_io::keras_format::build_optimizer(&mut model).map_err(msg)?;
        }
        Ok(model)
    } else {
        load_model(path)
    }
}

/// Reads `input` (with `--model` for weights-only files) and writes `output`.
pub fn run(args: Args) -> Result<(), String> {
    let fin = format_of(&args.input)?;
    let fout = format_of(&args.output)?;
    if !args.input.exists() {
        return Err(format!("{}: no such file", args.input.display()));
    }
    let whole = match fin {
        Format::Keras => true,
        Format::LegacyH5 => is_full_h5(&args.input)?,
        _ => false,
    };
    let model = if whole {
        if args.model.is_some() {
            eprintln!(
                "note: {} holds a whole model; --model is not used",
                args.input.display()
            );
        }
        load_model(&args.input)?
    } else {
        let Some(arch) = &args.model else {
            return Err(format!(
                "{} holds weights only (no architecture); give the model with --model ARCH.keras|ARCH.h5|config.json",
                args.input.display()
            ));
        };
        let mut model = architecture(arch)?;
        ferroflow_io::load_weights_any(&mut model, &args.input).map_err(msg)?;
        model
    };
    match fout {
        Format::Keras | Format::LegacyH5 => {
            ferroflow_io::save_model(&model, &args.output).map_err(msg)?
        }
        _ => ferroflow_io::save_weights_any(&model, &args.output).map_err(msg)?,
    }
    println!(
        "wrote {} ({} weights, {} parameters)",
        args.output.display(),
        model.weights().len(),
        model.count_params()
    );
    Ok(())
}
