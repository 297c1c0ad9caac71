//! The direct chunk reader (HDF5 chunk index + positioned reads + libdeflate) returns
//! exactly what netCDF-C returns, for crafted fixtures of every filter combination,
//! type and chunk shape, and for every chunked variable of the shared devset. Where it
//! cannot read a variable (missing chunks, big-endian data, other filters) it says so.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use nc2zarr::direct::ChunkedVar;
use nc2zarr::model::{GroupInfo, VarInfo};
use nc2zarr::scan::{ScanOptions, scan};

/// Reads `start`/`count` of a variable through netCDF-C.
fn library_read(path: &Path, group: &GroupInfo, var: &VarInfo, start: &[u64], count: &[u64]) -> Vec<u8> {
    let file = nc2zarr::nc::File::open(path).unwrap();
    let mut g = file.root();
    for part in group.path.split('/').filter(|s| !s.is_empty()) {
        g = g.group(part).unwrap();
    }
    let v = g.variable(&var.name).unwrap();
    let elem = var.source_dtype.size().unwrap();
    let mut out = vec![0u8; count.iter().product::<u64>() as usize * elem];
    v.read_raw(start, count, &mut out).unwrap();
    out
}

fn direct(path: &Path, group: &GroupInfo, var: &VarInfo) -> Option<ChunkedVar> {
    let file = Arc::new(std::fs::File::open(path).unwrap());
    let elem = var.source_dtype.size()?;
    ChunkedVar::open(path, &file, &group.var_path(&var.name), &var.shape, elem)
}

/// Boxes to compare: the whole variable and a few interior boxes crossing chunk edges.
fn boxes(shape: &[u64]) -> Vec<(Vec<u64>, Vec<u64>)> {
    let mut out = vec![(vec![0; shape.len()], shape.to_vec())];
    for k in 1..4u64 {
        let start: Vec<u64> = shape.iter().map(|&s| (s * k / 7).min(s.saturating_sub(1))).collect();
        let count: Vec<u64> = shape
            .iter()
            .zip(&start)
            .map(|(&s, &a)| ((s - a) * k / 4).max(1).min(s - a))
            .collect();
        out.push((start, count));
    }
    out
}

/// Compares the direct reader with netCDF-C on every variable of the file it can read
/// directly; returns the names of those variables.
fn cross_check(path: &Path) -> Vec<String> {
    let Ok(inv) = scan(&[path.to_path_buf()], &ScanOptions::default()) else {
        return Vec::new();
    };
    let mut direct_vars = Vec::new();
    for (group, var) in inv.variables() {
        if var.unsupported.is_some() || var.storage.chunks.is_none() || var.source_dtype.size().is_none() {
            continue;
        }
        let Some(reader) = direct(path, group, var) else {
            continue;
        };
        let elem = var.source_dtype.size().unwrap();
        for (start, count) in boxes(&var.shape) {
            let want = library_read(path, group, var, &start, &count);
            let mut got = vec![0u8; want.len()];
            reader.read_into(&start, &count, &mut got).unwrap();
            assert!(
                got == want,
                "{}: {} differs from netCDF-C at start {start:?} count {count:?} (elem {elem})",
                path.display(),
                group.var_path(&var.name)
            );
        }
        direct_vars.push(group.var_path(&var.name));
    }
    direct_vars
}

fn fixture(dir: &Path, name: &str, write: impl FnOnce(&mut netcdf::FileMut)) -> PathBuf {
    let path = dir.join(name);
    let mut f = create(&path, Kind::Netcdf4);
    write(&mut f);
    drop(f);
    path
}

