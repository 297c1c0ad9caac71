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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Compression {
    /// No compression.
    None,
    /// Zstandard at `level`, optionally after a byte shuffle.
    Zstd {
        /// Compression level.
        level: i32,
        /// Byte-shuffle elements first (numcodecs `shuffle`).
        shuffle: bool,
    },
    /// gzip (zlib deflate) at `level`, optionally after a byte shuffle.
    Gzip {
        /// Compression level.
        level: u32,
        /// Byte-shuffle elements first.
        shuffle: bool,
    },
    /// Blosc with an inner compressor and its own byte shuffle.
    Blosc {
        /// `zstd`, `lz4`, `lz4hc`, `zlib` or `blosclz`.
        cname: String,
        /// 0–9.
        level: u8,
    },
}

impl Default for Compression {
    /// Byte shuffle + LZ4 as `blosc` (cname lz4, clevel 9, shuffle by element size): a
    /// core codec of the Zarr v3 specification and a standard numcodecs id in v2, so every
    /// reader opens it (`numcodecs.shuffle` is outside the v3 specification: zarr-python
    /// warns on it and tensorstore refuses it; tensorstore's v2 driver refuses any
    /// filter). The fastest such chain whose compression ratio is no worse than xarray's
    /// default on the ERA5-like data (scripts/bench-codecs.sh): 556 MB/s at a ratio of
    /// 3.10, where xarray's zstd without shuffle gives 2.97 and `blosc-zstd:1` 3.71 at
    /// 398 MB/s.
    fn default() -> Self {
        Compression::Blosc {
            cname: "lz4".into(),
            level: 9,
        }
    }
}

impl FromStr for Compression {
    type Err = String;

    /// Parses `none`, `zstd[:L]`, `gzip[:L]`, `shuffle-zstd[:L]`, `shuffle-gzip[:L]`, `blosc-<cname>[:L]`.
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
        let (shuffle, base) = match name.strip_prefix("shuffle-") {
            Some(rest) => (true, rest),
            None => (false, name),
        };
        match base {
            "none" | "" if level.is_none() && !shuffle => Ok(Compression::None),
            "zstd" => Ok(Compression::Zstd {
                level: parse_level(3, -7, 22)? as i32,
                shuffle,
            }),
            "gzip" | "zlib" => Ok(Compression::Gzip {
                level: parse_level(5, 0, 9)? as u32,
                shuffle,
            }),
            _ if !shuffle => match base
                .strip_prefix("blosc-")
                .or_else(|| (base == "blosc").then_some("zstd"))
            {
                Some(cname @ ("zstd" | "lz4" | "lz4hc" | "zlib" | "blosclz")) => Ok(Compression::Blosc {
                    cname: cname.to_string(),
                    level: parse_level(3, 0, 9)? as u8,
                }),
                _ => Err(unknown(&s)),
            },
            _ => Err(unknown(&s)),
        }
    }
}

fn unknown(s: &str) -> String {
    format!(
        "unknown compression {s:?}; use none, zstd:LEVEL, gzip:LEVEL, shuffle-zstd:LEVEL, shuffle-gzip:LEVEL or \
         blosc-zstd:LEVEL (also blosc-lz4, blosc-lz4hc, blosc-zlib)"
    )
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sh = |s: bool| if s { "shuffle-" } else { "" };
        match self {
            Compression::None => write!(f, "none"),
            Compression::Zstd { level, shuffle } => write!(f, "{}zstd:{level}", sh(*shuffle)),
            Compression::Gzip { level, shuffle } => write!(f, "{}gzip:{level}", sh(*shuffle)),
            Compression::Blosc { cname, level } => write!(f, "blosc-{cname}:{level}"),
        }
    }
}

impl Compression {
    /// Whether a byte shuffle runs before the compressor for elements of `dtype`.
    fn shuffles(&self, dtype: DType) -> bool {
        let wanted = matches!(
            self,
            Compression::Zstd { shuffle: true, .. } | Compression::Gzip { shuffle: true, .. }
        );
        wanted && dtype.size().is_some_and(|s| s > 1)
    }

    /// The Zarr v2 `filters` entries this compression needs (before the compressor).
    pub fn v2_filters(&self, dtype: DType) -> Vec<Json> {
        if self.shuffles(dtype) {
            vec![json_obj! {"id" => "shuffle", "elementsize" => dtype.size().unwrap_or(1)}]
        } else {
            Vec::new()
        }
    }

