//! The global order a reader follows never skips a transaction that commits late.

mod common;

use persevere_postgres::GlobalPosition;

#[test]
fn a_late_committing_transaction_is_not_skipped() {
    let Some(server) = common::server() else {
        return;
    };
    let schema = common::Schema::new(&server, "global");
    let mut store = schema.open();
    let s = schema.config.schema().to_owned();
    assert_eq!(
        common::one(&mut store, common::append("first", 1, 0, b"f1")),
        Ok(persevere_core::Completion::Done)
    );

    // A writer whose transaction started (and took its id) before the next append, and
    // commits after it.
    let mut late = schema.config.connect().expect("a client");
    let tx = futures::executor::block_on(late.transaction()).expect("a transaction");
    futures::executor::block_on(tx.batch_execute(&format!(
        "INSERT INTO \"{s}\".streams VALUES ('late', 1);
         INSERT INTO \"{s}\".events (stream, seq, payload) VALUES ('late', 1, 'l1')"
    )))
    .expect("the late insert");
    assert_eq!(
        common::one(&mut store, common::append("early", 2, 0, b"e1")),
        Ok(persevere_core::Completion::Done)
    );

    // While the late transaction runs, the reader stops before it.
    let seen = store
        .read_global(GlobalPosition::default(), 100)
        .expect("a read");
    let streams: Vec<&str> = seen.iter().map(|e| e.stream.as_str()).collect();
    assert_eq!(streams, ["first"]);
    let after = seen[0].position;

    futures::executor::block_on(tx.commit()).expect("the late commit");
    let seen = store.read_global(after, 100).expect("a read");
    let streams: Vec<&str> = seen.iter().map(|e| e.stream.as_str()).collect();
    assert_eq!(streams, ["late", "early"]);
    assert!(seen.windows(2).all(|w| w[0].position < w[1].position));
    assert!(store
        .read_global(seen[1].position, 100)
        .expect("a read")
        .is_empty());
}
