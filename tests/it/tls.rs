//! pgx connects wherever psql connects: libpq's `sslmode` semantics against a server of the
//! test's own presenting an X.509 version 1 self-signed certificate (as Citus sets one up),
//! which rustls refuses outright.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::Command;

use crate::support::Project;
use pgx::db::dev::Cluster;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs (Debian: apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate without extensions, which `openssl x509 -req` signs as X.509 version 1.
fn v1_certificate(dir: &Path, name: &str, cn: &str) {
    let subject = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-subj",
            &subject,
            "-out",
            &format!("{name}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-signkey",
            &format!("{name}.key"),
            "-days",
            "2",
            "-out",
            &format!("{name}.crt"),
        ],
    );
    let text = Command::new("openssl")
        .current_dir(dir)
        .args(["x509", "-noout", "-text", "-in", &format!("{name}.crt")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("Version: 1 (0x0)"),
        "a version 1 certificate"
    );
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Stops and deletes the test's server, whatever happens.
struct Server(Cluster);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.reset();
    }
}

#[test]
fn sslmodes_behave_as_in_libpq_with_a_version_1_self_signed_certificate() {
    let state = tempfile::Builder::new()
        .prefix("pgx-tls-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    std::fs::set_permissions(
        state.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let server = Server(Cluster::at(&state.path().join(".pgx")).unwrap());
    server.0.ensure_running().unwrap();

    // The server's key and certificate in its data directory, owned by the server's user.
    let data = server.0.data_dir();
    let owner = std::fs::metadata(&data).unwrap();
    v1_certificate(&data, "server", "localhost");
    v1_certificate(state.path(), "other", "localhost");
    for file in ["server.key", "server.crt"] {
        let path = data.join(file);
        std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }
    let port = free_port();
    // What ALTER SYSTEM would write (it does not run in a multi-statement transaction).
    let auto = data.join("postgresql.auto.conf");
    let mut settings = std::fs::read_to_string(&auto).unwrap();
    settings.push_str(&format!(
        "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nlisten_addresses = '127.0.0.1'\nport = {port}\n"
    ));
    std::fs::write(&auto, settings).unwrap();
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
    )
    .unwrap();
    server.0.stop().unwrap();
    server.0.ensure_running().unwrap();

    let root = data.join("server.crt");
    let other = state.path().join("other.crt");
    let url =
        |host: &str, query: &str| format!("postgres://postgres@{host}:{port}/postgres?{query}");
    let p = Project::new();
    p.add("alpha", "CREATE TABLE alpha (id int);", "DROP TABLE alpha;");

    // prefer (the default) and require encrypt without verifying; verify-ca checks the chain
    // only, verify-full the host name too (the certificate's CN, as it has no SAN).
    for (host, query) in [
        ("127.0.0.1", String::new()),
        ("127.0.0.1", "sslmode=prefer".into()),
        ("127.0.0.1", "sslmode=require".into()),
        (
            "127.0.0.1",
            format!("sslmode=verify-ca&sslrootcert={}", root.display()),
        ),
        (
            "localhost",
            format!("sslmode=verify-full&sslrootcert={}", root.display()),
        ),
    ] {
        let u = url(host, &query);
        let run = p
            .pgx()
            .env("DATABASE_URL", &u)
            .args(["migrate", "status", "--json"])
            .ok();
        assert!(
            run.stdout.contains("\"migrations\""),
            "{query}: {}",
            run.stdout
        );
        let encrypted = pgx_session_encrypted(&u);
        assert!(encrypted, "{query}: pgx's session is encrypted");
    }
    let refused = [
        (
            "127.0.0.1",
            format!("sslmode=verify-ca&sslrootcert={}", other.display()),
            "TLS: the server's certificate was refused: self-signed certificate; sslmode=verify-ca checks",
        ),
        (
            "127.0.0.1",
            format!("sslmode=verify-full&sslrootcert={}", root.display()),
            "TLS: the server's certificate was refused: IP address mismatch; sslmode=verify-full checks",
        ),
        // The server takes encrypted connections only.
        ("127.0.0.1", "sslmode=disable".into(), "no encryption"),
    ];
    for (host, query, why) in refused {
        let run = p
            .pgx()
            .env("DATABASE_URL", &url(host, &query))
            .args(["migrate", "up"])
            .fails();
        run.stderr_has(&format!("cannot connect to PostgreSQL at {host}:{port}"))
            .stderr_has(why);
        assert!(
            !run.stderr.contains(".c:"),
            "no OpenSSL source locations: {}",
            run.stderr
        );
    }
    p.pgx()
        .env("DATABASE_URL", &url("127.0.0.1", "sslmode=require"))
        .args(["migrate", "up", "-q"])
        .ok();
}

/// Whether a session pgx's library opens with `url` is encrypted, as the server sees it.
fn pgx_session_encrypted(url: &str) -> bool {
    crate::support::block_on(async {
        let mut conn = pgx::db::connect(&pgx::db::url::DbUrl::new(url))
            .await
            .expect("pgx connects");
        let ssl: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        pgx::db::close(conn).await;
        ssl
    })
}
