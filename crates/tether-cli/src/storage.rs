//! `tether storage copy`: move the registry database to another backend, e.g. from the
//! embedded SQLite file to PostgreSQL when a deployment outgrows one machine.
//! `tether storage compact`: give the space of deleted devices back to the disk.

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
    /// Give the space of deleted devices, configs and states back to the disk: SQLite
    /// reuses freed pages but never shrinks its file, so it stays at the fleet's peak
    /// size until compacted (PostgreSQL: VACUUM of the registry's tables). Best run with
    /// `tether serve` stopped; with it running, writes wait while the file is rewritten.
    ///
    /// Example: tether storage compact --data-dir /var/lib/tether
    ///
    /// Exit code 0 when compacted, 1 when the database cannot be opened or compacted.
    Compact(CompactArgs),
}

#[derive(Debug, Args)]
struct CompactArgs {
    /// The database, as for `tether serve --database` [default: the SQLite file in
    /// --data-dir].
    #[arg(
        long,
        value_name = "URL",
        env = "TETHER_DATABASE",
        hide_env_values = true
    )]
    database: Option<String>,
    /// The data directory of the SQLite file.
    #[arg(long, value_name = "DIR", default_value = "tether-data")]
    data_dir: PathBuf,
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(match args.command {
        StorageCommand::Copy(a) => runtime.block_on(copy(a)),
        StorageCommand::Compact(a) => runtime.block_on(compact(a)),
    })
}

async fn compact(a: CompactArgs) -> u8 {
    // Opening a SQLite file creates it: compacting a mistyped path must not make one.
    if let Some(path) = sqlite_path(a.database.as_deref(), &a.data_dir)
        && !path.is_file()
    {
        eprintln!(
            "error: no database at {} (give the server's --data-dir, or --database)",
            path.display()
        );
        return exit::INVALID;
    }
    let store = match open_any(a.database.as_deref(), &a.data_dir).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: the database: {e}");
            return exit::INVALID;
        }
    };
    let result = tether_registry::Store::compact(&store).await;
    store.close().await;
    match result {
        Ok(c) => {
            println!(
                "compacted the {} database: {} → {} ({} freed)",
                store.backend(),
                size(c.bytes_before),
                size(c.bytes_after),
                size(c.bytes_before.saturating_sub(c.bytes_after))
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("error: not compacted: {e}");
            exit::INVALID
        }
    }
}

/// `bytes` in KiB or MiB, as a person reads them.
fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
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
                 {} gateway bindings, {} provisioning claims",
                from.backend(),
                to.backend(),
                r.registries,
                r.devices,
                r.configs,
                r.states,
                r.bindings,
                r.claims
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
