//! `cascade synth`: writes a synthetic market going through a crash into a new event log.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use cascade_events::{Protocol, Timestamp};
use cascade_ingest::synth::{self, ShockSpec, SynthConfig, SynthSummary};

use crate::Outcome;

/// Arguments of `cascade synth`.
#[derive(clap::Args)]
pub struct SynthArgs {
    /// Log directory to create (must not hold events yet).
    #[arg(long)]
    out: PathBuf,
    /// Protocol of the market: aave-v3, aave-v2, compound-v2 or maker; several, comma-separated,
    /// for one market of several protocols sharing assets and prices (`maker,aave-v2`).
    #[arg(long, value_delimiter = ',', default_value = "aave-v3")]
    protocol: Vec<Protocol>,
    /// Number of positions (Maker: vaults), spread over the protocols.
    #[arg(long, default_value_t = 10_000)]
    accounts: u32,
    /// Seed of every random choice: the same seed writes the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Collateral assets, comma-separated (WETH, WBTC, LINK).
    #[arg(long, value_delimiter = ',', default_values_t = synth::DEFAULT_COLLATERAL.iter().map(|s| s.to_string()))]
    assets: Vec<String>,
    /// The crash, e.g. `-40%@6h,rebound=15%,start=24h,hold=12h,noise=0.6%` (docs/synthetic.md).
    #[arg(long, default_value_t = ShockSpec::default(), allow_hyphen_values = true)]
    shock: ShockSpec,
    /// Average user events per account, counting the three opening ones.
    #[arg(long, default_value_t = 5)]
    events_per_account: u32,
    /// Share of owners holding a position in every protocol of the market, e.g. 0.3.
    #[arg(long, value_parser = synth::parse_ppm, default_value = "0")]
    overlap: u32,
    /// Share of Aave and Compound positions opened as loops (borrow the collateral asset,
    /// re-supply it, up to 4 times), e.g. 0.2.
    #[arg(long, value_parser = synth::parse_ppm, default_value = "0")]
    loops: u32,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `cascade synth`.
pub fn run(args: SynthArgs) -> anyhow::Result<Outcome> {
    let (&protocol, also) = args
        .protocol
        .split_first()
        .context("--protocol names no protocol")?;
    let config = SynthConfig {
        protocol,
        accounts: args.accounts,
        seed: args.seed,
        assets: args.assets,
        shock: args.shock,
        events_per_account: args.events_per_account,
        source: 0,
        also: also.to_vec(),
        overlap_ppm: args.overlap,
        loops_ppm: args.loops,
    };
    let started = Instant::now();
    let what = format!(
        "writing a synthetic market of {} accounts to {}",
        thousands(u64::from(args.accounts)),
        args.out.display()
    );
    tracing::info!("{what}: {}", synth::describe(&config));
    let spinner = crate::talk::spinner(&what);
    let written = synth::write_log(&args.out, &config, now());
    spinner.finish_and_clear();
    let written =
        written.with_context(|| format!("writing a synthetic market to {}", args.out.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!("{} events written, {seconds:.2} s", written.summary.events);
    let hash: String = written
        .identity
        .hash
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if args.json {
        let json = serde_json::json!({
            "log": args.out,
            "config": synth::describe(&config),
            "events": written.summary.events,
            "by_kind": written.summary.by_kind,
            "accounts": written.summary.accounts,
            "accounts_liquidated": written.summary.accounts_liquidated,
            "owners": written.summary.owners,
            "shared_owners": written.summary.shared_owners,
            "looped": written.summary.looped,
            "loopable": written.summary.loopable,
            "first_time": written.summary.first_time,
            "last_time": written.summary.last_time,
            "content_hash": hash,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!("{}", synth::describe(&config));
        print_summary(&written.summary);
        println!(
            "wrote {} to {} in {seconds:.2} s ({}/s), content hash {}",
            count(written.summary.events, "event"),
            args.out.display(),
            thousands((written.summary.events as f64 / seconds.max(1e-9)) as u64),
            &hash[..16]
        );
    }
    Ok(Outcome::Clean)
}

/// Prints what a synthetic market holds, a few lines for a person.
pub fn print_summary(summary: &SynthSummary) {
    let kinds: Vec<String> = summary
        .by_kind
        .iter()
        .map(|(kind, n)| format!("{kind} {}", thousands(*n)))
        .collect();
    println!(
        "  {} .. {}: {}",
        summary.first_time,
        summary.last_time,
        kinds.join(", ")
    );
    let start = summary.start_price as f64 / 1e8;
    let low = summary.low_price as f64 / 1e8;
    println!(
        "  {} market {start:.2} -> low {low:.2} USD ({:+.1}%); {} of {} accounts liquidated",
        summary.lead_asset,
        (low / start - 1.0) * 100.0,
        thousands(u64::from(summary.accounts_liquidated)),
        thousands(u64::from(summary.accounts)),
    );
    if summary.shared_owners > 0 || summary.looped > 0 {
        println!(
            "  {} owners, {} of them in more than one protocol; {} of {} Aave and Compound \
             positions looped",
            thousands(u64::from(summary.owners)),
            thousands(u64::from(summary.shared_owners)),
            thousands(u64::from(summary.looped)),
            thousands(u64::from(summary.loopable)),
        );
    }
}

/// The wall clock as a log timestamp: recorded in the catalog only, never in events.
fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn count(n: u64, noun: &str) -> String {
    format!("{} {noun}{}", thousands(n), if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
