/**
 * Checks of the deployment files in sample/deploy (used by deploy.spec.ts). Each checker
 * returns a list of problems (empty: fine), so a test can feed it the real file and a
 * broken copy and see both answers.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { DCLinter } from 'dclint';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate as validateDockerfileSyntax } from 'dockerfile-utils';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Service } from 'kubernetes-models/v1/Service';
import ts from 'typescript';
import YAML from 'yaml';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const deployDir = path.join(root, 'sample/deploy');

/** The sample's services: the directories of sample/ with a main.ts. */
export const SERVICES = ['billing', 'gateway', 'inventory'] as const;
export type ServiceName = (typeof SERVICES)[number];

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads `obj.a.b.c` (undefined when a step is missing). */
function dig(obj: unknown, ...keys: Array<string | number>): unknown {
  let v: unknown = obj;
  for (const k of keys) {
    if (typeof k === 'number') v = Array.isArray(v) ? v[k] : undefined;
    else v = isObject(v) ? v[k] : undefined;
  }
  return v;
}

// ------------------------------------------------------------------ Kubernetes

/** The kinds the manifests may use, with the kubernetes-models class that validates each. */
const K8S_MODELS: Record<string, { new (data: never): { validate(): void } }> = {
  'apps/v1/Deployment': Deployment as never,
  'v1/Service': Service as never,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget as never,
};

/** Every YAML document of a manifest file, as plain objects (YAML errors throw). */
export function readYamlDocuments(text: string): Json[] {
  return YAML.parseAllDocuments(text).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`YAML: ${doc.errors[0]!.message}`);
    return doc.toJS() as Json;
  });
}

let strictChecker: { checker: ts.TypeChecker; roots: ts.Type } | null = null;

/**
 * kubernetes-models' validate() is the OpenAPI schema, which (as the API server's) lets
 * unknown fields through; kubectl refuses them (strict field validation). This walks a
 * manifest along kubernetes-models' TypeScript types (generated from the same OpenAPI
 * document) and reports every field the type does not declare, e.g. a `readinesProbe`.
 */
function unknownFields(doc: Json, kind: string): string[] {
  if (!strictChecker) {
    const file = path.join(root, 'test/sample/__k8s-types__.ts');
    const text = [
      "import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';",
      "import type { IService } from 'kubernetes-models/v1/Service';",
      "import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';",
      "export interface Roots { 'apps/v1/Deployment': IDeployment; 'v1/Service': IService; 'policy/v1/PodDisruptionBudget': IPodDisruptionBudget }",
    ].join('\n');
    const options: ts.CompilerOptions = {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ['lib.es2022.d.ts'],
      types: [],
      strict: true,
      skipLibCheck: true,
      noEmit: true,
    };
    const host = ts.createCompilerHost(options);
    const { fileExists, readFile, getSourceFile } = host;
    host.fileExists = (f) => f === file || fileExists.call(host, f);
    host.readFile = (f) => (f === file ? text : readFile.call(host, f));
    host.getSourceFile = (f, version, ...rest) =>
      f === file
        ? ts.createSourceFile(f, text, version)
        : getSourceFile.call(host, f, version, ...rest);
    const program = ts.createProgram([file], options, host);
    const problems = ts.getPreEmitDiagnostics(program);
    if (problems.length > 0) {
      throw new Error(
        `kubernetes-models types: ${ts.flattenDiagnosticMessageText(problems[0]!.messageText, '\n')}`,
      );
    }
    const checker = program.getTypeChecker();
    const symbol = checker
      .getSymbolAtLocation(program.getSourceFile(file)!)!
      .exports!.get('Roots' as ts.__String)!;
    strictChecker = { checker, roots: checker.getDeclaredTypeOfSymbol(symbol) };
  }
  const { checker, roots } = strictChecker;
  const objectPart = (type: ts.Type): ts.Type | null => {
    const t = checker.getNonNullableType(type);
    if (t.isUnion()) return t.types.find((u) => u.flags & ts.TypeFlags.Object) ?? null;
    return t.flags & ts.TypeFlags.Object ? t : null;
  };
  const errors: string[] = [];
  const walk = (value: unknown, type: ts.Type, at: string): void => {
    if (value === null || typeof value !== 'object') return; // scalars: validate() checks them
    const t = objectPart(type);
    if (!t) {
      errors.push(`${at}: an object or list where the schema has ${checker.typeToString(type)}`);
      return;
    }
    if (Array.isArray(value)) {
      if (!checker.isArrayType(t)) {
        errors.push(`${at}: a list where the schema has ${checker.typeToString(t)}`);
        return;
      }
      const element = checker.getTypeArguments(t as ts.TypeReference)[0]!;
      value.forEach((v, i) => walk(v, element, `${at}[${i}]`));
      return;
    }
    const index = checker
      .getIndexInfosOfType(t)
      .find((i) => (i.keyType.flags & ts.TypeFlags.String) !== 0);
    for (const [key, v] of Object.entries(value as Json)) {
      const prop = checker.getPropertyOfType(t, key);
      if (prop) walk(v, checker.getTypeOfSymbol(prop), `${at}.${key}`);
      else if (index) walk(v, index.type, `${at}.${key}`);
      else errors.push(`${at}.${key}: unknown field (not in ${checker.typeToString(t)})`);
    }
  };
  const rootProp = checker.getPropertyOfType(roots, kind);
  if (!rootProp) return [`${kind}: no type for it`];
  walk(doc, checker.getTypeOfSymbol(rootProp), kind);
  return errors;
}

