//! One module per subcommand.

mod bench;
mod config;
mod demo;
mod demo_shadow;
mod doctor;
mod emulator;
mod emulator_shadow;
mod publish;
mod shadow;
mod stdout_lines;
mod subscribe;

use crate::args::Command;
use crate::exit::Failure;

/// Runs a subcommand.
pub async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Demo(args) => demo::run(args).await,
        Command::Pub(args) => publish::run(args).await,
        Command::Sub(args) => subscribe::run(args).await,
        Command::Emulator(args) => emulator::run(args).await,
        Command::Doctor(args) => doctor::run(args).await,
        Command::Shadow(args) => shadow::run(args).await,
        Command::Bench(args) => bench::run(args).await,
    }
}
