//! The deterministic simulation in `make test`: a fixed set of seeds, each a random
//! schedule of provider changes, deliveries, admin actions and faults, then a settle and
//! the invariant checks. A failure prints the seed and the schedule that broke it; replay
//! it with `cargo run -p integration-tests --bin simulate -- --seed N`.

use integration_tests::sim;

const SEEDS: u64 = 200;
const STEPS: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_keeps_its_invariants_under_any_schedule() {
    let halves = [(0, SEEDS / 2), (SEEDS / 2, SEEDS - SEEDS / 2)].map(|(first, count)| {
        tokio::spawn(async move { sim::run_seeds(first, count, STEPS).await })
    });
    let mut total = sim::Scorecard::default();
    let mut failures = Vec::new();
    for half in halves {
        let (score, failed) = half.await.expect("a simulation half ran");
        total.add(&score);
        failures.extend(failed);
    }
    println!("simulation scorecard: {total}");
    if let Some(first) = failures.first() {
        panic!(
            "{} of {} seeds broke an invariant; the first:\n{first}",
            failures.len(),
            total.seeds
        );
    }
}
