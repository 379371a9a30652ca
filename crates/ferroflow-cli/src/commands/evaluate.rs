//! `ferroflow evaluate MODEL --x x.npy --y y.npy`: Keras's `model.evaluate(x, y)` of a saved,
//! compiled model: the loss and the compiled metrics under Keras's names, one `name: value`
//! per line (`loss` first). The model must have been saved with its `compile_config` (Keras
//! saves it when the model was compiled); without one there is no loss to compute.

use std::path::PathBuf;

use ferroflow_core::Tensor;

use super::common::{check_inputs, load_model, msg, read_npy};

/// `ferroflow evaluate`'s arguments.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  ferroflow evaluate model.keras --x x_test.npy --y y_test.npy --batch-size 128\n  ferroflow evaluate two_inputs.keras --x a.npy --x b.npy --y y.npy"
)]
pub struct Args {
    /// The saved, compiled model (`.keras`, or a legacy `.h5` with a `training_config`).
    pub model: PathBuf,
    /// The inputs as `.npy` (repeat once per model input, in the model's input order).
    #[arg(short = 'x', long = "x", required = true)]
    pub x: Vec<PathBuf>,
    /// The targets as `.npy` (repeat once per model output, in the model's output order).
    #[arg(short = 'y', long = "y", required = true)]
    pub y: Vec<PathBuf>,
    /// Samples per batch (Keras's default 32).
    #[arg(short, long, default_value_t = 32)]
    pub batch_size: usize,
    /// Show Keras's progress bar.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Loads, evaluates, prints `loss: ...` then each metric.
pub fn run(args: Args) -> Result<(), String> {
    if args.batch_size == 0 {
        return Err("--batch-size must be at least 1".into());
    }
    let mut model = load_model(&args.model)?;
    if model.compiled().is_none() {
        return Err(format!(
            "{}: the model has no compile config (it was saved without being compiled), so there is no loss to evaluate; compile it and save it again",
            args.model.display()
        ));
    }
    let xs: Vec<Tensor> = args
        .x
        .iter()
        .map(|p| read_npy(p))
        .collect::<Result<_, _>>()?;
    let files: Vec<&std::path::Path> = args.x.iter().map(PathBuf::as_path).collect();
    check_inputs(&model, &xs, &files)?;
    let n_out = model.num_outputs();
    if args.y.len() != n_out {
        return Err(format!(
            "model {:?} has {n_out} output{} ({}) but {} --y file{} given",
            model.name(),
            if n_out == 1 { "" } else { "s" },
            model.output_names().join(", "),
            args.y.len(),
            if args.y.len() == 1 { " was" } else { "s were" },
        ));
    }
    let ys: Vec<Tensor> = args
        .y
        .iter()
        .map(|p| read_npy(p))
        .collect::<Result<_, _>>()?;
    let logs = model
        .evaluate(xs, ys)
        .batch_size(args.batch_size)
        .verbose(u8::from(args.verbose))
        .run_dict()
        .map_err(msg)?;
    if let Some(l) = logs.get("loss") {
        println!("loss: {l}");
    }
    for (k, v) in logs.iter().filter(|(k, _)| k.as_str() != "loss") {
        println!("{k}: {v}");
    }
    Ok(())
}
