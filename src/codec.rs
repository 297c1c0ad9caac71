//! Compression settings and chunk encoding/decoding through zarrs' codecs.
//!
//! nc2zarr writes Zarr metadata itself (see [`crate::meta`]) and asks zarrs to build
//! the codec chain from that same metadata, so the bytes it stores are exactly what
//! the metadata describes. Char data (`|S1` / `null_terminated_bytes`), which zarrs
//! has no data type for, is encoded as its byte-identical twin `uint8`.

use std::num::NonZeroU64;
use std::str::FromStr;
use std::sync::Arc;

use zarrs::array::codec::api::{ArrayToBytesCodecTraits, CodecOptions};
use zarrs::array::{Array, ArrayBytes, ArrayMetadata};
use zarrs::storage::store::MemoryStore;

use crate::json::Json;
use crate::json_obj;
use crate::model::DType;
use crate::slab::Block;

/// A compression choice from `--compression`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    None,
    /// Zstandard at `level`.
    Zstd(i32),
    /// gzip (zlib deflate) at `level`.
    Gzip(u32),
    /// Blosc with an inner compressor and byte shuffle.
    Blosc {
        /// `zstd`, `lz4`, `lz4hc`, `zlib` or `blosclz`.
        cname: String,
        /// 0–9.
        level: u8,
    },
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Zstd(3)
    }
}

impl FromStr for Compression {
    type Err = String;

    /// Parses `none`, `zstd[:L]`, `gzip[:L]`, `blosc-<cname>[:L]`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        let (name, level) = match s.split_once(':') {
            Some((n, l)) => (n, Some(l)),
            None => (s.as_str(), None),
        };
        let parse_level = |default: i64, lo: i64, hi: i64| -> Result<i64, String> {
            let Some(l) = level else { return Ok(default) };
            let v: i64 = l
                .parse()
                .map_err(|_| format!("compression level {l:?} is not a number"))?;
            if !(lo..=hi).contains(&v) {
                return Err(format!("{name} level must be between {lo} and {hi}, not {v}"));
            }
            Ok(v)
        };
        match name {
            "none" | "" if level.is_none() => Ok(Compression::None),
            "zstd" => Ok(Compression::Zstd(parse_level(3, -7, 22)? as i32)),
            "gzip" | "zlib" => Ok(Compression::Gzip(parse_level(5, 0, 9)? as u32)),
            _ => match name
                .strip_prefix("blosc-")
                .or_else(|| (name == "blosc").then_some("zstd"))
            {
                Some(cname @ ("zstd" | "lz4" | "lz4hc" | "zlib" | "blosclz")) => Ok(Compression::Blosc {
                    cname: cname.to_string(),
                    level: parse_level(3, 0, 9)? as u8,
                }),
                _ => Err(format!(
                    "unknown compression {s:?}; use none, zstd:LEVEL, gzip:LEVEL or blosc-zstd:LEVEL (also blosc-lz4, blosc-lz4hc, blosc-zlib)"
                )),
            },
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Compression::None => write!(f, "none"),
            Compression::Zstd(l) => write!(f, "zstd:{l}"),
            Compression::Gzip(l) => write!(f, "gzip:{l}"),
            Compression::Blosc { cname, level } => write!(f, "blosc-{cname}:{level}"),
        }
    }
}

impl Compression {
    /// The Zarr v2 `compressor` object (`null` for none).
    pub fn v2_compressor(&self, dtype: DType) -> Json {
        match self {
            Compression::None => Json::Null,
            Compression::Zstd(l) => {
                json_obj! {"id" => "zstd", "level" => i64::from(*l), "checksum" => false}
            }
            Compression::Gzip(l) => json_obj! {"id" => "gzip", "level" => u64::from(*l)},
            Compression::Blosc { cname, level } => json_obj! {
                "id" => "blosc",
                "cname" => cname.as_str(),
                "clevel" => u64::from(*level),
                "shuffle" => if dtype.size().unwrap_or(1) > 1 { 1u64 } else { 0u64 },
                "blocksize" => 0u64,
            },
        }
    }

    /// The Zarr v3 bytes-to-bytes codecs that follow the serializer.
    pub fn v3_codecs(&self, dtype: DType) -> Vec<Json> {
        match self {
            Compression::None => vec![],
            Compression::Zstd(l) => vec![json_obj! {
                "name" => "zstd",
                "configuration" => json_obj! {"level" => i64::from(*l), "checksum" => false},
            }],
            Compression::Gzip(l) => vec![json_obj! {
                "name" => "gzip",
                "configuration" => json_obj! {"level" => u64::from(*l)},
            }],
            Compression::Blosc { cname, level } => {
                let size = dtype.size().unwrap_or(1) as u64;
                vec![json_obj! {
                    "name" => "blosc",
                    "configuration" => json_obj! {
                        "cname" => cname.as_str(),
                        "clevel" => u64::from(*level),
                        "shuffle" => if size > 1 { "shuffle" } else { "noshuffle" },
                        "typesize" => size,
                        "blocksize" => 0u64,
                    },
                }]
            }
        }
    }
}

/// Encodes and decodes the chunks of one array.
pub struct ChunkCodec {
    array: Array<MemoryStore>,
    dtype: DType,
    options: CodecOptions,
}

/// A codec failure, with zarrs' message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

