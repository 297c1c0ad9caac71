//! Reading a store nc2zarr wrote: its consolidated metadata and the arrays it describes.

use crate::codec::ChunkCodec;
use crate::error::{Error, Result, TargetError};
use crate::json::Json;
use crate::model::ZarrFormat;
use crate::model::{AttrValue, Attrs, DType, Scalar};
use crate::slab::Block;
use crate::store::Target;

/// One array found in the target's metadata.
pub struct FoundArray {
    /// Path of the array.
    pub path: String,
    /// Shape.
    pub shape: Vec<u64>,
    /// Shape of one stored object.
    pub object_shape: Vec<u64>,
    /// Element type.
    pub dtype: DType,
    /// Whether absent objects read as a fill value.
    pub has_fill: bool,
    /// The codec chain.
    pub codec: ChunkCodec,
    /// Dimension names (`dimension_names` or `_ARRAY_DIMENSIONS`).
    pub dims: Vec<String>,
    /// Attributes as stored.
    pub attrs: Json,
    /// The array's metadata document (`zarr.json` or `.zarray`).
    pub doc: Json,
}

/// A target error for a damaged or foreign store.
pub fn invalid(target: &str, message: String) -> Error {
    Error::Target(TargetError::Invalid {
        target: target.to_string(),
        message,
    })
}

/// Reads and parses a JSON document; `None` when absent.
pub fn read_json(store: &Target, key: &str) -> Result<Option<Json>> {
    let Some(bytes) = store.get(key)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    Json::parse(&text)
        .map(Some)
        .map_err(|e| invalid(store.display(), format!("{key} is not valid JSON: {e}")))
}

/// Reads the manifest of a store nc2zarr wrote.
pub fn read_manifest(store: &Target) -> Result<crate::manifest::Manifest> {
    let json = read_json(store, crate::manifest::MANIFEST_KEY)?.ok_or_else(|| {
        invalid(
            store.display(),
            "has no nc2zarr manifest; append works on stores nc2zarr wrote".into(),
        )
    })?;
    crate::manifest::Manifest::from_bytes(json.to_compact().as_bytes())
        .map_err(|e| invalid(store.display(), format!("manifest is damaged: {e}")))
}

/// Refuses an Icechunk repository named as a plain target (without `icechunk+`): read
/// or written as objects, it would be misread or damaged.
pub fn refuse_repository_as_plain(store: &Target) -> Result<()> {
    if !store.is_transactional() && store.get("repo")?.is_some() && !store.list("snapshots")?.is_empty() {
        let t = store.display();
        return Err(invalid(
            t,
            format!(
                "is an Icechunk repository: name it {}{t}",
                crate::store::icechunk::SCHEME
            ),
        ));
    }
    Ok(())
}

/// Reads the consolidated metadata and returns the arrays it describes.
pub fn read_arrays(store: &Target) -> Result<(ZarrFormat, Vec<FoundArray>)> {
    let t = store.display();
    let mut docs: Vec<(String, Json, Json)> = Vec::new();
    let format = if let Some(root) = read_json(store, "zarr.json")? {
        let entries = root
            .get("consolidated_metadata")
            .and_then(|c| c.get("metadata"))
            .ok_or_else(|| {
                invalid(
                    t,
                    "root zarr.json has no consolidated metadata; was it written by nc2zarr?".into(),
                )
            })?;
        if let Json::Obj(fields) = entries {
            for (path, doc) in fields {
                if doc.get("node_type").and_then(Json::as_str) == Some("array") {
                    let attrs = doc.get("attributes").cloned().unwrap_or(Json::Obj(vec![]));
                    docs.push((path.clone(), doc.clone(), attrs));
                }
            }
        }
        ZarrFormat::V3
    } else if let Some(z) = read_json(store, ".zmetadata")? {
        if let Some(Json::Obj(fields)) = z.get("metadata") {
            for (key, doc) in fields {
                if let Some(path) = key.strip_suffix("/.zarray") {
                    let attrs = z
                        .get("metadata")
                        .and_then(|m| m.get(&format!("{path}/.zattrs")))
                        .cloned()
                        .unwrap_or(Json::Obj(vec![]));
                    docs.push((path.to_string(), doc.clone(), attrs));
                }
            }
        }
        ZarrFormat::V2
    } else {
        refuse_repository_as_plain(store)?;
        return Err(invalid(
            t,
            "no Zarr metadata (zarr.json or .zmetadata): not a Zarr store, or the conversion did not finish".into(),
        ));
    };
    let arrays = docs
        .into_iter()
        .map(|(path, doc, attrs)| found_array(t, format, path, &doc, attrs))
        .collect::<Result<Vec<_>>>()?;
    Ok((format, arrays))
}

