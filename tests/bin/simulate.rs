//! The soak command: any number of simulation seeds, or one seed replayed with its whole
//! schedule.
//!
//! `cargo run --release -p integration-tests --bin simulate -- [--seeds N] [--from S] [--steps K] [--seed S]`

use std::process::ExitCode;

use integration_tests::sim;

fn arg(args: &[String], name: &str) -> Option<u64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let steps = arg(&args, "--steps").unwrap_or(500) as usize;
    if let Some(seed) = arg(&args, "--seed") {
        return match sim::run_seed(seed, steps).await {
            Ok(score) => {
                println!("seed {seed} held: {score}");
                ExitCode::SUCCESS
            }
            Err(failure) => {
                println!("{failure}");
                ExitCode::FAILURE
            }
        };
    }
    let seeds = arg(&args, "--seeds").unwrap_or(1000);
    let from = arg(&args, "--from").unwrap_or(0);
    let started = std::time::Instant::now();
    let (score, failures) = sim::run_seeds(from, seeds, steps).await;
    println!(
        "scorecard: {score} ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    for failure in &failures {
        println!("seed {} broke: {}", failure.seed, failure.broken);
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
