//! Stage 2: choose chunk shapes and the order in which regions are read.
//!
//! Pure functions of shapes and sizes: no I/O, no netCDF, no zarrs.

use std::str::FromStr;

/// Default target size of one uncompressed chunk.
pub const DEFAULT_CHUNK_BYTES: u64 = 16 << 20;

/// A chunk length requested for one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DimChunk {
    /// This many elements.
    Size(u64),
    /// The whole dimension.
    Full,
}

/// Chunk lengths requested per dimension name (`--chunks time=24,lat=full`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkRequest {
    /// Requested lengths by dimension name.
    pub per_dim: Vec<(String, DimChunk)>,
}

impl FromStr for ChunkRequest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut per_dim: Vec<(String, DimChunk)> = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = item
                .rsplit_once('=')
                .ok_or_else(|| format!("chunk spec {item:?} is not DIM=N (e.g. time=24)"))?;
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("chunk spec {item:?} has no dimension name"));
            }
            let value = value.trim();
            let chunk = match value {
                "full" | "all" | "-1" => DimChunk::Full,
                _ => match value.parse::<u64>() {
                    Ok(0) => {
                        return Err(format!(
                            "chunk length for '{name}' must be at least 1 (use 'full' for the whole dimension)"
                        ));
                    }
                    Ok(n) => DimChunk::Size(n),
                    Err(_) => {
                        return Err(format!(
                            "chunk length {value:?} for '{name}' is not a positive integer or 'full'"
                        ));
                    }
                },
            };
            if per_dim.iter().any(|(n, _)| n == name) {
                return Err(format!("dimension '{name}' is given twice in --chunks"));
            }
            per_dim.push((name.to_string(), chunk));
        }
        Ok(ChunkRequest { per_dim })
    }
}

impl ChunkRequest {
    /// The request for `dim`, if any.
    pub fn get(&self, dim: &str) -> Option<DimChunk> {
        self.per_dim.iter().find(|(n, _)| n == dim).map(|(_, c)| *c)
    }
}

/// Chooses a chunk shape for an array.
///
/// Requested dimensions get their length (capped by the dimension); the rest start at
/// the full length and are shrunk from the outermost dimension inwards until a chunk
/// holds at most `target_bytes` (inner dimensions stay whole, which matches how
/// NetCDF data is laid out and read). A shrunk dimension is split into equal parts
/// (361 → 2 × 181, not 242 + 119). 1-D dimension coordinates are one chunk.
pub fn choose_chunks(
    shape: &[u64],
    dims: &[String],
    elem_bytes: u64,
    is_dim_coordinate: bool,
    request: &ChunkRequest,
    target_bytes: u64,
) -> Vec<u64> {
    let mut chunks: Vec<u64> = shape.iter().map(|&n| n.max(1)).collect();
    if is_dim_coordinate {
        return chunks;
    }
    let mut free = vec![true; shape.len()];
    for (k, dim) in dims.iter().enumerate() {
        if let Some(c) = request.get(dim) {
            free[k] = false;
            if let DimChunk::Size(n) = c {
                chunks[k] = n.min(shape[k]).max(1);
            }
        }
    }
    for k in 0..shape.len() {
        let bytes: u64 = chunks.iter().product::<u64>() * elem_bytes;
        if bytes <= target_bytes {
            break;
        }
        if !free[k] {
            continue;
        }
        let others: u64 = chunks
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != k)
            .map(|(_, c)| c)
            .product::<u64>()
            * elem_bytes;
        let fit = (target_bytes / others.max(1)).clamp(1, chunks[k]);
        // Split into equal parts rather than leaving a small remainder chunk.
        chunks[k] = shape[k].max(1).div_ceil(shape[k].max(1).div_ceil(fit));
    }
    chunks
}

/// A box of an array read in one go: whole stored objects (chunks or shards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadBlock {
    /// First element.
    pub start: Vec<u64>,
    /// Elements per dimension.
    pub count: Vec<u64>,
}

