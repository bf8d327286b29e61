// The deployment files of the sample (sample/deploy): systemd units checked by
// systemd-analyze and run for real under systemd-socket-activate, the Dockerfile linted,
// the compose file validated against the Compose specification's schema, the Kubernetes
// manifests validated against the Kubernetes schemas. Every checker is also fed a broken
// copy, to show it catches what it is there for.
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { firstValueFrom } from 'rxjs';

import { freePort } from '../helpers/net.js';
import { ClientQt, type QtTransportOptions } from '../../lib/index.js';
import { nodeWithTsArgs, startChild, type ChildRun } from '../helpers/child-process.js';
import { Resources } from '../helpers/resources.js';
import {
  SERVICES,
  bareImports,
  billingClientOf,
  checkComposeWiring,
  checkK8sWiring,
  checkUnits,
  deployDir,
  lintCompose,
  lintDockerfile,
  parseUnit,
  readCompose,
  readYamlDocuments,
  root,
  run,
  runtimePackagesOfDockerfile,
  validateK8sSchemas,
  type Unit,
} from './deploy-checks.js';

const systemdDir = path.join(deployDir, 'systemd');
const dockerDir = path.join(deployDir, 'docker');
const k8sDir = path.join(deployDir, 'k8s');

const SOCKET_ACTIVATE = '/usr/bin/systemd-socket-activate';
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const hasSocketActivate = fs.existsSync(SOCKET_ACTIVATE);
const hasAnalyze = fs.existsSync(SYSTEMD_ANALYZE);
if (!hasSocketActivate) {
  console.log(
    `${SOCKET_ACTIVATE} is missing (Debian package systemd): the socket-activation runs are skipped`,
  );
}
if (!hasAnalyze) {
  console.log(
    `${SYSTEMD_ANALYZE} is missing (Debian package systemd): systemd-analyze verify/security are skipped; the unit files are still parsed and cross-checked`,
  );
}
const withSocketActivate = hasSocketActivate ? it : it.skip;
const withAnalyze = hasAnalyze ? it : it.skip;

