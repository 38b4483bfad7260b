#!/usr/bin/env bash
# Gateway overhead and throughput: modelroute beside LiteLLM, Portkey and the bare aiohttp
# proxy (pyref) on the same fixed upstream, in one run of the shared harness
# (../shared/bench/gateway; run its setup.sh once). Results go to bench/results/.
#   bash bench/overhead.sh [extra harness flags, e.g. --duration 5 --conc 1,16,64]
# MODELROUTE_BIN replaces the gateway command (bench/modelroute_bin.py says how).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
harness="${HARNESS:-$root/../shared/bench/gateway}"
mkdir -p "$here/results"
cmd="sed 's#UPSTREAM_BASE#{upstream_base}#' $here/gateway/policy.yaml > {workdir}/policy.yaml \
&& exec ${MODELROUTE_BIN:-$root/.venv/bin/modelroute} serve {workdir}/policy.yaml --host 127.0.0.1 --port {port} \
--workers {gw_ncpus} --store {workdir}/records.db --spool-dir {workdir}/spool"
exec python3 "$harness/bench.py" --gateway-name modelroute --gateway-first \
  --gateway-cmd "$cmd" --peers "${PEERS:-direct,litellm,portkey,pyref}" \
  --out "$here/results" "$@"
