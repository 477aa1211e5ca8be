//! DuckDB connection URLs (`[connections.NAME] url = "duckdb:///…"` or `"md:…"`): their form,
//! checked at start-up whether or not this build has DuckDB (cargo feature `duckdb`).

/// Whether this build has DuckDB.
pub const AVAILABLE: bool = cfg!(feature = "duckdb");

/// What a DuckDB URL opens: a path (or an `md:` name) and DuckDB settings from its query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The file's path, or the whole `md:` URL.
    pub path: String,
    /// `key=value` pairs of the URL's query string, handed to DuckDB's configuration
    /// (`duckdb:///a.duckdb?threads=2&memory_limit=1GB`).
    pub options: Vec<(String, String)>,
    /// Whether it is MotherDuck.
    pub motherduck: bool,
}

/// Settings a URL may not change: they are what keeps a connection read-only and contained.
const FIXED_SETTINGS: [&str; 5] = [
    "access_mode",
    "enable_external_access",
    "lock_configuration",
    "allow_unsigned_extensions",
    "allow_community_extensions",
];

/// Reads `duckdb://PATH[?key=value&…]` or `md:…`; the error says what is wrong.
pub fn target(url: &str) -> Result<Target, String> {
    if url.starts_with("md:") {
        return Ok(Target {
            path: url.to_owned(),
            options: Vec::new(),
            motherduck: true,
        });
    }
    let rest = url
        .strip_prefix("duckdb://")
        .ok_or("a DuckDB URL is duckdb:///path/to/file.duckdb or md:database")?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        return Err("a DuckDB URL names a database file: duckdb:///path/to/file.duckdb".into());
    }
    let mut options = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} in the URL's query is not key=value"))?;
        let key = key.to_ascii_lowercase();
        if FIXED_SETTINGS.contains(&key.as_str()) {
            return Err(format!(
                "{key} cannot be set: Ferry's DuckDB connections are read-only and contained"
            ));
        }
        options.push((key, value.to_owned()));
    }
    Ok(Target {
        path: path.to_owned(),
        options,
        motherduck: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_url_gives_its_path_and_settings_and_md_passes_through() {
        let found = target("duckdb:///var/lib/a.duckdb?threads=2&memory_limit=1GB").unwrap();
        assert_eq!(found.path, "/var/lib/a.duckdb");
        assert_eq!(
            found.options,
            [
                ("threads".to_owned(), "2".to_owned()),
                ("memory_limit".to_owned(), "1GB".to_owned())
            ]
        );
        assert!(!found.motherduck);
        assert_eq!(
            target("duckdb://rel/a.duckdb").unwrap().path,
            "rel/a.duckdb"
        );
        let md = target("md:my_db?motherduck_token=x").unwrap();
        assert_eq!(md.path, "md:my_db?motherduck_token=x");
        assert!(md.motherduck);
    }

    #[test]
    fn a_url_may_not_lift_the_read_only_fence_or_name_no_file() {
        for url in [
            "duckdb:///a.duckdb?access_mode=READ_WRITE",
            "duckdb:///a.duckdb?Enable_External_Access=true",
            "duckdb:///a.duckdb?threads",
            "duckdb://",
            "duckdb://:memory:",
            "sqlite:///a.db",
        ] {
            assert!(target(url).is_err(), "{url}");
        }
    }
}