    /// The Zarr v2 `compressor` object (`null` for none).
    pub fn v2_compressor(&self, dtype: DType) -> Json {
        match self {
            Compression::None => Json::Null,
            // No `checksum` member (numcodecs' default is off): tensorstore refuses it.
            Compression::Zstd { level, .. } => json_obj! {"id" => "zstd", "level" => i64::from(*level)},
            Compression::Gzip { level, .. } => json_obj! {"id" => "gzip", "level" => u64::from(*level)},
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
        let mut codecs = Vec::new();
        if self.shuffles(dtype) {
            codecs.push(json_obj! {
                "name" => "numcodecs.shuffle",
                "configuration" => json_obj! {"elementsize" => dtype.size().unwrap_or(1)},
            });
        }
        match self {
            Compression::None => {}
            Compression::Zstd { level, .. } => codecs.push(json_obj! {
                "name" => "zstd",
                "configuration" => json_obj! {"level" => i64::from(*level), "checksum" => false},
            }),
            Compression::Gzip { level, .. } => codecs.push(json_obj! {
                "name" => "gzip",
                "configuration" => json_obj! {"level" => u64::from(*level)},
            }),
            Compression::Blosc { cname, level } => {
                let size = dtype.size().unwrap_or(1) as u64;
                codecs.push(json_obj! {
                    "name" => "blosc",
                    "configuration" => json_obj! {
                        "cname" => cname.as_str(),
                        "clevel" => u64::from(*level),
                        "shuffle" => if size > 1 { "shuffle" } else { "noshuffle" },
                        "typesize" => size,
                        "blocksize" => 0u64,
                    },
                });
            }
        }
        codecs
    }
}

/// Encodes and decodes the chunks of one array.
pub struct ChunkCodec {
    array: Array<MemoryStore>,
    /// The same chain without its leading byte shuffle, which nc2zarr then does itself
    /// (zarrs' shuffle is a plain byte loop and showed up at 11% of a profile).
    encoder: Option<(Array<MemoryStore>, usize)>,
    /// The zstd level when the chain (after that shuffle) is just `bytes` + `zstd`
    /// without checksum: such chunks are compressed with a per-thread zstd context,
    /// reused between chunks (zarrs makes a new one per chunk, whose fresh tables cost
    /// page faults on every chunk).
    plain_zstd: Option<i32>,
    options: CodecOptions,
}

/// A codec failure, with zarrs' message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

impl ChunkCodec {
    /// Builds the codec chain from array metadata (v2 `.zarray` or v3 `zarr.json`, as
    /// written, without attributes). `dtype` is the variable's element type (char data
    /// is encoded as its byte-identical `uint8` twin).
    pub fn new(metadata: &Json, dtype: DType) -> Result<ChunkCodec, CodecError> {
        let twin = twin_metadata(metadata, dtype);
        let array = build_array(&twin)?;
        let unshuffled = without_shuffle(&twin);
        let plain_zstd = plain_zstd_level(unshuffled.as_ref().map_or(&twin, |(m, _)| m));
        let encoder = match unshuffled {
            Some((meta, elementsize)) => Some((build_array(&meta)?, elementsize)),
            None => None,
        };
        // Concurrency comes from nc2zarr's own pipeline: one chunk per task.
        let options = CodecOptions::default().with_concurrent_target(1);
        Ok(ChunkCodec {
            array,
            encoder,
            plain_zstd,
            options,
        })
    }

    fn shape(chunk_shape: &[u64]) -> Vec<NonZeroU64> {
        chunk_shape
            .iter()
            .map(|&n| NonZeroU64::new(n.max(1)).expect("non-zero"))
            .collect()
    }

