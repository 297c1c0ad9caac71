//! Bad input, hostile names, unreadable files, unwritable and full targets, and odd but
//! valid input. Each failure: a non-zero exit, a short message naming the file or
//! variable, no panic, and a target that is not created (or not changed). Odd but
//! valid input converts to values equal to the source.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Checks the shape of a refusal: exit `code`, every needle in stderr, a short message,
/// no panic or internal error.
fn refused(r: &Run, code: i32, needles: &[&str]) {
    r.fails_with(code, needles);
    assert!(!r.stderr.contains("internal error"), "{}", r.stderr);
    assert!(r.stderr.lines().count() <= 3, "not a short message:\n{}", r.stderr);
}

fn convert(inputs: &[PathBuf], out: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<String> = vec!["convert".into()];
    args.extend(inputs.iter().map(|p| s(p)));
    args.extend(["-o".to_string(), s(out)]);
    args.extend(extra.iter().map(|s| s.to_string()));
    run(args)
}

/// Pseudo-random bytes (xorshift), deterministic per seed.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn truncated_files_at_many_offsets_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.zarr");
    for kind in [Kind::Netcdf4, Kind::Classic, Kind::Cdf5] {
        let good = era_set(&dir.path().join(format!("{kind:?}")), kind, &three_months(4), 5, 6);
        let bytes = std::fs::read(&good[2]).unwrap();
        let len = bytes.len();
        for cut in [1, 4, 8, 64, 300, len / 4, len / 2, len - 64, len - 1] {
            let bad = dir.path().join(format!("cut-{kind:?}-{cut}.nc"));
            std::fs::write(&bad, &bytes[..cut]).unwrap();
            // A good set plus one bad file: refused as a whole, nothing written.
            let r = convert(&[good[0].clone(), good[1].clone(), bad.clone()], &out, &[]);
            assert_ne!(r.code, 0, "{kind:?} cut at {cut} of {len} converted:\n{}", r.stdout);
            refused(&r, 3, &[&format!("cut-{kind:?}-{cut}.nc")]);
            assert!(!out.exists(), "{kind:?} cut at {cut}: the target was created");
        }
    }
}

#[test]
fn garbage_foreign_and_corrupt_files_are_refused_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.zarr");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("noise.nc", noise(7, 4096), "not a NetCDF or HDF5 file"),
        (
            "cdf-garbage.nc",
            [b"CDF\x01".to_vec(), noise(8, 2048)].concat(),
            "cdf-garbage.nc",
        ),
        (
            "cdf5-garbage.nc",
            [b"CDF\x05".to_vec(), noise(9, 2048)].concat(),
            "cdf5-garbage.nc",
        ),
        (
            "hdf-garbage.nc",
            [b"\x89HDF\r\n\x1a\n".to_vec(), noise(10, 4096)].concat(),
            "hdf-garbage.nc",
        ),
        ("zeros.nc", vec![0u8; 10_000], "not a NetCDF or HDF5 file"),
    ];
    for (name, bytes, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        refused(&convert(std::slice::from_ref(&path), &out, &[]), 3, &[name, needle]);
        refused(&run(["scan", &s(&path)]), 3, &[name]);
        assert!(!out.exists());
    }
    // A huge corrupt file is diagnosed from its first bytes, not read whole: under a 4 GB
    // address-space limit an 8 GiB (sparse) one is refused cleanly; so is one whose
    // classic header's first name claims 2 GiB.
    let classic_claim = [
        b"CDF\x01".as_slice(),
        &[0, 0, 0, 1],
        &[0, 0, 0, 0x0a],
        &[0, 0, 0, 1],
        &[0x7f, 0xff, 0xff, 0xf0],
    ]
    .concat();
    for (name, head, needle) in [
        ("huge.nc", noise(11, 4096), "not a NetCDF or HDF5 file"),
        ("claims.nc", classic_claim, "looks truncated or corrupt"),
    ] {
        let path = dir.path().join(name);
        let f = std::fs::File::create(&path).unwrap();
        std::io::Write::write_all(&mut &f, &head).unwrap();
        f.set_len(8 << 30).unwrap();
        refused(&scan_under_4gb(&path), 3, &[name, needle]);
    }
    // A valid netCDF header followed by a corrupt one: a good file with its header mangled.
    let good = era_set(&dir.path().join("g"), Kind::Classic, &three_months(2), 3, 4);
    let mut bytes = std::fs::read(&good[0]).unwrap();
    for b in &mut bytes[8..40] {
        *b = 0xff;
    }
    let mangled = dir.path().join("mangled.nc");
    std::fs::write(&mangled, bytes).unwrap();
    refused(&convert(&[mangled], &out, &[]), 3, &["mangled.nc"]);
    assert!(!out.exists());
}

