//! Writes the hostile-loading catalogue (`synctrig_tests::hostile`) to a directory, one
//! `<name>.wasm` each, plus `catalogue.json` naming what each refusal must say: for tests
//! outside Rust (the e2e tests put them where only `serve` will load them).

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: hostile-components DIR"));
    std::fs::create_dir_all(&dir).expect("create the directory");
    let mut index = Vec::new();
    for (name, bytes, names) in synctrig_tests::hostile::catalogue() {
        std::fs::write(dir.join(format!("{name}.wasm")), bytes).expect("write a component");
        index.push(serde_json::json!({ "name": name, "file": format!("{name}.wasm"), "refusal": names }));
    }
    std::fs::write(dir.join("catalogue.json"), serde_json::to_string_pretty(&index).unwrap()).expect("write the index");
}