    /// Encodes one full-size chunk (or shard).
    pub fn encode(&self, block: &Block, chunk_shape: &[u64]) -> Result<Vec<u8>, CodecError> {
        if let (Block::Fixed(b), Some(level)) = (block, self.plain_zstd) {
            return match &self.encoder {
                Some((_, elementsize)) => shuffle_zstd_compress(b, *elementsize, level),
                None => zstd_compress(b, level),
            };
        }
        let (array, shuffled);
        let bytes: ArrayBytes = match (block, &self.encoder) {
            (Block::Strings(v), _) => {
                array = &self.array;
                ArrayBytes::from_elements_string(v)?
            }
            (Block::Fixed(b), Some((twin, elementsize))) => {
                array = twin;
                shuffled = byte_shuffle(b, *elementsize);
                ArrayBytes::new_flen(shuffled.as_slice())
            }
            (Block::Fixed(b), None) => {
                array = &self.array;
                ArrayBytes::new_flen(b.as_slice())
            }
        };
        let encoded = array
            .codecs()
            .encode(
                bytes,
                &Self::shape(chunk_shape),
                array.data_type(),
                array.fill_value(),
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

fn build_array(meta: &Json) -> Result<Array<MemoryStore>, CodecError> {
    let meta: ArrayMetadata = serde_json::from_value(meta.to_serde())
        .map_err(|e| CodecError(format!("metadata not understood by zarrs: {e}")))?;
    Array::new_with_metadata(Arc::new(MemoryStore::new()), "/", meta).map_err(|e| CodecError(e.to_string()))
}

/// The metadata with a top-level byte shuffle removed, and its element size; `None`
/// when there is none (or it sits inside a sharding codec).
fn without_shuffle(meta: &Json) -> Option<(Json, usize)> {
    let Json::Obj(fields) = meta else { return None };
    let mut elementsize = None;
    let fields = fields
        .iter()
        .map(|(k, v)| {
            let v = match (k.as_str(), v) {
                ("codecs", Json::Arr(codecs)) => Json::Arr(
                    codecs
                        .iter()
                        .filter(|c| {
                            let shuffle = c.get("name").and_then(Json::as_str) == Some("numcodecs.shuffle");
                            if shuffle {
                                elementsize = c
                                    .get("configuration")
                                    .and_then(|c| c.get("elementsize"))
                                    .and_then(Json::as_u64);
                            }
                            !shuffle
                        })
                        .cloned()
                        .collect(),
                ),
                ("filters", Json::Arr(filters)) => {
                    let kept: Vec<Json> = filters
                        .iter()
                        .filter(|f| {
                            let shuffle = f.get("id").and_then(Json::as_str) == Some("shuffle");
                            if shuffle {
                                elementsize = f.get("elementsize").and_then(Json::as_u64);
                            }
                            !shuffle
                        })
                        .cloned()
                        .collect();
                    if kept.is_empty() { Json::Null } else { Json::Arr(kept) }
                }
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    elementsize.map(|e| (Json::Obj(fields), e as usize))
}

/// The zstd level of a chain that is only `bytes` (little-endian) and `zstd` without
/// checksum (v3), or a v2 array with no filters and a zstd compressor.
fn plain_zstd_level(meta: &Json) -> Option<i32> {
    let level = |c: &Json| match c.get("level") {
        Some(Json::Int(l)) => i32::try_from(*l).ok(),
        Some(Json::UInt(l)) => i32::try_from(*l).ok(),
        _ => None,
    };
    let no_checksum = |c: &Json| !matches!(c.get("checksum"), Some(Json::Bool(true)));
    if let Some(Json::Arr(codecs)) = meta.get("codecs") {
        let [bytes, zstd] = codecs.as_slice() else { return None };
        let name = |c: &Json| c.get("name").and_then(Json::as_str).map(str::to_owned);
        let endian = bytes
            .get("configuration")
            .and_then(|c| c.get("endian"))
            .and_then(Json::as_str);
        let config = zstd.get("configuration")?;
        return (name(bytes).as_deref() == Some("bytes")
            && matches!(endian, None | Some("little"))
            && name(zstd).as_deref() == Some("zstd")
            && no_checksum(config))
        .then(|| level(config))
        .flatten();
    }
    let compressor = meta.get("compressor")?;
    let filters_empty = matches!(meta.get("filters"), None | Some(Json::Null));
    let little = meta
        .get("dtype")
        .and_then(Json::as_str)
        .is_some_and(|d| d.starts_with('<') || d.starts_with('|'));
    (filters_empty && little && compressor.get("id").and_then(Json::as_str) == Some("zstd") && no_checksum(compressor))
        .then(|| level(compressor))
        .flatten()
}

/// Compresses `data` as one zstd frame at `level`, with this thread's reused context.
fn zstd_compress(data: &[u8], level: i32) -> Result<Vec<u8>, CodecError> {
    thread_local! {
        static CONTEXT: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
            const { std::cell::RefCell::new(None) };
    }
    let err = |e: std::io::Error| CodecError(format!("zstd: {e}"));
    CONTEXT.with_borrow_mut(|context| {
        if context.as_ref().is_none_or(|(l, _)| *l != level) {
            *context = Some((level, zstd::bulk::Compressor::new(level).map_err(err)?));
        }
        let (_, compressor) = context.as_mut().expect("just set");
        compressor.compress(data).map_err(err)
    })
}

/// Byte shuffle (numcodecs `shuffle`): byte `b` of element `i` goes to `b * n + i`.
pub fn byte_shuffle(input: &[u8], elementsize: usize) -> Vec<u8> {
    let mut out = vec![0u8; input.len()];
    byte_shuffle_into(input, elementsize, &mut out);
    out
}

/// [`byte_shuffle`] into `out` (as long as `input`).
fn byte_shuffle_into(input: &[u8], elementsize: usize, out: &mut [u8]) {
    let n = input.len() / elementsize;
    let (planes, tail) = out.split_at_mut(n * elementsize);
    tail.copy_from_slice(&input[n * elementsize..]);
    match elementsize {
        4 => {
            let (a, rest) = planes.split_at_mut(n);
            let (b, rest) = rest.split_at_mut(n);
            let (c, d) = rest.split_at_mut(n);
            for ((e, (a, b)), (c, d)) in input
                .chunks_exact(4)
                .zip(a.iter_mut().zip(b.iter_mut()))
                .zip(c.iter_mut().zip(d.iter_mut()))
            {
                (*a, *b, *c, *d) = (e[0], e[1], e[2], e[3]);
            }
        }
        _ => {
            for (byte, plane) in planes.chunks_exact_mut(n.max(1)).enumerate().take(elementsize) {
                for (o, i) in plane.iter_mut().zip(input[byte..].iter().step_by(elementsize)) {
                    *o = *i;
                }
            }
        }
    }
}

/// Byte-shuffles `input` into this thread's reused buffer and compresses that with zstd:
/// a fresh buffer per chunk would cost a page fault per 4 KiB.
fn shuffle_zstd_compress(input: &[u8], elementsize: usize, level: i32) -> Result<Vec<u8>, CodecError> {
    thread_local! {
        static SHUFFLED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SHUFFLED.with_borrow_mut(|buf| {
        if buf.capacity() > 2 * input.len() {
            *buf = Vec::new(); // left by a larger array: keep memory to what the plan counts
        }
        buf.resize(input.len(), 0);
        byte_shuffle_into(input, elementsize, buf);
        zstd_compress(buf, level)
    })
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
                    use base64::Engine as _;
                    let byte = v.as_str().and_then(|s| {
                        base64::engine::general_purpose::STANDARD
                            .decode(s)
                            .ok()?
                            .first()
                            .copied()
                    });
                    match byte {
                        Some(b) => Json::Int(b.into()),
                        None if v3 => Json::Int(0),
                        None => Json::Null,
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
    fn byte_shuffle_matches_numcodecs_layout() {
        let input: Vec<u8> = (0..12).collect();
        assert_eq!(byte_shuffle(&input, 4), vec![0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
        assert_eq!(byte_shuffle(&input, 2), vec![0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11]);
        assert_eq!(byte_shuffle(&input, 8), input, "one element: nothing moves");
        assert_eq!(byte_shuffle(&input[..8], 2), vec![0, 2, 4, 6, 1, 3, 5, 7]);
    }

    /// `data` encoded by zarrs' own full codec chain of `codec`.
    fn zarrs_encode(codec: &ChunkCodec, data: &[u8], shape: &[u64]) -> Vec<u8> {
        codec
            .array
            .codecs()
            .encode(
                ArrayBytes::new_flen(data),
                &ChunkCodec::shape(shape),
                codec.array.data_type(),
                codec.array.fill_value(),
                &codec.options,
            )
            .unwrap()
            .into_owned()
    }

    #[test]
    fn own_shuffle_encodes_exactly_like_zarrs() {
        let meta = json_obj! {
            "shape" => vec![6u64], "data_type" => "float32",
            "chunk_grid" => json_obj! {"name" => "regular", "configuration" => json_obj! {"chunk_shape" => vec![6u64]}},
            "chunk_key_encoding" => json_obj! {"name" => "default"},
            "fill_value" => 0.0f64,
            "codecs" => Json::Arr(vec![
                json_obj! {"name" => "bytes", "configuration" => json_obj! {"endian" => "little"}},
                json_obj! {"name" => "numcodecs.shuffle", "configuration" => json_obj! {"elementsize" => 4u64}},
                json_obj! {"name" => "zstd", "configuration" => json_obj! {"level" => 3i64, "checksum" => false}},
            ]),
            "zarr_format" => 3u64, "node_type" => "array",
        };
        let codec = ChunkCodec::new(&meta, DType::F32).unwrap();
        assert!(codec.encoder.is_some());
        let data: Vec<u8> = [1.5f32, -2.0, 3.25, 1e30, 0.0, 7.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let block = Block::Fixed(data.clone());
        let ours = codec.encode(&block, &[6]).unwrap();
        assert_eq!(ours, zarrs_encode(&codec, &data, &[6]));
        assert_eq!(codec.decode(&ours, &[6]).unwrap(), block);
    }

    #[test]
    fn reused_zstd_context_encodes_exactly_like_zarrs() {
        let data: Vec<u8> = (0..5000u32)
            .flat_map(|i| ((i as f32 * 0.01).sin() * 300.0).to_le_bytes())
            .collect();
        let v3 = |codecs: Vec<Json>| {
            json_obj! {
                "shape" => vec![5000u64], "data_type" => "float32",
                "chunk_grid" => json_obj! {"name" => "regular", "configuration" => json_obj! {"chunk_shape" => vec![5000u64]}},
                "chunk_key_encoding" => json_obj! {"name" => "default"},
                "fill_value" => 0.0f64, "codecs" => Json::Arr(codecs),
                "zarr_format" => 3u64, "node_type" => "array",
            }
        };
        let bytes = json_obj! {"name" => "bytes", "configuration" => json_obj! {"endian" => "little"}};
        let zstd = |level: i64| json_obj! {"name" => "zstd", "configuration" => json_obj! {"level" => level, "checksum" => false}};
        let shuffle = json_obj! {"name" => "numcodecs.shuffle", "configuration" => json_obj! {"elementsize" => 4u64}};
        let v2 = |filters: Json| {
            json_obj! {
                "shape" => vec![5000u64], "chunks" => vec![5000u64], "dtype" => "<f4",
                "compressor" => json_obj! {"id" => "zstd", "level" => 5i64},
                "fill_value" => Json::Null, "filters" => filters, "order" => "C", "zarr_format" => 2u64,
            }
        };
        let cases = [
            (v3(vec![bytes.clone(), zstd(3)]), Some(3)),
            (v3(vec![bytes.clone(), shuffle.clone(), zstd(1)]), Some(1)),
            (v2(Json::Null), Some(5)),
            (
                v2(Json::Arr(vec![json_obj! {"id" => "shuffle", "elementsize" => 4u64}])),
                Some(5),
            ),
            (
                v3(vec![
                    bytes.clone(),
                    json_obj! {"name" => "zstd", "configuration" => json_obj! {"level" => 3i64, "checksum" => true}},
                ]),
                None,
            ),
        ];
        for (meta, level) in cases {
            let codec = ChunkCodec::new(&meta, DType::F32).unwrap();
            assert_eq!(codec.plain_zstd, level, "{meta:?}");
            let block = Block::Fixed(data.clone());
            let ours = codec.encode(&block, &[5000]).unwrap();
            assert_eq!(ours, zarrs_encode(&codec, &data, &[5000]), "{meta:?}");
            assert_eq!(codec.decode(&ours, &[5000]).unwrap(), block);
        }
    }

    #[test]
    fn parses_compression_specs() {
        assert_eq!(
            "zstd:3".parse::<Compression>().unwrap(),
            Compression::Zstd {
                level: 3,
                shuffle: false
            }
        );
        assert_eq!(
            "zstd".parse::<Compression>().unwrap(),
            Compression::Zstd {
                level: 3,
                shuffle: false
            }
        );
        assert_eq!(
            "shuffle-zstd:1".parse::<Compression>().unwrap(),
            Compression::Zstd {
                level: 1,
                shuffle: true
            }
        );
        assert_eq!(
            "gzip:5".parse::<Compression>().unwrap(),
            Compression::Gzip {
                level: 5,
                shuffle: false
            }
        );
        assert!("shuffle-none".parse::<Compression>().is_err());
        assert!("shuffle-blosc-lz4".parse::<Compression>().is_err());
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
        for c in [
            "zstd:3",
            "gzip:5",
            "none",
            "blosc-lz4:5",
            "shuffle-zstd:3",
            "shuffle-gzip:1",
        ] {
            assert_eq!(c.parse::<Compression>().unwrap().to_string(), c);
        }
    }
}
