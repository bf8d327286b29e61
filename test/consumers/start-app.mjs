// `node start-app.mjs <project dir>`: starts the project's built hybrid app (dist/main.js)
// in plain Node, on free ports and a fresh local socket name, waits until Nest says it has
// started (the HTTP server and both ServerQt listening), then stops it with SIGTERM.
// Exits non-zero if the app exits first, or has not started within 60 s.
import { spawn } from 'node:child_process';
import path from 'node:path';

const dir = path.resolve(process.argv[2] ?? '.');
const READY = 'Nest application successfully started';

const child = spawn(process.execPath, ['dist/main.js'], {
  cwd: dir,
  env: { ...process.env, PORT: '0', QT_PORT: '0', QT_NAME: `qt-consumer-app-${process.pid}` },
  stdio: ['ignore', 'pipe', 'pipe'],
});
let output = '';
let started = false;
const timer = setTimeout(() => {
  console.error(`${dir}: no "${READY}" within 60 s:\n${output}`);
  child.kill('SIGKILL');
}, 60_000);
const onData = (chunk) => {
  output += chunk;
  if (!started && output.includes(READY)) {
    started = true;
    clearTimeout(timer);
    console.log(`${path.basename(dir)}: node dist/main.js started (plain Node)`);
    child.kill('SIGTERM');
  }
};
child.stdout.on('data', onData);
child.stderr.on('data', onData);
child.on('close', (code, signal) => {
  clearTimeout(timer);
  if (!started) {
    console.error(`${dir}: the app exited (${signal ?? code}) before it started:\n${output}`);
    process.exitCode = 1;
  }
});
