//! Zarr metadata documents (v2 and v3), chunk keys and consolidated metadata,
//! written the way zarr-python and xarray write and read them.
//!
//! Fill values follow xarray's conventions: in v2, the `.zarray` `fill_value` *is*
//! the CF `_FillValue` (xarray masks with it), so it is `null` unless the variable has
//! a `_FillValue`. In v3, xarray reads `_FillValue` from the attributes (floats as
//! base64 of a little-endian double), and the Zarr `fill_value` only fills absent chunks.

use std::num::NonZeroU64;

use base64::Engine;
use serde::de::DeserializeOwned;
use zarrs::metadata::v2::{ArrayMetadataV2, DataTypeMetadataV2};
use zarrs::metadata::v3::{ArrayMetadataV3, MetadataV3};

use crate::codec::Compression;
use crate::json::Json;
use crate::json_obj;
use crate::model::VarInfo;
use crate::model::{AttrValue, DType, Scalar, attr};

use crate::model::ZarrFormat;

/// Everything about one array that the writer needs.
#[derive(Debug, Clone)]
pub struct ArrayMeta {
    /// Documents to store, as (key relative to the array, JSON).
    pub documents: Vec<(String, Json)>,
    /// The metadata that describes the codecs (`.zarray` or `zarr.json`).
    pub codec_metadata: Json,
    /// Shape of one stored object: the shard when sharded, else the chunk.
    pub object_shape: Vec<u64>,
    /// One element of fill value (little-endian), or `None` when every object must be
    /// stored (v2 arrays without `_FillValue`). Also used to pad edge objects.
    pub fill: Option<Fill>,
    /// Things the user should know (e.g. an attribute that had to be dropped).
    pub notes: Vec<String>,
}

/// The fill value of an array.
#[derive(Debug, Clone, PartialEq)]
pub enum Fill {
    /// Bytes of one fixed-size element.
    Bytes(Vec<u8>),
    /// The empty string.
    EmptyString,
}

/// Checks that a group or variable name can be a Zarr node name and cannot escape
/// the target prefix.
pub fn check_node_name(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.chars().any(char::is_control)
        || name.starts_with(".z")
        || name == "zarr.json"
        || name == ".nc2zarr";
    if bad {
        Err(format!(
            "name {name:?} cannot be a Zarr node name (empty, '.', '..', contains '/', '\\', NUL or control characters, or is reserved); rename it in the source"
        ))
    } else {
        Ok(())
    }
}

