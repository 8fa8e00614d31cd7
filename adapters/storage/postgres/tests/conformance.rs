//! The storage contract's conformance kit against the server in `PERSEVERE_POSTGRES_URL`,
//! each case in a schema of its own.

mod common;

#[test]
fn the_conformance_kit_passes_against_the_server() {
    let Some(server) = common::server() else {
        return;
    };
    persevere_conformance::run_reopenable(
        "postgres",
        || common::Schema::new(&server, "kit"),
        |schema| schema.open(),
    );
}
