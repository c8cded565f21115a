//! What the examples share: finding (or downloading, or generating) the data, with a progress
//! bar for downloads and a loud warning when the data is not MNIST; pictures of a run
//! ([`plot`]) and digits in the terminal ([`show`]).
#![allow(dead_code)]

pub mod peak;
pub mod plot;
pub mod progress;
pub mod show;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use lernmi::data::datasets::DatasetSpec;
use lernmi::data::download::DownloadEvent;
use lernmi::data::{DataSource, Mnist};

/// A progress bar on stderr, or a hidden one when `quiet` or stderr is not a terminal.
pub fn bar(quiet: bool, template: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match ProgressStyle::with_template(template) {
        Ok(style) => ProgressBar::new(0).with_style(style.progress_chars("=> ")),
        Err(_) => ProgressBar::new(0),
    }
}

/// MNIST (found, or downloaded with a progress bar), else generated digits with a warning.
pub fn load_data(
    data: Option<&Path>,
    offline: bool,
    quiet: bool,
) -> lernmi::Result<(Mnist, DataSource)> {
    load_dataset(&lernmi::data::datasets::MNIST, data, offline, quiet)
}

/// `"generated"` for generated digits, else the dataset's name, for JSON output.
pub fn source_name(source: &DataSource, dataset: &DatasetSpec) -> &'static str {
    match source {
        DataSource::Generated { .. } => "generated",
        _ => dataset.name,
    }
}

/// [`load_data`] for any dataset in MNIST's format.
pub fn load_dataset(
    dataset: &DatasetSpec,
    data: Option<&Path>,
    offline: bool,
    quiet: bool,
) -> lernmi::Result<(Mnist, DataSource)> {
    let download = bar(
        quiet,
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
    );
    let (mnist, source) =
        lernmi::data::dataset_or_generated(dataset, data, !offline, &mut |event| match *event {
            DownloadEvent::Started {
                file,
                url,
                total_bytes,
            } => {
                download.reset();
                download.set_length(total_bytes.unwrap_or(0));
                download.set_message(format!("{file} from {url}"));
            }
            DownloadEvent::Progress { bytes, .. } => download.set_position(bytes),
            DownloadEvent::Finished { file } => download.println(format!("{file}: ok")),
            DownloadEvent::MirrorFailed {
                file,
                url,
                ref error,
            } => download.println(format!("{file}: {url} failed: {error}")),
        })?;
    download.finish_and_clear();
    let (title, env) = (dataset.title, dataset.env);
    match &source {
        DataSource::Found(dir) if !quiet => eprintln!("{title} from {}", dir.display()),
        DataSource::Downloaded(dir) if !quiet => {
            eprintln!("{title} downloaded to {}", dir.display())
        }
        DataSource::Generated { reason } => eprintln!(
            "WARNING: this is NOT {title}. {reason}. Using generated MNIST-style digits instead \
             (pass --data DIR or set {env} to use real {title})."
        ),
        _ => {}
    }
    Ok((mnist, source))
}

/// The data options every example shares.
#[derive(clap::Args, Debug)]
pub struct DataArgs {
    /// Directory holding the four MNIST IDX files (gzip or not).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Never download; use generated digits if MNIST is not found.
    #[arg(long)]
    pub offline: bool,
}

/// Lets the process end quietly when its output pipe closes (`… | head`), as command-line tools
/// do, instead of panicking inside `println!` with "failed printing to stdout".
pub fn quiet_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE, before any thread starts, has no
    // preconditions; Rust's runtime had set it to "ignore".
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Runs an example's body: an error is printed on one line and the exit status is 1.
pub fn exit_on_error(result: Result<(), Box<dyn std::error::Error>>) {
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
