//! `postgres://` keys open the PostgreSQL journal (the server in `PERSEVERE_POSTGRES_URL`).

mod common;

use common::*;
use persevere_kameo::PersistentActor;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_key_keeps_snapshots_across_a_respawn() {
    let Ok(server) = std::env::var("PERSEVERE_POSTGRES_URL") else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "PostgreSQL kameo test skipped: set PERSEVERE_POSTGRES_URL to run it"
        );
        return;
    };
    let schema = format!("kameo_{}", std::process::id());
    let base = server
        .split('?')
        .next()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned();
    let key = key(&format!("{base}/dora?schema={schema}"));
    let dora = Profile::spawn_persistent(key.clone(), profile("dora"))
        .await
        .expect("spawn");
    for n in 1..=2 {
        assert_eq!(dora.ask(Visit).await.expect("visit"), n);
    }
    stop(&dora).await;
    let again = Profile::respawn_persistent(key).await.expect("respawn");
    assert_eq!(again.ask(Visits).await.expect("visits"), 2);
    stop(&again).await;
    let config = persevere_postgres::PostgresConfig::from_url(&server).expect("a URL");
    let client = config.connect().expect("a client");
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .expect("the test schema is dropped");
}
