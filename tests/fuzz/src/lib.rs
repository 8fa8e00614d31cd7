//! Fuzz targets for every decoder of stored bytes, each is a unit test that `cargo test`
//! runs on its corpus and a fixed set of generated inputs, and that `cargo bolero test -p persevere-fuzz decoders::<target>
//! --sanitizer NONE` runs under libFuzzer for as long as wanted.

#[cfg(test)]
mod decoders;
#[cfg(test)]
mod fixed;