#[test]
fn an_hdf5_file_that_is_not_netcdf_is_read_or_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.h5");
    {
        let c = std::ffi::CString::new(s(&path)).unwrap();
        // SAFETY: plain HDF5 calls on a new file, closed before use.
        unsafe {
            let f = hdf5_sys::h5f::H5Fcreate(
                c.as_ptr(),
                hdf5_sys::h5f::H5F_ACC_TRUNC,
                hdf5_sys::h5p::H5P_DEFAULT,
                hdf5_sys::h5p::H5P_DEFAULT,
            );
            assert!(f >= 0);
            let g = std::ffi::CString::new("just_a_group").unwrap();
            let gid = hdf5_sys::h5g::H5Gcreate2(
                f,
                g.as_ptr(),
                hdf5_sys::h5p::H5P_DEFAULT,
                hdf5_sys::h5p::H5P_DEFAULT,
                hdf5_sys::h5p::H5P_DEFAULT,
            );
            hdf5_sys::h5g::H5Gclose(gid);
            hdf5_sys::h5f::H5Fclose(f);
        }
    }
    let out = dir.path().join("out.zarr");
    let r = convert(std::slice::from_ref(&path), &out, &[]);
    match r.code {
        0 => {
            verify_source(&out, &[s(&path)]).ok();
        }
        _ => {
            refused(&r, 3, &["plain.h5"]);
            assert!(!out.exists());
        }
    }
}

#[test]
fn hostile_variable_names_never_become_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.nc");
    {
        let mut f = create(&path, Kind::Netcdf4);
        f.add_dimension("x", 3).unwrap();
        let mut v = f.add_variable::<f32>("a\\..\\..\\escape", &["x"]).unwrap();
        v.put_values(&[1.0f32, 2.0, 3.0], ..).unwrap();
    }
    let out = dir.path().join("out.zarr");
    refused(
        &convert(std::slice::from_ref(&path), &out, &[]),
        3,
        &["escape", "rename it"],
    );
    assert!(!out.exists());
    // Skipping what cannot be named is not an option: nothing escapes the target dir.
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("hostile.nc")]);
}

#[test]
fn bad_targets_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let files = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(2), 3, 4);
    // The target is a regular file.
    let file = dir.path().join("target.txt");
    std::fs::write(&file, b"keep me").unwrap();
    refused(&convert(&files, &file, &[]), 4, &["target.txt"]);
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    // --overwrite of a filesystem root is refused.
    refused(&convert(&files, Path::new("/"), &["--overwrite"]), 4, &["root"]);
    // Options.
    refused(
        &convert(&files, &dir.path().join("o.zarr"), &["--max-mem", "lots"]),
        2,
        &["lots"],
    );
    refused(
        &convert(&files, &dir.path().join("o.zarr"), &["--preset", "nope"]),
        2,
        &["nope"],
    );
    refused(
        &convert(&files, &dir.path().join("o.zarr"), &["--compression", "lzma"]),
        2,
        &["lzma"],
    );
    let r = run(["convert", &s(&files[0]), "-o", "gopher://h/x"]);
    refused(&r, 4, &["gopher"]);
    assert!(!dir.path().join("o.zarr").exists());
}

/// Runs nc2zarr as the unprivileged user `nobody` when the tests run as root (root
/// reads and writes everything, so permissions would not be tested otherwise).
fn run_unprivileged(args: &[String]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    Run::from_output(&cmd.output().unwrap())
}

#[test]
fn unreadable_inputs_and_unwritable_targets_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let files = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(2), 3, 4);
    let locked = dir.path().join("in/locked.nc");
    std::fs::copy(&files[0], &locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = dir.path().join("out.zarr");
    let r = run_unprivileged(&["convert".into(), s(&files[1]), s(&locked), "-o".into(), s(&out)]);
    refused(&r, 3, &["locked.nc", "ermission denied"]);
    assert!(!out.exists());
    // A read-only parent directory.
    let ro = dir.path().join("readonly");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let target = ro.join("out.zarr");
    let r = run_unprivileged(&["convert".into(), s(&files[0]), s(&files[1]), "-o".into(), s(&target)]);
    refused(&r, 4, &["readonly", "ermission denied"]);
    assert!(!target.exists());
}

