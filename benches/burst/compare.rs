//! `--compare`: the ideal pipeline, then devportal (and first the raw Secret rate with `--raw`),
//! each in a child process of this benchmark with its own fresh local control plane, so neither
//! sees the other's objects; then devportal's keys/s as a fraction of the ideal's.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::options::{Mode, Options};

/// Runs this benchmark as a child in `mode`, echoing its output, and returns its rate from the
/// `summary:` line.
fn child(opts: &Options, mode: Mode) -> f64 {
    let mut args = vec![opts.n.to_string()];
    match mode {
        Mode::Ideal => args.push("--ideal".into()),
        Mode::Raw => args.push("--raw".into()),
        Mode::Devportal => {
            if opts.restart {
                args.push("--restart".into());
            }
            if opts.namespace_loss {
                args.push("--namespace-loss".into());
                args.push("--gone-for".into());
                args.push(opts.gone_for.as_secs().to_string());
            }
        }
    }
    if opts.webhook {
        args.push("--webhook".into());
    }
    let mut child = Command::new(std::env::current_exe().expect("this benchmark's path"))
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the benchmark starts");
    let mut rate = None;
    for line in BufReader::new(child.stdout.take().expect("piped stdout")).lines() {
        let line = line.expect("the child's output");
        println!("{line}");
        if let Some(summary) = line.strip_prefix("summary: ") {
            rate = summary
                .split_whitespace()
                .find_map(|f| f.strip_prefix("rate="))
                .and_then(|r| r.parse().ok());
        }
    }
    let status = child.wait().expect("the child ends");
    assert!(status.success(), "the {} run failed: {status}", mode.name());
    rate.unwrap_or_else(|| panic!("the {} run printed no summary", mode.name()))
}

/// Runs the comparison and prints the ratio.
pub fn run(opts: &Options) {
    let raw = opts.mode.eq(&Mode::Raw).then(|| child(opts, Mode::Raw));
    let ideal = child(opts, Mode::Ideal);
    let devportal = child(opts, Mode::Devportal);
    println!(
        "comparison ({} keys, same concurrency, separate control planes):",
        opts.n
    );
    if let Some(raw) = raw {
        println!(
            "  raw plain Secret creates {raw:.0}/s (the ideal needs 2 per key: {:.0} keys/s at most from Secrets alone)",
            raw / 2.0
        );
    }
    println!("  ideal pipeline           {ideal:.1} keys/s");
    println!("  devportal                {devportal:.1} keys/s");
    println!(
        "  devportal / ideal        {:.1} %",
        100.0 * devportal / ideal
    );
}
