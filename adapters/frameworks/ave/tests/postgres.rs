//! The PostgreSQL manager opens the server in `PERSEVERE_POSTGRES_URL`, and a bad URL is an
//! open error naming it.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_manager_opens_and_a_bad_url_is_an_open_error() {
    let refused = persevere_ave::PostgresManager::open_url("postgres://postgres@127.0.0.1:1/test");
    assert!(
        matches!(refused, Err(persevere_ave::AdapterError::Open(ref m)) if m.contains("127.0.0.1:1"))
    );
    let Ok(server) = std::env::var("PERSEVERE_POSTGRES_URL") else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "PostgreSQL ave test skipped: set PERSEVERE_POSTGRES_URL to run it"
        );
        return;
    };
    let schema = format!("ave_{}", std::process::id());
    let url = format!(
        "{}?schema={schema}",
        server.split('?').next().unwrap_or_default()
    );
    let opened =
        tokio::task::spawn_blocking(move || persevere_ave::PostgresManager::open_url(&url))
            .await
            .expect("the open task");
    let manager: persevere_ave::Manager = opened.expect("the manager opens").into();
    drop(manager);
    let config = persevere_postgres::PostgresConfig::from_url(&server).expect("a URL");
    let client = config.connect().expect("a client");
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .expect("the test schema is dropped");
}