/// The root group's attributes, from the consolidated metadata.
pub fn read_root_attrs(store: &Target) -> Result<Json> {
    let empty = || Json::Obj(vec![]);
    if let Some(root) = read_json(store, "zarr.json")? {
        return Ok(root.get("attributes").cloned().unwrap_or_else(empty));
    }
    Ok(read_json(store, ".zmetadata")?
        .and_then(|z| z.get("metadata").and_then(|m| m.get(".zattrs")).cloned())
        .unwrap_or_else(empty))
}

/// The values of a fixed-size block as numbers (empty for strings).
pub fn numbers(block: &Block, dtype: DType) -> Vec<f64> {
    match block {
        Block::Fixed(b) => b
            .chunks_exact(dtype.size().unwrap_or(1))
            .map(|x| Scalar::from_ne_bytes(dtype, x).as_f64())
            .collect(),
        Block::Strings(_) => Vec::new(),
    }
}

/// Every value of a 1-D numeric array (a coordinate), read object by object.
pub fn read_numbers(store: &Target, format: ZarrFormat, array: &FoundArray) -> Result<Vec<f64>> {
    let (len, per_object) = (array.shape[0], array.object_shape[0].max(1));
    let mut out = Vec::with_capacity(len as usize);
    for i in 0..len.div_ceil(per_object) {
        let key = crate::meta::chunk_key(format, &array.path, &[i]);
        let block = match store.get(&key)? {
            Some(b) => array.codec.decode(&b, &array.object_shape),
            None => array.codec.decode_fill(&array.object_shape),
        }
        .map_err(|e| invalid(store.display(), format!("cannot decode {key}: {e}")))?;
        out.extend(numbers(&block, array.dtype));
    }
    out.truncate(len as usize);
    Ok(out)
}

