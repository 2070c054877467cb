//! Output folders that appear whole or not at all.
//!
//! A command that writes several files (`tune`, `demo`, `experiment`) builds them in a
//! staging folder and publishes them at the end with [`Staging::commit`]; dropping a
//! [`Staging`] that was not committed (an error, a panic) removes the staging folder, so a
//! failed run leaves nothing behind.
//!
//! ```text
//! Replace (tune, demo):   DIR absent, empty, or holding `marker` (an earlier run's file)
//!                         stage in the sibling .DIR.tmp-PID, then rename it to DIR (an old
//!                         DIR is first renamed aside and removed after the swap)
//! Merge (experiment):     DIR created if absent; stage in DIR/.glasso-ho.tmp-PID, then
//!                         rename each staged file into DIR (files of other names are kept)
//! ```

use crate::CliError;
use std::fs;
use std::path::{Path, PathBuf};

/// How the staged files reach the output folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// The folder is replaced as a whole. It must be absent, empty, or hold the named file
    /// (the marker of an earlier run of the same command); anything else is refused.
    Replace {
        /// File whose presence allows replacing a non-empty folder.
        marker: &'static str,
    },
    /// The staged files are moved into the folder, replacing files of the same names.
    Merge,
}

/// A staging folder for the files of one run.
#[derive(Debug)]
pub struct Staging {
    target: PathBuf,
    dir: PathBuf,
    publish: Publish,
    created_target: bool,
    committed: bool,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks, before any work, that `target` can receive the output of a run published by
/// `publish`; with `create_parents`, a missing parent folder is allowed (it is created by
/// [`Staging::new`]).
///
/// # Errors
/// [`CliError::OutputDir`] (exit code 2).
pub fn check_target(target: &Path, publish: Publish, create_parents: bool) -> Result<(), CliError> {
    let bad = |reason| {
        Err(CliError::OutputDir {
            path: target.to_path_buf(),
            reason,
        })
    };
    if target.as_os_str().is_empty() {
        return bad("empty output folder name");
    }
    if target.exists() {
        if !target.is_dir() {
            return bad("exists and is not a folder");
        }
        if let Publish::Replace { marker } = publish {
            let empty = fs::read_dir(target)
                .map_err(io_error(target))?
                .next()
                .is_none();
            if !empty && !target.join(marker).is_file() {
                return bad(
                    "output folder exists and is not empty (nor the output of an earlier run): \
                     choose another --out-dir",
                );
            }
        }
    } else if !create_parents {
        let parent = parent_of(target);
        if !parent.is_dir() {
            return bad("the parent folder does not exist");
        }
    }
    Ok(())
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_string())
}

impl Staging {
    /// Checks `target` ([`check_target`]) and creates the staging folder.
    ///
    /// # Errors
    /// [`CliError::OutputDir`], [`CliError::Io`].
    pub fn new(target: &Path, publish: Publish, create_parents: bool) -> Result<Self, CliError> {
        check_target(target, publish, create_parents)?;
        let pid = std::process::id();
        let mut created_target = false;
        let dir = match publish {
            Publish::Replace { .. } => {
                let parent = parent_of(target);
                if create_parents {
                    fs::create_dir_all(&parent).map_err(io_error(&parent))?;
                }
                parent.join(format!(".{}.tmp-{pid}", file_name(target)))
            }
            Publish::Merge => {
                if !target.exists() {
                    fs::create_dir_all(target).map_err(io_error(target))?;
                    created_target = true;
                }
                target.join(format!(".glasso-ho.tmp-{pid}"))
            }
        };
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io_error(&dir))?;
        }
        fs::create_dir(&dir).map_err(io_error(&dir))?;
        Ok(Self {
            target: target.to_path_buf(),
            dir,
            publish,
            created_target,
            committed: false,
        })
    }

    /// The staging folder (write the run's files here).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A file of the staging folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The final folder.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Publishes the staged files into the target folder.
    ///
    /// # Errors
    /// [`CliError::Io`] when a rename fails (the staging folder is then removed).
    pub fn commit(mut self) -> Result<(), CliError> {
        match self.publish {
            Publish::Replace { .. } => {
                let old = parent_of(&self.target).join(format!(
                    ".{}.old-{}",
                    file_name(&self.target),
                    std::process::id()
                ));
                let had_old = self.target.exists();
                if had_old {
                    fs::rename(&self.target, &old).map_err(io_error(&self.target))?;
                }
                if let Err(e) = fs::rename(&self.dir, &self.target) {
                    if had_old {
                        let _ = fs::rename(&old, &self.target);
                    }
                    return Err(io_error(&self.target)(e));
                }
                self.committed = true;
                if had_old {
                    let _ = fs::remove_dir_all(&old);
                }
            }
            Publish::Merge => {
                let entries = fs::read_dir(&self.dir).map_err(io_error(&self.dir))?;
                for entry in entries {
                    let entry = entry.map_err(io_error(&self.dir))?;
                    let to = self.target.join(entry.file_name());
                    fs::rename(entry.path(), &to).map_err(io_error(&to))?;
                }
                let _ = fs::remove_dir(&self.dir);
                self.committed = true;
            }
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.dir);
            if self.created_target {
                // Only if nothing else appeared there meanwhile.
                let _ = fs::remove_dir(&self.target);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_is_all_or_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("run");
        {
            let s = Staging::new(&target, Publish::Replace { marker: "r.json" }, false).unwrap();
            fs::write(s.path("a.csv"), "1").unwrap();
            // dropped without commit
        }
        assert!(!target.exists());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
        let s = Staging::new(&target, Publish::Replace { marker: "r.json" }, false).unwrap();
        fs::write(s.path("r.json"), "{}").unwrap();
        s.commit().unwrap();
        assert!(target.join("r.json").is_file());
        // An earlier run is replaced.
        let s = Staging::new(&target, Publish::Replace { marker: "r.json" }, false).unwrap();
        fs::write(s.path("r.json"), "{\"x\":1}").unwrap();
        s.commit().unwrap();
        assert_eq!(
            fs::read_to_string(target.join("r.json")).unwrap(),
            "{\"x\":1}"
        );
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
        // A foreign non-empty folder is refused.
        let other = tmp.path().join("other");
        fs::create_dir(&other).unwrap();
        fs::write(other.join("keep.txt"), "x").unwrap();
        assert!(Staging::new(&other, Publish::Replace { marker: "r.json" }, false).is_err());
        assert!(check_target(&tmp.path().join("a/b"), Publish::Merge, false).is_err());
    }

    #[test]
    fn merge_keeps_other_files() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("figs");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("keep.txt"), "x").unwrap();
        let s = Staging::new(&target, Publish::Merge, false).unwrap();
        fs::write(s.path("fig.csv"), "1").unwrap();
        s.commit().unwrap();
        let mut names: Vec<_> = fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["fig.csv", "keep.txt"]);
        // A failed run into a new folder leaves no folder.
        let fresh = tmp.path().join("fresh");
        drop(Staging::new(&fresh, Publish::Merge, false).unwrap());
        assert!(!fresh.exists());
    }
}
