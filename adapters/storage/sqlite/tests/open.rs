//! Opening: explicit open vs create, and every database that is not a healthy persevere store
//! of this version is refused with a typed error naming the file — never a fresh empty store.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command as Process;

use common::{append, dump};
use persevere_core::{Completion, Store};
use persevere_sqlite::rusqlite::Connection;
use persevere_sqlite::{OpenCheck, OpenMode, SqliteError, SqliteOptions, SqliteStore};

const CHILD_ENV: &str = "SQLITE_OPEN_CHILD_DB";

fn write_some(path: &Path) {
    let mut store = SqliteStore::open_or_create(path).expect("opens");
    let results = store.execute(vec![append("s", 0, 3, false)]);
    assert_eq!(results[0].1, Ok(Completion::Done));
}

fn assert_names_file(error: &SqliteError, path: &Path) {
    let name = path.file_name().and_then(|n| n.to_str()).expect("a name");
    assert!(
        error.to_string().contains(name),
        "{error} does not name {name}"
    );
}

#[test]
fn open_needs_an_existing_database_and_create_a_new_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let error = SqliteStore::open(&path).expect_err("missing");
    assert!(matches!(error, SqliteError::NotFound { .. }), "{error}");
    assert_names_file(&error, &path);
    assert!(!path.exists(), "a failed open created the database");
    write_some(&path);
    let error = SqliteStore::create(&path).expect_err("exists");
    assert!(
        matches!(error, SqliteError::AlreadyExists { .. }),
        "{error}"
    );
    let mut store = SqliteStore::open(&path).expect("opens");
    assert_eq!(dump(&mut store, "s").expect("reads").0, 3);
}

#[test]
fn an_empty_file_is_not_a_store_for_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").expect("write");
    let error = SqliteStore::open(&path).expect_err("empty");
    assert!(matches!(error, SqliteError::Foreign { .. }), "{error}");
    let mut store = SqliteStore::open_or_create(&path).expect("open_or_create initializes it");
    assert_eq!(dump(&mut store, "s").expect("reads").0, 0);
}

#[test]
fn a_second_opener_in_this_process_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let store = SqliteStore::create(&path).expect("opens");
    let error = SqliteStore::open(&path).expect_err("locked");
    assert!(matches!(error, SqliteError::Locked { .. }), "{error}");
    assert_names_file(&error, &path);
    drop(store);
    SqliteStore::open(&path).expect("free again");
}

/// Does nothing unless run as the child of [`a_second_process_is_refused`].
#[test]
fn open_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    match SqliteStore::open(&path) {
        Ok(_) => println!("child: opened"),
        Err(SqliteError::Locked { .. }) => println!("child: locked"),
        Err(other) => println!("child: {other}"),
    }
}

fn child_open(path: &Path) -> String {
    let output = Process::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "open_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|l| l.split_once("child: ").map(|(_, answer)| answer))
        .unwrap_or("no answer")
        .to_owned()
}

#[test]
fn a_second_process_is_refused() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let store = SqliteStore::create(&path).expect("opens");
    assert_eq!(child_open(&path), "locked");
    drop(store);
    assert_eq!(child_open(&path), "opened");
}

#[test]
fn a_corrupt_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    write_some(&path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.write_all(b"this is no SQLite header at all")
        .expect("write");
    drop(file);
    let error = SqliteStore::open(&path).expect_err("corrupt");
    assert!(matches!(error, SqliteError::Corrupt { .. }), "{error}");
    assert_names_file(&error, &path);
    let error = SqliteStore::open_or_create(&path).expect_err("still corrupt");
    assert!(matches!(error, SqliteError::Corrupt { .. }), "{error}");
}

#[test]
fn damaged_pages_are_found_by_the_open_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    {
        let mut store = SqliteStore::open_or_create(&path).expect("opens");
        for n in 0..50 {
            let results = store.execute(vec![append("s", n * 20, 20, false)]);
            assert_eq!(results[0].1, Ok(Completion::Done));
        }
    }
    let length = std::fs::metadata(&path).expect("metadata").len();
    assert!(length > 4 * 4096, "{length} bytes");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    // Scribble over every page after the first two (the schema stays readable).
    for page in 2..length / 4096 {
        file.seek(SeekFrom::Start(page * 4096 + 8)).expect("seek");
        file.write_all(&[0xA5; 64]).expect("write");
    }
    drop(file);
    let mut options = SqliteOptions::default();
    options.mode = OpenMode::Open;
    options.check = OpenCheck::Quick;
    let error = SqliteStore::open_with(&path, options).expect_err("corrupt");
    assert!(matches!(error, SqliteError::Corrupt { .. }), "{error}");
    assert_names_file(&error, &path);
}

#[test]
fn a_foreign_database_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("other.db");
    let conn = Connection::open(&path).expect("sqlite");
    conn.execute_batch("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
        .expect("table");
    drop(conn);
    for mode in [OpenMode::Open, OpenMode::OpenOrCreate] {
        let mut options = SqliteOptions::default();
        options.mode = mode;
        let error = SqliteStore::open_with(&path, options).expect_err("foreign");
        assert!(matches!(error, SqliteError::Foreign { .. }), "{error}");
        assert_names_file(&error, &path);
    }
    let conn = Connection::open(&path).expect("sqlite");
    conn.execute_batch("PRAGMA application_id = 42")
        .expect("id");
    drop(conn);
    let error = SqliteStore::open(&path).expect_err("foreign");
    assert!(matches!(error, SqliteError::Foreign { .. }), "{error}");
    // Nothing was changed: the foreign table is the only one.
    let conn = Connection::open(&path).expect("sqlite");
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .expect("count");
    assert_eq!(tables, 1);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    write_some(&path);
    let conn = Connection::open(&path).expect("sqlite");
    conn.execute_batch(&format!(
        "INSERT INTO persevere_migrations (version, name, applied_at) VALUES ({}, 'from the future', 0);
         PRAGMA user_version = {};",
        persevere_sqlite::SCHEMA_VERSION + 1,
        persevere_sqlite::SCHEMA_VERSION + 1
    ))
    .expect("future");
    drop(conn);
    let error = SqliteStore::open(&path).expect_err("newer");
    assert!(
        matches!(error, SqliteError::NewerSchema { found, .. } if found == persevere_sqlite::SCHEMA_VERSION + 1),
        "{error}"
    );
    assert_names_file(&error, &path);
}

#[test]
fn migrations_are_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    write_some(&path);
    let conn = Connection::open(&path).expect("sqlite");
    let (count, newest): (i64, i64) = conn
        .query_row(
            "SELECT count(*), max(version) FROM persevere_migrations",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("migrations");
    assert_eq!(
        (count, newest),
        (
            persevere_sqlite::SCHEMA_VERSION,
            persevere_sqlite::SCHEMA_VERSION
        )
    );
    let id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .expect("id");
    assert_eq!(id, persevere_sqlite::APPLICATION_ID);
}
