//! The cases, grouped by the rule they check.

mod append;
mod batch;
mod delete;
mod durability;
mod isolation;
mod journal;
mod read;
mod snapshot;

use crate::case::Case;

macro_rules! cases {
    ($($module:ident :: $name:ident $(($reopen:tt))?),* $(,)?) => {
        /// Every case, in run order.
        pub(crate) static ALL: &[Case] = &[
            $(Case {
                name: stringify!($name),
                needs_reopen: cases!(@reopen $($reopen)?),
                check: $module::$name,
            }),*
        ];
    };
    (@reopen) => { false };
    (@reopen reopen) => { true };
}

cases! {
    append::append_to_a_new_stream,
    append::appends_advance_the_head,
    append::stale_expected_last_conflicts,
    append::conflict_writes_nothing,
    append::expected_last_ahead_of_head_conflicts,
    append::nonzero_expected_on_a_new_stream_conflicts,
    append::expected_zero_on_a_written_stream_conflicts,
    append::large_batch_is_atomic,
    append::non_contiguous_append_writes_nothing,
    append::append_with_a_snapshot_not_at_its_last_seq_writes_nothing,
    append::racing_appends_in_one_batch_one_wins,
    read::reads_return_events_in_seq_order,
    read::read_from_a_middle_seq,
    read::reads_respect_the_limit,
    read::read_beyond_the_head_is_empty,
    read::reads_report_the_head,
    read::unknown_stream_is_empty,
    read::bytes_round_trip_exactly,
    snapshot::snapshot_save_and_load,
    snapshot::latest_snapshot_is_the_highest_seq,
    snapshot::snapshot_before_is_exclusive,
    snapshot::snapshot_with_the_same_seq_is_replaced,
    snapshot::retention_keeps_the_newest_n,
    snapshot::retention_keeps_at_least_one,
    snapshot::snapshots_do_not_move_the_head,
    delete::delete_events_up_to_is_inclusive,
    delete::compaction_keeps_the_head,
    delete::append_after_full_compaction_continues_at_the_head,
    delete::delete_events_keeps_snapshots,
    delete::deletes_on_an_unknown_stream_are_harmless,
    isolation::similar_stream_names_are_isolated,
    isolation::snapshots_are_isolated,
    isolation::deletes_are_isolated,
    isolation::heads_are_per_stream,
    isolation::unusual_stream_names_work,
    batch::append_with_snapshot_is_atomic,
    batch::append_with_snapshot_conflict_writes_neither,
    batch::results_come_in_batch_order,
    batch::many_streams_in_one_batch,
    batch::commands_of_a_stream_apply_in_batch_order,
    batch::conflict_in_a_batch_spares_the_others,
    journal::journal_persists_and_recovers,
    journal::journals_append_concurrently_in_shared_batches,
    journal::threads_append_concurrently,
    journal::stale_writer_never_overwrites,
    durability::reopen_keeps_acknowledged_appends(reopen),
    durability::reopen_keeps_snapshots_compaction_and_head(reopen),
    durability::reopen_then_continue_appending(reopen),
}
