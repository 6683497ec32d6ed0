//! `tether storage copy`: move the registry database to another backend, e.g. from the
//! embedded SQLite file to PostgreSQL when a deployment outgrows one machine.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tether_registry::{CopyProgress, open_any, redact, sqlite_path};

use crate::exit;

#[derive(Debug, Args)]
pub(crate) struct StorageArgs {
    #[command(subcommand)]
    command: StorageCommand,
}

#[derive(Debug, Subcommand)]
enum StorageCommand {
    /// Copy every registry, device, config version, state and binding into an empty
    /// database (numIds and config versions are kept). Stop `tether serve` first.
    ///
    /// Example: tether storage copy --to postgres://tether@db.internal/tether
    ///
    /// Exit code 0 when copied, 1 when refused (target not empty, source missing, a
    /// database unreachable), 2 on usage errors.
    Copy(CopyArgs),
}

#[derive(Debug, Args)]
struct CopyArgs {
    /// The source database, as for `tether serve --database` [default: the SQLite file
    /// in --data-dir].
    #[arg(long, value_name = "URL")]
    from: Option<String>,
    /// The target database: `postgres://…` or `sqlite://PATH`. It must hold no registry.
    #[arg(long, value_name = "URL")]
    to: String,
    /// The data directory of the source's SQLite file.
    #[arg(long, value_name = "DIR", default_value = "tether-data")]
    data_dir: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

pub(crate) fn run(args: StorageArgs) -> anyhow::Result<u8> {
    let StorageCommand::Copy(a) = args.command;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(copy(a)))
}

async fn copy(a: CopyArgs) -> u8 {
    // Opening a SQLite file creates it: a mistyped source must not become an empty copy.
    if let Some(path) = sqlite_path(a.from.as_deref(), &a.data_dir)
        && !path.is_file()
    {
        eprintln!(
            "error: no source database at {} (give --data-dir of the server, or --from)",
            path.display()
        );
        return exit::INVALID;
    }
    let same_file = match (
        sqlite_path(Some(&a.to), &a.data_dir),
        sqlite_path(a.from.as_deref(), &a.data_dir),
    ) {
        (Some(to), Some(from)) => match (to.canonicalize(), from.canonicalize()) {
            (Ok(to), Ok(from)) => to == from,
            _ => to == from,
        },
        _ => false,
    };
    if same_file || a.from.as_deref() == Some(a.to.as_str()) {
        eprintln!("error: --to names the source database itself");
        return exit::USAGE;
    }
    let from = match open_any(a.from.as_deref(), &a.data_dir).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: the source database: {e}");
            return exit::INVALID;
        }
    };
    let to = match open_any(Some(&a.to), &a.data_dir).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: the target database: {e}");
            return exit::INVALID;
        }
    };
    let bar = bar(!a.quiet && std::io::stderr().is_terminal());
    let mut progress = |p: CopyProgress| match p {
        CopyProgress::Table(name, rows) => {
            bar.set_length(rows);
            bar.set_position(0);
            bar.set_message(name);
        }
        CopyProgress::Rows(n) => bar.set_position(n),
    };
    let result = tether_registry::copy_database(&from, &to, &mut progress).await;
    bar.finish_and_clear();
    match result {
        Ok(r) => {
            println!(
                "copied {} → {}: {} registries, {} devices, {} config versions, {} states, \
                 {} gateway bindings",
                from.backend(),
                to.backend(),
                r.registries,
                r.devices,
                r.configs,
                r.states,
                r.bindings
            );
            println!(
                "start the server on it: tether serve --database '{}'",
                redact(&a.to)
            );
            from.close().await;
            to.close().await;
            exit::OK
        }
        Err(e) => {
            eprintln!("error: nothing was copied: {e}");
            exit::INVALID
        }
    }
}

fn bar(show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(0);
    let style = ProgressStyle::with_template("{msg:>16} [{bar:30}] {pos}/{len}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb
}
