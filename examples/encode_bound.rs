//! Benchmark lower bound: compress `MIB` MiB of the given NetCDF variable's data in
//! chunks of 24 x full grid with one codec on one thread (the read is not timed).
//!
//! `cargo run --release --example encode_bound -- CODEC FILE VAR`

use std::time::Instant;

use nc2zarr::codec::{ChunkCodec, Compression};
use nc2zarr::json_obj;
use nc2zarr::model::DType;
use nc2zarr::slab::Block;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let compression: Compression = args[1].parse().expect("codec");
    let path = std::path::PathBuf::from(&args[2]);
    let name = &args[3];
    let file = nc2zarr::nc::File::open(&path).expect("open");
    let v = file.root().variable(name).expect("variable");
    let h = v.header().expect("header");
    let nc2zarr::nc::VarType::Supported { dtype, .. } = h.vartype else {
        panic!("unsupported")
    };
    let size = dtype.size().expect("fixed size");
    let count: Vec<u64> = h.dims.iter().map(|d| d.len).collect();
    let mut data = vec![0u8; count.iter().product::<u64>() as usize * size];
    v.read_raw(&vec![0; count.len()], &count, &mut data).expect("read");
    let mut chunk = count.clone();
    chunk[0] = chunk[0].min(24);
    let mut codecs = vec![json_obj! {"name" => "bytes", "configuration" => json_obj! {"endian" => "little"}}];
    codecs.extend(compression.v3_codecs(dtype));
    let meta = json_obj! {
        "shape" => chunk.clone(),
        "data_type" => dtype.zarr_v3_name(),
        "chunk_grid" => json_obj! {"name" => "regular", "configuration" => json_obj! {"chunk_shape" => chunk.clone()}},
        "chunk_key_encoding" => json_obj! {"name" => "default"},
        "fill_value" => if dtype == DType::F32 || dtype == DType::F64 { nc2zarr::json::Json::Float(0.0) } else { nc2zarr::json::Json::Int(0) },
        "codecs" => nc2zarr::json::Json::Arr(codecs),
        "zarr_format" => 3u64,
        "node_type" => "array",
    };
    let codec = ChunkCodec::new(&meta, dtype).expect("codec");
    let chunk_bytes = chunk.iter().product::<u64>() as usize * size;
    let started = Instant::now();
    let mut out = 0usize;
    for piece in data.chunks(chunk_bytes) {
        let mut buf = piece.to_vec();
        buf.resize(chunk_bytes, 0);
        out += codec.encode(&Block::Fixed(buf), &chunk).expect("encode").len();
    }
    let s = started.elapsed().as_secs_f64();
    println!("{{\"seconds\": {s}, \"bytes\": {}, \"encoded\": {out}}}", data.len());
}
