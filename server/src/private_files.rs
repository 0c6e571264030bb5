//! Files that hold the evidence or the keys to it (the SQLite database, the key file, checkpoints) are
//! created readable by their owner only, in directories only the owner can enter: whoever can read
//! the data directory would otherwise read every sealed secret's ciphertext, and whoever can write it
//! could put an older database or checkpoint back.
use std::{
    fs,
    io::{self, Write},
    path::Path,
};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

/// Creates `dir` and any missing parents with mode 0700. Directories that exist keep their mode.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir)
}

/// Open options that create a missing file with mode 0600.
pub fn options() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    #[cfg(unix)]
    options.mode(0o600);
    options
}

/// Creates `path` empty with mode 0600 when it is missing; an existing file is left as it is.
pub fn touch(path: &Path) -> io::Result<()> {
    options().write(true).create(true).open(path).map(drop)
}

/// Writes `contents` to `path`, which is created with mode 0600 or truncated.
pub fn write(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(contents)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn what_is_created_is_the_owners_alone() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_dir_all(&dir).unwrap();
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("db");
        touch(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        write(&dir.join("latest"), b"x").unwrap();
        assert_eq!(mode(&dir.join("latest")), 0o600);
        // An existing file keeps what its owner chose, and its contents.
        fs::write(&file, b"kept").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        touch(&file).unwrap();
        assert_eq!(mode(&file), 0o640);
        assert_eq!(fs::read(&file).unwrap(), b"kept");
    }
}
