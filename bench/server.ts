/**
 * One benchmark server process: `node server.js <kind> <address>` prints a READY line and
 * serves until SIGTERM. The Nest kinds serve BenchModule; raw-net (a TCP port) and raw-unix
 * (a Unix socket path) echo length-prefixed frames as they come (the reference for what
 * each substrate allows) and answer a frame whose payload is "stats" with their RSS.
 *
 * `node server.js qt-tcp <port> <workers>` (the scaling figures) is a node:cluster primary
 * instead: it forks `workers` workers that each serve on the primary's port, and prints
 * one READY line, with the workers' pids, once every one of them listens.
 */
import 'reflect-metadata';
import cluster, { type Worker } from 'node:cluster';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

import { NestFactory } from '@nestjs/core';
import { Transport, type MicroserviceOptions } from '@nestjs/microservices';

import { ServerQt } from '../lib/index.js';
import { BenchModule } from './app.js';
import { benchPkiDir, isRaw, type Kind } from './kinds.js';
import { onRawFrames, rawFrame } from './raw-frames.js';

const [kind, address, workersArg] = process.argv.slice(2) as [Kind, string, string?];
const workers = Number(workersArg ?? '0');

function ready(extra: Record<string, unknown> = {}): void {
  if (cluster.isWorker) process.send!({ ready: kind, pid: process.pid });
  else process.stdout.write(`${JSON.stringify({ ready: kind, pid: process.pid, ...extra })}\n`);
}

/** The cluster primary: forks the workers, reports them ready, ends them on SIGTERM. */
function primary(): void {
  const forked: Worker[] = [];
  const pids: number[] = [];
  let stopping = false;
  for (let i = 0; i < workers; i++) {
    const worker = cluster.fork();
    forked.push(worker);
    worker.on('message', (message: { ready?: string; pid?: number }) => {
      if (!message.ready) return;
      pids.push(message.pid!);
      if (pids.length === workers) ready({ workers: pids });
    });
    worker.on('exit', (code, signal) => {
      if (stopping) return;
      process.stderr.write(`bench server worker ended (${code ?? signal}) before SIGTERM\n`);
      process.exit(1);
    });
  }
  process.once('SIGTERM', () => {
    stopping = true;
    const exits = forked
      .filter((w) => !w.isDead())
      .map((w) => new Promise((resolve) => w.once('exit', resolve)));
    for (const w of forked) w.process.kill('SIGTERM');
    void Promise.all(exits).then(() => process.exit(0));
  });
}

async function main(): Promise<void> {
  if (isRaw(kind)) {
    const server = net.createServer((socket) => {
      if (kind === 'raw-net') socket.setNoDelay(true);
      onRawFrames(socket, (frames) => {
        const out: Buffer[] = [];
        for (const frame of frames) {
          if (frame.length === 9 && frame.subarray(4).toString() === 'stats') {
            out.push(...rawFrame(Buffer.from(JSON.stringify({ rss: process.memoryUsage().rss }))));
          } else {
            out.push(frame);
          }
        }
        if (out.length > 0) socket.write(out.length === 1 ? out[0] : Buffer.concat(out));
      });
      socket.on('error', () => undefined);
    });
    if (kind === 'raw-net') {
      await new Promise<void>((resolve) => server.listen(Number(address), '127.0.0.1', resolve));
      ready({ port: (server.address() as net.AddressInfo).port });
    } else {
      fs.rmSync(address, { force: true });
      await new Promise<void>((resolve) => server.listen(address, resolve));
      ready({ path: address });
    }
    // Closing the listener removes a Unix socket's file.
    process.once('SIGTERM', () => {
      server.close();
      process.exit(0);
    });
    return;
  }
  const pki = kind === 'qt-tls' || kind === 'nest-tls' ? benchPkiDir() : '';
  const qtLimits = { maxPendingConnections: 64, maxFrameSize: 128 * 1024 * 1024 };
  const nestTcp = { host: '127.0.0.1', port: Number(address) };
  const strategy: MicroserviceOptions | { strategy: ServerQt } =
    kind === 'qt-tcp' || kind === 'qt-tls'
      ? {
          strategy: new ServerQt({
            transport: 'tcp',
            port: Number(address),
            ...qtLimits,
            ...(kind === 'qt-tls'
              ? {
                  tls: {
                    certificate: path.join(pki, 'server.pem'),
                    privateKey: path.join(pki, 'server.key'),
                  },
                }
              : {}),
          }),
        }
      : kind === 'qt-local'
        ? { strategy: new ServerQt({ transport: 'local', name: address, ...qtLimits }) }
        : ({
            transport: Transport.TCP,
            options:
              kind === 'nest-tls'
                ? {
                    ...nestTcp,
                    tlsOptions: {
                      cert: fs.readFileSync(path.join(pki, 'server.pem')),
                      key: fs.readFileSync(path.join(pki, 'server.key')),
                    },
                  }
                : nestTcp,
          } as MicroserviceOptions);
  const app = await NestFactory.createMicroservice(BenchModule, { ...strategy, logger: false });
  await app.listen();
  ready();
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

if (cluster.isWorker) process.once('disconnect', () => process.exit(0));

(workers > 0 && cluster.isPrimary ? Promise.resolve(primary()) : main()).catch((err: unknown) => {
  process.stderr.write(
    `bench server ${kind} failed: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
});
