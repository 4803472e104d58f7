//! Trigger code from a file, for `run` and `admin deploy`: a component (`.wasm`), a script
//! (`.js`: the handler's module), or a Lambda deployment package (`.zip` holding
//! `<module>.js`, e.g. `index.js` for `index.handler`). Archives are read here, in the
//! binary, so the runtime library needs no archive crate.

use std::io::Read as _;
use std::path::Path;
use synctrig_runtime::Error;
use synctrig_runtime::sandbox::js::{Code, MAX_SCRIPT_BYTES, parse_handler};

/// Reads the code in `path` for `handler` (`<module>.<export>`).
pub fn read(path: &Path, handler: &str) -> Result<Code, Error> {
    let unreadable = |e: std::io::Error| Error::InvalidComponent(format!("cannot read {}: {e}", path.display()));
    let (module, export) = parse_handler(handler)?;
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let limit = if extension == "wasm" {
        synctrig_runtime::limits::MAX_COMPONENT_BYTES
    } else {
        MAX_SCRIPT_BYTES.max(64 << 20)
    };
    let len = std::fs::metadata(path).map_err(unreadable)?.len();
    if len > limit as u64 {
        return Err(Error::InvalidComponent(format!("{} is {len} bytes, over the limit of {limit}", path.display())));
    }
    let bytes = std::fs::read(path).map_err(unreadable)?;
    match extension.as_str() {
        "js" | "cjs" => Code::script(bytes, export),
        "zip" => Code::script(script_from_zip(&bytes, &format!("{module}.js"))?, export),
        _ => Ok(Code::Component(bytes)),
    }
}

/// `--env NAME=VALUE`: a name and its value (which may hold `=`); the rules on names are
/// checked with the others at deploy.
pub fn environment_variable(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

/// The file `name` of a Lambda deployment package, read at most to the script limit (a
/// zip bomb inflates no further).
pub fn script_from_zip(bytes: &[u8], name: &str) -> Result<Vec<u8>, Error> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| Error::InvalidComponent(format!("not a readable .zip: {e}")))?;
    let mut file = archive.by_name(name).map_err(|_| {
        Error::InvalidComponent(format!("the .zip holds no {name} at its top level (the handler's module)"))
    })?;
    let mut out = Vec::new();
    file.by_ref()
        .take(MAX_SCRIPT_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::InvalidComponent(format!("cannot inflate {name}: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_deployment_packages() {
        let script = "exports.handler = async (event) => event;\n";
        let dir = tempfile::tempdir().unwrap();
        let zip_path = dir.path().join("fn.zip");
        {
            let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
            zip.start_file("app.js", zip::write::SimpleFileOptions::default()).unwrap();
            std::io::Write::write_all(&mut zip, script.as_bytes()).unwrap();
            zip.finish().unwrap();
        }
        let Code::Script { source, export } = read(&zip_path, "app.handler").unwrap() else { panic!() };
        assert_eq!((source.as_str(), export.as_str()), (script, "handler"));
        let Err(Error::InvalidComponent(m)) = read(&zip_path, "index.handler") else { panic!() };
        assert!(m.contains("no index.js"), "{m}");
        assert!(script_from_zip(b"not a zip", "index.js").is_err());
        // A bomb inflates only to the script limit, then is refused as too large.
        let bomb = dir.path().join("bomb.zip");
        {
            let mut zip = zip::ZipWriter::new(std::fs::File::create(&bomb).unwrap());
            zip.start_file("index.js", zip::write::SimpleFileOptions::default()).unwrap();
            std::io::Write::write_all(&mut zip, &vec![b' '; MAX_SCRIPT_BYTES + 10]).unwrap();
            zip.finish().unwrap();
        }
        let Err(Error::InvalidComponent(m)) = read(&bomb, "index.handler") else { panic!() };
        assert!(m.contains("over the limit"), "{m}");
    }
}
