//! Maintenance over SSH with the images' own `sshd` service line (overlays/<target>/etc/
//! ewindow/services.toml, the same on the PC and the Pi): dropbear lets in the key listed in authorized_keys and nobody else — no
//! password is ever asked. Runs in a new network and mount namespace (root, as CI) where
//! /root/.ssh and /etc/dropbear are scratch directories, as /data/ewindow is on a window.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

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

/// The `exec` of the `sshd` service in the images' services files (the PC's and the Pi's
/// must agree: one maintenance path for every window).
fn image_sshd_exec() -> Vec<String> {
    let sshd = |path: &str, text: &str| {
        toml_like::parse(text)
            .into_iter()
            .find(|(name, _)| name == "sshd")
            .map(|(_, exec)| exec)
            .unwrap_or_else(|| panic!("an sshd service in {path}"))
    };
    let pc = sshd(
        "overlays/qemu-x86_64/etc/ewindow/services.toml",
        include_str!("../../overlays/qemu-x86_64/etc/ewindow/services.toml"),
    );
    let pi = sshd(
        "overlays/rpi-arm64/etc/ewindow/services.toml",
        include_str!("../../overlays/rpi-arm64/etc/ewindow/services.toml"),
    );
    assert_eq!(pc, pi, "the PC and the Pi images run sshd alike");
    pc
}

/// Just enough TOML reading for `[[service]]` name/exec pairs (the supervisor's parser is
/// tested on the same file; this avoids a dependency here).
mod toml_like {
    pub type Services = Vec<(String, Vec<String>)>;

    pub fn parse(text: &str) -> Services {
        let mut out = Vec::new();
        let mut name = None;
        for line in text.lines() {
            let line = line.trim();
            if let Some(v) = line.strip_prefix("name = ") {
                name = Some(v.trim_matches('"').to_owned());
            }
            if let (Some(v), Some(n)) = (line.strip_prefix("exec = ["), name.as_ref()) {
                let items = v
                    .trim_end_matches(']')
                    .split(',')
                    .map(|s| s.trim().trim_matches('"').to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                out.push((n.clone(), items));
            }
        }
        out
    }
}

#[test]
fn ssh_takes_the_listed_key_and_nothing_else() {
    assert!(
        nix_is_root(),
        "this test makes a network and mount namespace: run it as root, as CI does"
    );
    let mut exec = image_sshd_exec();
    assert!(
        exec.iter().any(|a| a == "-s"),
        "passwords must be off: {exec:?}"
    );
    // Same program and flags, on a test port.
    if let Some(i) = exec.iter().position(|a| a == "-p") {
        exec[i + 1] = "127.0.0.1:2222".into();
    }
    let dir = std::env::temp_dir().join(format!("ewindow-ssh-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("ssh")).unwrap();
    fs::create_dir_all(dir.join("dropbear")).unwrap();
    let d = dir.display();
    let (ok, out) = sh(&format!(
        "dropbearkey -t ed25519 -f {d}/member >/dev/null && dropbearkey -t ed25519 -f {d}/stranger >/dev/null && \
         dropbearkey -y -f {d}/member | grep '^ssh-' > {d}/ssh/authorized_keys"
    ));
    assert!(ok, "{out}");
    fs::set_permissions(dir.join("ssh"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(
        dir.join("ssh/authorized_keys"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let ns = format!("ewssh{}", std::process::id() % 100_000);
    let _ = sh(&format!("ip netns del {ns}"));
    let script = format!(
        "set -e; mkdir -p /root/.ssh /etc/dropbear; mount --bind {d}/ssh /root/.ssh; \
         mount --bind {d}/dropbear /etc/dropbear; \
         {exec} >{d}/dropbear.log 2>&1 & \
         for i in $(seq 50); do [ -s /etc/dropbear/dropbear_ed25519_host_key ] || sleep 0.1; done; sleep 0.3; \
         echo member: $(dbclient -y -i {d}/member -p 2222 root@127.0.0.1 'echo in-$((6*7))' </dev/null 2>&1 | tail -1); \
         echo stranger: $(dbclient -y -i {d}/stranger -p 2222 root@127.0.0.1 'echo in' </dev/null 2>&1 | tail -1); \
         kill $!",
        exec = exec.join(" ")
    );
    // dropbear's output goes to a file, and whatever still runs in the namespace is killed
    // before it goes: once a dropbear outlived `kill $!` (a connection's child, or the
    // kill racing its start-up) and, holding this test's stdout pipe, hung it for good.
    let (_, out) = sh(&format!(
        "ip netns add {ns} && ip -n {ns} link set lo up && ip netns exec {ns} unshare --mount sh -c \"{}\"; \
         ip netns pids {ns} | xargs -r kill -9; ip netns del {ns}; cat {d}/dropbear.log",
        script.replace('"', "\\\"").replace('$', "\\$")
    ));
    let member = out.lines().find(|l| l.starts_with("member:")).unwrap_or("");
    let stranger = out
        .lines()
        .find(|l| l.starts_with("stranger:"))
        .unwrap_or("");
    assert_eq!(member, "member: in-42", "{out}");
    assert!(
        stranger.contains("No auth methods could be used"),
        "a key not listed must get nowhere, and no password may be offered: {out}"
    );
    let _ = fs::remove_dir_all(&dir);
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
