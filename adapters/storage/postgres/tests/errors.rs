//! Bad input is a typed error naming what is wrong: an unreachable server, an unknown user or
//! database, a newer schema, a table that is not ours, a URL that is not PostgreSQL's.

mod common;

use persevere_postgres::{PostgresError, PostgresStore, SCHEMA_VERSION};

#[test]
fn an_unreachable_server_is_named() {
    // Port 1 on the loopback: nothing listens there.
    let error = PostgresStore::open("postgres://postgres@127.0.0.1:1/test").map(|_| ());
    match error {
        Err(PostgresError::Unreachable { address, .. }) => assert_eq!(address, "127.0.0.1:1"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[test]
fn a_url_that_is_not_postgres_is_refused_without_showing_the_password() {
    let error = PostgresStore::open("mysql://me:hunter2@db/x").map(|_| ());
    match error {
        Err(e @ PostgresError::InvalidUrl { .. }) => {
            let shown = e.to_string();
            assert!(
                shown.contains("mysql") && !shown.contains("hunter2"),
                "{shown}"
            );
        }
        other => panic!("expected InvalidUrl, got {other:?}"),
    }
    assert!(matches!(
        PostgresStore::open("postgres://db/x?schema=Robert');DROP").map(|_| ()),
        Err(PostgresError::InvalidSchema(_))
    ));
}

#[test]
fn an_unknown_user_or_database_is_named() {
    let Some(server) = common::server() else {
        return;
    };
    let mut pg = server.pg().clone();
    pg.user("persevere_nobody");
    let config = persevere_postgres::PostgresConfig::new(pg, "x").expect("a config");
    match PostgresStore::open_config(config).map(|_| ()) {
        Err(PostgresError::Authentication { user, .. }) => assert_eq!(user, "persevere_nobody"),
        other => panic!("expected Authentication, got {other:?}"),
    }
    let mut pg = server.pg().clone();
    pg.dbname("persevere_no_such_database");
    let config = persevere_postgres::PostgresConfig::new(pg, "x").expect("a config");
    match PostgresStore::open_config(config).map(|_| ()) {
        Err(e @ PostgresError::NoDatabase { .. }) => {
            assert!(e.to_string().contains("persevere_no_such_database"))
        }
        other => panic!("expected NoDatabase, got {other:?}"),
    }
}

#[test]
fn a_newer_schema_is_refused() {
    let Some(server) = common::server() else {
        return;
    };
    let schema = common::Schema::new(&server, "newer");
    drop(schema.open());
    schema.sql(&format!(
        "INSERT INTO \"{}\".persevere_schema (version, crate) VALUES ({}, 'persevere-postgres')",
        schema.config.schema(),
        SCHEMA_VERSION + 1
    ));
    match PostgresStore::open_config(schema.config.clone()).map(|_| ()) {
        Err(PostgresError::NewerSchema {
            found, supported, ..
        }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION))
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
}

#[test]
fn a_table_that_is_not_ours_is_refused_and_left_alone() {
    let Some(server) = common::server() else {
        return;
    };
    let schema = common::Schema::new(&server, "foreign");
    let s = schema.config.schema().to_owned();
    schema.sql(&format!(
        "CREATE SCHEMA \"{s}\"; CREATE TABLE \"{s}\".events (id int); INSERT INTO \"{s}\".events VALUES (1)"
    ));
    match PostgresStore::open_config(schema.config.clone()).map(|_| ()) {
        Err(e @ PostgresError::NotOurs { .. }) => {
            assert!(e.to_string().contains(&format!("{s}.events")), "{e}")
        }
        other => panic!("expected NotOurs, got {other:?}"),
    }
    // Still there, untouched; and no version table was created beside it.
    schema.sql(&format!("SELECT id FROM \"{s}\".events"));
    let client = schema.config.connect().expect("a client");
    let rows = futures::executor::block_on(client.query(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'persevere_schema'",
        &[&s],
    ))
    .expect("a query");
    assert!(rows.is_empty());

    let other = common::Schema::new(&server, "foreignversion");
    let o = other.config.schema().to_owned();
    other.sql(&format!(
        "CREATE SCHEMA \"{o}\"; CREATE TABLE \"{o}\".persevere_schema (version int)"
    ));
    assert!(matches!(
        PostgresStore::open_config(other.config.clone()).map(|_| ()),
        Err(PostgresError::NotOurs { .. })
    ));
}

#[test]
fn a_wrong_password_is_named() {
    // Needs no shared server, only the PostgreSQL binaries; runs with the suite.
    if common::server().is_none() {
        return;
    }
    let Some(cluster) = common::cluster::Cluster::start(&["-A", "scram-sha-256"], Some("right"))
    else {
        common::say(
            "SKIPPED a_wrong_password_is_named: no private cluster could be started (initdb from \
             `pg_config --bindir` or PERSEVERE_POSTGRES_BIN, run as a non-root user)",
        );
        return;
    };
    let url = |password: &str| {
        cluster
            .url()
            .replace("postgres@", &format!("postgres:{password}@"))
    };
    match PostgresStore::open(&url("wrong")).map(|_| ()) {
        Err(e @ PostgresError::Authentication { .. }) => {
            let shown = e.to_string();
            assert!(
                shown.contains("password") && !shown.contains("wrong"),
                "{shown}"
            );
        }
        other => panic!("expected Authentication, got {other:?}"),
    }
    assert!(PostgresStore::open(&url("right")).is_ok());
}
