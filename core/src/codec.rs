//! Codecs turn events and snapshots into payload bytes and back.

use thiserror::Error;

/// Why a value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct CodecError {
    message: String,
}

impl CodecError {
    /// A codec error carrying `message`.
    pub fn new(message: impl std::fmt::Display) -> Self {
        Self {
            message: message.to_string(),
        }
    }
}

/// A serialization format for payloads, chosen per journal as a type parameter.
///
/// A codec is a zero-sized marker: its functions are associated functions, so choosing one costs
/// nothing at run time. Its [`ID`](Codec::ID) is written into every record, and a record written
/// with another codec is refused on read instead of being misinterpreted.
///
/// ```
/// use persevere_core::{Borsh, Codec};
/// let mut bytes = Vec::new();
/// <Borsh as Codec<u32>>::encode(&7, &mut bytes).unwrap();
/// assert_eq!(<Borsh as Codec<u32>>::decode(&bytes).unwrap(), 7);
/// ```
pub trait Codec<T>: 'static {
    /// The identifier stored in each record's envelope.
    const ID: u8;
    /// Appends the encoding of `value` to `out`.
    fn encode(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError>;
    /// Decodes a whole payload; trailing bytes are an error.
    fn decode(bytes: &[u8]) -> Result<T, CodecError>;
}

/// The default codec: [borsh](https://borsh.io), compact and deterministic (codec id 1).
#[derive(Debug, Clone, Copy, Default)]
pub struct Borsh;

impl<T: borsh::BorshSerialize + borsh::BorshDeserialize + 'static> Codec<T> for Borsh {
    const ID: u8 = 1;

    fn encode(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        value.serialize(out).map_err(CodecError::new)
    }

    fn decode(bytes: &[u8]) -> Result<T, CodecError> {
        borsh::from_slice(bytes).map_err(CodecError::new)
    }
}

/// The serde codec: JSON as specified by RFC 8259, through `serde_json` (codec id 2).
///
/// Field names are written out, so records stay readable with any JSON tool and tolerate added
/// optional fields (`#[serde(default)]`) without an upcaster.
#[cfg(feature = "serde")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

#[cfg(feature = "serde")]
impl<T: serde::Serialize + serde::de::DeserializeOwned + 'static> Codec<T> for Json {
    const ID: u8 = 2;

    fn encode(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        serde_json::to_writer(out, value).map_err(CodecError::new)
    }

    fn decode(bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(CodecError::new)
    }
}
