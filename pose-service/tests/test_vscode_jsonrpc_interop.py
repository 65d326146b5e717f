"""The worker against the real client the TypeScript pool uses: vscode-jsonrpc's StreamMessageReader/Writer.

Skipped where node or the repo's node_modules/vscode-jsonrpc is absent (the Python suite must run alone).
"""

import json
import shutil
import subprocess
import sys

import pytest

from conftest import FIXTURES, SERVICE_DIR

REPO_ROOT = SERVICE_DIR.parent
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None or not (REPO_ROOT / "node_modules" / "vscode-jsonrpc").is_dir(),
    reason="needs node and node_modules/vscode-jsonrpc",
)

CLIENT = r"""
const { createRequire } = require('node:module');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const [repoRoot, serviceDir, python, image] = process.argv.slice(2);
const rpc = createRequire(repoRoot + '/package.json')('vscode-jsonrpc/node');
const child = spawn(python, ['-m', 'posepool_worker', '--model', 'synthetic', '--device', 'cpu', '--threads', '1'], {
  cwd: serviceDir,
  env: { ...process.env, POSE_SYNTHETIC_FAULTS: 'print_stdout' },
  stdio: ['pipe', 'pipe', 'ignore'],
});
const conn = rpc.createMessageConnection(
  new rpc.StreamMessageReader(child.stdout), new rpc.StreamMessageWriter(child.stdin));
const out = { errors: [] };
conn.onError(([e]) => out.errors.push(String(e)));
conn.onNotification('worker/ready', async (ready) => {
  out.ready = ready;
  const data = fs.readFileSync(image).toString('base64');
  out.detect = await conn.sendRequest('detect', { requestId: 'interop', frames: [
    { index: 0, encoding: 'jpeg', width: 0, height: 0, data },
    { index: 1, encoding: 'jpeg', width: 0, height: 0, data: 'AAAA' }] });
  try { await conn.sendRequest('nope'); } catch (e) { out.unknown = { code: e.code, message: e.message }; }
  out.health = await conn.sendRequest('health');
  out.shutdown = await conn.sendRequest('shutdown');
});
child.on('exit', (code, signal) => { out.exit = { code, signal }; console.log(JSON.stringify(out)); process.exit(0); });
conn.listen();
setTimeout(() => {
  console.log(JSON.stringify({ ...out, timeout: true }));
  child.kill('SIGKILL');
  process.exit(1);
}, 40000);
"""


def test_vscode_jsonrpc_client_talks_to_the_worker(tmp_path):
    script = tmp_path / "client.cjs"
    script.write_text(CLIENT)
    proc = subprocess.run(
        [NODE, str(script), str(REPO_ROOT), str(SERVICE_DIR), sys.executable, str(FIXTURES / "messi5.jpg")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["errors"] == []
    assert out["ready"]["model"]["name"] == "synthetic"
    frames = out["detect"]["frames"]
    assert len(frames[0]["persons"]) == 1 and frames[1]["error"]["code"] == "FRAME_DECODE_FAILED"
    assert out["unknown"]["code"] == -32601
    assert out["health"]["batches"] == 1 and out["health"]["frames"] == 2
    assert out["shutdown"] == {"ok": True}
    assert out["exit"] == {"code": 0, "signal": None}