#[test]
fn broken_and_looping_links_and_unreadable_directories_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.path().join("out.zarr");
    let looping = dir.path().join("loop.nc");
    std::os::unix::fs::symlink(&looping, &looping).unwrap();
    refused(
        &convert(std::slice::from_ref(&looping), &out, &[]),
        3,
        &["loop.nc", "symbolic link"],
    );
    let dangling = dir.path().join("dangling.nc");
    std::os::unix::fs::symlink(dir.path().join("nowhere.nc"), &dangling).unwrap();
    refused(
        &convert(std::slice::from_ref(&dangling), &out, &[]),
        3,
        &["dangling.nc", "symbolic link"],
    );
    let closed = dir.path().join("closed");
    era_set(&closed, Kind::Netcdf4, &three_months(2), 3, 4);
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o000)).unwrap();
    let r = run_unprivileged(&["convert".into(), s(&closed), "-o".into(), s(&out)]);
    refused(&r, 3, &["closed", "ermission denied"]);
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(!out.exists());
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_stops_cleanly_and_the_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), "1m") else {
        missing_prerequisite("cannot mount a tmpfs here (not root?), no disk-full test");
        return;
    };
    // About 1.8 MB of uncompressed output for a 1 MiB disk.
    let files = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(30), 60, 80);
    let out = disk.0.join("out.zarr");
    let args = ["--compression", "none", "--chunks", "time=2"];
    let r = convert(&files, &out, &args);
    refused(&r, 4, &["No space left on device"]);
    // Nothing claims to be complete: verify reports an interrupted conversion.
    let v = run(["verify", &s(&out)]);
    assert_eq!(v.code, 5, "stdout:\n{}\nstderr:\n{}", v.stdout, v.stderr);
    // Space freed: the same command resumes and completes.
    disk.resize("16m");
    let r = convert(&files, &out, &args);
    r.ok();
    assert!(r.stdout.contains("resumed:"), "{}", r.stdout);
    verify_source(&out, &files.iter().map(|p| s(p)).collect::<Vec<_>>()).ok();
}

#[test]
fn odd_but_valid_input_converts_equal_to_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd names.nc");
    {
        let mut f = create(&path, Kind::Netcdf4);
        f.add_unlimited_dimension("time").unwrap();
        f.add_unlimited_dimension("obs").unwrap();
        f.add_unlimited_dimension("empty").unwrap();
        f.add_dimension("x y", 3).unwrap();
        f.add_attribute("huge", "z".repeat(1 << 20)).unwrap();
        f.add_attribute("many", (0..50_000).map(|i| i as f64).collect::<Vec<_>>())
            .unwrap();
        for (name, dims) in [
            ("with space", vec!["time", "x y"]),
            ("ünïcödé", vec!["x y"]),
            ("1leading_digit", vec!["obs"]),
            ("_underscore", vec!["time"]),
            ("on_empty", vec!["empty", "x y"]),
        ] {
            let mut v = f.add_variable::<f64>(name, &dims).unwrap();
            v.put_attribute("long_name", format!("{name} ✓")).unwrap();
        }
        f.variable_mut("with space")
            .unwrap()
            .put_values(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (0..2, ..))
            .unwrap();
        f.variable_mut("ünïcödé")
            .unwrap()
            .put_values(&[7.0, 8.0, 9.0], ..)
            .unwrap();
        f.variable_mut("1leading_digit")
            .unwrap()
            .put_values(&[1.5; 5], 0..5)
            .unwrap();
        f.variable_mut("_underscore")
            .unwrap()
            .put_values(&[0.5, 0.25], 0..2)
            .unwrap();
        let mut scalar = f.add_variable::<i32>("scalar", &[]).unwrap();
        scalar.put_value(42i32, ..).unwrap();
        for i in 0..2000 {
            let mut v = f.add_variable::<i16>(&format!("v{i:04}"), &["x y"]).unwrap();
            v.put_values(&[i as i16, -(i as i16), 7], ..).unwrap();
        }
    }
    for format in ["2", "3"] {
        let out = dir.path().join(format!("out{format}.zarr"));
        let r = convert(std::slice::from_ref(&path), &out, &["--zarr-format", format]);
        r.ok();
        verify_source(&out, &[s(&path)]).ok();
        if let Some(py) = python() {
            xarray_compare(&py, &out, &[s(&path)], &[]).unwrap();
        }
    }
}

#[test]
fn a_panic_in_a_worker_thread_still_releases_the_lock_and_scratch_space() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(4), 8, 16)
        .iter()
        .map(|p| s(p))
        .collect();
    let out = dir.path().join("out.zarr");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let mut args = vec!["convert".to_string()];
    args.extend(files.iter().cloned());
    args.extend(["-o".into(), s(&out), "--temp-dir".into(), s(&scratch), "--quiet".into()]);
    let output = std::process::Command::new(bin())
        .args(&args)
        .env("NC2ZARR_FAILPOINT", "encode-panic")
        .output()
        .unwrap();
    let r = Run::from_output(&output);
    r.fails_with(
        1,
        &["internal error (a bug, please report it)", "failpoint encode-panic"],
    );
    assert_eq!(
        r.stderr.matches("internal error").count(),
        1,
        "one line, however many threads panic:\n{}",
        r.stderr
    );
    assert!(
        !out.join(".nc2zarr/lock.json").exists() && !out.join(".nc2zarr/lock").exists(),
        "the lock is released"
    );
    assert_eq!(
        std::fs::read_dir(&scratch).unwrap().count(),
        0,
        "scratch space is removed"
    );
    // The store is unfinished, not half-committed: readers see no dataset.
    assert!(!out.join("zarr.json").exists());
    // Without the failpoint the same command completes.
    run(&args).ok();
    verify_source(&out, &files).ok();
}

