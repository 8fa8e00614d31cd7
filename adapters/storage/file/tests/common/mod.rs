//! Helpers shared by the integration tests: the conformance kit's fixtures.
#![allow(dead_code)]

pub use persevere_conformance::fixtures::*;

/// A frame of format 1 (magic, length, header CRC, payload, CRC): computable by anyone.
fn forged_v1(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0x4D52_4650u32.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let hcrc = crc32fast::hash(&out);
    out.extend_from_slice(&hcrc.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A frame of format 2 under a guessed store id (0) and chain value (0).
fn forged_v2(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0x4D52_4650u32.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&0u64.to_le_bytes());
    h.update(&out);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    let mut crc = crc32fast::Hasher::new_with_initial(0);
    crc.update(&out);
    let crc = crc.finalize();
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A frame of format 2 whose header checksum leaves the store id out.
fn forged_v2_without_id(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0x4D52_4650u32.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let hcrc = crc32fast::hash(&out);
    out.extend_from_slice(&hcrc.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// An event (64 KiB) whose bytes are full of frames that look valid, each holding a
/// plausible operation: what a hostile or unlucky payload can contain.
pub fn hostile_event(seq: u64) -> Vec<u8> {
    let mut bytes = format!("hostile {seq} ").into_bytes();
    let mut op = vec![1, 0, 0, 0, 1, 1, 0, 0, 0, b'x'];
    op.extend_from_slice(&0u64.to_le_bytes());
    op.extend_from_slice(&0u32.to_le_bytes());
    op.push(0);
    while bytes.len() < 64 << 10 {
        bytes.extend_from_slice(&forged_v1(&op));
        bytes.extend_from_slice(&forged_v2(&op));
        bytes.extend_from_slice(&forged_v2_without_id(&op));
    }
    bytes
}
