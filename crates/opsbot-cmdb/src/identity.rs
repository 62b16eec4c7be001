//! The agent's identity (seed 004): the hostname the host had when the agent first
//! ran, kept in a local file. A host renamed later keeps its identity, so the server
//! records a rename of the asset rather than a new one.

use crate::facts::valid_hostname;
use crate::{CmdbError, Result};
use std::path::Path;

/// The identity kept in `file`, or `hostname` (written to `file`) on the first run.
pub fn load_or_create(file: &Path, hostname: &str) -> Result<String> {
    match std::fs::read_to_string(file) {
        Ok(text) => {
            let id = text.trim().to_lowercase();
            if !valid_hostname(&id) {
                return Err(CmdbError::state(
                    file,
                    format!("{id:?} is not a hostname; fix or delete the file to start over"),
                ));
            }
            Ok(id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = hostname.trim().to_lowercase();
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).map_err(|e| CmdbError::state(dir, e))?;
            }
            crate::spool::write_atomic(file, format!("{id}\n").as_bytes())?;
            Ok(id)
        }
        Err(e) => Err(CmdbError::state(file, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_run_writes_the_hostname_and_a_rename_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state/identity");
        assert_eq!(load_or_create(&file, "Web-01").unwrap(), "web-01");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "web-01\n");
        assert_eq!(load_or_create(&file, "web-02").unwrap(), "web-01");
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("identity");
        std::fs::write(&file, "not a host name!").unwrap();
        let e = load_or_create(&file, "web-01").unwrap_err().to_string();
        assert!(
            e.contains("identity") && e.contains("not a hostname"),
            "{e}"
        );
    }
}
