//! The deterministic simulation suite.
//!
//! - `simulation_random`: many seeds, each with its own fault rates, journals (plaintext or
//!   encrypted, Full or Light, any snapshot cadence, compaction and retention) and workload, on
//!   the reference store (a crash loses a random suffix of the unsynced writes); requests pile
//!   up behind the command in flight (and come in bursts), so many appends carry several
//!   coalesced requests, and crashes, unknown outcomes and conflicts hit them;
//! - `simulation_file`: the same on the file journal over a simulated disk that loses power at
//!   any operation (tearing the write in progress) or fails one with an IO error;
//! - `simulation_replay`: the same seed replays identically (same digest);
//! - `simulation_crash_sweep`: for fixed scenarios, a crash at every command k (keeping or
//!   losing unsynced writes), each followed by a fault during the recovery that follows, on both
//!   storages.
//!
//! Every run is bounded: a journal that ignores its due timeout, or journals that are not quiet
//! within `DRAIN_STEPS` rounds once the faults stop, end the run at once with a violation, so a
//! seed that never settles fails fast with its seed printed.
//!
//! Prints, as its final lines, `fault points: N` and `violations: 0`. A failing seed is printed
//! with the command that replays it: `PERSEVERE_SEED=<seed> cargo test -p persevere-tests --test
//! simulation`. `PERSEVERE_SEEDS=<n>` changes how many random seeds run.

use std::process::ExitCode;
use std::time::Instant;

use persevere_tests::{FaultRates, Plan, Report, SimRng, Simulation, StorageKind};

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

fn random_run(seed: u64, storage: StorageKind) -> Report {
    let rates = FaultRates::draw(&mut SimRng::new(seed ^ 0x5EED));
    Simulation::new(seed, JOURNALS, rates)
        .with_storage(storage)
        .run(STEPS)
}

fn seeds(default_debug: u64, default_release: u64) -> Vec<u64> {
    if let Ok(seed) = std::env::var("PERSEVERE_SEED") {
        return vec![seed.parse().expect("PERSEVERE_SEED is a number")];
    }
    let default = if cfg!(debug_assertions) {
        default_debug
    } else {
        default_release
    };
    let n = std::env::var("PERSEVERE_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    (0..n).collect()
}

fn random_runs(totals: &mut Totals, storage: StorageKind, seeds: Vec<u64>) {
    let mut persisted = 0;
    let mut coalesced = 0;
    for seed in seeds {
        let report = random_run(seed, storage);
        persisted += report.persisted;
        coalesced += report.coalesced;
        if !report.violations.is_empty() {
            eprintln!(
                "seed {seed} on {storage:?} storage failed; replay with: PERSEVERE_SEED={seed} cargo test -p persevere-tests --test simulation"
            );
        }
        totals.add(&format!("seed {seed} on {storage:?}"), report);
    }
    println!(
        "simulation on {storage:?} storage: {persisted} events persisted, {coalesced} appends carrying several requests"
    );
}

fn simulation_random(totals: &mut Totals) {
    random_runs(totals, StorageKind::Reference, seeds(300, 15_000));
}

fn simulation_file(totals: &mut Totals) {
    random_runs(totals, StorageKind::File, seeds(40, 1_500));
}

fn simulation_replay(totals: &mut Totals) {
    for seed in [7, 1234] {
        let first = random_run(seed, StorageKind::File);
        let second = random_run(seed, StorageKind::File);
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
    let scenarios = if cfg!(debug_assertions) { 2 } else { 12 };
    for storage in [StorageKind::Reference, StorageKind::File] {
        for scenario in 0..scenarios {
            let seed = 10_000 + scenario;
            let run = |plan: Option<Plan>| {
                let sim = Simulation::new(seed, 3, FaultRates::none()).with_storage(storage);
                match plan {
                    Some(plan) => sim.with_plan(plan).run(120),
                    None => sim.run(120),
                }
            };
            let dry = run(None);
            let commands = dry.commands;
            totals.add(&format!("sweep {seed} on {storage:?}, dry run"), dry);
            for crash_at in 1..=commands {
                for keep_unsynced in [false, true] {
                    for then_fault in 0..=3 {
                        let plan = Plan {
                            crash_at,
                            keep_unsynced,
                            then_fault,
                        };
                        totals.add(
                            &format!("sweep {seed} on {storage:?} {plan:?}"),
                            run(Some(plan)),
                        );
                    }
                }
            }
            println!(
                "simulation_crash_sweep: scenario {seed} on {storage:?} storage: crash at each of {commands} commands"
            );
        }
    }
}

fn main() -> ExitCode {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let tests: [(&str, SimTest); 4] = [
        ("simulation_random", simulation_random),
        ("simulation_file", simulation_file),
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
