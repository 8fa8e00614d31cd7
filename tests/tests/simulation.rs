//! The deterministic simulation suite.
//!
//! - `simulation_random`: many seeds, each with its own fault rates, journals and workload;
//! - `simulation_replay`: the same seed replays identically (same digest);
//! - `simulation_crash_sweep`: for fixed scenarios, a crash at every command k (keeping or
//!   losing unsynced writes), each followed by a fault during the recovery that follows.
//!
//! Prints, as its final lines, `fault points: N` and `violations: 0`. A failing seed is printed
//! with the command that replays it: `PERSEVERE_SEED=<seed> cargo test -p persevere-tests --test
//! simulation`. `PERSEVERE_SEEDS=<n>` changes how many random seeds run.

use std::process::ExitCode;
use std::time::Instant;

use persevere_tests::{FaultRates, Plan, Report, SimRng, Simulation};

const JOURNALS: usize = 4;
const STEPS: u64 = 400;

/// One named part of the suite.
type SimTest = fn(&mut Totals);

struct Totals {
    fault_points: u64,
    violations: Vec<String>,
}

impl Totals {
    fn add(&mut self, what: &str, report: Report) {
        self.fault_points += report.fault_points;
        self.violations.extend(
            report
                .violations
                .into_iter()
                .map(|v| format!("{what}: {v}")),
        );
    }
}

fn random_run(seed: u64) -> Report {
    let rates = FaultRates::draw(&mut SimRng::new(seed ^ 0x5EED));
    Simulation::new(seed, JOURNALS, rates).run(STEPS)
}

fn simulation_random(totals: &mut Totals) {
    let seeds: Vec<u64> = match std::env::var("PERSEVERE_SEED") {
        Ok(seed) => vec![seed.parse().expect("PERSEVERE_SEED is a number")],
        Err(_) => {
            let default = if cfg!(debug_assertions) { 300 } else { 15_000 };
            let n = std::env::var("PERSEVERE_SEEDS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(default);
            (0..n).collect()
        }
    };
    let mut persisted = 0;
    for seed in seeds {
        let report = random_run(seed);
        persisted += report.persisted;
        if !report.violations.is_empty() {
            eprintln!(
                "seed {seed} failed; replay with: PERSEVERE_SEED={seed} cargo test -p persevere-tests --test simulation"
            );
        }
        totals.add(&format!("seed {seed}"), report);
    }
    println!("simulation_random: {persisted} events persisted");
}

fn simulation_replay(totals: &mut Totals) {
    for seed in [7, 1234] {
        let first = random_run(seed);
        let second = random_run(seed);
        if first != second {
            totals.violations.push(format!(
                "seed {seed} did not replay identically: digest {:#x} then {:#x}",
                first.digest, second.digest
            ));
        }
        println!(
            "simulation_replay: seed {seed} digest {:#018x}",
            first.digest
        );
    }
}

fn simulation_crash_sweep(totals: &mut Totals) {
    let scenarios = if cfg!(debug_assertions) { 3 } else { 20 };
    for scenario in 0..scenarios {
        let seed = 10_000 + scenario;
        let dry = Simulation::new(seed, 3, FaultRates::none()).run(120);
        totals.add(&format!("sweep {seed} dry run"), dry.clone());
        for crash_at in 1..=dry.commands {
            for keep_unsynced in [false, true] {
                for then_fault in 0..=3 {
                    let plan = Plan {
                        crash_at,
                        keep_unsynced,
                        then_fault,
                    };
                    let report = Simulation::new(seed, 3, FaultRates::none())
                        .with_plan(plan)
                        .run(120);
                    totals.add(&format!("sweep {seed} {plan:?}"), report);
                }
            }
        }
        println!(
            "simulation_crash_sweep: scenario {seed}: crash at each of {} commands",
            dry.commands
        );
    }
}

fn main() -> ExitCode {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let tests: [(&str, SimTest); 3] = [
        ("simulation_random", simulation_random),
        ("simulation_replay", simulation_replay),
        ("simulation_crash_sweep", simulation_crash_sweep),
    ];
    let mut totals = Totals {
        fault_points: 0,
        violations: Vec::new(),
    };
    let started = Instant::now();
    let mut ran = 0;
    for (name, test) in tests {
        if selected(name) {
            test(&mut totals);
            ran += 1;
        }
    }
    if ran == 0 {
        return ExitCode::SUCCESS;
    }
    for violation in totals.violations.iter().take(20) {
        eprintln!("violation: {violation}");
    }
    println!("simulation: {ran} tests in {:.1?}", started.elapsed());
    println!("fault points: {}", totals.fault_points);
    println!("violations: {}", totals.violations.len());
    if totals.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
