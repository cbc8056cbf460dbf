//! `ipc-cat`: bridge an ipc channel to stdin/stdout, or run any program as a child
//! wired to a channel. See `ipc-cat --help` and the crate README.

#![forbid(unsafe_code)]

mod bridge;
mod cli;
mod exit;
mod input;
mod output;
mod run;

use std::process::ExitCode;

use clap::Parser;
use ipc::Options;

use crate::cli::Args;
use crate::input::InputQueue;
use crate::output::Output;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return exit::to_exit_code(code);
        }
    };
    exit::to_exit_code(ipc::run(run(args)))
}

async fn run(args: Args) -> u8 {
    let mode = args.mode();
    let config = Options::default().max_frame(args.max_frame);
    let mut input = InputQueue::stdin(mode, config.get_max_frame());
    let mut output = Output::stdout(mode);
    let result = if let Some(endpoint) = &args.listen {
        run::listen(
            endpoint,
            args.keep_listening,
            &config,
            &mut input,
            &mut output,
        )
        .await
    } else if let Some(transport) = &args.spawn {
        run::spawn(transport, &args.command, &config, &mut input, &mut output).await
    } else if let Some(endpoint) = &args.endpoint {
        run::connect(endpoint, &config, &mut input, &mut output).await
    } else {
        unreachable!("clap requires an endpoint, --listen or --spawn")
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ipc-cat: {}", e.message);
            e.code
        }
    }
}
