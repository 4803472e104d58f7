#!/usr/bin/env bash
# Debian packages the build and the tests need, installed when missing:
# clang-19, llvm-19 and wasi-libc (the JavaScript engine's C toolchain and headers),
# Node.js and npm (the JavaScript clients of the end-to-end tests), Chromium and its
# WebDriver (the console's browser tests; Debian's, so nothing is downloaded),
# PostgreSQL (its server for the tests' throwaway cluster, psql for their fixtures), OpenSSL
# (the cluster's test certificates), nats-server (the throwaway JetStream broker of the
# streams tests).
set -euo pipefail
missing=()
for pkg in clang-19 llvm-19 wasi-libc chromium chromium-driver postgresql postgresql-client openssl nats-server; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
