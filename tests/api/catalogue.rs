//! The catalogue of bad input (docs/bad-input.md), one case each: what Ferry does, and the
//! table exactly as it must be afterwards.

use crate::helpers::{Shape, TestApp, spawn_app};
use serde_json::Value;

const TABLE: &str = "CREATE TYPE mood AS ENUM ('happy', 'sad');
    CREATE TABLE cat (id int NOT NULL, n int, big bigint, u uuid, d date, ts timestamptz, tl timestamp,
        x double precision, v varchar(5), m mood, j jsonb, t text);";

/// What must happen to one file.
enum Expect {
    /// Succeeds; these ids are in the table and these lines were rejected.
    Loaded {
        ids: &'static str,
        rejected_lines: &'static [u64],
    },
    /// Fails with this code; the table stays empty.
    Fails(&'static str),
    /// Refused at the door with this status and code: no job at all.
    Refused(u16, &'static str),
}

struct Case {
    name: &'static str,
    file: Vec<u8>,
    gzip_header: bool,
    expect: Expect,
}

fn case(name: &'static str, file: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name,
        file: file.into(),
        gzip_header: false,
        expect,
    }
}

fn loaded(ids: &'static str, rejected_lines: &'static [u64]) -> Expect {
    Expect::Loaded {
        ids,
        rejected_lines,
    }
}

fn cases() -> Vec<Case> {
    let two_mib = format!("id,t\n1,a\n2,{}\n3,c\n", "y".repeat(2 * 1024 * 1024));
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend((0..4000u32).map(|i| (i * 7 % 256) as u8));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, "id\n1\n2\n3\n".repeat(2000).as_bytes()).unwrap();
    let mut truncated = gz.finish().unwrap();
    truncated.truncate(truncated.len() / 2);
    vec![
        case(
            "unbalanced quote mid-file",
            "id,t\n1,a\n2,\"open\n3,c\n4,d\n",
            loaded("1,3,4", &[3]),
        ),
        case(
            "unbalanced quote at end of file",
            "id,t\n1,a\n2,\"open\n",
            loaded("1", &[3]),
        ),
        case(
            "quote inside an unquoted field",
            "id,t\n1,ab\"c\n",
            loaded("1", &[]),
        ),
        case(
            "too few fields",
            "id,n,t\n1,5,a\n2,6\n3,7,c\n",
            loaded("1,3", &[3]),
        ),
        case(
            "too many fields",
            "id,n\n1,5\n2,6,7\n3,7\n",
            loaded("1,3", &[3]),
        ),
        case(
            "CR, LF and CRLF mixed",
            "id,t\r\n1,a\n2,b\r3,c\r\n",
            loaded("1,2,3", &[]),
        ),
        case("a byte-order mark", "\u{feff}id,t\n1,a\n", loaded("1", &[])),
        case(
            "invalid UTF-8",
            b"id,t\n1,a\n2,\xff\xfe\n3,c\n".to_vec(),
            loaded("1,3", &[3]),
        ),
        case(
            "NUL bytes",
            format!("id,t\n1,{}\n2,b\0c\n3,c\n", "a".repeat(100)),
            loaded("1,3", &[3]),
        ),
        case("an empty file", "", Expect::Refused(422, "empty_file")),
        case("a header only", "id,t\n", loaded("", &[])),
        case(
            "duplicate header names",
            "id,t,T\n1,a,b\n",
            Expect::Fails("duplicate_column"),
        ),
        case(
            "an unknown header",
            "id,colour\n1,red\n",
            Expect::Fails("unknown_column"),
        ),
        case(
            "a missing required column",
            "n,t\n1,a\n",
            Expect::Fails("missing_column"),
        ),
        case("a 2 MiB line", two_mib, loaded("1,3", &[3])),
        case(
            "binary data (an image)",
            png,
            Expect::Refused(415, "not_csv"),
        ),
        Case {
            name: "Content-Encoding: gzip on a plain file",
            file: b"id\n1\n".to_vec(),
            gzip_header: true,
            expect: Expect::Fails("not_gzip"),
        },
        case(
            "a truncated gzip stream",
            truncated,
            Expect::Fails("corrupt_file"),
        ),
        case(
            "integer overflow",
            "id,n\n1,2147483647\n2,2147483648\n",
            loaded("1", &[3]),
        ),
        case(
            "a decimal in an integer column",
            "id,n\n1,12\n2,12.5\n",
            loaded("1", &[3]),
        ),
        case(
            "a bad uuid",
            "id,u\n1,67e55044-10b1-426f-9247-bb680e5fe0c8\n2,67e55044-nope\n",
            loaded("1", &[3]),
        ),
        case(
            "31 February",
            "id,d\n1,2024-02-29\n2,2023-02-31\n",
            loaded("1", &[3]),
        ),
        case(
            "timestamps with and without offsets",
            "id,ts,tl\n1,2026-11-23T10:00:00+02:00,2026-11-23 10:00:00\n2,2026-11-23 10:00:00,\n3,,2026-11-23T10:00:00Z\n",
            loaded("1", &[3, 4]),
        ),
        case("NaN", "id,x\n1,1.5\n2,NaN\n", loaded("1", &[3])),
        case(
            "an over-long varchar",
            "id,v\n1,abcde\n2,abcdef\n",
            loaded("1", &[3]),
        ),
        case(
            "a value outside an enum",
            "id,m\n1,happy\n2,angry\n",
            loaded("1", &[3]),
        ),
        case(
            "invalid JSON",
            "id,j\n1,{\"a\": [1]}\n2,{a: 1}\n",
            loaded("1", &[3]),
        ),
    ]
}