#[test]
fn every_filter_combination_type_and_chunk_shape_matches_netcdf_c() {
    let dir = tempfile::tempdir().unwrap();
    let (nt, ny, nx) = (7usize, 13usize, 10usize);
    let n = nt * ny * nx;
    let path = fixture(dir.path(), "filters.nc", |f| {
        f.add_dimension("time", nt).unwrap();
        f.add_dimension("y", ny).unwrap();
        f.add_dimension("x", nx).unwrap();
        let dims = ["time", "y", "x"];
        // (name, shuffle, deflate level, chunk shape): edge chunks in every dimension.
        let cases: [(&str, bool, Option<i32>, [usize; 3]); 5] = [
            ("shuffle_deflate", true, Some(1), [1, ny, nx]),
            ("deflate_only", false, Some(6), [2, 5, 4]),
            ("shuffle_only", true, None, [3, 4, 10]),
            ("no_filter", false, None, [4, 13, 3]),
            ("one_chunk", true, Some(9), [nt, ny, nx]),
        ];
        for (name, shuffle, level, chunks) in cases {
            let mut v = f.add_variable::<f32>(name, &dims).unwrap();
            v.set_chunking(&chunks).unwrap();
            match level {
                Some(l) => v.set_compression(l, shuffle).unwrap(),
                None if shuffle => v.set_compression(0, true).unwrap(),
                None => {}
            }
            let values: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 100.0).collect();
            v.put_values(&values, ..).unwrap();
        }
        let mut i16v = f.add_variable::<i16>("short", &dims).unwrap();
        i16v.set_chunking(&[2, 6, 6]).unwrap();
        i16v.set_compression(4, true).unwrap();
        i16v.put_values(&(0..n).map(|i| (i as i16).wrapping_mul(31)).collect::<Vec<_>>(), ..)
            .unwrap();
        let mut f64v = f.add_variable::<f64>("double", &dims).unwrap();
        f64v.set_chunking(&[5, 5, 5]).unwrap();
        f64v.set_compression(2, true).unwrap();
        f64v.put_values(&(0..n).map(|i| i as f64 / 3.0).collect::<Vec<_>>(), ..)
            .unwrap();
        let mut u8v = f.add_variable::<u8>("ubyte", &dims).unwrap();
        u8v.set_chunking(&[7, 2, 2]).unwrap();
        u8v.set_compression(1, true).unwrap();
        u8v.put_values(&(0..n).map(|i| (i % 251) as u8).collect::<Vec<_>>(), ..)
            .unwrap();
        let mut i64v = f.add_variable::<i64>("long", &["x"]).unwrap();
        i64v.set_chunking(&[3]).unwrap();
        i64v.set_compression(1, true).unwrap();
        i64v.put_values(&(0..nx as i64).map(|i| i * -123_456_789).collect::<Vec<_>>(), ..)
            .unwrap();
    });
    let mut read = cross_check(&path);
    read.sort();
    assert_eq!(
        read,
        [
            "deflate_only",
            "double",
            "long",
            "no_filter",
            "one_chunk",
            "short",
            "shuffle_deflate",
            "shuffle_only",
            "ubyte"
        ]
    );
}

#[test]
fn variables_it_cannot_read_are_left_to_netcdf_c() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path(), "fallback.nc", |f| {
        f.add_dimension("t", 8).unwrap();
        f.add_dimension("x", 6).unwrap();
        // Only half the chunks written: the rest must read as the fill value.
        let mut partial = f.add_variable::<f32>("partial", &["t", "x"]).unwrap();
        partial.set_chunking(&[2, 6]).unwrap();
        partial.set_compression(1, true).unwrap();
        partial.put_values(&[1.5f32; 24], (0..4, ..)).unwrap();
        // Big-endian storage.
        let mut big = f.add_variable::<i32>("big", &["t", "x"]).unwrap();
        big.set_chunking(&[4, 3]).unwrap();
        big.set_endianness(netcdf::Endianness::Big).unwrap();
        big.put_values(&(0..48).collect::<Vec<i32>>(), ..).unwrap();
        // Contiguous storage.
        let mut flat = f.add_variable::<f64>("flat", &["t", "x"]).unwrap();
        flat.put_values(&[2.0f64; 48], ..).unwrap();
    });
    let inv = scan(std::slice::from_ref(&path), &ScanOptions::default()).unwrap();
    for (g, v) in inv.variables() {
        assert!(direct(&path, g, v).is_none(), "{} must be read by netCDF-C", v.name);
    }
    // And the conversion (which falls back per variable) is bit-exact.
    let out = dir.path().join("out.zarr");
    let p = path.display().to_string();
    run(["convert", &p, "-o", out.to_str().unwrap()]).ok();
    run(["verify", out.to_str().unwrap(), "--source", &p]).ok();
}

#[test]
fn devset_chunked_variables_match_netcdf_c() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/devset");
    if !dir.is_dir() {
        missing_devset(&dir);
        return;
    }
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b.starts_with(b"\x89HDF")) {
                files.push(p);
            }
        }
    }
    let read: usize = files.iter().map(|f| cross_check(f).len()).sum();
    eprintln!("{read} devset variables read directly, all equal to netCDF-C");
    assert!(read >= 10, "the direct reader took only {read} devset variables");
}

