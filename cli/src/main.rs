//! `dcos-fastdata`: the DC/OS CLI plugin binary. See the library docs and `--help`.

use std::process::ExitCode;

use clap::Parser;
use dcos_fastdata::{Cli, environment, normalize, run};

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(normalize(std::env::args_os().collect())) {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version print to stdout and exit 0; usage errors exit 2.
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("dcos fastdata: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let env = environment();
    let mut stdout = std::io::stdout();
    match runtime.block_on(run(cli, &env, &mut stdout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dcos fastdata: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
