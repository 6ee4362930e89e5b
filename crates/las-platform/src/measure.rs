//! Measurements of executables: the simulated MRENCLAVE is the SHA-256 of the file.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// SHA-256 of a file, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> std::io::Result<[u8; 32]> {
    sha256_reader(std::fs::File::open(path)?)
}

/// The running executable (`/proc/self/exe` on Linux).
pub fn current_exe() -> std::io::Result<PathBuf> {
    let proc = Path::new("/proc/self/exe");
    if proc.exists() {
        Ok(proc.to_path_buf())
    } else {
        std::env::current_exe()
    }
}

/// SHA-256 of the executable this code runs as, checked first to be `/proc/self/exe`.
///
/// Started through the dynamic loader (`ld.so lasd`), `/proc/self/exe` is the loader: every
/// binary started that way would measure the same file and claim one platform ID (issue 23,
/// finding "simulation through ld.so"). So the file that holds this very function (from
/// `/proc/self/maps`) must be the same device and inode as `/proc/self/exe`; otherwise the
/// measurement is refused. The hash is read from the file that was checked.
pub fn sha256_of_running_executable() -> std::io::Result<[u8; 32]> {
    use std::os::unix::fs::MetadataExt;
    let exe = current_exe()?;
    let file = std::fs::File::open(&exe)?;
    let meta = file.metadata()?;
    let here = sha256_of_running_executable as fn() -> std::io::Result<[u8; 32]> as usize;
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mapped = maps.lines().find_map(|l| code_mapping(l, here));
    match mapped {
        Some((major, minor, ino, _))
            if ino == meta.ino() && (major, minor) == dev_parts(meta.dev()) => {}
        Some((_, _, _, path)) => {
            return Err(std::io::Error::other(format!(
                "this code runs from {path}, but /proc/self/exe is {}: started through a \
                 loader (e.g. `ld.so lasd`)? The simulated MRENCLAVE measures /proc/self/exe, \
                 so run the executable itself",
                std::fs::read_link(&exe).unwrap_or(exe).display()
            )));
        }
        None => {
            return Err(std::io::Error::other(
                "cannot find the running code in /proc/self/maps, so cannot check that \
                 /proc/self/exe is the executable that runs",
            ));
        }
    }
    sha256_reader(file)
}

/// `(major, minor, inode, path)` of a `/proc/self/maps` line whose range holds `addr`.
fn code_mapping(line: &str, addr: usize) -> Option<(u64, u64, u64, String)> {
    let mut f = line.split_whitespace();
    let (lo, hi) = f.next()?.split_once('-')?;
    let (lo, hi) = (
        usize::from_str_radix(lo, 16).ok()?,
        usize::from_str_radix(hi, 16).ok()?,
    );
    if !(lo <= addr && addr < hi) {
        return None;
    }
    let _perms = f.next()?;
    let _offset = f.next()?;
    let (major, minor) = f.next()?.split_once(':')?;
    let ino = f.next()?.parse().ok()?;
    let path = f.collect::<Vec<_>>().join(" ");
    Some((
        u64::from_str_radix(major, 16).ok()?,
        u64::from_str_radix(minor, 16).ok()?,
        ino,
        path,
    ))
}

/// Linux's `major()` and `minor()` of a device number (glibc's encoding).
fn dev_parts(dev: u64) -> (u64, u64) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    (major, minor)
}

fn sha256_reader(mut f: std::fs::File) -> std::io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok(h.finalize().into())
}