impl ChunkCodec {
    /// Builds the codec chain from array metadata (v2 `.zarray` or v3 `zarr.json`, as
    /// written, without attributes). `dtype` says how to interpret blocks.
    pub fn new(metadata: &Json, dtype: DType) -> Result<ChunkCodec, CodecError> {
        let value = twin_metadata(metadata, dtype).to_serde();
        let meta: ArrayMetadata =
            serde_json::from_value(value).map_err(|e| CodecError(format!("metadata not understood by zarrs: {e}")))?;
        let array =
            Array::new_with_metadata(Arc::new(MemoryStore::new()), "/", meta).map_err(|e| CodecError(e.to_string()))?;
        // Concurrency comes from nc2zarr's own pipeline: one chunk per task.
        let options = CodecOptions::default().with_concurrent_target(1);
        Ok(ChunkCodec { array, dtype, options })
    }

    fn shape(chunk_shape: &[u64]) -> Vec<NonZeroU64> {
        chunk_shape
            .iter()
            .map(|&n| NonZeroU64::new(n.max(1)).expect("non-zero"))
            .collect()
    }

    /// Encodes one full-size chunk (or shard).
    pub fn encode(&self, block: &Block, chunk_shape: &[u64]) -> Result<Vec<u8>, CodecError> {
        let bytes: ArrayBytes = match (block, self.dtype) {
            (Block::Strings(v), _) => ArrayBytes::from_elements_string(v)?,
            (Block::Fixed(b), _) => ArrayBytes::new_flen(b.as_slice()),
        };
        let encoded = self
            .array
            .codecs()
            .encode(
                bytes,
                &Self::shape(chunk_shape),
                self.array.data_type(),
                self.array.fill_value(),
                &self.options,
            )
            .map_err(|e| CodecError(e.to_string()))?;
        Ok(encoded.into_owned())
    }

    /// Decodes one stored chunk (or shard) into a block of the full chunk shape.
    pub fn decode(&self, encoded: &[u8], chunk_shape: &[u64]) -> Result<Block, CodecError> {
        let decoded = self
            .array
            .codecs()
            .decode(
                encoded.into(),
                &Self::shape(chunk_shape),
                self.array.data_type(),
                self.array.fill_value(),
                &self.options,
            )
            .map_err(|e| CodecError(e.to_string()))?;
        to_block(decoded)
    }

    /// A block of `shape` holding only the array's fill value (what readers see for an absent object).
    pub fn decode_fill(&self, shape: &[u64]) -> Result<Block, CodecError> {
        let n: u64 = shape.iter().product();
        let bytes = ArrayBytes::new_fill_value(self.array.data_type(), n, self.array.fill_value())
            .map_err(|e| CodecError(e.to_string()))?;
        to_block(bytes)
    }
}

fn to_block(bytes: ArrayBytes<'_>) -> Result<Block, CodecError> {
    match bytes {
        ArrayBytes::Fixed(b) => Ok(Block::Fixed(b.into_owned())),
        ArrayBytes::Variable(v) => {
            let data = v.bytes();
            let strings = v
                .offsets()
                .windows(2)
                .map(|w| String::from_utf8_lossy(&data[w[0]..w[1]]).into_owned())
                .collect();
            Ok(Block::Strings(strings))
        }
        ArrayBytes::Optional(_) => Err(CodecError("unexpected optional data".into())),
    }
}

trait FromStrings {
    fn from_elements_string(v: &[String]) -> Result<ArrayBytes<'static>, CodecError>;
}

impl FromStrings for ArrayBytes<'static> {
    fn from_elements_string(v: &[String]) -> Result<ArrayBytes<'static>, CodecError> {
        let mut bytes = Vec::with_capacity(v.iter().map(String::len).sum());
        let mut offsets = Vec::with_capacity(v.len() + 1);
        offsets.push(0);
        for s in v {
            bytes.extend_from_slice(s.as_bytes());
            offsets.push(bytes.len());
        }
        let offsets = zarrs::array::ArrayBytesOffsets::new(offsets).map_err(|e| CodecError(e.to_string()))?;
        ArrayBytes::new_vlen(bytes, offsets).map_err(|e| CodecError(e.to_string()))
    }
}

/// The metadata zarrs is given: attributes dropped, char types replaced by `uint8`.
fn twin_metadata(metadata: &Json, dtype: DType) -> Json {
    let Json::Obj(fields) = metadata else {
        return metadata.clone();
    };
    let v3 = metadata.get("zarr_format").and_then(Json::as_u64) == Some(3);
    let fields = fields
        .iter()
        .filter(|(k, _)| k != "attributes" && k != "dimension_names")
        .map(|(k, v)| {
            let v = match (k.as_str(), dtype) {
                ("data_type", DType::Char) => Json::from("uint8"),
                ("dtype", DType::Char) => Json::from("|u1"),
                ("fill_value", DType::Char) => {
                    if v3 {
                        Json::Int(0)
                    } else {
                        Json::Null
                    }
                }
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    Json::Obj(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compression_specs() {
        assert_eq!("zstd:3".parse::<Compression>().unwrap(), Compression::Zstd(3));
        assert_eq!("zstd".parse::<Compression>().unwrap(), Compression::Zstd(3));
        assert_eq!("gzip:5".parse::<Compression>().unwrap(), Compression::Gzip(5));
        assert_eq!("none".parse::<Compression>().unwrap(), Compression::None);
        assert_eq!(
            "blosc-zstd:3".parse::<Compression>().unwrap(),
            Compression::Blosc {
                cname: "zstd".into(),
                level: 3
            }
        );
        let e = "brotli:3".parse::<Compression>().unwrap_err();
        assert!(e.contains("unknown compression"), "{e}");
        let e = "gzip:12".parse::<Compression>().unwrap_err();
        assert!(e.contains("between 0 and 9"), "{e}");
        let e = "zstd:x".parse::<Compression>().unwrap_err();
        assert!(e.contains("not a number"), "{e}");
        for c in ["zstd:3", "gzip:5", "none", "blosc-lz4:5"] {
            assert_eq!(c.parse::<Compression>().unwrap().to_string(), c);
        }
    }
}
