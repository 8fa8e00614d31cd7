//! The driver's behaviour suite on async-std.

mod suite {
    persevere_driver::behaviour_suite!(async_std::task::block_on, persevere_async_std::AsyncStd);
}
