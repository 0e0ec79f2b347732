//! Compiled email-pattern sets, cached per catalog. A catalog's pattern rows are
//! replaced whole on every change, with new ids, so the newest row id names a set
//! exactly: the cache stays right across processes without any invalidation.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use diesel::PgConnection;

use crate::domain::EmailPatterns;
use crate::error::Result;
use crate::models::catalogs;

/// Catalogs whose compiled sets are kept; beyond, the cache starts again.
const MAX_CACHED_CATALOGS: usize = 10_000;

/// Per catalog: the revision compiled, and its patterns.
type Compiled = HashMap<i64, (i64, Arc<EmailPatterns>)>;

#[derive(Debug, Clone, Default)]
pub struct PatternCache {
    compiled: Arc<Mutex<Compiled>>,
}

impl PatternCache {
    /// The patterns of every catalog that has some.
    pub fn all(&self, conn: &mut PgConnection) -> Result<BTreeMap<i64, Arc<EmailPatterns>>> {
        let revisions = catalogs::pattern_revisions(conn, None)?;
        self.resolve(conn, revisions)
    }

    /// One catalog's patterns (none when it has none).
    pub fn of(&self, conn: &mut PgConnection, catalog_id: i64) -> Result<Arc<EmailPatterns>> {
        let revisions = catalogs::pattern_revisions(conn, Some(catalog_id))?;
        Ok(self
            .resolve(conn, revisions)?
            .remove(&catalog_id)
            .unwrap_or_default())
    }

    fn resolve(
        &self,
        conn: &mut PgConnection,
        revisions: Vec<(i64, i64)>,
    ) -> Result<BTreeMap<i64, Arc<EmailPatterns>>> {
        let mut found = BTreeMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
            for (catalog_id, revision) in &revisions {
                match cache.get(catalog_id) {
                    Some((cached, patterns)) if cached == revision => {
                        found.insert(*catalog_id, patterns.clone());
                    }
                    _ => missing.push((*catalog_id, *revision)),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let ids: Vec<i64> = missing.iter().map(|(id, _)| *id).collect();
        let mut sources: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for (catalog_id, pattern) in catalogs::patterns_of_many(conn, &ids)? {
            sources.entry(catalog_id).or_default().push(pattern);
        }
        let mut cache = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() + missing.len() > MAX_CACHED_CATALOGS {
            cache.clear();
        }
        for (catalog_id, revision) in missing {
            let list = sources.remove(&catalog_id).unwrap_or_default();
            let patterns = Arc::new(EmailPatterns::from_stored(list.iter().map(String::as_str)));
            cache.insert(catalog_id, (revision, patterns.clone()));
            found.insert(catalog_id, patterns);
        }
        Ok(found)
    }
}