/// An array's layout and codec, from its metadata document.
pub fn found_array(target: &str, format: ZarrFormat, path: String, doc: &Json, attrs: Json) -> Result<FoundArray> {
    let bad = |what: &str| invalid(target, format!("array '{path}': {what}"));
    let u64s = |j: Option<&Json>| -> Option<Vec<u64>> { j?.as_array()?.iter().map(Json::as_u64).collect() };
    let shape = u64s(doc.get("shape")).ok_or_else(|| bad("bad shape"))?;
    let (object_shape, dtype, has_fill) = match format {
        ZarrFormat::V3 => {
            let grid = u64s(
                doc.get("chunk_grid")
                    .and_then(|g| g.get("configuration"))
                    .and_then(|c| c.get("chunk_shape")),
            )
            .ok_or_else(|| bad("bad chunk_grid"))?;
            let dtype = match doc.get("data_type") {
                Some(Json::Str(s)) => dtype_from_v3(s),
                Some(obj) if obj.get("name").and_then(Json::as_str) == Some("null_terminated_bytes") => {
                    Some(DType::Char)
                }
                _ => None,
            }
            .ok_or_else(|| bad("unsupported data_type"))?;
            (grid, dtype, true)
        }
        ZarrFormat::V2 => {
            let chunks = u64s(doc.get("chunks")).ok_or_else(|| bad("bad chunks"))?;
            let dtype = doc
                .get("dtype")
                .and_then(Json::as_str)
                .and_then(dtype_from_v2)
                .ok_or_else(|| bad("unsupported dtype"))?;
            let has_fill = !matches!(doc.get("fill_value"), None | Some(Json::Null));
            (chunks, dtype, has_fill)
        }
    };
    let codec = ChunkCodec::new(doc, dtype).map_err(|e| bad(&e.to_string()))?;
    let names = |j: Option<&Json>| -> Vec<String> {
        j.and_then(Json::as_array)
            .map(|a| a.iter().filter_map(|d| d.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let dims = match format {
        ZarrFormat::V3 => names(doc.get("dimension_names")),
        ZarrFormat::V2 => names(attrs.get("_ARRAY_DIMENSIONS")),
    };
    Ok(FoundArray {
        path,
        shape,
        object_shape,
        dtype,
        has_fill,
        codec,
        dims,
        attrs,
        doc: doc.clone(),
    })
}

impl FoundArray {
    /// The CF coding attributes (`scale_factor`, `add_offset`, `missing_value`,
    /// `_FillValue`) as xarray reads them from this array: v2 keeps `_FillValue` in
    /// `fill_value`, v3 in the attributes (floats as base64 of a little-endian double).
    /// JSON keeps no single-precision types, so factors read back as doubles.
    pub fn coding_attrs(&self, format: ZarrFormat) -> Attrs {
        let number = |j: &Json| -> Option<Scalar> {
            match j {
                Json::Int(v) => Some(Scalar::I(*v)),
                Json::UInt(v) => Some(Scalar::U(*v)),
                Json::Float(v) => Some(Scalar::F(*v)),
                Json::Str(s) => match s.as_str() {
                    "NaN" => Some(Scalar::F(f64::NAN)),
                    "Infinity" => Some(Scalar::F(f64::INFINITY)),
                    "-Infinity" => Some(Scalar::F(f64::NEG_INFINITY)),
                    _ => None,
                },
                _ => None,
            }
        };
        let numbers = |j: &Json| -> Option<AttrValue> {
            let values: Vec<Scalar> = match j.as_array() {
                Some(a) => a.iter().map(number).collect::<Option<_>>()?,
                None => vec![number(j)?],
            };
            let t = if values.iter().any(|v| matches!(v, Scalar::F(_))) {
                DType::F64
            } else {
                self.dtype
            };
            Some(AttrValue::Numbers(t, values))
        };
        let mut out = Attrs::new();
        for k in ["scale_factor", "add_offset", "missing_value"] {
            if let Some(v) = self.attrs.get(k).and_then(numbers) {
                out.push((k.to_string(), v));
            }
        }
        let fill = match format {
            ZarrFormat::V2 => self.doc.get("fill_value").and_then(numbers),
            ZarrFormat::V3 => match self.attrs.get("_FillValue") {
                Some(Json::Str(b64)) if self.dtype.is_float() => {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .ok()
                        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                        .map(|b| AttrValue::Numbers(DType::F64, vec![Scalar::F(f64::from_le_bytes(b))]))
                }
                Some(j) => numbers(j),
                None => None,
            },
        };
        if let Some(f) = fill {
            out.push(("_FillValue".to_string(), f));
        }
        out
    }
}

/// Every element type, for looking names up.
const ALL_DTYPES: [DType; 12] = [
    DType::I8,
    DType::U8,
    DType::I16,
    DType::U16,
    DType::I32,
    DType::U32,
    DType::I64,
    DType::U64,
    DType::F32,
    DType::F64,
    DType::Char,
    DType::String,
];

/// The type of a v3 `data_type` name (chars are `null_terminated_bytes`, handled apart).
fn dtype_from_v3(s: &str) -> Option<DType> {
    ALL_DTYPES
        .into_iter()
        .filter(|d| *d != DType::Char)
        .find(|d| d.zarr_v3_name() == s)
}

/// The type of a v2 `dtype` string.
fn dtype_from_v2(s: &str) -> Option<DType> {
    ALL_DTYPES.into_iter().find(|d| d.zarr_v2_name() == s)
}
