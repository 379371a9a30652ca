//! `ferroflow`: the command line. One module per subcommand under `commands/`; each has an
//! `Args` (clap derive) and a `run(args) -> Result<(), String>`. Errors print as
//! `error: <message>` on stderr with exit status 1 (clap's own usage errors exit with 2).
//!
//! ```text
//! ferroflow plot history.csv -o curves.png
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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plot(args) => commands::plot::run(args),
        Command::Summary(args) => commands::summary::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            std::process::ExitCode::FAILURE
        }
    }
}