/**
 * Validates manifests against the Kubernetes schemas bundled in kubernetes-models (types,
 * required fields, enums, quantities), and refuses fields the schema does not declare.
 */
export function validateK8sSchemas(docs: Json[], file: string): string[] {
  const problems: string[] = [];
  for (const [i, doc] of docs.entries()) {
    const kind = `${String(doc.apiVersion)}/${String(doc.kind)}`;
    const where = `${file} #${i + 1} ${kind} ${String(dig(doc, 'metadata', 'name'))}`;
    const Model = K8S_MODELS[kind];
    if (!Model) {
      problems.push(`${where}: kind not covered by these checks`);
      continue;
    }
    try {
      new Model(doc as never).validate();
    } catch (err) {
      problems.push(`${where}: ${err instanceof Error ? err.message : String(err)}`);
    }
    problems.push(...unknownFields(doc, kind).map((p) => `${where}: ${p}`));
  }
  return problems;
}

type Container = Json & { name: string };

/** billing's drain time when BILLING_CLOSE_TIMEOUT_MS is not set (sample/billing/main.ts). */
export const DEFAULT_CLOSE_TIMEOUT_MS = 10000;
/** What a supervisor's stop timeout must leave beyond the drain, for the process to exit. */
export const EXIT_MARGIN_MS = 5000;

/**
 * The gateway's billing client as transport-config.ts builds it from these variables
 * (defaults included), and the number of billing processes per instance.
 */
export function billingClientOf(gatewayEnv: Record<string, string | undefined>): {
  balancing: string;
  connections: number;
  tlsName: string | undefined;
} {
  return {
    balancing: gatewayEnv.BILLING_BALANCING || 'round-robin',
    connections: Number(gatewayEnv.BILLING_CONNECTIONS || '2'),
    tlsName: gatewayEnv.BILLING_TLS_NAME || gatewayEnv.BILLING_HOST,
  };
}

function billingWorkersOf(billingEnv: Record<string, string | undefined>): number {
  return Number(billingEnv.BILLING_WORKERS || '1');
}

function closeTimeoutOf(billingEnv: Record<string, string | undefined>): number {
  return Number(billingEnv.BILLING_CLOSE_TIMEOUT_MS || String(DEFAULT_CLOSE_TIMEOUT_MS));
}

/** The gateway's connections must reach every worker of a billing cluster. */
function workersReached(
  billingEnv: Record<string, string | undefined>,
  gatewayEnv: Record<string, string | undefined>,
): string[] {
  const workers = billingWorkersOf(billingEnv);
  const client = billingClientOf(gatewayEnv);
  if (workers <= 1) return [];
  if (client.balancing === 'first') {
    return [`gateway: BILLING_BALANCING=first uses one of billing's ${workers} workers`];
  }
  if (client.connections < workers) {
    return [
      `gateway: BILLING_CONNECTIONS=${client.connections} reaches at most ${client.connections} of billing's ${workers} workers (a cluster hands out connections)`,
    ];
  }
  return [];
}

function envOf(container: unknown): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of (dig(container, 'env') as Json[] | undefined) ?? []) {
    env[String(e.name)] = String(e.value);
  }
  return env;
}

/** A container port by number or by name. */
function containerPort(container: unknown, port: unknown): number | undefined {
  const ports = (dig(container, 'ports') as Json[] | undefined) ?? [];
  const p = ports.find((x) => x.containerPort === port || x.name === port);
  return p ? Number(p.containerPort) : undefined;
}

function matches(selector: unknown, labels: unknown): boolean {
  if (!isObject(selector) || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => dig(labels, k) === v);
}

/**
 * What the schema cannot know: the manifests wire the services as the sample expects.
 * Services select their Pods, probes and env agree with the ports, the gateway and
 * inventory share the socket through a volume, every container is locked down and bounded.
 */