/// Builds the metadata of one array: the `.zarray`/`zarr.json` document as zarrs'
/// metadata types, its attributes with the NaN-aware writer (netCDF attributes often
/// hold NaN, which `serde_json` cannot). Fails only on a document zarrs does not accept,
/// which would be a bug here.
pub fn array_metadata(
    format: ZarrFormat,
    var: &VarInfo,
    chunks: &[u64],
    shards: Option<&[u64]>,
    compression: &Compression,
) -> Result<ArrayMeta, String> {
    let dtype = var.dtype;
    let mut notes = Vec::new();
    let fill_attr = attr(&var.attrs, "_FillValue").and_then(AttrValue::as_scalar);
    // The fill byte of a char variable (`_FillValue = "b"`).
    let char_fill = attr(&var.attrs, "_FillValue")
        .and_then(AttrValue::as_text)
        .map(|t| t.as_bytes().first().copied().unwrap_or(0));
    let fill_scalar = match dtype {
        DType::Char | DType::String => None,
        _ => fill_attr,
    };
    match format {
        ZarrFormat::V2 => {
            // xarray writes a char variable's fill as base64 bytes in `fill_value` and
            // masks with it when reading.
            let char_fill = char_fill.filter(|_| dtype == DType::Char);
            let fill_json = match char_fill {
                Some(b) => Json::from(base64_bytes(&[b])),
                None => fill_scalar.map_or(Json::Null, |s| fill_json(s, dtype)),
            };
            let chunk_shape = chunks
                .iter()
                .map(|&c| NonZeroU64::new(c).ok_or_else(|| format!("variable '{}': a chunk of length 0", var.name)))
                .collect::<Result<Vec<_>, _>>()?;
            let metadata = ArrayMetadataV2::new(
                var.shape.clone(),
                chunk_shape,
                DataTypeMetadataV2::Simple(dtype.zarr_v2_name().to_string()),
                typed(&fill_json)?,
                typed(&compression.v2_compressor(dtype))?,
                typed(&v2_filters(dtype, compression))?,
            );
            // zarrs tags the document with `node_type`, which is no member of a Zarr v2 `.zarray`.
            let zarray = without_field(as_json(&metadata)?, "node_type");
            let mut attrs: Vec<(String, Json)> = var
                .attrs
                .iter()
                .filter(|(k, _)| !(k == "_FillValue" && (fill_scalar.is_some() || char_fill.is_some())))
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect();
            attrs.push(("_ARRAY_DIMENSIONS".into(), Json::from(var.dims.clone())));
            Ok(ArrayMeta {
                documents: vec![(".zarray".into(), zarray.clone()), (".zattrs".into(), Json::Obj(attrs))],
                codec_metadata: zarray,
                object_shape: chunks.to_vec(),
                fill: char_fill
                    .map(|b| Fill::Bytes(vec![b]))
                    .or(fill_scalar.map(|s| Fill::Bytes(s.to_le_bytes(dtype)))),
                notes,
            })
        }
        ZarrFormat::V3 => {
            let missing = attr(&var.attrs, "missing_value").and_then(AttrValue::as_scalar);
            // Absent objects read as this; xarray masks only with the `_FillValue` attribute.
            // Without one, netCDF's default fill is what unwritten source data holds.
            let zarr_fill = fill_scalar
                .or(missing.filter(|m| representable(*m, dtype)))
                .or_else(|| dtype.netcdf_default_fill())
                .unwrap_or(Scalar::I(0));
            let (fill_json, fill) = match dtype {
                DType::String => (Json::from(""), Fill::EmptyString),
                DType::Char => {
                    let b = char_fill.unwrap_or(0);
                    let json = if b == 0 { String::new() } else { base64_bytes(&[b]) };
                    (Json::from(json), Fill::Bytes(vec![b]))
                }
                _ => (fill_json(zarr_fill, dtype), Fill::Bytes(zarr_fill.to_le_bytes(dtype))),
            };
            let mut attrs = Vec::new();
            for (k, v) in &var.attrs {
                if k == "_FillValue" {
                    match xarray_v3_fill_attr(v, dtype) {
                        Some(j) => attrs.push((k.clone(), j)),
                        None => notes.push(format!(
                            "variable '{}': xarray cannot read the _FillValue attribute of a {} array from Zarr v3 (it \
                             fails to open the store), so it is not written: xarray reads fill values there as they \
                             are, unmasked; Zarr v2 (--zarr-format 2) keeps the masking",
                            var.name,
                            dtype.cdl_name()
                        )),
                    }
                } else {
                    attrs.push((k.clone(), v.to_json()));
                }
            }
            let inner_codecs = v3_inner_codecs(dtype, compression);
            let (grid_shape, codecs) = match shards {
                Some(shard) => (
                    shard.to_vec(),
                    vec![json_obj! {
                        "name" => "sharding_indexed",
                        "configuration" => json_obj! {
                            "chunk_shape" => chunks.to_vec(),
                            "codecs" => Json::Arr(inner_codecs),
                            "index_codecs" => Json::Arr(vec![
                                json_obj! {"name" => "bytes", "configuration" => json_obj! {"endian" => "little"}},
                                json_obj! {"name" => "crc32c"},
                            ]),
                            "index_location" => "end",
                        },
                    }],
                ),
                None => (chunks.to_vec(), inner_codecs),
            };
            let data_type = match dtype {
                DType::Char => extension(&json_obj! {
                    "name" => "null_terminated_bytes",
                    "configuration" => json_obj! {"length_bytes" => 1u64},
                })?,
                _ => MetadataV3::new(dtype.zarr_v3_name()),
            };
            let grid =
                json_obj! {"name" => "regular", "configuration" => json_obj! {"chunk_shape" => grid_shape.clone()}};
            let metadata = ArrayMetadataV3::new(
                var.shape.clone(),
                extension(&grid)?,
                data_type,
                typed(&fill_json)?,
                codecs.iter().map(extension).collect::<Result<_, _>>()?,
            )
            .with_dimension_names(Some(var.dims.clone()));
            let doc = with_field(as_json(&metadata)?, "attributes", Json::Obj(attrs), "dimension_names");
            Ok(ArrayMeta {
                documents: vec![("zarr.json".into(), doc.clone())],
                codec_metadata: doc,
                object_shape: grid_shape,
                fill: Some(fill),
                notes,
            })
        }
    }
}

