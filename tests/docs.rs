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
