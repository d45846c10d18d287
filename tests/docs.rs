//! The script API reference in docs/ is generated from the functions' doc comments, and
//! every Rhai example in it compiles.

#[test]
fn script_api_reference_is_up_to_date() {
    let generated = stampede::api::api_reference();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/script-api.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        generated == on_disk,
        "docs/script-api.md is stale: run `cargo run -- api-docs > docs/script-api.md`"
    );
}

#[test]
fn every_rhai_example_in_the_reference_compiles() {
    let doc = stampede::api::api_reference();
    let engine = stampede::api::engine();
    let mut examples = 0;
    for block in doc.split("```rhai\n").skip(1) {
        let code = block.split("```").next().unwrap();
        // Examples are statements from a task body; wrap them so `this` and `return` parse.
        let wrapped = if code.trim_start().starts_with("const ") {
            code.to_owned()
        } else {
            format!("fn example() {{\n{code}\n}}")
        };
        if let Err(e) = engine.compile(&wrapped) {
            panic!("example does not compile: {e}\n{code}");
        }
        examples += 1;
    }
    assert!(examples >= 40, "found {examples} examples");
}

#[test]
fn definitions_cover_every_documented_function() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .arg("definitions")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut defs = String::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        defs.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    let reference = stampede::api::api_reference();
    let mut functions = 0;
    for heading in reference.lines().filter(|l| l.starts_with("### `")) {
        // "### `exec::elapsed() -> float`" → "elapsed"; "### `r.status`" → "status".
        let signature = heading.trim_start_matches("### `");
        let name = signature
            .split(['(', '`', ' '])
            .next()
            .unwrap()
            .rsplit([':', '.'])
            .next()
            .unwrap();
        assert!(
            defs.contains(&format!("fn {name}(")) || defs.contains(&format!("fn get {name}(")),
            "`{name}` ({heading}) is not in the definitions"
        );
        functions += 1;
    }
    assert!(
        functions > 30,
        "read {functions} functions from the reference"
    );
}