export function checkK8sWiring(docs: Json[]): string[] {
  const problems: string[] = [];
  const deployments = docs.filter((d) => d.kind === 'Deployment');
  const services = docs.filter((d) => d.kind === 'Service');
  const containers: Array<{ pod: Json; c: Container; deployment: string }> = [];
  for (const d of deployments) {
    const name = String(dig(d, 'metadata', 'name'));
    const pod = dig(d, 'spec', 'template', 'spec') as Json;
    if (
      !matches(
        dig(d, 'spec', 'selector', 'matchLabels'),
        dig(d, 'spec', 'template', 'metadata', 'labels'),
      )
    ) {
      problems.push(`Deployment ${name}: selector does not match its Pod labels`);
    }
    if (dig(pod, 'securityContext', 'runAsNonRoot') !== true) {
      problems.push(`Deployment ${name}: Pod without runAsNonRoot: true`);
    }
    if (typeof dig(pod, 'securityContext', 'runAsUser') !== 'number') {
      problems.push(`Deployment ${name}: Pod without a numeric runAsUser`);
    }
    if (dig(pod, 'enableServiceLinks') !== false) {
      problems.push(
        `Deployment ${name}: enableServiceLinks must be false (a Service named billing or gateway would set BILLING_PORT/GATEWAY_PORT=tcp://...)`,
      );
    }
    for (const c of (dig(pod, 'containers') as Container[] | undefined) ?? []) {
      containers.push({ pod, c, deployment: name });
    }
  }
  const byService = new Map<string, { pod: Json; c: Container; deployment: string }>();
  for (const entry of containers) {
    const { c, deployment } = entry;
    const where = `Deployment ${deployment} container ${c.name}`;
    const service = envOf(c).SERVICE;
    if (!(SERVICES as readonly string[]).includes(service!)) {
      problems.push(`${where}: SERVICE=${service} is not one of ${SERVICES.join(', ')}`);
    } else {
      byService.set(service!, entry);
    }
    for (const key of ['requests', 'limits']) {
      for (const r of ['cpu', 'memory']) {
        if (dig(c, 'resources', key, r) === undefined) problems.push(`${where}: no ${key}.${r}`);
      }
    }
    if (dig(c, 'securityContext', 'readOnlyRootFilesystem') !== true) {
      problems.push(`${where}: readOnlyRootFilesystem is not true`);
    }
    if (dig(c, 'securityContext', 'allowPrivilegeEscalation') !== false) {
      problems.push(`${where}: allowPrivilegeEscalation is not false`);
    }
    if (!((dig(c, 'securityContext', 'capabilities', 'drop') as unknown[]) ?? []).includes('ALL')) {
      problems.push(`${where}: capabilities not dropped`);
    }
    if (!dig(c, 'readinessProbe')) problems.push(`${where}: no readinessProbe`);
  }
  for (const s of SERVICES) if (!byService.has(s)) problems.push(`no container runs ${s}`);

  const serviceFor = (pod: Json): Json | undefined =>
    services.find((s) =>
      matches(
        dig(s, 'spec', 'selector'),
        dig(
          deployments.find((d) => dig(d, 'spec', 'template', 'spec') === pod),
          'spec',
          'template',
          'metadata',
          'labels',
        ),
      ),
    );

  const billingLabels = (entry: { pod: Json }): unknown =>
    dig(
      deployments.find((d) => dig(d, 'spec', 'template', 'spec') === entry.pod),
      'spec',
      'template',
      'metadata',
      'labels',
    );
  for (const pdb of docs.filter((d) => d.kind === 'PodDisruptionBudget')) {
    const selector = dig(pdb, 'spec', 'selector', 'matchLabels');
    if (
      !deployments.some((d) => matches(selector, dig(d, 'spec', 'template', 'metadata', 'labels')))
    ) {
      problems.push(
        `PodDisruptionBudget ${String(dig(pdb, 'metadata', 'name'))}: selects no Deployment's Pods`,
      );
    }
  }

  // billing: listens on BILLING_HOST 0.0.0.0 and BILLING_PORT, behind a Service; TCP probe;
  // the gateway reaches every replica (a headless Service it balances over) and a rolling
  // update leaves billing the time to drain.
  const billing = byService.get('billing');
  const gateway = byService.get('gateway');
  const inventory = byService.get('inventory');
  if (billing) {
    const env = envOf(billing.c);
    const port = Number(env.BILLING_PORT);
    if (env.BILLING_HOST !== '0.0.0.0') problems.push('billing: BILLING_HOST must be 0.0.0.0');
    if (containerPort(billing.c, port) !== port) {
      problems.push(`billing: no containerPort ${env.BILLING_PORT}`);
    }
    const probePort = dig(billing.c, 'readinessProbe', 'tcpSocket', 'port');
    if (containerPort(billing.c, probePort) !== port) {
      problems.push('billing: readinessProbe is not a tcpSocket probe on BILLING_PORT');
    }
    if (!serviceFor(billing.pod)) problems.push('billing: no Service selects its Pod');
    const deployment = deployments.find((d) => dig(d, 'spec', 'template', 'spec') === billing.pod);
    const replicas = Number(dig(deployment, 'spec', 'replicas') ?? 1);
    const grace = Number(dig(billing.pod, 'terminationGracePeriodSeconds') ?? 30);
    if (!(grace * 1000 >= closeTimeoutOf(env) + EXIT_MARGIN_MS)) {
      problems.push(
        `billing: terminationGracePeriodSeconds ${grace} leaves less than ${EXIT_MARGIN_MS / 1000} s after the drain (BILLING_CLOSE_TIMEOUT_MS ${closeTimeoutOf(env)})`,
      );
    }
    if (gateway) {
      const genv = envOf(gateway.c);
      const target = services.find((s) => dig(s, 'metadata', 'name') === genv.BILLING_HOST);
      const selectsBilling =
        target !== undefined && matches(dig(target, 'spec', 'selector'), billingLabels(billing));
      if (!target) problems.push(`gateway: BILLING_HOST=${genv.BILLING_HOST} is not a Service`);
      else if (!selectsBilling) {
        problems.push(
          `gateway: BILLING_HOST=${genv.BILLING_HOST} is a Service that does not select the billing Pods`,
        );
      }
      if (target && selectsBilling) {
        const sp = ((dig(target, 'spec', 'ports') as Json[]) ?? []).find(
          (p) => p.port === Number(genv.BILLING_PORT),
        );
        if (!sp) {
          problems.push(
            `Service ${genv.BILLING_HOST}: no port ${genv.BILLING_PORT} (gateway BILLING_PORT)`,
          );
        } else if (containerPort(billing.c, sp.targetPort ?? sp.port) !== port) {
          problems.push(
            `Service ${genv.BILLING_HOST}: targetPort is not the billing container port`,
          );
        }
        const headless = dig(target, 'spec', 'clusterIP') === 'None';
        const client = billingClientOf(genv);
        // Several replicas: the gateway must see each Pod's address and balance over them.
        if (replicas > 1 && !headless) {
          problems.push(
            `gateway: billing has ${replicas} replicas, but BILLING_HOST=${genv.BILLING_HOST} is not a headless Service (one address: kube-proxy picks a Pod per connection)`,
          );
        }
        if (replicas > 1 && headless && client.balancing === 'first') {
          problems.push(
            `gateway: BILLING_BALANCING=first over the headless Service ${genv.BILLING_HOST} uses one of billing's ${replicas} replicas`,
          );
        }
        if (headless && dig(target, 'spec', 'publishNotReadyAddresses') === true) {
          problems.push(
            `Service ${genv.BILLING_HOST}: publishNotReadyAddresses lists Pods that are not ready (starting, or terminating)`,
          );
        }
      }
      problems.push(...workersReached(env, genv));
    }
  }
  if (gateway) {
    const env = envOf(gateway.c);
    const port = Number(env.GATEWAY_PORT);
    if (env.GATEWAY_HOST !== '0.0.0.0') problems.push('gateway: GATEWAY_HOST must be 0.0.0.0');
    if (containerPort(gateway.c, port) !== port) {
      problems.push(`gateway: no containerPort ${env.GATEWAY_PORT}`);
    }
    const probe = dig(gateway.c, 'readinessProbe', 'httpGet') as Json | undefined;
    if (
      !probe ||
      containerPort(gateway.c, probe.port) !== port ||
      !String(probe.path).startsWith('/')
    ) {
      problems.push('gateway: readinessProbe is not an HTTP GET on GATEWAY_PORT');
    }
    const svc = serviceFor(gateway.pod);
    if (!svc) problems.push('gateway: no Service selects its Pod');
    else {
      const sp = ((dig(svc, 'spec', 'ports') as Json[]) ?? [])[0];
      if (!sp || containerPort(gateway.c, sp.targetPort ?? sp.port) !== port) {
        problems.push('gateway Service: targetPort is not the gateway container port');
      }
    }
  }
  // inventory and the gateway: the same Pod, the same socket path, on a shared volume.
  if (gateway && inventory) {
    const socket = envOf(inventory.c).INVENTORY_SOCKET ?? '';
    if (gateway.pod !== inventory.pod) problems.push('inventory and gateway: not in one Pod');
    if (envOf(gateway.c).INVENTORY_SOCKET !== socket) {
      problems.push('gateway: INVENTORY_SOCKET differs from inventory');
    }
    if (!path.isAbsolute(socket)) problems.push('inventory: INVENTORY_SOCKET is not a path');
    const mountOf = (c: Container): string | undefined =>
      ((dig(c, 'volumeMounts') as Json[]) ?? []).find(
        (m) => socket.startsWith(`${String(m.mountPath)}/`) && m.readOnly !== true,
      )?.name as string | undefined;
    const im = mountOf(inventory.c);
    const gm = mountOf(gateway.c);
    if (!im || im !== gm) {
      problems.push('inventory and gateway: the socket directory is not one shared volume');
    }
    const volume = ((dig(inventory.pod, 'volumes') as Json[]) ?? []).find((v) => v.name === im);
    if (im && !dig(volume, 'emptyDir')) problems.push(`volume ${im}: not an emptyDir`);
    const command = dig(inventory.c, 'readinessProbe', 'exec', 'command') as string[] | undefined;
    if (JSON.stringify(command) !== JSON.stringify(['test', '-S', socket])) {
      problems.push(`inventory: readinessProbe is not \`test -S ${socket}\``);
    }
  }
  return problems;
}