/// The stored size and address of chunk (0, 0) of dataset `name`, from HDF5's index.
fn chunk_info(path: &Path, name: &str) -> (u64, u64) {
    use hdf5_sys::{h5d, h5f, h5p};
    let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let cname = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid C strings; identifiers are checked and closed; out-pointers valid.
    unsafe {
        let f = h5f::H5Fopen(cpath.as_ptr(), h5f::H5F_ACC_RDONLY, h5p::H5P_DEFAULT);
        assert!(f >= 0);
        let d = h5d::H5Dopen2(f, cname.as_ptr(), h5p::H5P_DEFAULT);
        assert!(d >= 0);
        let (mut mask, mut addr, mut size) = (0u32, 0u64, 0u64);
        let offset = [0u64, 0];
        assert!(h5d::H5Dget_chunk_info_by_coord(d, offset.as_ptr(), &mut mask, &mut addr, &mut size) >= 0);
        h5d::H5Dclose(d);
        h5f::H5Fclose(f);
        (size, addr)
    }
}

#[test]
fn a_corrupt_chunk_index_is_refused_not_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.nc");
    {
        let mut f = create(&path, Kind::Netcdf4);
        f.add_unlimited_dimension("time").unwrap();
        f.add_dimension("x", 64).unwrap();
        let mut v = f.add_variable::<f32>("v", &["time", "x"]).unwrap();
        v.set_chunking(&[1, 64]).unwrap();
        v.set_compression(1, true).unwrap();
        let data: Vec<f32> = (0..128).map(|i| i as f32).collect();
        v.put_values(&data, (0..2, 0..64)).unwrap();
    }
    let (size, addr) = chunk_info(&path, "v");
    // In the v1 B-tree a chunk's key is: stored size (u32), filter mask (u32), offsets
    // (u64 per dimension + 1); the child address (u64) follows.
    let mut key = (size as u32).to_le_bytes().to_vec();
    key.extend(0u32.to_le_bytes());
    key.extend([0u8; 24]);
    key.extend(addr.to_le_bytes());
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(key.len())
        .position(|w| w == key)
        .expect("the chunk's B-tree key");
    bytes[at..at + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes()); // "2 GiB"
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(chunk_info(&path, "v").0, 0x7fff_0000, "the index now lies");
    let out = dir.path().join("out.zarr");
    let r = run([
        "convert".to_string(),
        s(&path),
        "-o".into(),
        s(&out),
        "--max-mem".into(),
        "256MiB".into(),
    ]);
    r.fails_with(
        3,
        &[
            "corrupt.nc",
            "'v' (time 0..2, x 0..64)",
            "corrupt chunk index",
            "2147418112 bytes",
        ],
    );
}

#[test]
fn library_reads_check_buffer_and_slab_sizes_before_calling_c() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sizes.nc");
    {
        let mut f = create(&path, Kind::Netcdf4);
        f.add_dimension("x", 4).unwrap();
        f.add_variable::<f64>("v", &["x"])
            .unwrap()
            .put_values(&[1.0f64, 2.0, 3.0, 4.0], ..)
            .unwrap();
        f.add_string_variable("s", &["x"]).unwrap();
    }
    let file = nc2zarr::nc::File::open(&path).unwrap();
    let v = file.root().variable("v").unwrap();
    // Too small for 4 doubles: refused, nothing written past the buffer.
    let mut small = vec![0u8; 31];
    let e = v.read_raw(&[0], &[4], &mut small).unwrap_err();
    assert!(e.message.contains("cannot hold a slab"), "{}", e.message);
    // A slab of the wrong rank.
    let mut ok = vec![0u8; 32];
    let e = v.read_raw(&[0, 0], &[4, 1], &mut ok).unwrap_err();
    assert!(e.message.contains("for a variable of 1 dimensions"), "{}", e.message);
    let e = file.root().variable("s").unwrap().read_strings(&[], &[]).unwrap_err();
    assert!(e.message.contains("for a variable of 1 dimensions"), "{}", e.message);
    // The right sizes read.
    v.read_raw(&[0], &[4], &mut ok).unwrap();
    assert_eq!(f64::from_ne_bytes(ok[24..32].try_into().unwrap()), 4.0);
}
