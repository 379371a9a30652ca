//! `ferroflow`: the command line. One module per subcommand under `commands/`; each has an
//! `Args` (clap derive) and a `run(args) -> Result<(), String>`. Errors print as
//! `error: <message>` on stderr with exit status 1 (clap's own usage errors exit with 2).
//!
//! ```text
//! ferroflow plot history.csv -o curves.png
//! ferroflow summary model.keras
//! ferroflow predict model.keras --input x.npy --output y.npy
//! ferroflow evaluate model.keras --x x.npy --y y.npy
//! ferroflow train config.json
//! ferroflow convert model.keras model.safetensors
//! ferroflow inspect model.keras
//! ```

mod commands;

use clap::{Parser, Subcommand};

/// ferroflow's command line tools.
#[derive(Parser, Debug)]
#[command(name = "ferroflow", version, about = "ferroflow's command line tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
enum Command {
    /// Draw training curves (PNG or SVG) from a CSVLogger file.
    Plot(commands::plot::Args),
    /// Print the Keras summary table of a saved model (`.keras` or legacy `.h5`).
    Summary(commands::summary::Args),
    /// Run a saved model on `.npy` inputs and write its predictions (`model.predict`).
    Predict(commands::predict::Args),
    /// Print a saved, compiled model's loss and metrics on `.npy` data (`model.evaluate`).
    Evaluate(commands::evaluate::Args),
    /// Build, compile, train and save a model described by a JSON config (`model.fit`).
    Train(commands::train::Args),
    /// Convert between .keras, legacy .h5, .weights.h5, .safetensors and .npz files.
    Convert(commands::convert::Args),
    /// List the groups, datasets and attributes of an HDF5 file or a .keras zip.
    Inspect(commands::inspect::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plot(args) => commands::plot::run(args),
        Command::Summary(args) => commands::summary::run(args),
        Command::Predict(args) => commands::predict::run(args),
        Command::Evaluate(args) => commands::evaluate::run(args),
        Command::Train(args) => commands::train::run(args),
        Command::Convert(args) => commands::convert::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            std::process::ExitCode::FAILURE
        }
    }
}