// ------------------------------------------------------------------ Compose

/**
 * Lints a compose file with dclint: YAML syntax, the Compose specification's JSON schema
 * (dclint bundles compose-spec's compose.schema.json and checks with ajv), and its rules
 * (explicit image tags, ports bound to an interface, unique container names, ...).
 * `service-keys-order` is off: it counts a YAML merge key (`<<: *service`) as a service key.
 */
export function lintCompose(file: string): string[] {
  const linter = new DCLinter({
    rules: { 'service-keys-order': 0 },
    quiet: false,
    debug: false,
    exclude: [],
  });
  // dclint's .d.ts imports its siblings without extensions, which NodeNext cannot follow.
  const [result] = linter.lintFiles([file], false) as Array<{
    messages: Array<{ line: number; type: string; rule: string; message: string }>;
  }>;
  return (result?.messages ?? []).map(
    (m) => `${path.basename(file)}:${m.line} ${m.type} ${m.rule}: ${m.message}`,
  );
}

/** Reads a compose file as Compose does (YAML merge keys resolved). */
export function readCompose(text: string): Json {
  const doc = YAML.parseDocument(text, { merge: true });
  if (doc.errors.length > 0) throw new Error(`YAML: ${doc.errors[0]!.message}`);
  return doc.toJS() as Json;
}

