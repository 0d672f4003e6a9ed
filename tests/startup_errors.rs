//! Start-up errors that say what to do (issue 12, item 8), from the real binary: a second node
//! on a data_dir in use names the node holding it, a data_dir that is a file or cannot be
//! written is named with the fix — not `could not acquire lock … WouldBlock` or a bare
//! `IO error`.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Output;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A copy of the node config `config` beside it (relative paths keep working) with `data_dir`
/// set to `data_dir`; returns the copy's path.
fn config_with_data_dir(config: &Path, data_dir: &Path, name: &str) -> PathBuf {
    let mut table: toml::Table = std::fs::read_to_string(config).unwrap().parse().unwrap();
    table.insert(
        "data_dir".into(),
        toml::Value::String(data_dir.display().to_string()),
    );
    let copy = config.with_file_name(name);
    std::fs::write(&copy, toml::to_string(&table).unwrap()).unwrap();
    copy
}

/// `psonet node --config <config>`, which must fail at start; returns what it printed.
fn failed_start(config: &Path) -> String {
    let out = psonet(&["node", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success(), "the node started: {}", text(&out));
    text(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_errors_name_the_data_dir_and_the_fix() {
    psonet_serve::tls::install_crypto_provider();
    let net = network(1).start().await.unwrap();
    let node = &net.nodes[0];
    let data_dir = node.config.parent().unwrap().join("data");

    // A second node on the data_dir of a running one: the running node's pid, and what to do.
    let pid = node.process().unwrap().pid();
    let out = failed_start(&node.config);
    let expected = format!(
        "another psonet node (pid {pid}) holds the store in data_dir {}",
        data_dir.display()
    );
    assert!(out.contains(&expected), "{out}");
    assert!(out.contains("stop it first"), "{out}");
    assert!(!out.contains("WouldBlock"), "{out}");

    // A data_dir that is a file.
    let file = net.dir().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let config = config_with_data_dir(&node.config, &file, "file.toml");
    let out = failed_start(&config);
    assert!(
        out.contains(&format!(
            "data_dir {} is a file, not a directory",
            file.display()
        )),
        "{out}"
    );

    // A data_dir that cannot be written: a read-only file system when we are root (root may
    // write anywhere else), a directory without write permission otherwise.
    let readonly = net.dir().join("readonly");
    std::fs::create_dir(&readonly).unwrap();
    let _mount = ReadOnly::make(&readonly);
    let unwritable = readonly.join("store");
    let config = config_with_data_dir(&node.config, &unwritable, "unwritable.toml");
    let out = failed_start(&config);
    assert!(
        out.contains(&format!("data_dir {}", unwritable.display())),
        "{out}"
    );
    assert!(
        out.contains("cannot write there") && out.contains("set data_dir to a directory"),
        "{out}"
    );
    assert!(!out.contains("error: IO error"), "{out}");
}

/// A directory made read-only for this test, undone when dropped.
enum ReadOnly {
    Mounted(PathBuf),
    Chmodded(PathBuf),
}

impl ReadOnly {
    fn make(dir: &Path) -> Self {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let status = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
                .arg(dir)
                .status()
                .expect("run mount");
            assert!(status.success(), "mount -o ro tmpfs {}", dir.display());
            ReadOnly::Mounted(dir.to_path_buf())
        } else {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
            ReadOnly::Chmodded(dir.to_path_buf())
        }
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        match self {
            ReadOnly::Mounted(dir) => {
                let _ = std::process::Command::new("umount").arg(&*dir).status();
            }
            ReadOnly::Chmodded(dir) => {
                let _ = std::fs::set_permissions(&*dir, std::fs::Permissions::from_mode(0o755));
            }
        }
    }
}
