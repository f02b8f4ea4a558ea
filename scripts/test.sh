#!/usr/bin/env bash
# The test command (README, .ci/run): the style lint, then the whole suite in debug and
# in release (the build users run: -O with bounds checks, see Package.swift). The dsi
# executable is built first so the command-line tests run it; Python's safetensors
# package is used when $DSI_PYTHON points at a Python that has it (.ci/run sets one up);
# the real collections are read from $DSI_CORPORA (default ../shared/corpora). Tests
# whose inputs are absent are reported as skipped, never as passed.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== swift format lint"
swift format lint --strict --recursive --parallel Package.swift Sources Tests
echo "== debug"
swift build
# The suite runs under the OpenBLAS kernels the dsi executable's start-up chooses for this
# CPU (OpenBLAS alone may choose older ones), unless OPENBLAS_CORETYPE is set.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  OPENBLAS_CORETYPE="$("$(swift build --show-bin-path)/dsi" kernels --core)"
  export OPENBLAS_CORETYPE
fi
echo "OpenBLAS kernels: $OPENBLAS_CORETYPE"
swift test
echo "== release"
swift build -c release
swift test -c release