function composeEnv(service: unknown): Record<string, string> {
  const env = dig(service, 'environment');
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((e: string) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    );
  }
  return Object.fromEntries(Object.entries((env as Json) ?? {}).map(([k, v]) => [k, String(v)]));
}

/** A Compose duration (`1m30s`, `20s`, `500ms`) in ms; NaN if it is not one. */
function durationMs(text: string): number {
  const units: Record<string, number> = { h: 3600000, m: 60000, s: 1000, ms: 1, us: 0.001 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) return NaN;
  return parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]!]!, 0);
}

/** What the schema cannot know: the compose file wires the services as the sample expects. */
export function checkComposeWiring(compose: Json, composeDir: string): string[] {
  const problems: string[] = [];
  const services = (compose.services as Json) ?? {};
  for (const name of SERVICES) {
    const s = services[name];
    if (!s) {
      problems.push(`no service ${name}`);
      continue;
    }
    const env = composeEnv(s);
    if (env.SERVICE !== name) problems.push(`${name}: SERVICE=${env.SERVICE}, not ${name}`);
    if (!Array.isArray(dig(s, 'healthcheck', 'test'))) problems.push(`${name}: no healthcheck`);
    const user = String(dig(s, 'user') ?? '');
    if (user === '' || /^(0|root)(:|$)/.test(user)) problems.push(`${name}: runs as root`);
    const context = path.resolve(composeDir, String(dig(s, 'build', 'context')));
    const dockerfile = path.join(context, String(dig(s, 'build', 'dockerfile')));
    if (!fs.existsSync(path.join(context, 'package.json')) || !fs.existsSync(dockerfile)) {
      problems.push(
        `${name}: build context/dockerfile do not lead to the package and its Dockerfile`,
      );
    }
  }
  const billing = services.billing;
  const gateway = services.gateway;
  const inventory = services.inventory;
  if (billing && gateway) {
    const b = composeEnv(billing);
    const g = composeEnv(gateway);
    if (b.BILLING_HOST !== '0.0.0.0') problems.push('billing: BILLING_HOST must be 0.0.0.0');
    if (g.BILLING_HOST !== 'billing')
      problems.push('gateway: BILLING_HOST is not the service billing');
    if (g.BILLING_PORT !== b.BILLING_PORT)
      problems.push('gateway: BILLING_PORT differs from billing');
    problems.push(...workersReached(b, g));
    const grace = durationMs(String(dig(billing, 'stop_grace_period') ?? '10s'));
    if (!(grace >= closeTimeoutOf(b) + EXIT_MARGIN_MS)) {
      problems.push(
        `billing: stop_grace_period leaves less than ${EXIT_MARGIN_MS / 1000} s after the drain (BILLING_CLOSE_TIMEOUT_MS ${closeTimeoutOf(b)})`,
      );
    }
    if (dig(billing, 'network_mode') !== undefined || dig(gateway, 'network_mode') !== undefined) {
      problems.push('billing and gateway must share the project network');
    }
    if (g.GATEWAY_HOST !== '0.0.0.0') problems.push('gateway: GATEWAY_HOST must be 0.0.0.0');
    const published = ((dig(gateway, 'ports') as string[]) ?? []).map(String);
    if (!published.some((p) => p.endsWith(`:${g.GATEWAY_PORT}`))) {
      problems.push(`gateway: GATEWAY_PORT ${g.GATEWAY_PORT} is not published`);
    }
    for (const dep of ['billing', 'inventory']) {
      if (dig(gateway, 'depends_on', dep, 'condition') !== 'service_healthy') {
        problems.push(`gateway: does not wait for ${dep} to be healthy`);
      }
    }
  }
  if (gateway && inventory) {
    const socket = composeEnv(inventory).INVENTORY_SOCKET ?? '';
    if (composeEnv(gateway).INVENTORY_SOCKET !== socket) {
      problems.push('gateway: INVENTORY_SOCKET differs from inventory');
    }
    const volumeFor = (s: unknown): string | undefined =>
      ((dig(s, 'volumes') as string[]) ?? [])
        .map((v) => String(v).split(':'))
        .find(([, target, mode]) => socket.startsWith(`${target}/`) && mode !== 'ro')?.[0];
    const iv = volumeFor(inventory);
    const gv = volumeFor(gateway);
    if (!iv || iv !== gv)
      problems.push('inventory and gateway: the socket directory is not one volume');
    else if (!(iv in ((compose.volumes as Json) ?? {}))) {
      problems.push(`volume ${iv}: not a named volume of the project`);
    }
    const check = dig(inventory, 'healthcheck', 'test') as string[] | undefined;
    if (JSON.stringify(check) !== JSON.stringify(['CMD', 'test', '-S', socket])) {
      problems.push(`inventory: healthcheck is not \`test -S ${socket}\``);
    }
  }
  if (inventory) {
    // Reached only through its socket file: no network, or internal networks only.
    const mode = dig(inventory, 'network_mode');
    const nets = dig(inventory, 'networks');
    const names = Array.isArray(nets) ? nets.map(String) : Object.keys((nets as Json) ?? {});
    const internal = names.every((n) => dig(compose, 'networks', n, 'internal') === true);
    if (!(mode === 'none' || (mode === undefined && names.length > 0 && internal))) {
      problems.push(
        'inventory: has a network with a route out (want network_mode none or internal networks)',
      );
    }
  }
  return problems;
}

