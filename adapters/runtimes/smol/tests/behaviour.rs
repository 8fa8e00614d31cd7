//! The driver's behaviour suite on smol.

mod suite {
    persevere_driver::behaviour_suite!(smol::block_on, persevere_smol::Smol);
}