#[tokio::test]
async fn every_case_of_the_bad_input_catalogue_ends_with_the_table_as_it_should_be() {
    let app = spawn_app(Shape::Embedded).await;
    app.data_sql(TABLE).await;
    for case in cases() {
        app.data_sql("TRUNCATE cat").await;
        let job = run(&app, &case).await;
        match case.expect {
            Expect::Refused(status, code) => {
                assert_eq!(job["status"], status, "{}: {job}", case.name);
                assert_eq!(job["code"], code, "{}: {job}", case.name);
            }
            Expect::Fails(code) => {
                assert_eq!(job["state"], "failed", "{}: {job}", case.name);
                assert_eq!(job["error"]["code"], code, "{}: {job}", case.name);
            }
            Expect::Loaded { rejected_lines, .. } => {
                assert_eq!(job["state"], "succeeded", "{}: {job}", case.name);
                assert_eq!(
                    job["result"]["rows_rejected"],
                    rejected_lines.len(),
                    "{}: {job}",
                    case.name
                );
                if !rejected_lines.is_empty() {
                    let id = job["id"].as_str().unwrap();
                    let report = app
                        .get(&format!("/v1/imports/{id}/rejects"))
                        .await
                        .text()
                        .await
                        .unwrap();
                    let lines = report_lines(&report);
                    assert_eq!(lines, rejected_lines, "{}: {report}", case.name);
                }
            }
        }
        let ids = ids(&app).await;
        let want = match case.expect {
            Expect::Loaded { ids, .. } => ids,
            Expect::Fails(_) | Expect::Refused(..) => "",
        };
        assert_eq!(
            ids, want,
            "{}: the table holds exactly the valid rows",
            case.name
        );
    }
}

async fn run(app: &TestApp, case: &Case) -> Value {
    let mut request = app
        .client
        .post(app.url("/v1/imports?table=cat"))
        .header("content-type", "text/csv")
        .body(case.file.clone());
    if case.gzip_header {
        request = request.header("content-encoding", "gzip");
    }
    let response = request.send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    if let Expect::Refused(..) = case.expect {
        // The problem itself, to be checked by the caller.
        return body;
    }
    let id = body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: {body}", case.name))
        .to_owned();
    app.wait_final_at(&format!("/v1/imports/{id}")).await
}

async fn ids(app: &TestApp) -> String {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&app.data_url)
        .await
        .unwrap();
    let ids: Option<String> =
        sqlx::query_scalar("SELECT string_agg(id::text, ',' ORDER BY id) FROM cat")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    ids.unwrap_or_default()
}

/// The `_line` column of a rejects report.
fn report_lines(report: &str) -> Vec<u64> {
    let mut reader = csv::Reader::from_reader(report.as_bytes());
    let line = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "_line")
        .unwrap();
    reader
        .records()
        .map(|r| r.unwrap()[line].parse().unwrap())
        .collect()
}
