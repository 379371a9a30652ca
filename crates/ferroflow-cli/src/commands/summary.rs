//! `ferroflow summary <model.keras|model.h5>`: prints Keras's `model.summary()` table of a saved
//! model (a `.keras` zip or a legacy full-model `.h5`), optimizer parameters included as Keras
//! counts them.

use std::path::PathBuf;

/// `ferroflow summary`'s arguments.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  ferroflow summary model.keras\n  ferroflow summary legacy.h5 --width 100"
)]
pub struct Args {
    /// The saved model (`.keras`, or a legacy `.h5` written by `model.save`).
    pub model: PathBuf,
    /// The table's width in characters (Keras's `line_length`; default: Keras's).
    #[arg(short, long)]
    pub width: Option<usize>,
}

/// Loads the model and prints its summary.
pub fn run(args: Args) -> Result<(), String> {
    let table = ferroflow_io::keras_format::summary_of_file(&args.model, args.width)
        .map_err(|e| e.to_string())?;
    println!("{table}");
    Ok(())
}