const read = (file: string): string => fs.readFileSync(file, 'utf8');

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-deploy-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A fresh directory under the test's temporary directory. */
function scratch(name: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

// ------------------------------------------------------------------ systemd

function readUnits(dir: string): Record<string, Unit> {
  const units: Record<string, Unit> = {};
  for (const f of fs.readdirSync(dir)) {
    if (f.endsWith('.service') || f.endsWith('.socket'))
      units[f] = parseUnit(read(path.join(dir, f)));
  }
  return units;
}

/**
 * Services whose SystemCallFilter= allow-list kills Node 20 at start with SIGSYS: Node
 * calls pkey_alloc, which systemd 252's @system-service lacks. SystemCallErrorNumber=
 * (an errno, not `kill`) or @pkey / pkey_alloc in the allow-list avoids it. systemd-analyze
 * verify and security do not notice; a real boot does (scripts/deploy/systemd-check.sh).
 */
function sigsysProblems(units: Record<string, Unit>): string[] {
  const problems: string[] = [];
  for (const [name, unit] of Object.entries(units)) {
    let allowed: string[] = [];
    for (const value of unit.get('Service')?.get('SystemCallFilter') ?? []) {
      // An empty assignment resets the list.
      if (value === '') allowed = [];
      else if (!value.startsWith('~')) allowed.push(...value.split(/\s+/));
    }
    if (allowed.length === 0) continue;
    const errno = unit.get('Service')?.get('SystemCallErrorNumber')?.at(-1);
    if (errno && errno !== 'kill') continue;
    if (allowed.some((s) => s === '@pkey' || s === 'pkey_alloc')) continue;
    problems.push(
      `${name}: SystemCallFilter=${allowed.join(' ')} with no SystemCallErrorNumber= or @pkey kills Node 20 (SIGSYS on pkey_alloc)`,
    );
  }
  return problems;
}

/**
 * The unit files, ready for systemd-analyze: as they are, or (where node is not at
 * /usr/bin/node, which `verify` requires to exist) a copy that runs this test's node.
 */
function unitFilesForAnalyze(): string[] {
  const files = fs
    .readdirSync(systemdDir)
    .filter((f) => f.endsWith('.service') || f.endsWith('.socket'))
    .sort();
  if (fs.existsSync('/usr/bin/node')) return files.map((f) => path.join(systemdDir, f));
  console.log(
    `/usr/bin/node is missing: systemd-analyze checks copies whose ExecStart runs ${process.execPath}`,
  );
  const dir = scratch('units-local-node');
  return files.map((f) => {
    const copy = path.join(dir, f);
    fs.writeFileSync(
      copy,
      read(path.join(systemdDir, f)).replaceAll('/usr/bin/node ', `${process.execPath} `),
    );
    return copy;
  });
}

/** Waits for the service's ready line ({"ready":...}) among its log lines on stdout. */
async function readyLine(child: ChildRun, ms: number): Promise<{ ready: string; address: string }> {
  const deadline = Date.now() + ms;
  for (;;) {
    const line = await child.nextLine(Math.max(1, deadline - Date.now()));
    if (line.startsWith('{"ready"')) return JSON.parse(line) as { ready: string; address: string };
  }
}

/** Waits until systemd-socket-activate says it listens (before that, a connect is refused). */
async function listening(child: ChildRun, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!child.stderr().includes('Listening on')) {
    if (!child.running() || Date.now() > deadline) {
      throw new Error(`systemd-socket-activate did not listen: ${child.stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('systemd units (sample/deploy/systemd)', () => {
  const resources = new Resources();
  afterEach(() => resources.dispose());

  it('name the paths, ports, user and programs the services expect (unit files parsed)', () => {
    const sysusers = read(path.join(systemdDir, 'qt-sample.sysusers.conf'));
    expect(checkUnits(readUnits(systemdDir), sysusers)).toEqual([]);

    // A broken copy: billing.socket on another port than the gateway calls, a
    // world-writable inventory socket, a setting that breaks Node, a missing unit.
    const broken = readUnits(systemdDir);
    broken['billing.socket']!.get('Socket')!.set('ListenStream', ['127.0.0.1:4001']);
    broken['inventory.socket']!.get('Socket')!.set('SocketMode', ['0666']);
    broken['gateway.service']!.get('Service')!.set('MemoryDenyWriteExecute', ['yes']);
    broken['billing.service']!.get('Service')!.set('TimeoutStopSec', ['10']);
    delete broken['inventory.service'];
    expect(checkUnits(broken, sysusers)).toEqual(
      expect.arrayContaining([
        'no inventory.service',
        "billing.socket: ListenStream=127.0.0.1:4001 is not billing.service's BILLING_HOST:BILLING_PORT",
        'billing.socket: ListenStream=127.0.0.1:4001 is not where gateway.service calls billing',
        'inventory.socket: SocketMode is not 0600',
        "gateway.service: MemoryDenyWriteExecute breaks Node (V8's JIT)",
        'billing.service: TimeoutStopSec=10 leaves less than 5 s after the drain (BILLING_CLOSE_TIMEOUT_MS 10000)',
      ]),
    );
  });

  it('filter system calls without killing Node 20: SystemCallErrorNumber= or @pkey with each allow-list', () => {
    expect(sigsysProblems(readUnits(systemdDir))).toEqual([]);

    // A broken copy: one service without SystemCallErrorNumber=, one that kills on a
    // denied call; a third without the errno but allowing @pkey passes.
    const broken = readUnits(systemdDir);
    broken['billing.service']!.get('Service')!.delete('SystemCallErrorNumber');
    broken['gateway.service']!.get('Service')!.set('SystemCallErrorNumber', ['kill']);
    const inventory = broken['inventory.service']!.get('Service')!;
    inventory.delete('SystemCallErrorNumber');
    inventory.set('SystemCallFilter', ['@system-service @pkey', '~@privileged']);
    expect(sigsysProblems(broken)).toEqual([
      'billing.service: SystemCallFilter=@system-service with no SystemCallErrorNumber= or @pkey kills Node 20 (SIGSYS on pkey_alloc)',
      'gateway.service: SystemCallFilter=@system-service with no SystemCallErrorNumber= or @pkey kills Node 20 (SIGSYS on pkey_alloc)',
    ]);
  });

  withAnalyze('pass systemd-analyze verify (no systemd as PID 1 needed)', () => {
    const files = unitFilesForAnalyze();
    const ok = run(SYSTEMD_ANALYZE, ['verify', ...files], tmp);
    expect(ok).toEqual({ code: 0, output: '' });

    // A misspelt key, an impossible port, a unit without a program: verify says so.
    const dir = scratch('units-broken');
    for (const f of files) fs.copyFileSync(f, path.join(dir, path.basename(f)));
    const edit = (name: string, change: (s: string) => string): string => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, change(read(file)));
      return file;
    };
    const bad = [
      edit('inventory.service', (s) => s.replace('ProtectHome=yes', 'ProtectHom=yes')),
      edit('billing.socket', (s) =>
        s.replace('ListenStream=127.0.0.1:4000', 'ListenStream=127.0.0.1:99999'),
      ),
      edit('gateway.service', (s) => s.replace(/^ExecStart=.*$/m, '')),
    ];
    const result = run(SYSTEMD_ANALYZE, ['verify', ...bad], dir);
    expect(result.code).not.toBe(0);
    expect(result.output).toContain("Unknown key 'ProtectHom'");
    expect(result.output).toContain("Failed to parse address value in '127.0.0.1:99999'");
    expect(result.output).toContain('gateway.service: Service has no ExecStart=');
  });

  withAnalyze(
    'are hardened: systemd-analyze security --offline rates each service 2.0 or safer',
    () => {
      const services = unitFilesForAnalyze().filter((f) => f.endsWith('.service'));
      for (const file of services) {
        const r = run(
          SYSTEMD_ANALYZE,
          ['security', '--offline=yes', '--threshold=20', '--no-pager', file],
          tmp,
        );
        if (r.code !== 0) console.log(r.output);
        expect({ file: path.basename(file), code: r.code }).toEqual({
          file: path.basename(file),
          code: 0,
        });
      }
      // The same service without its hardening is rated unsafe.
      const weak = path.join(scratch('units-weak'), 'billing.service');
      fs.writeFileSync(
        weak,
        read(services.find((f) => f.endsWith('billing.service'))!).replace(/# Hardening[^]*$/, ''),
      );
      const r = run(
        SYSTEMD_ANALYZE,
        ['security', '--offline=yes', '--threshold=20', '--no-pager', weak],
        tmp,
      );
      expect(r.code).not.toBe(0);
      expect(r.output).toMatch(/Overall exposure level for billing\.service: [3-9]\.\d/);
    },
  );

  /**
   * Starts `service` under systemd-socket-activate listening on `listen`, calls it through
   * the activated socket, and stops it. systemd-socket-activate listens itself, waits for
   * the first connection, then execs the service with LISTEN_FDS=1 and LISTEN_PID=its pid
   * (the same pid after exec), the socket as descriptor 3, and only the -E variables.
   */
  async function activate(
    service: 'inventory' | 'billing',
    listen: string,
    env: Record<string, string>,
    client: QtTransportOptions,
    call: { pattern: string; data: unknown },
    onListening: () => void = () => undefined,
    second?: { pattern: string; data: unknown },
  ): Promise<{
    reply: unknown;
    secondReply: unknown;
    pid: number;
    ready: { ready: string; address: string };
    exit: number | null;
    log: string;
  }> {
    const args = [
      '-l',
      listen,
      ...Object.entries({ ...env, NO_COLOR: '1' }).flatMap(([k, v]) => ['-E', `${k}=${v}`]),
      process.execPath,
      ...nodeWithTsArgs(path.join(root, 'sample', service, 'main.ts')),
    ];
    const child = startChild(SOCKET_ACTIVATE, args, { cwd: root });
    resources.add(() => child.stop('SIGKILL'));
    await listening(child, 10000);
    const before = child.stderr();
    expect(before).not.toContain('Execing'); // nothing runs before the first connection
    onListening();

    // The service starts only now: connect and request with room for its start-up.
    const qt = new ClientQt({
      ...client,
      connectTimeout: 20000,
      requestTimeout: 20000,
      reconnect: false,
    });
    resources.add(() => qt.close());
    const [reply, ready] = await Promise.all([
      firstValueFrom(qt.send(call.pattern, call.data)),
      readyLine(child, 20000),
    ]);
    const secondReply = second ? await firstValueFrom(qt.send(second.pattern, second.data)) : null;
    await qt.close();
    // SIGTERM: the service closes the Nest app and exits 0.
    const { code } = await child.stop('SIGTERM');
    return { reply, secondReply, pid: child.proc.pid!, ready, exit: code, log: child.stderr() };
  }

  withSocketActivate(
    'inventory serves on the local socket systemd-socket-activate passes (fd 3), found by ClientQt',
    async () => {
      const socket = path.join(scratch('activation'), 'inventory.sock');
      let inode = -1;
      const { reply, ready, exit, log } = await activate(
        'inventory',
        socket,
        { INVENTORY_SOCKET: socket },
        { transport: 'local', name: socket },
        { pattern: 'inventory.check', data: 'widget' },
        // The socket file is systemd-socket-activate's: the service must not replace it.
        () => (inode = fs.statSync(socket).ino),
      );
      expect(reply).toEqual({ sku: 'widget', inStock: 12 });
      expect(ready).toEqual({ ready: 'inventory', address: socket });
      expect(log).toContain(`Listening on ${socket} as 3.`);
      expect(log).toContain('Execing');
      // Same file, same inode: the service served on the inherited descriptor. Binding
      // itself at this path would have failed (AddressInUse: the path is live).
      expect(fs.statSync(socket).ino).toBe(inode);
      expect(exit).toBe(0);
      // Stopping the service leaves the socket to its owner, for the next activation.
      expect(fs.statSync(socket).isSocket()).toBe(true);
    },
    45000,
  );

  withSocketActivate(
    'billing serves on the TCP socket systemd-socket-activate passes (fd 3), found by ClientQt',
    async () => {
      const port = await freePort();
      // BILLING_PORT is the activated port, as in the units: binding it itself would fail
      // with AddressInUse (systemd-socket-activate holds it), so an answer proves fd 3.
      // BILLING_WORKERS=2 is overruled: the inherited socket is this process's, so billing
      // runs as one process (cluster workers would try to bind the port and fail).
      const { reply, secondReply, pid, ready, exit, log } = await activate(
        'billing',
        `127.0.0.1:${port}`,
        { BILLING_HOST: '127.0.0.1', BILLING_PORT: String(port), BILLING_WORKERS: '2' },
        { transport: 'tcp', host: '127.0.0.1', port },
        { pattern: 'billing.quote', data: { sku: 'widget', quantity: 2 } },
        undefined,
        { pattern: 'billing.worker', data: {} },
      );
      expect(reply).toEqual({ unitPrice: 4.5, total: 9 });
      // No cluster: the ready line has no workers, and the process systemd-socket-activate
      // exec'd (same pid) answers.
      expect(ready).toEqual({ ready: 'billing', address: `127.0.0.1:${port}` });
      expect(secondReply).toEqual({ host: os.hostname(), pid });
      expect(log).toContain(`Listening on 127.0.0.1:${port} as 3.`);
      expect(exit).toBe(0);
    },
    45000,
  );
});

// ------------------------------------------------------------------ Docker

describe('Docker (sample/deploy/docker)', () => {
  const dockerfile = read(path.join(dockerDir, 'Dockerfile'));
  const composeFile = path.join(dockerDir, 'compose.yaml');

  it('the Dockerfile passes dockerfile-utils and has the structure the image needs', () => {
    expect(lintDockerfile(dockerfile)).toEqual([]);

    const lastUser = /^USER .*$/m;
    expect(lintDockerfile(dockerfile.replace(lastUser, 'USER root'))).toEqual([
      'the final stage runs as root (USER root)',
    ]);
    expect(lintDockerfile(dockerfile.replace(lastUser, ''))).toEqual([
      'the final stage has no USER (it would run as root)',
    ]);
    expect(lintDockerfile(dockerfile.replace(lastUser, 'USER qt-sample'))).toEqual([
      'USER qt-sample: not numeric (Kubernetes runAsNonRoot cannot check a name)',
    ]);
    const remote = dockerfile.replace(
      'WORKDIR /opt/qt-sample',
      'WORKDIR /opt/qt-sample\nADD https://example.com/x.tgz /tmp/',
    );
    expect(lintDockerfile(remote)).toEqual([
      expect.stringMatching(/^line \d+: ADD of a remote URL$/),
    ]);
    const oneStage = dockerfile.replace(/^FROM node:20-bookworm-slim AS runtime$/m, '');
    expect(lintDockerfile(oneStage)).toEqual(
      expect.arrayContaining(['1 FROM stages, expected 2 (build, runtime)']),
    );
    // dockerfile-utils: an unknown instruction, a bad flag.
    expect(lintDockerfile(dockerfile.replace('WORKDIR /app', 'WORKDIRR /app'))).toEqual([
      expect.stringMatching(/Unknown instruction: WORKDIRR/),
    ]);
    expect(
      lintDockerfile(
        dockerfile.replace('COPY --from=build /app/dist', 'COPY --frm=build /app/dist'),
      ),
    ).toEqual(expect.arrayContaining([expect.stringMatching(/Unknown flag: frm/)]));
  });

  it('the image keeps every package the sample and the library import; its CMD starts each service', () => {
    const pkg = JSON.parse(read(path.join(root, 'package.json'))) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const moved = runtimePackagesOfDockerfile(dockerfile);
    // The gateway's NestFactory.create loads @nestjs/platform-express without importing it.
    expect(moved).toContain('@nestjs/platform-express');
    for (const name of moved)
      expect({ name, inDev: name in pkg.devDependencies }).toEqual({ name, inDev: true });
    // The OpenTelemetry SDK of `npm start -- --verbose` (sample/common/trace-tree.ts) is for
    // development: loaded only by a dynamic import when SAMPLE_TRACE=1, never in the image.
    // Nothing else may import it at load time.
    const traceTree = path.join(root, 'sample', 'common', 'trace-tree.ts');
    const staticImporters = [...sourceFiles(path.join(root, 'sample'))].filter((f) =>
      /^import (?!type\b)[^;]*from '[./]*(?:common\/)?trace-tree\.js'/m.test(read(f)),
    );
    expect(staticImporters).toEqual([]);
    const missing = (kept: string[]): string[] =>
      [...bareImports([path.join(root, 'lib'), path.join(root, 'sample')], [traceTree])]
        .filter((n) => n !== 'nestjs-qt-transport' && !(n in pkg.dependencies) && !kept.includes(n))
        .sort();
    expect(missing(moved)).toEqual([]);
    expect(missing(moved.filter((n) => n !== 'rxjs'))).toEqual(['rxjs']);

    // The CMD starts dist/sample/$SERVICE/main.js, for exactly the sample's services.
    const cmd = /^CMD (.*)$/m.exec(dockerfile)![1]!;
    expect(cmd).toContain('exec node \\"dist/sample/$SERVICE/main.js\\"');
    expect(/case \\"\$SERVICE\\" in ([a-z|]+)\)/.exec(cmd)![1]!.split('|').sort()).toEqual([
      ...SERVICES,
    ]);
    for (const s of SERVICES)
      expect(fs.existsSync(path.join(root, 'sample', s, 'main.ts'))).toBe(true);
  });

  it('compose.yaml validates against the Compose specification schema and passes dclint', () => {
    expect(lintCompose(composeFile)).toEqual([]);

    const dir = scratch('compose-broken');
    const write = (name: string, text: string): string => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, text);
      return file;
    };
    const text = read(composeFile);
    // Schema: an unknown service key; a wrong type.
    expect(
      lintCompose(write('typo.yaml', text.replace('    healthcheck:', '    helthcheck:'))),
    ).toEqual([expect.stringMatching(/invalid-schema: .*must NOT have additional properties/)]);
    expect(
      lintCompose(write('type.yaml', text.replace('read_only: true', 'read_only: [yes]'))),
    ).toEqual([expect.stringMatching(/invalid-schema: .*read_only/)]);
    // YAML itself.
    expect(lintCompose(write('yaml.yaml', text.replace('services:', 'services: [')))).toEqual([
      expect.stringMatching(/error invalid-yaml/),
    ]);
    // A dclint rule: a published port bound to every interface.
    expect(
      lintCompose(write('ports.yaml', text.replace("'127.0.0.1:8080:8080'", "'8080:8080'"))),
    ).toEqual([expect.stringMatching(/no-unbound-port-interfaces/)]);
  });

  it('compose.yaml wires the services as the sample expects (TCP to billing, a shared socket volume)', () => {
    const compose = readCompose(read(composeFile));
    expect(checkComposeWiring(compose, dockerDir)).toEqual([]);
    // billing runs as a cluster of two workers, and the gateway opens a connection to each.
    const env = (name: string): Record<string, string> =>
      (compose as { services: Record<string, { environment: Record<string, string> }> }).services[
        name
      ]!.environment;
    expect(env('billing').BILLING_WORKERS).toBe('2');
    expect(billingClientOf(env('gateway'))).toMatchObject({
      balancing: 'round-robin',
      connections: 2,
    });

    const broken = readCompose(read(composeFile)) as {
      services: Record<string, { environment: Record<string, string>; volumes?: string[] }>;
      networks: Record<string, { internal?: boolean }>;
    };
    broken.services.gateway!.environment.BILLING_PORT = '4001';
    broken.services.gateway!.volumes = ['other:/run/qt-sample'];
    broken.networks.isolated!.internal = false; // inventory's network gets a route out
    expect(checkComposeWiring(broken, dockerDir)).toEqual([
      'gateway: BILLING_PORT differs from billing',
      'inventory and gateway: the socket directory is not one volume',
      'inventory: has a network with a route out (want network_mode none or internal networks)',
    ]);

    // Fewer connections than workers; no time to drain before SIGKILL.
    const scaled = readCompose(read(composeFile)) as {
      services: Record<string, { environment: Record<string, string>; stop_grace_period?: string }>;
    };
    scaled.services.gateway!.environment.BILLING_CONNECTIONS = '1';
    scaled.services.billing!.stop_grace_period = '10s';
    expect(checkComposeWiring(scaled, dockerDir)).toEqual([
      "gateway: BILLING_CONNECTIONS=1 reaches at most 1 of billing's 2 workers (a cluster hands out connections)",
      'billing: stop_grace_period leaves less than 5 s after the drain (BILLING_CLOSE_TIMEOUT_MS 10000)',
    ]);
    scaled.services.gateway!.environment.BILLING_BALANCING = 'first';
    delete scaled.services.billing!.stop_grace_period; // Compose's default: 10 s
    expect(checkComposeWiring(scaled, dockerDir)).toEqual([
      "gateway: BILLING_BALANCING=first uses one of billing's 2 workers",
      'billing: stop_grace_period leaves less than 5 s after the drain (BILLING_CLOSE_TIMEOUT_MS 10000)',
    ]);
  });
});

// ------------------------------------------------------------------ Kubernetes

describe('Kubernetes manifests (sample/deploy/k8s)', () => {
  const manifestFiles = fs
    .readdirSync(k8sDir)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .sort();
  const documents = (): Array<{ file: string; docs: Array<Record<string, unknown>> }> =>
    manifestFiles.map((file) => ({ file, docs: readYamlDocuments(read(path.join(k8sDir, file))) }));

  it('validate against the Kubernetes schemas (kubernetes-models), unknown fields refused', () => {
    expect(manifestFiles).toEqual(['billing.yaml', 'gateway.yaml']);
    for (const { file, docs } of documents()) expect(validateK8sSchemas(docs, file)).toEqual([]);
    // kubectl apply -k: the kustomization lists every manifest.
    const kustomization = readYamlDocuments(read(path.join(k8sDir, 'kustomization.yaml')))[0]!;
    expect([...(kustomization.resources as string[])].sort()).toEqual(manifestFiles);

    const [gateway] = documents().filter((d) => d.file === 'gateway.yaml');
    const deployment = (): Record<string, unknown> => structuredClone(gateway!.docs[0]!);
    const container = (d: Record<string, unknown>, i = 0): Record<string, unknown> =>
      (d as { spec: { template: { spec: { containers: Array<Record<string, unknown>> } } } }).spec
        .template.spec.containers[i]!;
    const broken = (edit: (d: Record<string, unknown>) => void): string[] => {
      const d = deployment();
      edit(d);
      return validateK8sSchemas([d], 'gateway.yaml');
    };
    expect(
      broken(
        (d) => ((container(d).ports as Array<Record<string, unknown>>)[0]!.containerPort = 'http'),
      ),
    ).toEqual([expect.stringMatching(/containerPort must be integer/)]);
    expect(
      broken(
        (d) =>
          ((container(d, 1).resources as { limits: Record<string, string> }).limits.memory =
            'lots'),
      ),
    ).toEqual([expect.stringMatching(/limits\/memory must match format "quantity"/)]);
    expect(
      broken((d) => {
        container(d).readinesProbe = container(d).readinessProbe;
        delete container(d).readinessProbe;
      }),
    ).toEqual([
      expect.stringMatching(/spec\.template\.spec\.containers\[0\]\.readinesProbe: unknown field/),
    ]);
    expect(broken((d) => delete container(d).name)).toEqual([
      expect.stringMatching(/containers\/0 must have required property name/),
    ]);
    expect(broken((d) => (d.kind = 'StatefulSet'))).toEqual([
      expect.stringMatching(/apps\/v1\/StatefulSet .*not covered/),
    ]);
  });

  it('wire the services: Services select their Pods, probes and env agree, the socket is shared', () => {
    const all = documents().flatMap((d) => d.docs);
    expect(checkK8sWiring(all)).toEqual([]);

    const broken = structuredClone(all) as Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
    for (const name of ['billing', 'billing-headless']) {
      broken.find((d) => d.kind === 'Service' && d.metadata.name === name)!.spec.selector[
        'app.kubernetes.io/component'
      ] = 'biling';
    }
    const gatewayPod = broken.find((d) => d.kind === 'Deployment' && d.metadata.name === 'gateway')!
      .spec.template.spec;
    gatewayPod.containers[1].volumeMounts = [];
    gatewayPod.containers[1].securityContext.readOnlyRootFilesystem = false;
    delete gatewayPod.containers[0].resources.limits;
    expect(checkK8sWiring(broken)).toEqual([
      'Deployment gateway container gateway: no limits.cpu',
      'Deployment gateway container gateway: no limits.memory',
      'Deployment gateway container inventory: readOnlyRootFilesystem is not true',
      'billing: no Service selects its Pod',
      'gateway: BILLING_HOST=billing-headless is a Service that does not select the billing Pods',
      'inventory and gateway: the socket directory is not one shared volume',
    ]);
  });

  it('scale billing out: 3 replicas behind a headless Service the gateway balances over, time to drain on a rolling update', () => {
    type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const all = documents().flatMap((d) => d.docs) as Doc[];
    const find = (kind: string, name: string): Doc =>
      all.find((d) => d.kind === kind && d.metadata.name === name)!;
    const envOf = (c: { env: Array<{ name: string; value: string }> }): Record<string, string> =>
      Object.fromEntries(c.env.map((e) => [e.name, e.value]));
    const billing = find('Deployment', 'billing');
    expect(billing.spec.replicas).toBe(3);
    expect(billing.spec.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
    const billingEnv = envOf(billing.spec.template.spec.containers[0]);
    expect(billingEnv).toMatchObject({ BILLING_WORKERS: '1', BILLING_CLOSE_TIMEOUT_MS: '10000' });
    expect(billing.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(15);
    const headless = find('Service', 'billing-headless');
    expect(headless.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: false });
    expect(headless.spec.selector).toEqual(billing.spec.selector.matchLabels);
    expect(find('PodDisruptionBudget', 'billing').spec).toEqual({
      maxUnavailable: 1,
      selector: billing.spec.selector,
    });
    const gatewayEnv = envOf(find('Deployment', 'gateway').spec.template.spec.containers[0]);
    expect(gatewayEnv).toMatchObject({
      BILLING_HOST: 'billing-headless',
      BILLING_BALANCING: 'least-pending',
      BILLING_RESOLVE_INTERVAL_MS: '5000',
    });

    // Each way of losing replicas or the drain is caught.
    const broken = (edit: (docs: Doc[]) => void): string[] => {
      const copy = structuredClone(all);
      edit(copy);
      return checkK8sWiring(copy);
    };
    const gatewayContainerEnv = (docs: Doc[]): Array<{ name: string; value: string }> =>
      docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'gateway')!.spec.template.spec
        .containers[0].env;
    const setEnv = (
      env: Array<{ name: string; value: string }>,
      name: string,
      value: string,
    ): void => {
      const e = env.find((x) => x.name === name);
      if (e) e.value = value;
      else env.push({ name, value });
    };
    expect(broken((docs) => setEnv(gatewayContainerEnv(docs), 'BILLING_HOST', 'billing'))).toEqual([
      'gateway: billing has 3 replicas, but BILLING_HOST=billing is not a headless Service (one address: kube-proxy picks a Pod per connection)',
    ]);
    expect(
      broken((docs) => setEnv(gatewayContainerEnv(docs), 'BILLING_BALANCING', 'first')),
    ).toEqual([
      "gateway: BILLING_BALANCING=first over the headless Service billing-headless uses one of billing's 3 replicas",
    ]);
    expect(
      broken((docs) => {
        docs.find((d) => d.metadata.name === 'billing-headless')!.spec.publishNotReadyAddresses =
          true;
      }),
    ).toEqual([
      'Service billing-headless: publishNotReadyAddresses lists Pods that are not ready (starting, or terminating)',
    ]);
    expect(
      broken((docs) => {
        docs.find(
          (d) => d.kind === 'Deployment' && d.metadata.name === 'billing',
        )!.spec.template.spec.terminationGracePeriodSeconds = 10;
      }),
    ).toEqual([
      'billing: terminationGracePeriodSeconds 10 leaves less than 5 s after the drain (BILLING_CLOSE_TIMEOUT_MS 10000)',
    ]);
    expect(
      broken((docs) => {
        const pod = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'billing')!.spec
          .template.spec;
        setEnv(pod.containers[0].env, 'BILLING_WORKERS', '2');
      }),
    ).toEqual([
      "gateway: BILLING_CONNECTIONS=1 reaches at most 1 of billing's 2 workers (a cluster hands out connections)",
    ]);
    expect(
      broken((docs) => {
        docs.find((d) => d.kind === 'PodDisruptionBudget')!.spec.selector.matchLabels[
          'app.kubernetes.io/component'
        ] = 'biling';
      }),
    ).toEqual(["PodDisruptionBudget billing: selects no Deployment's Pods"]);
  });
});

// ------------------------------------------------------------------ across the files

const OPENSSL = ['/usr/bin/openssl', '/usr/local/bin/openssl'].find((p) => fs.existsSync(p));
if (!OPENSSL) console.log('openssl is missing: the development certificate names are not checked');
const withOpenssl = OPENSSL ? it : it.skip;

describe('the deployment files agree with each other', () => {
  withOpenssl(
    "billing's development certificate carries every name the gateway verifies it by (Kubernetes, Compose)",
    () => {
      const dir = scratch('dev-certs');
      const made = run('bash', [path.join(deployDir, 'tls/make-dev-certs.sh'), dir], tmp);
      expect(made.code).toBe(0);
      const certificate = new X509Certificate(read(path.join(dir, 'billing.pem')));
      const gatewayK8s = readYamlDocuments(read(path.join(k8sDir, 'gateway.yaml')))[0] as {
        spec: {
          template: {
            spec: { containers: Array<{ env: Array<{ name: string; value: string }> }> };
          };
        };
      };
      const k8sEnv = Object.fromEntries(
        gatewayK8s.spec.template.spec.containers[0]!.env.map((e) => [e.name, e.value]),
      );
      const compose = readCompose(read(path.join(dockerDir, 'compose.yaml'))) as {
        services: Record<string, { environment: Record<string, string> }>;
      };
      const names = [k8sEnv, compose.services.gateway!.environment].map(
        (env) => billingClientOf(env).tlsName!,
      );
      expect(names).toEqual(['billing-headless', 'billing']);
      for (const name of names) expect(certificate.checkHost(name)).toBe(name);
      // A name it does not carry (the headless Service's full name) is refused.
      expect(certificate.checkHost('billing-headless.default.svc.cluster.local')).toBeUndefined();
    },
  );

  it('one image, one non-root UID, one socket path, one billing port', () => {
    const dockerfile = read(path.join(dockerDir, 'Dockerfile'));
    const uid = Number(/^USER (\d+)/m.exec(dockerfile)![1]);
    const compose = readCompose(read(path.join(dockerDir, 'compose.yaml'))) as {
      services: Record<
        string,
        { image: string; user: string; environment: Record<string, string> }
      >;
    };
    const k8s = ['billing.yaml', 'gateway.yaml'].flatMap((f) =>
      readYamlDocuments(read(path.join(k8sDir, f))),
    ) as Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const pods = k8s.filter((d) => d.kind === 'Deployment').map((d) => d.spec.template.spec);
    const units = readUnits(systemdDir);

    const images = new Set([
      ...Object.values(compose.services).map((s) => s.image),
      ...pods.flatMap((p) => p.containers.map((c: { image: string }) => c.image)),
    ]);
    expect([...images]).toEqual(['qt-sample:0.1.0']);
    expect(new Set(Object.values(compose.services).map((s) => s.user))).toEqual(
      new Set([`${uid}:${uid}`]),
    );
    expect(new Set(pods.map((p) => p.securityContext.runAsUser))).toEqual(new Set([uid]));
    expect(uid).toBeGreaterThan(0);

    const inventorySocket = units['inventory.socket']!.get('Socket')!.get('ListenStream')![0];
    expect(compose.services.inventory!.environment.INVENTORY_SOCKET).toBe(inventorySocket);
    const podEnv = pods
      .flatMap((p) => p.containers)
      .flatMap((c: { env: Array<{ name: string; value: string }> }) => c.env)
      .filter((e: { name: string }) => e.name === 'INVENTORY_SOCKET');
    expect(new Set(podEnv.map((e: { value: string }) => e.value))).toEqual(
      new Set([inventorySocket]),
    );
    // /run/qt-sample exists in the image, owned by the UID, for the volume to inherit.
    expect(dockerfile).toContain(
      `install -d -o ${uid} -g ${uid} -m 0700 ${path.dirname(inventorySocket!)}`,
    );
    const billingPort = units['billing.socket']!.get('Socket')!
      .get('ListenStream')![0]!
      .split(':')[1];
    expect(compose.services.billing!.environment.BILLING_PORT).toBe(billingPort);
  });
});

/** Every .ts file under `dir`. */
function* sourceFiles(dir: string): Generator<string> {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(full);
    else if (entry.name.endsWith('.ts')) yield full;
  }
}