// ------------------------------------------------------------------ Dockerfile

/**
 * Lints a Dockerfile: dockerfile-utils' validator (the one behind VS Code's Dockerfile
 * support: syntax, unknown instructions, bad flags, ...), then the structure the sample
 * needs, read with dockerfile-ast: two stages from node:20-bookworm-slim, the build stage
 * runs npm ci, npm run build and npm prune --omit=dev, the final stage runs as a numeric
 * non-root USER, copies dist, node_modules and package.json from the build stage, and has a
 * CMD; no ADD of a remote URL anywhere.
 */
export function lintDockerfile(text: string): string[] {
  const problems: string[] = [];
  for (const d of validateDockerfileSyntax(text)) {
    problems.push(`line ${d.range.start.line + 1}: ${d.message}`);
  }
  const dockerfile = DockerfileParser.parse(text);
  const froms = dockerfile.getFROMs();
  if (froms.length !== 2) problems.push(`${froms.length} FROM stages, expected 2 (build, runtime)`);
  for (const from of froms) {
    if (from.getImageName() !== 'node' || from.getImageTag() !== '20-bookworm-slim') {
      problems.push(`FROM ${from.getImage()}: expected node:20-bookworm-slim`);
    }
  }
  const stageNames = froms.map((f) => f.getBuildStage());
  if (stageNames[0] === null) problems.push('the build stage has no name (FROM ... AS build)');
  const instructions = dockerfile.getInstructions();
  const stageOf = (i: Instruction): number =>
    froms.filter((f) => f.getRange().start.line <= i.getRange().start.line).length - 1;
  const inStage = (n: number): Instruction[] => instructions.filter((i) => stageOf(i) === n);
  const build = inStage(0);
  const runtime = inStage(froms.length - 1);
  const runs = build
    .filter((i) => i.getKeyword() === 'RUN')
    .map((i) => i.getRawArgumentsContent() ?? '');
  for (const needed of ['npm ci', 'npm run build', 'npm prune --omit=dev']) {
    if (!runs.some((r) => r.includes(needed)))
      problems.push(`the build stage does not run ${needed}`);
  }
  for (const i of instructions) {
    if (i.getKeyword() !== 'ADD') continue;
    const args = i.getArguments().map((a) => a.getValue());
    if (args.some((a) => /^(https?|git|ssh):\/\/|^git@/.test(a))) {
      problems.push(`line ${i.getRange().start.line + 1}: ADD of a remote URL`);
    }
  }
  const users = runtime.filter((i) => i.getKeyword() === 'USER');
  const user = users.at(-1)?.getArguments()[0]?.getValue() ?? '';
  if (!user) problems.push('the final stage has no USER (it would run as root)');
  else if (/^(0|root)(:|$)/.test(user))
    problems.push(`the final stage runs as root (USER ${user})`);
  else if (!/^[1-9]\d*(:\d+)?$/.test(user)) {
    problems.push(`USER ${user}: not numeric (Kubernetes runAsNonRoot cannot check a name)`);
  }
  const copiedFromBuild = dockerfile
    .getCOPYs()
    .filter((c) => stageOf(c) === froms.length - 1)
    .filter((c) => c.getFromFlag()?.getValue() === stageNames[0])
    .map((c) => c.getArguments().at(-2)?.getValue() ?? '');
  for (const what of ['dist', 'node_modules', 'package.json']) {
    if (!copiedFromBuild.some((src) => src.endsWith(`/${what}`))) {
      problems.push(`the final stage does not copy ${what} from the build stage`);
    }
  }
  if (!runtime.some((i) => i.getKeyword() === 'CMD' || i.getKeyword() === 'ENTRYPOINT')) {
    problems.push('the final stage has no CMD');
  }
  return problems;
}

