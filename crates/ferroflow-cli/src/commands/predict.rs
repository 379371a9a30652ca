//! `ferroflow predict MODEL --input x.npy [--input x2.npy ...] --output y.npy`: Keras's
//! `model.predict(x, batch_size=32)` on `.npy` arrays.
//!
//! One `--input` per model input, in the model's input order (a functional model's `inputs`
//! list; the names are printed in the error when the count is wrong). Inputs are cast to the
//! model's float input dtype as Keras converts numpy arrays (integer inputs, e.g. token ids for
//! an `Embedding`, stay integers). A model with several outputs writes either one `.npy` per
//! output (`--output` repeated, in the model's output order) or a single `.npz` whose arrays are
//! named by the output layers (Keras's `output_names`).

use std::path::PathBuf;

use ferroflow_core::Tensor;

use super::common::{check_inputs, load_model, msg, read_npy};

/// `ferroflow predict`'s arguments.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  ferroflow predict model.keras --input x.npy --output y.npy --batch-size 64\n  ferroflow predict two_inputs.keras --input a.npy --input b.npy --output y.npy\n  ferroflow predict two_outputs.keras --input x.npy --output heads.npz"
)]
pub struct Args {
    /// The saved model (`.keras`, or a legacy `.h5` written by `model.save`).
    pub model: PathBuf,
    /// A `.npy` array for one model input (batch first); repeat it once per input, in the
    /// model's input order.
    #[arg(short, long = "input", required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where to write the predictions: a `.npy` per model output (repeat for several outputs),
    /// or one `.npz` holding every output under its output layer's name.
    #[arg(short, long = "output", required = true)]
    pub outputs: Vec<PathBuf>,
    /// Samples per batch (Keras's default 32).
    #[arg(short, long, default_value_t = 32)]
    pub batch_size: usize,
    /// Show Keras's progress bar (on stdout).
    #[arg(short, long)]
    pub verbose: bool,
}

/// Loads the model and the arrays, predicts and writes the outputs.
pub fn run(args: Args) -> Result<(), String> {
    if args.batch_size == 0 {
        return Err("--batch-size must be at least 1".into());
    }
    let mut model = load_model(&args.model)?;
    let arrays: Vec<Tensor> = args
        .inputs
        .iter()
        .map(|p| read_npy(p))
        .collect::<Result<_, _>>()?;
    let files: Vec<&std::path::Path> = args.inputs.iter().map(PathBuf::as_path).collect();
    check_inputs(&model, &arrays, &files)?;
    let names = model.output_names();
    let n_out = model.num_outputs();
    let is_npz = args.outputs.len() == 1 && args.outputs[0].extension().is_some_and(|e| e == "npz");
    if !is_npz && args.outputs.len() != n_out {
        return Err(format!(
            "model {:?} has {n_out} output{} ({}) but {} --output file{} given; give one .npy per output, or a single .npz",
            model.name(),
            if n_out == 1 { "" } else { "s" },
            names.join(", "),
            args.outputs.len(),
            if args.outputs.len() == 1 { " was" } else { "s were" },
        ));
    }
    for p in &args.outputs {
        let ok = p
            .extension()
            .is_some_and(|e| e == "npy" || (e == "npz" && is_npz));
        if !ok {
            return Err(format!(
                "{}: the output must be a .npy file (or, alone, a .npz)",
                p.display()
            ));
        }
    }
    let preds = model
        .predict(arrays)
        .batch_size(args.batch_size)
        .verbose(u8::from(args.verbose))
        .run_all()
        .map_err(msg)?;
    if is_npz {
        ferroflow_data::io::save_npz(&args.outputs[0], names.iter().zip(preds.iter()))
            .map_err(msg)?;
        println!(
            "wrote {} ({} arrays: {})",
            args.outputs[0].display(),
            preds.len(),
            names.join(", ")
        );
    } else {
        for (p, t) in args.outputs.iter().zip(&preds) {
            ferroflow_data::io::write_npy(p, t).map_err(msg)?;
            println!("wrote {} {:?}", p.display(), t.shape());
        }
    }
    Ok(())
}
