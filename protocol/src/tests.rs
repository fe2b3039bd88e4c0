//! The wire snapshots: the JSON schema (schemars, from the serde attributes) of every message
//! that crosses a socket or a file, compared with `src/snapshots/<name>.json`. A renamed,
//! added or retyped field, a new variant or a changed tag fails here with the schema that
//! changed; `UPDATE_SNAPSHOTS=1 cargo test -p ewindow-protocol` rewrites them (review the
//! diff: it is a protocol change between processes of different versions).

use std::path::Path;

use schemars::{schema_for, JsonSchema};

/// The schema of `T` without what is not the wire (doc comments, the type's Rust name).
fn schema<T: JsonSchema>() -> String {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("description");
                m.remove("title");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(schema_for!(T)).expect("a schema is JSON");
    strip(&mut v);
    let mut text = serde_json::to_string_pretty(&v).expect("a schema is JSON");
    text.push('\n');
    text
}

#[test]
fn the_wire_is_pinned() {
    let shapes = [
        ("init.request", schema::<crate::init::Request>()),
        ("init.reply", schema::<crate::init::Reply>()),
        ("init.event", schema::<crate::init::Event>()),
        ("phone.request", schema::<crate::phone::Request>()),
        ("phone.reply", schema::<crate::phone::Reply>()),
        ("phone.status", schema::<crate::phone::PhoneStatus>()),
        ("overlay.request", schema::<crate::overlay::Request>()),
        ("overlay.reply", schema::<crate::overlay::Reply>()),
        (
            "overlay.peer-request",
            schema::<crate::overlay::PeerRequest>(),
        ),
        ("overlay.peer-reply", schema::<crate::overlay::PeerReply>()),
        ("stats.call", schema::<crate::stats::CallStats>()),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/snapshots");
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut changed = Vec::new();
    for (name, text) in &shapes {
        let file = dir.join(format!("{name}.json"));
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&file, text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&file) {
            Ok(old) if old == *text => {}
            Ok(_) => changed.push(format!("{name}: the wire changed; now:\n{text}")),
            Err(e) => changed.push(format!("{}: {e}", file.display())),
        }
    }
    assert!(
        changed.is_empty(),
        "wire snapshots differ (UPDATE_SNAPSHOTS=1 rewrites them):\n{}",
        changed.join("\n")
    );
}