/// `nc2zarr scan PATH` under a 4 GB address-space limit, with few threads and malloc
/// arenas so the address space the limit counts does not grow with the machine's cores
/// (each arena reserves 64 MiB).
fn scan_under_4gb(path: &Path) -> Run {
    let out = std::process::Command::new("sh")
        .args(["-c", "ulimit -v 4000000; exec \"$0\" \"$@\""])
        .env("MALLOC_ARENA_MAX", "2")
        .env("RAYON_NUM_THREADS", "1")
        .arg(bin())
        .args(["scan", &s(path)])
        .output()
        .unwrap();
    Run::from_output(&out)
}

/// A plain HDF5 file (as h5py writes): `values` (3 doubles) and `names`, 3 strings of
/// fixed length 5 ("ab", "cde", "f").
fn fixed_string_file(path: &Path) {
    use hdf5_sys::{h5, h5d, h5f, h5p, h5s, h5t};
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: plain HDF5 calls on a new file, every identifier closed before use;
    // buffers hold what the calls read (3 doubles, 3 × 5 bytes).
    unsafe {
        assert!(h5::H5open() >= 0);
        let f = h5f::H5Fcreate(c.as_ptr(), h5f::H5F_ACC_TRUNC, h5p::H5P_DEFAULT, h5p::H5P_DEFAULT);
        assert!(f >= 0);
        let dims = [3u64];
        let space = h5s::H5Screate_simple(1, dims.as_ptr(), std::ptr::null());
        let name = std::ffi::CString::new("values").unwrap();
        let d = h5d::H5Dcreate2(
            f,
            name.as_ptr(),
            *h5t::H5T_NATIVE_DOUBLE,
            space,
            h5p::H5P_DEFAULT,
            h5p::H5P_DEFAULT,
            h5p::H5P_DEFAULT,
        );
        let values = [1.5f64, 2.5, 3.5];
        h5d::H5Dwrite(
            d,
            *h5t::H5T_NATIVE_DOUBLE,
            h5s::H5S_ALL,
            h5s::H5S_ALL,
            h5p::H5P_DEFAULT,
            values.as_ptr().cast(),
        );
        h5d::H5Dclose(d);
        let st = h5t::H5Tcopy(*h5t::H5T_C_S1);
        h5t::H5Tset_size(st, 5);
        h5t::H5Tset_strpad(st, h5t::H5T_str_t::H5T_STR_NULLPAD);
        let name = std::ffi::CString::new("names").unwrap();
        let d = h5d::H5Dcreate2(
            f,
            name.as_ptr(),
            st,
            space,
            h5p::H5P_DEFAULT,
            h5p::H5P_DEFAULT,
            h5p::H5P_DEFAULT,
        );
        let text = *b"ab\0\0\0cde\0\0f\0\0\0\0";
        h5d::H5Dwrite(
            d,
            st,
            h5s::H5S_ALL,
            h5s::H5S_ALL,
            h5p::H5P_DEFAULT,
            text.as_ptr().cast(),
        );
        h5d::H5Dclose(d);
        h5t::H5Tclose(st);
        h5s::H5Sclose(space);
        h5f::H5Fclose(f);
    }
}

#[test]
fn fixed_length_hdf5_strings_are_refused_rather_than_misread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smap_like.h5");
    fixed_string_file(&path);
    let out = dir.path().join("out.zarr");
    // netCDF-C 4.9.0 read them as ['ab', '', ''] (or corrupted the heap), exit 0.
    refused(
        &convert(std::slice::from_ref(&path), &out, &[]),
        3,
        &[
            "variable 'names' is an HDF5 string dataset of fixed length",
            "--skip-unsupported",
        ],
    );
    assert!(!out.exists());
    convert(std::slice::from_ref(&path), &out, &["--skip-unsupported"]).ok();
    verify_source(&out, &[s(&path)]).ok();
    assert!(!out.join("names").exists());
    let values: Vec<f64> = array_values(&out, "values");
    assert_eq!(values, [1.5, 2.5, 3.5]);
}
