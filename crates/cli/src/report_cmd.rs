//! `cascade report RUN... --out report.html`: the post-mortem of several runs of one log.

use std::path::PathBuf;

use anyhow::Context;
use cascade_diff::{RunFile, build_report};
use clap::Args;

use crate::Outcome;
use crate::out::write_file;

/// `cascade report RUN... --out report.html [--title TEXT]`.
#[derive(Args)]
pub struct ReportArgs {
    /// Run files of one log; the first is the reference the others are compared with.
    #[arg(required = true, num_args = 1..)]
    runs: Vec<PathBuf>,
    /// The HTML report to write; the Markdown version and its SVG charts go beside it
    /// (`report.md`, `report.price-1.svg`, ...).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Title of the report (default: "Post-mortem: A vs B ...").
    #[arg(long)]
    title: Option<String>,
}

/// Runs `cascade report`.
pub fn run(args: ReportArgs) -> anyhow::Result<Outcome> {
    let runs = args
        .runs
        .iter()
        .map(|path| RunFile::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let stem = args
        .out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".to_owned());
    let read = cascade_diff::story::count(runs.len() as u64, "run");
    tracing::info!("{read} read; drawing the report");
    let spinner = crate::talk::spinner(&format!("drawing the report of {read}"));
    let report = build_report(&runs, args.title.as_deref(), &stem);
    spinner.finish_and_clear();
    let report = report?;
    // `--out pm/report.html` writes a folder of files (page, Markdown, charts): make the folder.
    if let Some(folder) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating {}", folder.display()))?;
    }
    write_file(&args.out, report.html.as_bytes())?;
    let markdown = args.out.with_extension("md");
    write_file(&markdown, report.markdown.as_bytes())?;
    for (name, svg) in &report.charts {
        write_file(
            &args.out.with_file_name(format!("{stem}.{name}.svg")),
            svg.as_bytes(),
        )?;
    }
    println!(
        "wrote {} ({} charts) and {}",
        args.out.display(),
        report.charts.len(),
        markdown.display()
    );
    Ok(Outcome::Clean)
}