/// `piece` (a fill value, a compressor, a filter list) as the zarrs metadata type `T`.
fn typed<T: DeserializeOwned>(piece: &Json) -> Result<T, String> {
    serde_json::from_value(piece.to_serde())
        .map_err(|e| format!("zarrs does not accept the metadata {}: {e}", piece.to_compact()))
}

/// A v3 extension point (`{"name", "configuration"}`: a codec, the chunk grid) as zarrs
/// metadata. Without a configuration it is written `{"name": …}`, never as the bare-name
/// short form, which some readers refuse.
fn extension(piece: &Json) -> Result<MetadataV3, String> {
    let name = piece
        .get("name")
        .and_then(Json::as_str)
        .ok_or_else(|| format!("{} has no name", piece.to_compact()))?;
    let configuration = match piece.get("configuration").map(Json::to_serde) {
        None => serde_json::Map::new(),
        Some(serde_json::Value::Object(c)) => c,
        Some(other) => return Err(format!("the configuration of {name} is not an object: {other}")),
    };
    Ok(MetadataV3::new_with_configuration(name, configuration))
}

/// A zarrs metadata document as [`Json`], in zarrs' member order.
fn as_json(metadata: &impl serde::Serialize) -> Result<Json, String> {
    let text = serde_json::to_string(metadata).map_err(|e| format!("writing array metadata: {e}"))?;
    Json::parse(&text)
}

/// The v2 `filters` list: `vlen-utf8` for strings, the compression's shuffle, or `null`.
fn v2_filters(dtype: DType, compression: &Compression) -> Json {
    let mut filters = compression.v2_filters(dtype);
    if dtype == DType::String {
        filters.insert(0, json_obj! {"id" => "vlen-utf8"});
    }
    if filters.is_empty() {
        Json::Null
    } else {
        Json::Arr(filters)
    }
}

fn v3_inner_codecs(dtype: DType, compression: &Compression) -> Vec<Json> {
    let serializer = match dtype {
        DType::String => json_obj! {"name" => "vlen-utf8", "configuration" => Json::Obj(vec![])},
        DType::Char | DType::I8 | DType::U8 => json_obj! {"name" => "bytes"},
        _ => json_obj! {"name" => "bytes", "configuration" => json_obj! {"endian" => "little"}},
    };
    let mut codecs = vec![serializer];
    codecs.extend(compression.v3_codecs(dtype));
    codecs
}

/// Bytes as standard base64, the JSON form of bytes fill values.
fn base64_bytes(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// True when `s` is exactly a value of `dtype` (a float `missing_value` of an integer
/// variable is not, and cannot be its Zarr fill value).
fn representable(s: Scalar, dtype: DType) -> bool {
    if !dtype.is_integer() {
        return true;
    }
    let (lo, hi): (f64, f64) = match dtype {
        DType::I8 => (i8::MIN.into(), i8::MAX.into()),
        DType::U8 | DType::Char => (0.0, u8::MAX.into()),
        DType::I16 => (i16::MIN.into(), i16::MAX.into()),
        DType::U16 => (0.0, u16::MAX.into()),
        DType::I32 => (i32::MIN.into(), i32::MAX.into()),
        DType::U32 => (0.0, u32::MAX.into()),
        DType::I64 => (i64::MIN as f64, i64::MAX as f64),
        _ => (0.0, u64::MAX as f64),
    };
    match s {
        Scalar::F(v) => v.fract() == 0.0 && v >= lo && v <= hi,
        Scalar::I(v) => (v as f64) >= lo && (v as f64) <= hi,
        Scalar::U(v) => (v as f64) <= hi,
    }
}

/// A fill value as Zarr JSON: numbers, or `"NaN"`/`"Infinity"`/`"-Infinity"`.
fn fill_json(s: Scalar, dtype: DType) -> Json {
    match (s, dtype.is_float()) {
        (Scalar::F(v), true) | (Scalar::F(v), false) if !v.is_finite() => Json::from(crate::json::format_float(v)),
        (s, true) => Json::Float(s.as_f64()),
        (s, false) => s.to_json(),
    }
}

/// The `_FillValue` attribute as xarray's Zarr v3 backend expects it.
fn xarray_v3_fill_attr(v: &AttrValue, dtype: DType) -> Option<Json> {
    match dtype {
        // xarray 2026.9 fails to decode either (for strings the whole store fails to open).
        DType::Char | DType::String => None,
        _ if dtype.is_float() => {
            let x = v.as_scalar()?.as_f64();
            Some(Json::from(
                base64::engine::general_purpose::STANDARD.encode(x.to_le_bytes()),
            ))
        }
        _ => v.as_scalar().map(Scalar::to_json),
    }
}

/// Group documents (relative keys) for a group with `attrs`.
pub fn group_documents(format: ZarrFormat, attrs: Json) -> Vec<(String, Json)> {
    match format {
        ZarrFormat::V2 => vec![
            (".zgroup".into(), json_obj! {"zarr_format" => 2u64}),
            (".zattrs".into(), attrs),
        ],
        ZarrFormat::V3 => vec![(
            "zarr.json".into(),
            json_obj! {"attributes" => attrs, "zarr_format" => 3u64, "node_type" => "group"},
        )],
    }
}

/// Key of one stored object (chunk or shard) of the array at `array_path`.
pub fn chunk_key(format: ZarrFormat, array_path: &str, indices: &[u64]) -> String {
    let joined = |sep: &str| indices.iter().map(u64::to_string).collect::<Vec<_>>().join(sep);
    match format {
        ZarrFormat::V2 if indices.is_empty() => format!("{array_path}/0"),
        ZarrFormat::V2 => format!("{array_path}/{}", joined(".")),
        ZarrFormat::V3 if indices.is_empty() => format!("{array_path}/c"),
        ZarrFormat::V3 => format!("{array_path}/c/{}", joined("/")),
    }
}

/// Joins a prefix and a relative key.
pub fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}/{key}")
    }
}

