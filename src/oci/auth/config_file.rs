//! The OCI config file (`~/.oci/config`): INI text with one `[PROFILE]` per section and keys
//! inherited from `[DEFAULT]`, and the rules for the paths written in it.
//!
//! Errors name the file and line; values are kept with their line number for that reason.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::ENV_HOME;
use crate::{Error, Result};

/// The profile read when none is named, and the one every profile inherits from.
pub(super) const DEFAULT_PROFILE: &str = "DEFAULT";

/// A value from the config file with the line it came from, for error messages.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) value: String,
    pub(super) line: usize,
}

/// The keys of one profile after `[DEFAULT]` inheritance.
pub(super) struct Profile {
    pub(super) file: String,
    pub(super) name: String,
    entries: HashMap<String, Entry>,
}

impl Profile {
    pub(super) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key).filter(|e| !e.value.is_empty())
    }

    pub(super) fn require(&self, key: &str) -> Result<&Entry> {
        self.get(key).ok_or_else(|| {
            Error::Config(format!(
                "{}: profile [{}]: {key} is missing",
                self.file, self.name
            ))
        })
    }

    pub(super) fn at(&self, entry: &Entry) -> String {
        format!("{}:{}", self.file, entry.line)
    }
}

/// Parses INI text into `profile`, inheriting missing keys from `[DEFAULT]`.
pub(super) fn parse_profile(text: &str, file: &str, profile: &str) -> Result<Profile> {
    let mut sections: HashMap<String, HashMap<String, Entry>> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    Error::Config(format!("{file}:{line_no}: malformed [PROFILE] line"))
                })?;
            if !sections.contains_key(name) {
                order.push(name.to_owned());
            }
            sections.entry(name.to_owned()).or_default();
            current = Some(name.to_owned());
            continue;
        }
        // Values may contain '=' (base64, URLs): split at the first one only.
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| Error::Config(format!("{file}:{line_no}: expected key=value")))?;
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err(Error::Config(format!("{file}:{line_no}: empty key")));
        }
        let section = current.as_ref().ok_or_else(|| {
            Error::Config(format!(
                "{file}:{line_no}: key {key} comes before any [PROFILE]"
            ))
        })?;
        let entry = Entry {
            value: value.trim().to_owned(),
            line: line_no,
        };
        sections.get_mut(section).map(|s| s.insert(key, entry));
    }
    let mut entries = sections.get(DEFAULT_PROFILE).cloned().unwrap_or_default();
    match sections.get(profile) {
        Some(own) => entries.extend(own.iter().map(|(k, v)| (k.clone(), v.clone()))),
        None => {
            return Err(Error::Config(format!(
                "{file}: profile [{profile}] not found (profiles: {})",
                if order.is_empty() {
                    "none".to_owned()
                } else {
                    order.join(", ")
                }
            )))
        }
    }
    Ok(Profile {
        file: file.to_owned(),
        name: profile.to_owned(),
        entries,
    })
}

/// Expands a leading `~` to `home` and makes relative paths absolute against the current
/// directory, so error messages show the file actually tried.
pub(super) fn expand_path(value: &str, home: Option<&Path>, what: &str) -> Result<PathBuf> {
    let path = if value == "~" || value.starts_with("~/") {
        let home = home.ok_or_else(|| {
            Error::Config(format!(
                "{what}: {value} starts with ~ but {ENV_HOME} is not set"
            ))
        })?;
        home.join(value.trim_start_matches('~').trim_start_matches('/'))
    } else {
        PathBuf::from(value)
    };
    if path.is_absolute() {
        return Ok(path);
    }
    let cwd = std::env::current_dir().map_err(|e| {
        Error::Config(format!(
            "{what}: {value} is relative and the current directory is unknown: {e}"
        ))
    })?;
    Ok(cwd.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_handles_comments_first_equals_and_default_inheritance() {
        let text = "# comment\n; other comment\n[DEFAULT]\ntenancy = t0\nregion=us-ashburn-1\n\n[dev]\n  user =u1  \nextra = a=b==\n";
        let p = parse_profile(text, "cfg", "dev").unwrap();
        assert_eq!(
            p.get("tenancy").unwrap().value,
            "t0",
            "inherited from DEFAULT"
        );
        assert_eq!(p.get("user").unwrap().value, "u1", "trimmed");
        assert_eq!(p.get("extra").unwrap().value, "a=b==", "split at first =");
        assert_eq!(p.get("extra").unwrap().line, 9);
        let own = parse_profile("[DEFAULT]\nregion=a\n[x]\nregion=b\n", "cfg", "x").unwrap();
        assert_eq!(
            own.get("region").unwrap().value,
            "b",
            "profile overrides DEFAULT"
        );
    }

    #[test]
    fn parser_errors_name_file_line_and_profile() {
        let err = |text: &str, profile: &str| {
            let err = parse_profile(text, "/c/config", profile).err().unwrap();
            err.to_string()
        };
        for (text, line) in [
            ("[DEFAULT]\nno equals here\n", "/c/config:2"),
            ("user=x\n", "/c/config:1"),
            ("[DEFAULT\n", "/c/config:1"),
        ] {
            let err = err(text, "DEFAULT");
            assert!(err.contains(line), "{err}");
        }
        let err = err("[DEFAULT]\n[a]\n", "prod");
        assert!(
            err.contains("[prod]") && err.contains("DEFAULT, a"),
            "{err}"
        );
    }

    #[test]
    fn paths_expand_home_and_resolve_relative_against_cwd() {
        let home = Path::new("/home/me");
        assert_eq!(
            expand_path("~/.oci/key.pem", Some(home), "k").unwrap(),
            home.join(".oci/key.pem")
        );
        assert_eq!(
            expand_path("/abs/key.pem", Some(home), "k").unwrap(),
            Path::new("/abs/key.pem")
        );
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            expand_path("keys/k.pem", None, "k").unwrap(),
            cwd.join("keys/k.pem")
        );
        let err = expand_path("~/k.pem", None, "key_file (cfg:3)")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("key_file (cfg:3)") && err.contains("HOME"),
            "{err}"
        );
    }
}
