#!/usr/bin/env bash
# Starts the object-store test servers on 127.0.0.1 (moto for S3, Azurite for Azure),
# creates the test bucket and container, and prints `export` lines for the tests.
# The servers' PIDs are written to target/test-servers.pids; stop them with
# `kill $(cat target/test-servers.pids)`.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

s3_port=$(free_port)
.venv/bin/moto_server -H 127.0.0.1 -p "$s3_port" >target/moto.log 2>&1 &
echo $! >target/test-servers.pids
az_port=$(free_port)
.tools/node_modules/.bin/azurite-blob --blobHost 127.0.0.1 --blobPort "$az_port" --disableTelemetry \
  --inMemoryPersistence --silent >target/azurite.log 2>&1 &
echo $! >>target/test-servers.pids

for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$s3_port/" && curl -s -o /dev/null "http://127.0.0.1:$az_port/" && break
  sleep 0.1
done
curl -s -f -X PUT "http://127.0.0.1:$s3_port/nc2zarr-test" >/dev/null
.venv/bin/python - "$az_port" <<'PY'
import sys
from azure.storage.blob import BlobServiceClient
key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
conn = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};"
        f"BlobEndpoint=http://127.0.0.1:{sys.argv[1]}/devstoreaccount1;")
BlobServiceClient.from_connection_string(conn, api_version="2021-08-06").create_container("nc2zarr")
PY
echo "export NC2ZARR_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port"
echo "export NC2ZARR_TEST_AZURITE=1"
echo "export AZURITE_BLOB_STORAGE_URL=http://127.0.0.1:$az_port"
