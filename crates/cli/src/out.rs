//! Writing the files commands produce (`--out`): whole or not at all, and nothing else touched.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, bail};

/// Writes `bytes` to `path` through a temporary file of a unique name in the same directory and a
/// rename, so a reader never sees half a file and no other file (an `x.tmp` of the user's) is
/// overwritten. The file gets the permissions `std::fs::write` would give it (0o666 less the
/// umask): a temporary file's private 0o600 would make reports unreadable to whoever they are
/// shared with. A path naming a directory is an error, not a stray file beside it.
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_file_with(path, |file| file.write_all(bytes))
}

/// [`write_file`] with the content written by `write` as it goes (a large run file is never
/// held whole in memory); an error from `write` leaves no file behind.
pub fn write_file_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let display = path.display();
    if path
        .as_os_str()
        .to_string_lossy()
        .ends_with(std::path::MAIN_SEPARATOR)
        || path.is_dir()
    {
        bail!("{display} is a directory: name the file to write");
    }
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".cascade-")
        .suffix(".partial")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| {
            format!(
                "creating a temporary file in {} for {display}",
                dir.display()
            )
        })?;
    write(file.as_file_mut())
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("writing {display}"))?;
    file.persist(path)
        .with_context(|| format!("renaming the temporary file to {display}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_file_and_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let user_file = dir.path().join("run.tmp");
        std::fs::write(&user_file, "the user's").unwrap();
        let out = dir.path().join("run.json");
        write_file(&out, b"{}\n").unwrap();
        write_file(&out, b"{\"again\": 1}\n").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"{\"again\": 1}\n");
        assert_eq!(std::fs::read(&user_file).unwrap(), b"the user's");
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["run.json", "run.tmp"]);
    }

    #[test]
    fn the_file_has_the_permissions_a_plain_write_gives() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.json");
        std::fs::write(&plain, b"{}").unwrap();
        let out = dir.path().join("run.json");
        write_file(&out, b"{}").unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&out), mode(&plain));
    }

    #[test]
    fn a_directory_is_refused_without_a_stray_file() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("runs");
        std::fs::create_dir(&folder).unwrap();
        for path in [
            folder.clone(),
            Path::new(&format!("{}/", folder.display())).to_path_buf(),
        ] {
            let message = write_file(&path, b"{}").unwrap_err().to_string();
            assert!(message.contains("is a directory"), "{message}");
        }
        let missing = Path::new(&format!("{}/new/", dir.path().display())).to_path_buf();
        assert!(write_file(&missing, b"{}").is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["runs"]);
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
    }
}
