//! Atomic file replacement: write a temporary file in the target's folder, fsync, rename.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Replaces `path` with what `fill` writes, atomically: readers see the old file or the
/// complete new one, never a partial write, even if the process is killed.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let io = |err| Error::io(path, err);
    // `.NAME.<random>.tmp`: hidden, and traceable to its target, so that the next run of an
    // output can remove what a killed write left (`RunFiles::remove_stale_temporaries`).
    let prefix = format!(
        ".{}.",
        path.file_name()
            .map_or("imagenetx".into(), |n| n.to_string_lossy())
    );
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // Like a plain file creation (0666 less the umask), not a private temporary file (0600):
    // reports and tables are meant to be shared.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(io)?;
    {
        let mut writer = std::io::BufWriter::new(tmp.as_file_mut());
        fill(&mut writer).map_err(io)?;
        writer.flush().map_err(io)?;
    }
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|err| io(err.error))?;
    // Make the rename itself durable.
    if let Ok(folder) = std::fs::File::open(dir) {
        let _ = folder.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old contents that are longer").expect("write");
        write_atomic(&path, |w: &mut dyn Write| w.write_all(b"new")).expect("atomic");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        let failed = write_atomic(&path, |_: &mut dyn Write| {
            Err(std::io::Error::other("boom"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.txt")]);
    }

    #[cfg(unix)]
    #[test]
    fn new_files_are_as_readable_as_plain_ones() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = dir.path().join("plain.txt");
        std::fs::write(&plain, "x").expect("write");
        let atomic = dir.path().join("atomic.txt");
        write_atomic(&atomic, |w: &mut dyn Write| w.write_all(b"x")).expect("atomic");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        // Both are 0666 less the process umask (0644 with the usual 022), not 0600.
        assert_eq!(mode(&atomic), mode(&plain));
    }
}