/// Splits an array into read blocks of whole objects, each at most `max_bytes` when
/// possible: blocks span the inner dimensions completely and step over the outer ones
/// one object at a time, from the outermost dimension that makes them fit.
pub fn read_blocks(shape: &[u64], object_shape: &[u64], elem_bytes: u64, max_bytes: u64) -> Vec<ReadBlock> {
    if shape.contains(&0) {
        return Vec::new();
    }
    let ndim = shape.len();
    let block_bytes = |k: usize| -> u64 {
        let outer: u64 = object_shape[..k].iter().product();
        let inner: u64 = shape[k..].iter().product();
        outer * inner * elem_bytes
    };
    let k = (0..=ndim).find(|&k| block_bytes(k) <= max_bytes).unwrap_or(ndim);
    // Block extent per dimension: one object on dims < k, the whole dim on dims >= k.
    let extent: Vec<u64> = (0..ndim)
        .map(|d| if d < k { object_shape[d] } else { shape[d] })
        .collect();
    let counts: Vec<u64> = (0..ndim).map(|d| shape[d].div_ceil(extent[d])).collect();
    crate::slab::grid_indices(&counts)
        .into_iter()
        .map(|idx| {
            let start: Vec<u64> = idx.iter().zip(&extent).map(|(i, e)| i * e).collect();
            let count = start
                .iter()
                .zip(&extent)
                .zip(shape)
                .map(|((s, e), n)| (*e).min(n - s))
                .collect();
            ReadBlock { start, count }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dims(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_chunk_requests() {
        let r: ChunkRequest = "time=24, lat=full,lon=-1".parse().unwrap();
        assert_eq!(r.get("time"), Some(DimChunk::Size(24)));
        assert_eq!(r.get("lat"), Some(DimChunk::Full));
        assert_eq!(r.get("lon"), Some(DimChunk::Full));
        assert!("time=0".parse::<ChunkRequest>().unwrap_err().contains("at least 1"));
        assert!("time".parse::<ChunkRequest>().unwrap_err().contains("not DIM=N"));
        assert!(
            "time=x"
                .parse::<ChunkRequest>()
                .unwrap_err()
                .contains("not a positive integer")
        );
        assert!("time=1,time=2".parse::<ChunkRequest>().unwrap_err().contains("twice"));
        assert!("=3".parse::<ChunkRequest>().unwrap_err().contains("no dimension name"));
    }

    #[test]
    fn era5_default_chunks_keep_whole_maps() {
        // 1464 x 361 x 720 float32: one map is 1.04 MB, so 16 maps per 16 MiB chunk.
        let c = choose_chunks(
            &[1464, 361, 720],
            &dims(&["time", "lat", "lon"]),
            4,
            false,
            &ChunkRequest::default(),
            DEFAULT_CHUNK_BYTES,
        );
        assert_eq!(c, vec![16, 361, 720]);
    }

    #[test]
    fn requests_override_and_coordinates_stay_whole() {
        let r: ChunkRequest = "time=24".parse().unwrap();
        let c = choose_chunks(
            &[1464, 361, 720],
            &dims(&["time", "lat", "lon"]),
            4,
            false,
            &r,
            DEFAULT_CHUNK_BYTES,
        );
        assert_eq!(c, vec![24, 181, 720]);
        let r: ChunkRequest = "time=24,latitude=full".parse().unwrap();
        let c = choose_chunks(
            &[1464, 361, 720],
            &dims(&["time", "latitude", "lon"]),
            4,
            false,
            &r,
            DEFAULT_CHUNK_BYTES,
        );
        assert_eq!(c, vec![24, 361, 360]);
        let c = choose_chunks(&[1464], &dims(&["time"]), 4, true, &r, DEFAULT_CHUNK_BYTES);
        assert_eq!(c, vec![1464]);
        // A huge requested inner dim forces the free outer dims down to 1 but not below.
        let r: ChunkRequest = "lon=full,lat=full".parse().unwrap();
        let c = choose_chunks(
            &[10, 100_000, 100_000],
            &dims(&["t", "lat", "lon"]),
            4,
            false,
            &r,
            DEFAULT_CHUNK_BYTES,
        );
        assert_eq!(c, vec![1, 100_000, 100_000]);
        // Zero-length and scalar arrays.
        assert_eq!(
            choose_chunks(&[0, 5], &dims(&["t", "x"]), 4, false, &ChunkRequest::default(), 16),
            vec![1, 3]
        );
        assert_eq!(
            choose_chunks(&[], &[], 4, false, &ChunkRequest::default(), 16),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn read_blocks_pick_the_outermost_fitting_split() {
        let b = read_blocks(&[10, 4, 6], &[3, 4, 6], 1, 100);
        assert_eq!(b.len(), 4);
        assert_eq!(
            b[3],
            ReadBlock {
                start: vec![9, 0, 0],
                count: vec![1, 4, 6]
            }
        );
        let b = read_blocks(&[10, 4, 6], &[10, 2, 6], 1, 130);
        assert_eq!(b.len(), 2);
        assert_eq!(
            b[1],
            ReadBlock {
                start: vec![0, 2, 0],
                count: vec![10, 2, 6]
            }
        );
        assert!(read_blocks(&[0, 3], &[1, 3], 1, 100).is_empty());
        assert_eq!(
            read_blocks(&[], &[], 8, 100),
            vec![ReadBlock {
                start: vec![],
                count: vec![]
            }]
        );
    }

    proptest! {
        #[test]
        fn read_blocks_tile_the_array(
            shape in proptest::collection::vec(1u64..12, 0..4),
            seed in proptest::collection::vec(1u64..6, 4),
            max in 1u64..2000,
        ) {
            let object: Vec<u64> = shape.iter().zip(&seed).map(|(s, c)| (*c).min(*s)).collect();
            let blocks = read_blocks(&shape, &object, 2, max);
            let total: u64 = blocks.iter().map(|b| b.count.iter().product::<u64>()).sum();
            prop_assert_eq!(total, shape.iter().product::<u64>());
            for b in &blocks {
                for d in 0..shape.len() {
                    prop_assert_eq!(b.start[d] % object[d], 0, "blocks start on object boundaries");
                    prop_assert!(b.start[d] + b.count[d] <= shape[d]);
                    let ends_on_boundary = (b.start[d] + b.count[d]) % object[d] == 0 || b.start[d] + b.count[d] == shape[d];
                    prop_assert!(ends_on_boundary, "blocks end on object boundaries");
                }
            }
        }

        #[test]
        fn chunks_fit_the_target_unless_pinned(
            shape in proptest::collection::vec(1u64..5000, 1..4),
            target in 64u64..(64 << 20),
        ) {
            let names: Vec<String> = (0..shape.len()).map(|i| format!("d{i}")).collect();
            let c = choose_chunks(&shape, &names, 8, false, &ChunkRequest::default(), target);
            for (ci, si) in c.iter().zip(&shape) {
                prop_assert!(*ci >= 1 && ci <= si);
            }
            let bytes: u64 = c.iter().product::<u64>() * 8;
            prop_assert!(bytes <= target || c.iter().all(|&x| x == 1) || c[..c.len()-1].iter().all(|&x| x == 1));
        }
    }
}
