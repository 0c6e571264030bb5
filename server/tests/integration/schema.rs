//! The two databases hold the same schema: every table has the same columns with the same nullability
//! and a matching type on SQLite and PostgreSQL, so no query works on one and breaks on the other.
use std::collections::BTreeMap;

use server::store::Store;

use crate::common::{Db, TestDb};

/// (table, column) → (type family, nullable), for the application's tables.
type Columns = BTreeMap<(String, String), (&'static str, bool)>;

/// SQLite's declared types and PostgreSQL's data types, in the families the code binds.
fn family(declared: &str) -> &'static str {
    match declared.to_ascii_lowercase().as_str() {
        "text" | "character varying" => "text",
        "integer" | "bigint" | "smallint" => "integer",
        "blob" | "bytea" => "bytes",
        "real" | "double precision" => "real",
        other => panic!("a column type the schema test does not know: {other}"),
    }
}

/// The application's tables on SQLite. The history's search index (migration 0017) is left out: on
/// SQLite it is an FTS5 table and its shadow tables, on PostgreSQL indexes on the columns themselves.
async fn sqlite_columns(url: &str) -> Columns {
    let store = Store::connect(url).await.unwrap();
    let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT m.name, p.name, p.type, p.\"notnull\", p.pk FROM sqlite_master m \
         JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%' \
         AND m.name NOT LIKE 'request_search%'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    store.close().await;
    rows.into_iter()
        .map(|(table, column, ty, not_null, pk)| {
            // SQLite lets a primary key column hold NULL unless told otherwise; PostgreSQL never does.
            ((table, column), (family(&ty), not_null == 0 && pk == 0))
        })
        .collect()
}

async fn postgres_columns(url: &str) -> Columns {
    let store = Store::connect(url).await.unwrap();
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name NOT LIKE '_sqlx%'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    store.close().await;
    rows.into_iter()
        .map(|(table, column, ty, nullable)| ((table, column), (family(&ty), nullable == "YES")))
        .collect()
}

#[tokio::test]
async fn sqlite_and_postgres_have_the_same_columns() {
    let sqlite = TestDb::new(Db::Sqlite).await;
    let postgres = TestDb::new(Db::Postgres).await;
    let lite = sqlite_columns(&sqlite.url).await;
    let pg = postgres_columns(&postgres.url).await;
    assert!(lite.len() > 50, "the schema was read: {lite:?}");
    let mut differences = Vec::new();
    for key in lite.keys().chain(pg.keys()) {
        let (a, b) = (lite.get(key), pg.get(key));
        if a != b && !differences.iter().any(|(k, _, _)| k == key) {
            differences.push((key.clone(), a.copied(), b.copied()));
        }
    }
    assert!(
        differences.is_empty(),
        "columns that differ, as ((table, column), sqlite, postgres): {differences:#?}"
    );
}
