//! `ewindow-init` as PID 1 of a new PID and mount namespace (`unshare --fork --pid
//! --mount-proc`), driven through its control socket and signals, with small shell scripts as
//! services. Needs root (CI runs as root); fails with a clear message otherwise.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_ewindow-init");

/// One ewindow-init in its own namespace, with its scratch directory.
struct Init {
    dir: PathBuf,
    child: Child,
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests run ewindow-init as PID 1 of a new PID namespace (unshare --pid), \
         which needs root: run them as root, as CI does"
    );
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ewindow-init-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes an executable `/bin/sh` script; `DIR` in the body becomes the scratch directory.
fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    let text = format!(
        "#!/bin/sh\n{}\n",
        body.replace("DIR", &dir.display().to_string())
    );
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

impl Init {
    fn start(dir: PathBuf, services: &str) -> Init {
        Init::start_with(dir, services, &[], &[])
    }

    /// Like [`Init::start`] with more `unshare` namespaces and more init arguments.
    fn start_with(dir: PathBuf, services: &str, namespaces: &[&str], args: &[&str]) -> Init {
        let mut all = vec!["--no-mounts"];
        all.extend_from_slice(args);
        Init::spawn(dir, services, namespaces, &all)
    }

    /// `ewindow-init ARGS` as PID 1 of new PID and mount namespaces (and `namespaces`).
    fn spawn(dir: PathBuf, services: &str, namespaces: &[&str], args: &[&str]) -> Init {
        require_root();
        fs::write(dir.join("services.toml"), services).unwrap();
        let log = fs::File::create(dir.join("init.log")).unwrap();
        let child = Command::new("unshare")
            .args(["--fork", "--pid", "--mount-proc"])
            .args(namespaces)
            .arg(BIN)
            .args(args)
            .arg("--config")
            .arg(dir.join("services.toml"))
            .arg("--control")
            .arg(dir.join("init.sock"))
            .args(["--final-grace-s", "2"])
            .env("EWINDOW_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("unshare (util-linux) must be installed");
        let init = Init { dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(init.dir.join("init.sock")).is_err() {
            assert!(
                Instant::now() < deadline,
                "no control socket; log:\n{}",
                init.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        init
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("init.log")).unwrap_or_default()
    }

    fn request(&self, req: Value) -> Value {
        let mut s = UnixStream::connect(self.dir.join("init.sock")).expect("control socket");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        writeln!(s, "{req}").unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    fn status(&self) -> Value {
        let r = self.request(json!({"cmd": "status"}));
        assert_eq!(r["ok"], true, "{r}");
        r["status"].clone()
    }

    fn service(&self, name: &str) -> Value {
        self.status()["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no service {name}"))
            .clone()
    }

    /// Polls `service` until `pred` holds; panics with the log after `secs`.
    fn wait_service(&self, name: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.service(name);
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out; last: {s}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The host pid of ewindow-init (the child of `unshare --fork`).
    fn host_pid(&self) -> Pid {
        let unshare = self.child.id() as i32;
        children_of(unshare)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("ewindow-init not found under unshare {unshare}"))
    }

    /// The host pid of a process that has `ns_pid` inside the namespace.
    fn host_pid_of(&self, ns_pid: i64) -> Pid {
        let init = self.host_pid();
        for pid in children_of(init.as_raw()) {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let ns = status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|p| p.parse::<i64>().ok());
            if ns == Some(ns_pid) {
                return pid;
            }
        }
        panic!("no host pid for namespace pid {ns_pid}");
    }

    fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "init did not end; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Killing the namespace's PID 1 kills everything in it.
            for pid in children_of(self.child.id() as i32) {
                let _ = kill(pid, Signal::SIGKILL);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn children_of(parent: i32) -> Vec<Pid> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rfind(')')
            .and_then(|p| stat[p + 1..].split_whitespace().nth(1))
            .and_then(|s| s.parse::<i32>().ok());
        if ppid == Some(parent) {
            out.push(Pid::from_raw(pid));
        }
    }
    out
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn wait_file(path: &Path, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = read_trimmed(path).filter(|s| !s.is_empty()) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn orphaned_grandchildren_are_all_reaped() {
    let dir = scratch("orphans");
    let orphans = script(
        &dir,
        "orphans.sh",
        r#"
i=0; while [ $i -lt 100 ]; do (sleep 3 &); i=$((i+1)); done
sleep 0.5
n=0
for f in /proc/[0-9]*/stat; do
  set -- $(cat $f 2>/dev/null)
  [ "$2" = "(sleep)" ] && [ "$4" = 1 ] && n=$((n+1))
done
echo $n > DIR/orphans.tmp && mv DIR/orphans.tmp DIR/orphans
sleep 4
z=0
for f in /proc/[0-9]*/stat; do
  set -- $(cat $f 2>/dev/null)
  [ "$3" = Z ] && z=$((z+1))
done
echo $z > DIR/zombies.tmp && mv DIR/zombies.tmp DIR/zombies
exec sleep 1000
"#,
    );
    let init = Init::start(
        dir.clone(),
        &format!("[[service]]\nname = \"orphans\"\nexec = [\"{orphans}\"]\nrestart = \"never\"\n"),
    );
    // All 100 grandchildren were orphaned to PID 1 (ewindow-init) while they slept...
    assert_eq!(wait_file(&dir.join("orphans"), 10), "100", "{}", init.log());
    // ... and once they exited none was left a zombie.
    assert_eq!(wait_file(&dir.join("zombies"), 10), "0", "{}", init.log());
    let status = init.status();
    assert!(
        status["init"]["orphans_reaped"].as_u64().unwrap() >= 100,
        "{status}"
    );
    assert_eq!(status["init"]["pid"], 1);
    assert_eq!(status["init"]["pid1"], true);
}

#[test]
fn killed_service_restarts_with_backoff_visible_in_status() {
    let dir = scratch("sigkill");
    let victim = script(&dir, "victim.sh", "exec sleep 1000");
    let init = Init::start(
        dir,
        &format!("[[service]]\nname = \"victim\"\nexec = [\"{victim}\"]\n"),
    );
    let first = init.wait_service("victim", 5, |s| s["state"] == "running");
    let pid = first["pid"].as_i64().unwrap();

    let mut gaps = Vec::new();
    let mut old_pid = pid;
    for round in 1..=2u64 {
        kill(init.host_pid_of(old_pid), Signal::SIGKILL).unwrap();
        let killed_at = Instant::now();
        let s = init.wait_service("victim", 5, |s| s["state"] == "backoff");
        assert_eq!(s["last_exit"], json!({"signaled": "SIGKILL"}), "{s}");
        assert_eq!(s["restarts"], round, "{s}");
        assert!(s["next_start_s"].as_f64().unwrap() > 0.0, "{s}");
        let s = init.wait_service("victim", 8, |s| {
            s["state"] == "running" && s["pid"].as_i64() != Some(old_pid)
        });
        gaps.push(killed_at.elapsed());
        old_pid = s["pid"].as_i64().unwrap();
    }
    // 1 s after the first quick exit, 2 s after the second.
    assert!(gaps[0] >= Duration::from_millis(900), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(1900), "{gaps:?}");
    assert!(gaps[1] < Duration::from_secs(4), "{gaps:?}");
}

#[test]
fn service_that_exits_at_once_forever_fails_without_spinning() {
    let dir = scratch("crashloop");
    let crash = script(&dir, "crash.sh", "exit 3");
    let init = Init::start(
        dir,
        &format!(
            "[backoff]\nfailed_after = 4\n[[service]]\nname = \"crash\"\nexec = [\"{crash}\"]\n"
        ),
    );
    let started = Instant::now();
    // Delays 1 + 2 + 4 s, then `failed`.
    let s = init.wait_service("crash", 12, |s| s["state"] == "failed");
    assert!(started.elapsed() >= Duration::from_secs(6), "{s}");
    assert_eq!(s["last_exit"], json!({"exited": 3}));
    assert_eq!(s["restarts"], 4);
    assert!(s["next_start_s"].as_f64().unwrap() > 50.0, "{s}");
    // It stays failed: no more starts, and init used almost no CPU for all this.
    std::thread::sleep(Duration::from_secs(1));
    let status = init.status();
    let s2 = init.service("crash");
    assert_eq!(s2["state"], "failed");
    assert_eq!(s2["restarts"], 4);
    let cpu = status["init"]["cpu_ms"].as_u64().unwrap();
    assert!(cpu < 500, "init used {cpu} ms of CPU in ~8 s");
    assert_eq!(init.log().matches(" started service=crash").count(), 4);
}

/// Services that log their start, readiness and stop (in order) to DIR/events.
fn ordered_services(dir: &Path) -> String {
    let svc = |name: &str, ready_after: Option<&str>| {
        let ready = match ready_after {
            Some(delay) => format!(
                "sleep {delay}; echo \"{name} ready\" >> DIR/events; echo READY >&$EWINDOW_READY_FD"
            ),
            None => String::new(),
        };
        script(
            dir,
            &format!("{name}.sh"),
            &format!(
                "trap 'echo \"{name} stop\" >> DIR/events; exit 0' TERM\n\
                 echo \"{name} start\" >> DIR/events\n\
                 {ready}\n\
                 sleep 1000 &\nwait\n"
            ),
        )
    };
    let app = svc("app", None);
    let db = svc("db", Some("0.6"));
    let net = svc("net", Some("0.3"));
    format!(
        "[[service]]\nname = \"app\"\nexec = [\"{app}\"]\nafter = [\"db\", \"net\"]\n\
         [[service]]\nname = \"db\"\nexec = [\"{db}\"]\nafter = [\"net\"]\nready = \"notify\"\n\
         [[service]]\nname = \"net\"\nexec = [\"{net}\"]\nready = \"notify\"\n"
    )
}

fn events(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("events"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn start_order_follows_after_and_readiness() {
    let dir = scratch("startorder");
    let init = Init::start(dir.clone(), &ordered_services(&dir));
    init.wait_service("app", 8, |s| s["state"] == "running");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        events(&dir),
        vec![
            "net start",
            "net ready",
            "db start",
            "db ready",
            "app start"
        ],
        "{}",
        init.log()
    );
    let names: Vec<String> = init.status()["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, vec!["net", "db", "app"]);
}

#[test]
fn sigterm_to_init_stops_in_reverse_order_and_leaves_nothing() {
    let dir = scratch("shutdown");
    let mut services = ordered_services(&dir);
    // A service that leaves behind a process ignoring SIGTERM: the final sweep must KILL it.
    let leaver = script(
        &dir,
        "leaver.sh",
        "(trap '' TERM; exec sleep 1000) &\nexec sleep 1000",
    );
    services.push_str(&format!(
        "[[service]]\nname = \"leaver\"\nexec = [\"{leaver}\"]\n"
    ));
    let mut init = Init::start(dir.clone(), &services);
    init.wait_service("app", 8, |s| s["state"] == "running");
    init.wait_service("leaver", 8, |s| s["state"] == "running");
    // "running" is init's view; the script's TERM trap is set once it wrote "app start".
    let deadline = Instant::now() + Duration::from_secs(8);
    while !events(&dir).iter().any(|e| e == "app start") {
        assert!(Instant::now() < deadline, "app never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    kill(init.host_pid(), Signal::SIGTERM).unwrap();
    init.wait_exit(12);
    let log = init.log();
    let stops: Vec<String> = events(&dir)
        .into_iter()
        .filter(|e| e.ends_with(" stop"))
        .collect();
    assert_eq!(stops, vec!["app stop", "db stop", "net stop"], "{log}");
    let pos = |needle: &str| {
        log.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in log:\n{log}"))
    };
    // leaver is listed last, so it is stopped first; then the three in reverse order.
    assert!(pos("stopping (SIGTERM) service=leaver") < pos("stopping (SIGTERM) service=app"));
    assert!(pos("stopping (SIGTERM) service=app") < pos("stopping (SIGTERM) service=db"));
    assert!(pos("stopping (SIGTERM) service=db") < pos("stopping (SIGTERM) service=net"));
    // The orphan that ignores SIGTERM got SIGKILL after the grace period, and nothing was left.
    assert!(pos("services stopped") < pos("processes left after SIGTERM; SIGKILL"));
    assert!(log.contains("shutdown complete: no process left"), "{log}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "grace period skipped"
    );
}

#[test]
fn child_ignoring_sigterm_is_killed_after_its_timeout() {
    let dir = scratch("stubborn");
    let stubborn = script(&dir, "stubborn.sh", "trap '' TERM\nexec sleep 1000");
    let init = Init::start(
        dir,
        &format!(
            "[[service]]\nname = \"stubborn\"\nexec = [\"{stubborn}\"]\nstop_timeout_s = 1.5\n"
        ),
    );
    init.wait_service("stubborn", 5, |s| s["state"] == "running");
    let t0 = Instant::now();
    let r = init.request(json!({"cmd": "stop", "service": "stubborn"}));
    assert_eq!(r["ok"], true, "{r}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(init.service("stubborn")["state"], "stopping");
    let s = init.wait_service("stubborn", 5, |s| s["state"] == "stopped");
    let took = t0.elapsed();
    assert_eq!(s["last_exit"], json!({"signaled": "SIGKILL"}), "{s}");
    assert!(took >= Duration::from_millis(1400), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // Stopped by request: not restarted.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(init.service("stubborn")["state"], "stopped");
}

#[test]
fn broken_services_file_does_not_stop_init() {
    let dir = scratch("broken");
    let keep = script(&dir, "keep.sh", "exec sleep 1000");
    let good = format!("[[service]]\nname = \"keep\"\nexec = [\"{keep}\"]\n");
    let init = Init::start(dir.clone(), &good);
    let before = init.wait_service("keep", 5, |s| s["state"] == "running");

    // A typo, then SIGHUP: init keeps the last good file and says where the typo is.
    fs::write(
        dir.join("services.toml"),
        format!("{good}restrat = \"never\"\n"),
    )
    .unwrap();
    kill(init.host_pid(), Signal::SIGHUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let error = loop {
        if let Some(e) = init.status()["config"]["error"].as_str() {
            break e.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no config error; log:\n{}",
            init.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(error.contains("services.toml:4: key `restrat`"), "{error}");
    let after = init.service("keep");
    assert_eq!(after["state"], "running");
    assert_eq!(after["pid"], before["pid"]);
    assert!(init.log().contains("services.toml:4: key `restrat`"));

    // Started on a broken file: init runs (built-in minimal set) and reports the error.
    let dir2 = scratch("broken-at-start");
    let init2 = Init::start(dir2, "[[service]]\nname = \"x\"\nexec = []\n");
    let st = init2.status();
    assert!(
        st["config"]["error"]
            .as_str()
            .unwrap()
            .contains("services.toml:3: key `service[0].exec`"),
        "{st}"
    );
    assert_eq!(st["config"]["source"], "(built-in minimal set)");
    assert_eq!(st["init"]["pid"], 1);
}

#[test]
fn control_socket_restart_start_and_unknown_service() {
    let dir = scratch("control");
    let svc = script(&dir, "svc.sh", "exec sleep 1000");
    let init = Init::start(
        dir,
        &format!("[[service]]\nname = \"svc\"\nexec = [\"{svc}\"]\n"),
    );
    let first = init.wait_service("svc", 5, |s| s["state"] == "running");
    assert_eq!(
        init.request(json!({"cmd": "restart", "service": "svc"}))["ok"],
        true
    );
    let second = init.wait_service("svc", 5, |s| {
        s["state"] == "running" && s["pid"] != first["pid"]
    });
    assert_eq!(second["last_exit"], json!({"signaled": "SIGTERM"}));
    assert_eq!(
        init.request(json!({"cmd": "stop", "service": "svc"}))["ok"],
        true
    );
    init.wait_service("svc", 5, |s| s["state"] == "stopped");
    assert_eq!(
        init.request(json!({"cmd": "start", "service": "svc"}))["ok"],
        true
    );
    init.wait_service("svc", 5, |s| s["state"] == "running");
    let r = init.request(json!({"cmd": "stop", "service": "nope"}));
    assert_eq!(r["ok"], false);
    assert!(r["error"].as_str().unwrap().contains("nope"));
    let r = init.request(json!({"cmd": "explode"}));
    assert_eq!(r["ok"], false);
    // Still serving after bad requests.
    assert_eq!(init.status()["init"]["pid"], 1);
}

#[test]
fn as_pid1_it_sets_the_hostname_and_brings_loopback_up() {
    let dir = scratch("early");
    // In new UTS and network namespaces: the host's name and interfaces are not touched.
    let probe = script(
        &dir,
        "probe.sh",
        &format!(
            "cat /proc/sys/kernel/hostname > {d}/hostname\n\
             ip -o link show lo > {d}/lo 2>&1\n\
             exec sleep 1000",
            d = dir.display()
        ),
    );
    let init = Init::start_with(
        dir.clone(),
        &format!("[[service]]\nname = \"probe\"\nexec = [\"{probe}\"]\n"),
        &["--uts", "--net"],
        &["--hostname", "window-test"],
    );
    init.wait_service("probe", 8, |s| s["state"] == "running");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dir.join("lo").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    let hostname = fs::read_to_string(dir.join("hostname")).unwrap_or_default();
    assert_eq!(hostname.trim(), "window-test", "{}", init.log());
    let lo = fs::read_to_string(dir.join("lo")).unwrap_or_default();
    // `<LOOPBACK,UP,LOWER_UP>`: a fresh network namespace starts with lo down.
    assert!(lo.contains(",UP"), "lo is not up: {lo}\n{}", init.log());
}

/// The mount options of `/` as this process sees them (`/proc/self/mountinfo`).
fn root_options() -> String {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .and_then(|l| l.split(' ').nth(5).map(str::to_owned))
        .unwrap_or_default()
}

/// PID 1 of a PID namespace without `--no-mounts` and without a UTS namespace of its own (a
/// container): it is not the machine's init, so it leaves the machine alone — the host keeps
/// its hostname though `--hostname` was given, `/` stays as it was — and at SIGTERM it stops
/// its services and exits 0 instead of calling reboot(2).
#[test]
fn as_pid1_of_a_namespace_it_leaves_the_machine_alone_and_exits() {
    let dir = scratch("container");
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let root = root_options();
    let mut init = Init::spawn(
        dir.clone(),
        "[[service]]\nname = \"app\"\nexec = [\"sleep\", \"1000\"]\n",
        &[],
        &["--hostname", "not-the-host"],
    );
    init.wait_service("app", 8, |s| s["state"] == "running");
    kill(init.host_pid(), Signal::SIGTERM).unwrap();
    let status = init.wait_exit(12);
    let log = init.log();
    assert!(status.success(), "{status}\n{log}");
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        hostname
    );
    assert_eq!(root_options(), root, "{log}");
    assert!(log.contains("PID 1 of a PID namespace"), "{log}");
    assert!(
        log.contains("not set: no UTS namespace of its own"),
        "{log}"
    );
    assert!(log.contains("exiting (PID 1 of a namespace"), "{log}");
    assert!(!log.contains("reboot(2)"), "{log}");
}

/// A loop device over an image file; detached on drop.
struct LoopDev {
    dev: String,
}

impl LoopDev {
    fn attach(image: &Path) -> LoopDev {
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(image)
            .output()
            .expect("losetup (util-linux)");
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        LoopDev {
            dev: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        }
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Every boot duty of `[system]` at once, on a real (loop) block device: a blank data
/// partition gets its filesystem and is mounted for the services; the clock is saved there
/// periodically and at shutdown; the watchdog (a FIFO here, so the test can read the pets) is
/// petted from the loop and magic-closed at the end; modules that cannot load are reported and
/// stop nothing. After the shutdown the filesystem is unmounted and fsck-clean.
#[test]
fn boot_duties_data_clock_watchdog_and_modules() {
    let dir = scratch("boot");
    let image = dir.join("data.img");
    fs::File::create(&image).unwrap().set_len(32 << 20).unwrap();
    let lo = LoopDev::attach(&image);
    let fifo = dir.join("watchdog");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // The reader end first, so init's non-blocking open for writing succeeds.
    let mut pets = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let release = nix::sys::utsname::uname()
        .unwrap()
        .release()
        .to_string_lossy()
        .into_owned();
    let mods = dir.join("modules").join(&release);
    fs::create_dir_all(mods.join("kernel")).unwrap();
    fs::write(
        mods.join("modules.dep"),
        "kernel/fake.ko: kernel/fake_dep.ko\nkernel/fake_dep.ko:\n",
    )
    .unwrap();
    fs::write(mods.join("kernel/fake.ko"), b"not an ELF").unwrap();
    fs::write(mods.join("kernel/fake_dep.ko"), b"not an ELF").unwrap();
    let writer = script(
        &dir,
        "writer.sh",
        "echo hello > DIR/data/hello.txt && echo wrote > DIR/wrote\nexec sleep 1000",
    );
    let services = format!(
        r#"
[system]
modules = ["fake", "missing_module"]
modules_dir = "{d}/modules"
[system.data]
device = "{dev}"
mountpoint = "{d}/data"
mkfs_if_blank = true
[system.clock]
file = "{d}/data/ewindow/clock"
save_every_s = 1
[system.watchdog]
device = "{d}/watchdog"
timeout_s = 3

[[service]]
name = "writer"
exec = ["{writer}"]
"#,
        d = dir.display(),
        dev = lo.dev
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut init = Init::start(dir.clone(), &services);
    init.wait_service("writer", 20, |s| s["state"] == "running");
    assert_eq!(wait_file(&dir.join("wrote"), 10), "wrote", "{}", init.log());
    std::thread::sleep(Duration::from_millis(2500));
    let sys = init.status()["system"].clone();
    let data = &sys["data"];
    assert_eq!(data["state"], "mounted", "{sys}");
    assert_eq!(data["created"], true, "{sys}");
    let modules = sys["modules"].as_array().unwrap();
    let names: Vec<&str> = modules
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fake_dep", "fake", "missing_module"], "{sys}");
    assert!(modules.iter().all(|m| m["state"] == "failed"), "{sys}");
    assert!(
        modules[1]["error"]
            .as_str()
            .unwrap()
            .contains("dependency fake_dep failed"),
        "{sys}"
    );
    assert!(
        modules[2]["error"].as_str().unwrap().contains("not found"),
        "{sys}"
    );
    let saved = sys["clock"]["saved_unix"].as_u64().expect("clock saved");
    assert!(saved >= before, "{sys}");
    assert_eq!(sys["watchdog"]["state"], "armed", "{sys}");
    assert!(sys["watchdog"]["pets"].as_u64().unwrap() >= 2, "{sys}");

    kill(init.host_pid(), Signal::SIGTERM).unwrap();
    init.wait_exit(15);
    let mut bytes = Vec::new();
    let _ = std::io::Read::read_to_end(&mut pets, &mut bytes);
    assert!(bytes.len() >= 3, "pets: {bytes:?}");
    assert_eq!(bytes.last(), Some(&b'V'), "no magic close: {bytes:?}");
    assert!(bytes[..bytes.len() - 1].iter().all(|&b| b == 0));

    // Unmounted cleanly: a forced fsck finds nothing, and the data is there.
    let (clean, out) = sh(&format!("e2fsck -fn {}", lo.dev));
    assert!(clean, "fsck after shutdown: {out}");
    let (ok, out) = sh(&format!(
        "unshare --mount sh -c 'mkdir -p {d}/check && mount -o ro {dev} {d}/check && cat {d}/check/hello.txt {d}/check/ewindow/clock'",
        d = dir.display(),
        dev = lo.dev
    ));
    assert!(ok, "{out}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("hello"));
    let clock: u64 = lines.next().unwrap().parse().unwrap();
    assert!(clock >= saved, "clock saved at shutdown: {clock} < {saved}");
    drop(init);
}

/// A data partition fsck cannot repair on its own is mounted read-only and reported; a blank
/// one without `mkfs_if_blank` is left alone. Services start either way.
#[test]
fn a_broken_data_partition_is_mounted_read_only_and_init_goes_on() {
    let dir = scratch("brokendata");
    let image = dir.join("data.img");
    // Two files sharing a block, on a filesystem marked not clean: e2fsck -p gives up (exit 4).
    let (ok, out) = sh(&format!(
        "set -e; truncate -s 16M {i}; mkfs.ext4 -q -F -O ^extent,^64bit {i}
         debugfs -w -R 'write /etc/hostname a' {i}; debugfs -w -R 'write /etc/hostname b' {i}
         A=$(debugfs -R 'bmap a 0' {i}); debugfs -w -R \"set_inode_field b block[0] $A\" {i}
         debugfs -w -R 'ssv state 0' {i}",
        i = image.display()
    ));
    assert!(ok, "{out}");
    let lo = LoopDev::attach(&image);
    let blank = dir.join("blank.img");
    fs::File::create(&blank).unwrap().set_len(8 << 20).unwrap();
    let lo_blank = LoopDev::attach(&blank);
    let svc = script(&dir, "svc.sh", "echo up > DIR/up\nexec sleep 1000");
    for (dev, mkfs, state, message) in [
        (&lo.dev, true, "read-only", "errors left uncorrected"),
        (&lo_blank.dev, false, "unavailable", "blank"),
    ] {
        let _ = fs::remove_file(dir.join("up"));
        let services = format!(
            "[system.data]\ndevice = \"{dev}\"\nmountpoint = \"{d}/data\"\nmkfs_if_blank = {mkfs}\n\
             [[service]]\nname = \"svc\"\nexec = [\"{svc}\"]\n",
            d = dir.display()
        );
        let mut init = Init::start(dir.clone(), &services);
        assert_eq!(wait_file(&dir.join("up"), 20), "up");
        let data = init.status()["system"]["data"].clone();
        assert_eq!(data["state"], state, "{data}");
        assert!(
            data["message"].as_str().unwrap_or("").contains(message),
            "{data}"
        );
        kill(init.host_pid(), Signal::SIGTERM).unwrap();
        init.wait_exit(15);
        // Keep the scratch directory for the next round.
        std::mem::forget(init);
    }
    let _ = fs::remove_dir_all(&dir);
}

/// `subscribe` streams every service's state first, then each change as it happens: a
/// SIGKILLed service goes to backoff and comes back with a new pid; SIGTERM to init announces
/// the shutdown.
#[test]
fn subscribers_hear_every_state_change() {
    let dir = scratch("events");
    let svc = script(&dir, "svc.sh", "exec sleep 1000");
    let mut init = Init::start(
        dir.clone(),
        &format!("[[service]]\nname = \"svc\"\nexec = [\"{svc}\"]\n"),
    );
    let first = init.wait_service("svc", 8, |s| s["state"] == "running");
    let mut s = UnixStream::connect(dir.join("init.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    writeln!(s, "{}", json!({"cmd": "subscribe"})).unwrap();
    let mut lines = BufReader::new(s.try_clone().unwrap()).lines();
    let mut next = || -> Value {
        let l = lines.next().expect("stream ended").expect("read");
        serde_json::from_str(&l).unwrap()
    };
    assert_eq!(next(), json!({"ok": true}));
    let e = next();
    assert_eq!(
        (&e["event"], &e["name"], &e["state"], &e["pid"]),
        (
            &json!("service"),
            &json!("svc"),
            &json!("running"),
            &first["pid"]
        )
    );
    kill(
        init.host_pid_of(first["pid"].as_i64().unwrap()),
        Signal::SIGKILL,
    )
    .unwrap();
    let mut states = Vec::new();
    loop {
        let e = next();
        states.push(e["state"].as_str().unwrap().to_owned());
        if e["state"] == "running" {
            assert_ne!(e["pid"], first["pid"]);
            assert_eq!(e["restarts"], 1);
            break;
        }
    }
    assert_eq!(
        states.first().map(String::as_str),
        Some("backoff"),
        "{states:?}"
    );
    kill(init.host_pid(), Signal::SIGTERM).unwrap();
    let mut saw_shutdown = false;
    while let Some(Ok(l)) = lines.next() {
        let e: Value = serde_json::from_str(&l).unwrap();
        if e["event"] == "shutdown" {
            assert_eq!(e["kind"], "reboot");
            saw_shutdown = true;
        }
    }
    assert!(saw_shutdown, "{}", init.log());
    init.wait_exit(10);
}

/// What services write (stdout and stderr) is kept line by line for `logs` and streamed to
/// subscribers.
#[test]
fn service_output_is_kept_and_streamed() {
    let dir = scratch("logs");
    let talker = script(
        &dir,
        "talker.sh",
        "echo hello from stdout\necho hello from stderr >&2\nread x < DIR/go\necho after go\nexec sleep 1000",
    );
    nix::unistd::mkfifo(
        &dir.join("go"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let init = Init::start(
        dir.clone(),
        &format!("[[service]]\nname = \"talker\"\nexec = [\"{talker}\"]\n"),
    );
    init.wait_service("talker", 8, |s| s["state"] == "running");
    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let r = init.request(json!({"cmd": "logs", "service": "talker"}));
        let lines: Vec<String> = r["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["line"].as_str().unwrap().to_owned())
            .collect();
        if lines.len() >= 2 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(lines, ["hello from stdout", "hello from stderr"]);
    let mut s = UnixStream::connect(dir.join("init.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    writeln!(s, "{}", json!({"cmd": "subscribe"})).unwrap();
    let mut reader = BufReader::new(s);
    fs::write(dir.join("go"), "go\n").unwrap();
    let mut line = String::new();
    loop {
        line.clear();
        if let Err(e) = reader.read_line(&mut line) {
            panic!("{e}; log:\n{}", init.log());
        }
        let e: Value = serde_json::from_str(&line).unwrap();
        if e["event"] == "log" {
            assert_eq!(e["service"], "talker");
            assert_eq!(e["line"], "after go");
            break;
        }
    }
    // Still on init's stderr too (the kernel console on a window).
    assert!(
        init.log().contains("talker: hello from stdout"),
        "{}",
        init.log()
    );
}
