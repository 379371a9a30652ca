//! `ferroflow plot <history.csv> -o <out.png|out.svg>`: training curves from a file written by
//! Keras's or ferroflow's `CSVLogger` (`epoch,accuracy,loss,val_accuracy,val_loss`), one panel
//! per figure with its `val_` twin, PNG or SVG by the output's extension.

use std::path::PathBuf;

use ferroflow_keras::callbacks::History;

/// `ferroflow plot`'s arguments.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  ferroflow plot history.csv -o curves.png\n  ferroflow plot log.csv --separator ';' -o curves.svg --title \"run 1\""
)]
pub struct Args {
    /// The CSVLogger file (`epoch,loss,...`, one row per epoch).
    pub csv: PathBuf,
    /// The picture to write: `.png` or `.svg` (its directory must exist).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The CSV field separator (CSVLogger's `separator`).
    #[arg(short, long, default_value_t = ',')]
    pub separator: char,
    /// A title above the panels (default: the CSV file's name).
    #[arg(short, long)]
    pub title: Option<String>,
}

/// Reads the CSV and writes the curves.
pub fn run(args: Args) -> Result<(), String> {
    let history = History::read_csv(&args.csv, args.separator).map_err(|e| e.to_string())?;
    let title = args.title.unwrap_or_else(|| {
        args.csv
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    history
        .plot_titled(&args.output, &title)
        .map_err(|e| e.to_string())?;
    println!("wrote {}", args.output.display());
    Ok(())
}