/** The packages the Dockerfile moves from devDependencies to dependencies before pruning. */
export function runtimePackagesOfDockerfile(text: string): string[] {
  const run = DockerfileParser.parse(text)
    .getInstructions()
    .find(
      (i) => i.getKeyword() === 'RUN' && (i.getRawArgumentsContent() ?? '').includes('npm prune'),
    );
  const list = /for \(const n of \[([^\]]*)\]\)/.exec(run?.getRawArgumentsContent() ?? '');
  return list ? [...list[1]!.matchAll(/'([^']+)'/g)].map((m) => m[1]!) : [];
}

/**
 * Bare module names imported by the .ts files under `dirs` (relative, node: and type-only
 * imports left out).
 */
export function bareImports(dirs: string[], except: string[] = []): Set<string> {
  const names = new Set<string>();
  const visit = (p: string): void => {
    for (const entry of fs.readdirSync(p, { withFileTypes: true })) {
      const full = path.join(p, entry.name);
      if (entry.isDirectory()) visit(full);
      else if (entry.name.endsWith('.ts') && !except.includes(full)) {
        const text = fs.readFileSync(full, 'utf8');
        for (const m of text.matchAll(/^(?:import|export)\s(?:[^'";]*?\sfrom\s)?'([^']+)'/gm)) {
          // `import type` / `export type`: erased by the compiler, nothing to load at run time.
          if (/^(?:import|export)\s+type\s/.test(m[0])) continue;
          const spec = m[1]!;
          if (spec.startsWith('.') || spec.startsWith('node:')) continue;
          const parts = spec.split('/');
          names.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!);
        }
      }
    }
  };
  for (const d of dirs) visit(d);
  return names;
}

// ------------------------------------------------------------------ systemd

/** A unit file: section → key → values (repeated keys add values). */
export type Unit = Map<string, Map<string, string[]>>;

export function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | null = null;
  for (const raw of text.replace(/\\\n/g, ' ').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = unit.get(header[1]!) ?? new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq < 1) throw new Error(`not a unit file line: ${line}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return unit;
}

function one(unit: Unit | undefined, section: string, key: string): string | undefined {
  return unit?.get(section)?.get(key)?.at(-1);
}

function environment(unit: Unit | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const value of unit?.get('Service')?.get('Environment') ?? []) {
    for (const assignment of value.split(/\s+/)) {
      const eq = assignment.indexOf('=');
      if (eq > 0) env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
    }
  }
  return env;
}

/** The hardening every .service must keep (and what it must not set: it breaks V8's JIT). */
const HARDENING: Record<string, string> = {
  NoNewPrivileges: 'yes',
  ProtectSystem: 'strict',
  ProtectHome: 'yes',
  PrivateTmp: 'yes',
};

/**
 * The units name the paths, ports, user and programs the services expect: each .service
 * runs node on dist/sample/<service>/main.js (a service of the sample), the sockets listen
 * where the services and the gateway are told to connect, the inventory socket is
 * owner-only and owned by the user the services run as.
 */
export function checkUnits(units: Record<string, Unit>, sysusers: string): string[] {
  const problems: string[] = [];
  const sysUsers = new Set(
    sysusers
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f[0] === 'u')
      .map((f) => f[1]),
  );
  for (const name of SERVICES) {
    const svc = units[`${name}.service`];
    if (!svc) {
      problems.push(`no ${name}.service`);
      continue;
    }
    const exec = one(svc, 'Service', 'ExecStart') ?? '';
    const expected = `/usr/bin/node /opt/qt-sample/dist/sample/${name}/main.js`;
    if (exec !== expected)
      problems.push(`${name}.service: ExecStart=${exec}, expected ${expected}`);
    if (!fs.existsSync(path.join(root, 'sample', name, 'main.ts'))) {
      problems.push(`${name}.service: sample/${name}/main.ts does not exist`);
    }
    const user = one(svc, 'Service', 'User');
    if (!user || user === 'root' || !sysUsers.has(user)) {
      problems.push(
        `${name}.service: User=${user} is not the system user of qt-sample.sysusers.conf`,
      );
    }
    if (one(svc, 'Service', 'Restart') !== 'on-failure') {
      problems.push(`${name}.service: Restart is not on-failure`);
    }
    for (const [key, value] of Object.entries(HARDENING)) {
      if (one(svc, 'Service', key) !== value)
        problems.push(`${name}.service: ${key} is not ${value}`);
    }
    const mdwe = one(svc, 'Service', 'MemoryDenyWriteExecute');
    if (mdwe && mdwe !== 'no') {
      problems.push(`${name}.service: MemoryDenyWriteExecute breaks Node (V8's JIT)`);
    }
  }
  const inv = units['inventory.service'];
  const bil = units['billing.service'];
  const gw = units['gateway.service'];
  const invSocket = units['inventory.socket'];
  const bilSocket = units['billing.socket'];
  if (!invSocket) problems.push('no inventory.socket');
  if (!bilSocket) problems.push('no billing.socket');
  // inventory: a local socket, owner-only, owned by the user both services run as.
  const invPath = one(invSocket, 'Socket', 'ListenStream');
  if (!invPath || !/^\/run\/[^/]+\/[^/]+\.sock$/.test(invPath)) {
    problems.push(`inventory.socket: ListenStream=${invPath} is not a socket under /run/<app>/`);
  }
  if (environment(inv).INVENTORY_SOCKET !== invPath) {
    problems.push('inventory.service: INVENTORY_SOCKET is not inventory.socket ListenStream');
  }
  if (environment(gw).INVENTORY_SOCKET !== invPath) {
    problems.push('gateway.service: INVENTORY_SOCKET is not inventory.socket ListenStream');
  }
  if (one(invSocket, 'Socket', 'SocketMode') !== '0600') {
    problems.push('inventory.socket: SocketMode is not 0600');
  }
  const owner = one(invSocket, 'Socket', 'SocketUser');
  if (owner !== one(inv, 'Service', 'User') || owner !== one(gw, 'Service', 'User')) {
    problems.push('inventory.socket: SocketUser is not the user of inventory and gateway');
  }
  // billing: TCP on the address the service and the gateway are told.
  const bilListen = one(bilSocket, 'Socket', 'ListenStream');
  const be = environment(bil);
  const ge = environment(gw);
  if (bilListen !== `${be.BILLING_HOST}:${be.BILLING_PORT}`) {
    problems.push(
      `billing.socket: ListenStream=${bilListen} is not billing.service's BILLING_HOST:BILLING_PORT`,
    );
  }
  if (bilListen !== `${ge.BILLING_HOST}:${ge.BILLING_PORT}`) {
    problems.push(
      `billing.socket: ListenStream=${bilListen} is not where gateway.service calls billing`,
    );
  }
  for (const [svc, unit] of [
    ['inventory', inv],
    ['billing', bil],
  ] as const) {
    const requires = unit?.get('Unit')?.get('Requires')?.join(' ').split(/\s+/) ?? [];
    if (!requires.includes(`${svc}.socket`))
      problems.push(`${svc}.service: does not require ${svc}.socket`);
    const socket = units[`${svc}.socket`];
    if (socket && !one(socket, 'Install', 'WantedBy')?.includes('sockets.target')) {
      problems.push(`${svc}.socket: not WantedBy=sockets.target`);
    }
  }
  const after = gw?.get('Unit')?.get('After')?.join(' ').split(/\s+/) ?? [];
  for (const s of ['inventory.socket', 'billing.socket']) {
    if (!after.includes(s)) problems.push(`gateway.service: not After=${s}`);
  }
  if (!one(gw, 'Install', 'WantedBy')) problems.push('gateway.service: no [Install] WantedBy');
  // systemd stops billing with SIGTERM, then SIGKILL after TimeoutStopSec: room to drain.
  const stopSec = one(bil, 'Service', 'TimeoutStopSec') ?? '90';
  const stopMs = /^\d+$/.test(stopSec) ? Number(stopSec) * 1000 : durationMs(stopSec);
  if (!(stopMs >= closeTimeoutOf(be) + EXIT_MARGIN_MS)) {
    problems.push(
      `billing.service: TimeoutStopSec=${stopSec} leaves less than ${EXIT_MARGIN_MS / 1000} s after the drain (BILLING_CLOSE_TIMEOUT_MS ${closeTimeoutOf(be)})`,
    );
  }
  return problems;
}

/** Runs a program and returns its exit code and output (stdout + stderr). */
export function run(
  command: string,
  args: string[],
  cwd: string,
): { code: number | null; output: string } {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 20000 });
  return {
    code: r.status,
    output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`,
  };
}