/// A node's documents, by path relative to the root (empty for the root group).
#[derive(Debug, Clone)]
pub struct NodeDocs {
    /// Path of the node (`""`, `"t2m"`, `"grp/var"`).
    pub path: String,
    /// True for groups.
    pub is_group: bool,
    /// Documents of the node, keyed relative to the node.
    pub documents: Vec<(String, Json)>,
}

/// Consolidated-metadata documents of the group at `group_path`, covering its subtree.
///
/// v3: the group's `zarr.json` with inline `consolidated_metadata` (zarr-python's layout).
/// v2: a `.zmetadata` next to the group's `.zgroup`.
pub fn consolidated(format: ZarrFormat, group_path: &str, nodes: &[NodeDocs]) -> Vec<(String, Json)> {
    let rel = |p: &str| -> Option<String> {
        if group_path.is_empty() {
            (!p.is_empty()).then(|| p.to_string())
        } else {
            p.strip_prefix(group_path)
                .and_then(|r| r.strip_prefix('/'))
                .map(str::to_string)
        }
    };
    match format {
        ZarrFormat::V3 => {
            let mut entries = Vec::new();
            let mut own = None;
            for n in nodes {
                let doc = n.documents[0].1.clone();
                if n.path == group_path {
                    own = Some(doc);
                } else if let Some(r) = rel(&n.path) {
                    let doc = if n.is_group {
                        with_field(doc, "consolidated_metadata", empty_consolidated(), "node_type")
                    } else {
                        doc
                    };
                    entries.push((r, doc));
                }
            }
            let own = own.expect("group documents present");
            let consolidated = json_obj! {
                "kind" => "inline",
                "must_understand" => false,
                "metadata" => Json::Obj(entries),
            };
            vec![(
                "zarr.json".into(),
                with_field(own, "consolidated_metadata", consolidated, "node_type"),
            )]
        }
        ZarrFormat::V2 => {
            let mut entries = Vec::new();
            for n in nodes {
                let prefix = if n.path == group_path {
                    Some(String::new())
                } else {
                    rel(&n.path)
                };
                if let Some(prefix) = prefix {
                    for (k, doc) in &n.documents {
                        entries.push((join(&prefix, k), doc.clone()));
                    }
                }
            }
            vec![(
                ".zmetadata".into(),
                json_obj! {"metadata" => Json::Obj(entries), "zarr_consolidated_format" => 1u64},
            )]
        }
    }
}

fn empty_consolidated() -> Json {
    json_obj! {"kind" => "inline", "must_understand" => false, "metadata" => Json::Obj(vec![])}
}

/// `doc` without member `key`.
fn without_field(doc: Json, key: &str) -> Json {
    match doc {
        Json::Obj(mut fields) => {
            fields.retain(|(k, _)| k != key);
            Json::Obj(fields)
        }
        other => other,
    }
}

