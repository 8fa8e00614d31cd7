//! A private PostgreSQL cluster for the tests that stop, restart or reconfigure a server.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

/// A private cluster in a temporary directory, stopped on drop.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_user: Option<&'static str>,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    /// Starts a new cluster; `auth` are initdb's authentication options, and `password` the
    /// superuser's (`postgres`) password, if any.
    pub fn start(auth: &[&str], password: Option<&str>) -> Option<Self> {
        // The server's tools: PERSEVERE_POSTGRES_BIN, else what `pg_config --bindir` says.
        let bin = match std::env::var_os("PERSEVERE_POSTGRES_BIN") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let out = Process::new("pg_config").arg("--bindir").output().ok()?;
                PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
            }
        };
        if !bin.join("initdb").exists() {
            return None;
        }
        let tmp = tempfile::tempdir().ok()?;
        let dir = tmp.path().join("data");
        let pwfile = tmp.path().join("password");
        if let Some(password) = password {
            std::fs::write(&pwfile, password).ok()?;
        }
        let root = Process::new("id").arg("-u").output().ok()?.stdout == b"0\n";
        let as_user = root.then_some("postgres");
        if root {
            Process::new("chown")
                .args(["-R", "postgres"])
                .arg(tmp.path())
                .status()
                .ok()?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let cluster = Self {
            dir,
            bin,
            port,
            as_user,
            _tmp: tmp,
        };
        let pwfile = format!("--pwfile={}", pwfile.display());
        let mut args = auth.to_vec();
        if password.is_some() {
            args.push(&pwfile);
        }
        args.extend(["-U", "postgres", "-D"]);
        let initdb = cluster.run("initdb", &args);
        if !initdb {
            return None;
        }
        cluster.ctl(&["start"]).then_some(cluster)
    }

    pub fn run(&self, tool: &str, args: &[&str]) -> bool {
        let program = self.bin.join(tool);
        let mut command = match self.as_user {
            Some(user) => {
                let mut c = Process::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Process::new(&program),
        };
        command
            .args(args)
            .arg(&self.dir)
            .stdout(std::process::Stdio::null());
        command.status().is_ok_and(|s| s.success())
    }

    pub fn ctl(&self, action: &[&str]) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let mut args: Vec<&str> = action.to_vec();
        args.extend(["-w", "-o", &options, "-l"]);
        let log = self.dir.with_extension("log");
        let log = log.to_string_lossy().into_owned();
        args.push(&log);
        args.push("-D");
        self.run("pg_ctl", &args)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.ctl(&["stop", "-m", "immediate"]);
    }
}
