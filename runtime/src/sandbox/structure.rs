//! Structural limits on a component, checked on its bytes before it is compiled: nesting
//! of modules, components and types; flattened instantiations; functions, their bodies,
//! locals and block nesting; memories and tables per module. One linear pass with
//! wasmparser (the parser wasmtime uses), so an obvious compile bomb is refused in
//! milliseconds with the limit it breaks named.
//!
//! This runs in the compile worker: wasmparser itself recurses on nested types, so a
//! pathological input may overflow the worker's stack, which ends the worker, not the
//! server. What passes here has bounded type nesting, so the server's own walks over the
//! compiled component's types (the linker's import check) stay shallow.

use crate::limits::component::*;
use wasmparser::{
    ComponentInstance, ComponentType, ComponentTypeDeclaration, Instance, InstanceTypeDeclaration, Operator, Parser,
    Payload, TypeRef,
};

/// What one module or component being scanned has seen so far.
#[derive(Default)]
struct Frame {
    /// Core instantiations in this component (each one module instance).
    core: usize,
    /// Component instantiations in this component.
    components: usize,
    /// Memories and tables of this module (imported or defined).
    memories: usize,
    tables: usize,
}

/// Flattened instantiation counts of a finished component: (core, component).
type Cost = (usize, usize);

/// Checks `bytes` against the structural limits; the error names the limit broken.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let mut stack: Vec<Frame> = Vec::new();
    // The largest flattened cost of any component finished so far: an instantiation can
    // only name a component defined (or aliased) before it, so this bounds what it costs.
    let mut max_finished: Cost = (0, 0);
    let mut functions = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| format!("not a valid WebAssembly component: {e}"))?;
        match payload {
            Payload::Version { .. } => {
                stack.push(Frame::default());
                if stack.len() > MAX_NESTING + 1 {
                    return Err(format!("modules and components nest more than {MAX_NESTING} deep (the limit)"));
                }
            }
            Payload::End(_) => {
                let frame = stack.pop().ok_or("unbalanced module or component")?;
                // Each component instantiation inlines the instantiated component's own.
                let core = frame.core + frame.components * max_finished.0;
                let components = frame.components * (1 + max_finished.1);
                max_finished = (max_finished.0.max(core), max_finished.1.max(components));
                if core > MAX_CORE_INSTANCES {
                    return Err(format!(
                        "the component creates {core} core instances once nested instantiations are flattened, over the limit of {MAX_CORE_INSTANCES}"
                    ));
                }
                if components > MAX_COMPONENT_INSTANCES {
                    return Err(format!(
                        "the component makes {components} component instantiations once nested ones are flattened, over the limit of {MAX_COMPONENT_INSTANCES}"
                    ));
                }
            }
            Payload::InstanceSection(reader) => {
                let frame = stack.last_mut().ok_or("section outside a module")?;
                for instance in reader {
                    if let Instance::Instantiate { .. } = instance.map_err(|e| e.to_string())? {
                        frame.core += 1;
                    }
                }
            }
            Payload::ComponentInstanceSection(reader) => {
                let frame = stack.last_mut().ok_or("section outside a component")?;
                for instance in reader {
                    if let ComponentInstance::Instantiate { .. } = instance.map_err(|e| e.to_string())? {
                        frame.components += 1;
                    }
                }
            }
            Payload::ComponentTypeSection(reader) => {
                for ty in reader {
                    type_depth(&ty.map_err(|e| e.to_string())?, 1)?;
                }
            }
            Payload::ImportSection(reader) => {
                let frame = stack.last_mut().ok_or("section outside a module")?;
                for import in reader.into_imports() {
                    match import.map_err(|e| e.to_string())?.ty {
                        TypeRef::Memory(_) => frame.memories += 1,
                        TypeRef::Table(_) => frame.tables += 1,
                        _ => {}
                    }
                }
                per_module(frame)?;
            }
            Payload::MemorySection(reader) => {
                let frame = stack.last_mut().ok_or("section outside a module")?;
                frame.memories += reader.count() as usize;
                per_module(frame)?;
            }
            Payload::TableSection(reader) => {
                let frame = stack.last_mut().ok_or("section outside a module")?;
                frame.tables += reader.count() as usize;
                per_module(frame)?;
            }
            Payload::CodeSectionStart { count, .. } => {
                functions += count as usize;
                if functions > MAX_FUNCTIONS {
                    return Err(format!("the component has more than {MAX_FUNCTIONS} functions (the limit)"));
                }
            }
            Payload::CodeSectionEntry(body) => function(&body).map_err(|e| format!("function {functions}: {e}"))?,
            _ => {}
        }
    }
    Ok(())
}

