//! The compile worker: untrusted component bytes are parsed, checked and compiled only in a
//! child process (`synctrig-wasm compile`, hidden), under OS limits on CPU time, address
//! space and wall time.
//!
//! Why a process and not a thread: a thread shares the server's address space and fate. A
//! parser that recurses past its stack aborts the whole process; a compile bomb's memory
//! stays allocated (and counted against the server) after the thread ends; and a thread
//! cannot be killed at a deadline. A child process can be given hard `setrlimit` limits,
//! killed at a deadline, and may crash: the server sees a clean error for that component.
//!
//! Protocol: the component's bytes on the worker's stdin; the precompiled artifact on its
//! stdout and exit status 0; or exit status [`REFUSED`] with the reason as the last line of
//! stderr. Any other end (a signal, a stack overflow, an allocation failure) is a crash.

use super::{EngineSettings, build_engine, is_component, structure};
use crate::error::Error;
use crate::limits::{MAX_COMPONENT_BYTES, compile as limits};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// The worker's exit status when it refuses a component (the reason is on stderr).
pub const REFUSED: u8 = 3;

/// Most stderr kept from a worker.
const MAX_STDERR: usize = 64 << 10;

/// Compiles `bytes` in a worker process started from `exe`; the artifact, or why not.
pub fn compile(exe: &Path, bytes: &[u8], settings: &EngineSettings) -> Result<Vec<u8>, Error> {
    let started = Instant::now();
    let mut child = Command::new(exe)
        .arg("compile")
        .arg("--settings")
        .arg(settings.to_arg())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_clear()
        // The `synctrig-wasm` binary runs on mimalloc, which reserves address space 1 GiB
        // at a time: under the worker's address-space limit that would leave a compile
        // half of it. Reserved in small steps the limit is the compile's (no effect on
        // another allocator).
        .env("MIMALLOC_ARENA_RESERVE", "32MiB")
        .spawn()
        .map_err(|e| Error::Internal(format!("cannot start the compile worker {}: {e}", exe.display())))?;
    let (mut stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let input = bytes.to_vec();
    // Three threads, so that no pipe can fill while another is waited on.
    let writer = std::thread::spawn(move || {
        if let Some(stdin) = stdin.as_mut() {
            // A worker that dies early closes the pipe; its exit status says why.
            let _ = stdin.write_all(&input);
        }
    });
    let out_reader = std::thread::spawn(move || read_bounded(stdout, limits::MAX_ARTIFACT_BYTES));
    let err_reader = std::thread::spawn(move || read_bounded(stderr, MAX_STDERR));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > limits::MAX_WALL => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = (writer.join(), out_reader.join(), err_reader.join());
                return Err(Error::InvalidComponent(format!(
                    "compiling the component took longer than the limit of {} s of wall time",
                    limits::MAX_WALL.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(5)),
            Err(e) => return Err(Error::Internal(format!("cannot wait for the compile worker: {e}"))),
        }
    };
    let _ = writer.join();
    let artifact = out_reader.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    verdict(status, artifact, &stderr)
}

fn read_bounded(pipe: Option<impl Read>, limit: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(pipe) = pipe {
        let _ = pipe.take(limit as u64 + 1).read_to_end(&mut buf);
    }
    buf
}

/// What a finished worker means.
fn verdict(status: std::process::ExitStatus, artifact: Vec<u8>, stderr: &str) -> Result<Vec<u8>, Error> {
    use std::os::unix::process::ExitStatusExt;
    let reason = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    if status.success() {
        if artifact.len() > limits::MAX_ARTIFACT_BYTES {
            return Err(Error::InvalidComponent(format!(
                "the compiled component is over the limit of {} MiB",
                limits::MAX_ARTIFACT_BYTES >> 20
            )));
        }
        return Ok(artifact);
    }
    if status.code() == Some(REFUSED.into()) {
        return Err(Error::InvalidComponent(reason.to_owned()));
    }
    let cause = if stderr.contains("has overflowed its stack") {
        format!(
            "it nests too deeply: parsing or compiling it overflowed the compile worker's stack of {} MiB",
            limits::STACK_BYTES >> 20
        )
    } else if stderr.contains("memory allocation of") || stderr.contains("out of memory") {
        format!("compiling it needed more than the limit of {} GiB of memory", limits::MAX_MEMORY_BYTES >> 30)
    } else if matches!(status.signal(), Some(libc_signal::SIGXCPU | libc_signal::SIGKILL)) {
        format!("compiling it took more than the limit of {} s of CPU time", limits::MAX_CPU.as_secs())
    } else {
        format!("the compile worker crashed ({status}): {reason}")
    };
    Err(Error::InvalidComponent(format!("the component cannot be loaded: {cause}")))
}

mod libc_signal {
    pub const SIGKILL: i32 = 9;
    pub const SIGXCPU: i32 = 24;
}

/// The worker's side: `synctrig-wasm compile`. Sets its own OS limits before it reads a
/// byte, then checks and compiles the component on a thread with a generous stack.
pub fn main(settings: &str) -> ExitCode {
    let refuse = |message: &str| {
        eprintln!("{message}");
        ExitCode::from(REFUSED)
    };
    let Some(settings) = EngineSettings::from_arg(settings) else {
        return refuse("bad --settings");
    };
    if let Err(e) = limit_self() {
        return refuse(&format!("cannot set the compile worker's limits: {e}"));
    }
    // wasmtime compiles functions in parallel on rayon's global pool; sized here (whatever
    // RAYON_NUM_THREADS says), the memory limit means the same on every machine, and its
    // threads get the parsing thread's stack (a compile that overflows it is named as such).
    let pool = rayon::ThreadPoolBuilder::new().num_threads(limits::THREADS).stack_size(limits::STACK_BYTES);
    if let Err(e) = pool.build_global() {
        return refuse(&format!("cannot start the compile worker's threads: {e}"));
    }
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().take(MAX_COMPONENT_BYTES as u64 + 1).read_to_end(&mut bytes) {
        return refuse(&format!("cannot read the component: {e}"));
    }
    let compiled = std::thread::Builder::new()
        .name("synctrig-compile".into())
        .stack_size(limits::STACK_BYTES)
        .spawn(move || compile_here(&bytes, &settings))
        .map_err(|e| e.to_string())
        .and_then(|t| t.join().map_err(|_| "the compiler panicked".to_owned()));
    match compiled {
        Ok(Ok(artifact)) => {
            let mut out = std::io::stdout().lock();
            if out.write_all(&artifact).and_then(|()| out.flush()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Ok(Err(Error::InvalidComponent(message))) => refuse(&message),
        Ok(Err(e)) => refuse(&e.to_string()),
        Err(message) => refuse(&message),
    }
}

/// Checks and compiles in this process. Only for the worker, or for components the caller
/// trusts (see `Compiler::InProcess`).
pub fn compile_here(bytes: &[u8], settings: &EngineSettings) -> Result<Vec<u8>, Error> {
    if bytes.len() > MAX_COMPONENT_BYTES {
        return Err(Error::InvalidComponent(format!(
            "component is {} bytes, over the limit of {MAX_COMPONENT_BYTES} bytes",
            bytes.len()
        )));
    }
    if !is_component(bytes) {
        return Err(Error::InvalidComponent(
            "not a WebAssembly component (a core module or other file?); build the trigger for wasm32-wasip2".into(),
        ));
    }
    structure::check(bytes).map_err(|e| Error::InvalidComponent(format!("component refused: {e}")))?;
    let engine = build_engine(settings, None).map_err(|e| Error::Internal(format!("{e:#}")))?;
    engine.precompile_component(bytes).map_err(|e| Error::InvalidComponent(format!("cannot compile component: {e:#}")))
}

fn limit_self() -> Result<(), String> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let cpu = limits::MAX_CPU.as_secs();
    let set = |resource, soft: u64, hard: u64| {
        setrlimit(resource, Rlimit { current: Some(soft), maximum: Some(hard) })
            .map_err(|e| format!("{resource:?}: {e}"))
    };
    // SIGXCPU at the limit, SIGKILL a second later.
    set(Resource::Cpu, cpu, cpu + 1)?;
    set(Resource::As, limits::MAX_MEMORY_BYTES, limits::MAX_MEMORY_BYTES)?;
    set(Resource::Core, 0, 0)?;
    Ok(())
}