/// Sets `key` of `doc` to `value`, inserted before member `before` (at the end without one).
fn with_field(doc: Json, key: &str, value: Json, before: &str) -> Json {
    let Json::Obj(mut fields) = doc else {
        return doc;
    };
    fields.retain(|(k, _)| k != key);
    let at = fields.iter().position(|(k, _)| k == before).unwrap_or(fields.len());
    fields.insert(at, (key.to_string(), value));
    Json::Obj(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_keys_follow_the_default_encodings() {
        assert_eq!(chunk_key(ZarrFormat::V2, "t", &[1, 0, 2]), "t/1.0.2");
        assert_eq!(chunk_key(ZarrFormat::V2, "g/t", &[]), "g/t/0");
        assert_eq!(chunk_key(ZarrFormat::V3, "t", &[1, 0, 2]), "t/c/1/0/2");
        assert_eq!(chunk_key(ZarrFormat::V3, "t", &[]), "t/c");
    }

    #[test]
    fn node_names_that_could_escape_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\\b",
            "x\0",
            ".zattrs",
            "zarr.json",
            ".nc2zarr",
            "a\nb",
        ] {
            assert!(check_node_name(bad).is_err(), "{bad:?}");
        }
        for good in ["t2m", "var 1", "1var", "_x", "xā", "dim.name.dots"] {
            assert!(check_node_name(good).is_ok(), "{good:?}");
        }
    }

    /// A variable of `dtype` with a `_FillValue` (NaN for floats) and a NaN attribute.
    fn var(dtype: DType) -> VarInfo {
        let fill = match dtype {
            DType::Char => AttrValue::Text("b".into()),
            DType::String => AttrValue::Text("-".into()),
            d if d.is_float() => AttrValue::Numbers(d, vec![Scalar::F(f64::NAN)]),
            d => AttrValue::Numbers(d, vec![Scalar::I(7)]),
        };
        VarInfo {
            name: "v".into(),
            dims: vec!["time".into(), "x".into()],
            shape: vec![10, 4],
            dtype,
            source_dtype: dtype,
            unsupported: None,
            enum_name: None,
            attrs: vec![
                ("_FillValue".into(), fill),
                (
                    "valid_max".into(),
                    AttrValue::Numbers(DType::F64, vec![Scalar::F(f64::NAN)]),
                ),
            ],
            storage: Default::default(),
            concat_axis: Some(0),
            time_fix: None,
            unpack: None,
            file_dtypes: None,
            files: None,
            gap_fill: None,
            repeated: false,
            string_lens: None,
        }
    }

    #[test]
    fn array_documents_are_zarrs_metadata_and_keep_nan_attributes() {
        use DType::*;
        for dtype in [I8, U8, I16, U16, I32, U32, I64, U64, F32, F64, Char, String] {
            for compression in ["none", "shuffle-zstd:3", "gzip:5", "blosc-lz4"] {
                let compression: Compression = compression.parse().unwrap();
                for (format, shards) in [
                    (ZarrFormat::V2, None),
                    (ZarrFormat::V3, None),
                    (ZarrFormat::V3, Some(&[10u64, 4][..])),
                ] {
                    let m = array_metadata(format, &var(dtype), &[5, 4], shards, &compression).unwrap();
                    let what = format!("{dtype:?} {compression:?} {format:?} {shards:?}");
                    // zarrs reads back what it wrote (the codec chain is built from it too).
                    let doc = without_field(m.codec_metadata.clone(), "attributes");
                    let parsed: Result<zarrs::array::ArrayMetadata, _> = serde_json::from_value(doc.to_serde());
                    assert!(parsed.is_ok(), "{what}: {parsed:?}");
                    let text: std::string::String = m.documents.iter().map(|(_, d)| d.to_compact()).collect();
                    assert!(text.contains("NaN"), "{what}: the NaN attribute is kept: {text}");
                    assert!(
                        !text.contains("node_type") || format == ZarrFormat::V3,
                        "{what}: {text}"
                    );
                    if let Some(Json::Arr(codecs)) = m.codec_metadata.get("codecs") {
                        assert!(codecs.iter().all(|c| matches!(c, Json::Obj(_))), "{what}: {text}");
                    }
                }
            }
        }
    }

    #[test]
    fn float_fill_attr_is_base64_double_like_xarray() {
        let v = AttrValue::Numbers(DType::F32, vec![Scalar::F(f64::NAN)]);
        assert_eq!(xarray_v3_fill_attr(&v, DType::F32), Some(Json::from("AAAAAAAA+H8=")));
        let v = AttrValue::Numbers(DType::I16, vec![Scalar::I(-32767)]);
        assert_eq!(xarray_v3_fill_attr(&v, DType::I16), Some(Json::Int(-32767)));
    }
}