fn per_module(frame: &Frame) -> Result<(), String> {
    if frame.memories > MAX_MEMORIES_PER_MODULE {
        return Err(format!(
            "a module has {} linear memories, over the limit of {MAX_MEMORIES_PER_MODULE} per module",
            frame.memories
        ));
    }
    if frame.tables > MAX_TABLES_PER_MODULE {
        return Err(format!(
            "a module has {} tables, over the limit of {MAX_TABLES_PER_MODULE} per module",
            frame.tables
        ));
    }
    Ok(())
}

fn function(body: &wasmparser::FunctionBody) -> Result<(), String> {
    let size = body.range().len();
    if size > MAX_FUNCTION_BYTES {
        return Err(format!("its body is {size} bytes, over the limit of {MAX_FUNCTION_BYTES}"));
    }
    let mut locals = 0usize;
    for group in body.get_locals_reader().map_err(|e| e.to_string())? {
        let (count, _) = group.map_err(|e| e.to_string())?;
        locals = locals.saturating_add(count as usize);
        if locals > MAX_LOCALS {
            return Err(format!("it has more than {MAX_LOCALS} locals (the limit)"));
        }
    }
    let mut depth = 0usize;
    let mut reader = body.get_operators_reader().map_err(|e| e.to_string())?;
    while !reader.eof() {
        match reader.read().map_err(|e| e.to_string())? {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Try { .. }
            | Operator::TryTable { .. } => {
                depth += 1;
                if depth > MAX_CONTROL_DEPTH {
                    return Err(format!("its blocks nest more than {MAX_CONTROL_DEPTH} deep (the limit)"));
                }
            }
            Operator::End => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Checks how deep component and instance types nest (wasmparser has parsed them already;
/// this bounds every later walk over them).
fn type_depth(ty: &ComponentType, depth: usize) -> Result<(), String> {
    if depth > MAX_TYPE_NESTING {
        return Err(format!("component types nest more than {MAX_TYPE_NESTING} deep (the limit)"));
    }
    match ty {
        ComponentType::Component(decls) => {
            for decl in decls.iter() {
                if let ComponentTypeDeclaration::Type(inner) = decl {
                    type_depth(inner, depth + 1)?;
                }
            }
        }
        ComponentType::Instance(decls) => {
            for decl in decls.iter() {
                if let InstanceTypeDeclaration::Type(inner) = decl {
                    type_depth(inner, depth + 1)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).unwrap()
    }

    #[test]
    fn a_plain_component_passes() {
        let bytes = component(
            r#"(component
                 (core module $m (memory 1) (table 1 funcref) (func (local i32 i64) (block (loop (br 1)))))
                 (core instance (instantiate $m)))"#,
        );
        assert_eq!(check(&bytes), Ok(()));
    }

    #[test]
    fn three_tables_in_a_module_are_refused() {
        let bytes = component("(component (core module (table 1 funcref) (table 1 funcref) (table 1 funcref)))");
        let e = check(&bytes).unwrap_err();
        assert!(e.contains("3 tables, over the limit of 1 per module"), "{e}");
    }

    #[test]
    fn nested_instantiation_is_counted_flattened() {
        // Each level instantiates the one inside it four times: 4, 20, 84, ... instances.
        let mut wat = "(component (core module $m) (core instance (instantiate $m)))".to_owned();
        for _ in 0..4 {
            let uses: String = (0..4).map(|_| "(instance (instantiate $inner))").collect();
            wat = format!("(component {} {uses})", wat.replacen("(component", "(component $inner", 1));
        }
        let e = check(&component(&wat)).unwrap_err();
        assert!(e.contains("over the limit of 16"), "{e}");
    }

    #[test]
    fn many_locals_and_deep_blocks_are_refused() {
        let locals = format!("(component (core module (func (local {}))))", "i32 ".repeat(MAX_LOCALS + 1));
        assert!(check(&component(&locals)).unwrap_err().contains("locals"));
        let blocks = format!(
            "(component (core module (func {} {})))",
            "(block ".repeat(MAX_CONTROL_DEPTH + 1),
            ")".repeat(MAX_CONTROL_DEPTH + 1)
        );
        // The WAT parser recurses too: build it on a thread with room.
        let bytes = std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(move || component(&blocks))
            .unwrap()
            .join()
            .unwrap();
        assert!(check(&bytes).unwrap_err().contains("blocks nest more than"));
    }

    #[test]
    fn deeply_nested_types_are_refused() {
        // (type (component (type (component ... )))) written as bytes: 0x41 0x01 0x01 opens one level.
        let depth = MAX_TYPE_NESTING + 5;
        let mut body = vec![0x01];
        for _ in 0..depth {
            body.extend([0x41, 0x01, 0x01]);
        }
        body.extend([0x41, 0x00]);
        let mut bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
        bytes.push(7);
        leb(&mut bytes, body.len());
        bytes.extend(body);
        let e = check(&bytes).unwrap_err();
        assert!(e.contains("component types nest more than 32 deep"), "{e}");
    }

    fn leb(out: &mut Vec<u8>, mut n: usize) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
}
