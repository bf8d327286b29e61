#!/usr/bin/env node
// Writes the copy of a Kubernetes manifest that scripts/deploy/container-kube.sh plays with
// `podman kube play` (podman 4.3, Debian 12). The manifests in sample/deploy/k8s stay as a
// cluster needs them; this copy works around what podman 4.3 does differently from a
// kubelet, and prints one `# run copy: ...` line per change so the log says what differs:
//
// - Secret volumes: podman 4.3 panics on a secret volume without `optional`, and with it
//   writes the Secret's data still base64-encoded, every key, mode 0644 (items and
//   defaultMode ignored). The copy mounts a hostPath directory instead, filled here the
//   way a kubelet fills the secret volume: only the listed items, mode defaultMode, group
//   fsGroup (podman 4.3 ignores fsGroup too).
// - containerPort: podman 4.3 publishes every containerPort on the host (hostPort =
//   containerPort, all interfaces), so a second replica of a Deployment fails with
//   "address already in use". The copy drops `ports` of Deployments with more than one
//   replica; the Pods stay reachable at their own IPs, as in a cluster.
// - Services are not emulated by podman: --host-alias NAME=IP,IP,... adds hostAliases so
//   that NAME resolves in the Pods to those addresses, as a headless Service's DNS name
//   resolves to the ready Pods' addresses.
//
// Usage: node kube-run-copy.mjs IN.yaml OUT.yaml --secret-dir DIR --volume-dir DIR
//          [--host-alias NAME=IP,IP,...]
//   --secret-dir: a directory with one file per key of every Secret the manifest mounts
//   --volume-dir: where the hostPath directories are made (one per Deployment and volume)
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const [input, output] = args;
const secretDir = option('--secret-dir');
const volumeDir = option('--volume-dir');
const hostAlias = option('--host-alias');
if (!input || !output || !secretDir || !volumeDir) {
  console.error(
    'usage: kube-run-copy.mjs IN.yaml OUT.yaml --secret-dir DIR --volume-dir DIR [--host-alias NAME=IP,...]',
  );
  process.exit(2);
}

const changed = (what) => console.log(`# run copy: ${path.basename(input)}: ${what}`);
// YAML 1.1 as kubectl and podman read it: `defaultMode: 0440` is octal there.
const docs = YAML.parseAllDocuments(fs.readFileSync(input, 'utf8'), { version: '1.1' });
for (const doc of docs) {
  if (doc.errors.length > 0) throw new Error(`${input}: ${doc.errors[0].message}`);
}

for (const doc of docs) {
  const d = doc.toJS();
  if (d?.kind !== 'Deployment') continue;
  const name = d.metadata.name;
  const pod = d.spec.template.spec;
  const fsGroup = pod.securityContext?.fsGroup;

  for (const [i, volume] of (pod.volumes ?? []).entries()) {
    const secret = volume.secret;
    if (!secret) continue;
    const dir = path.join(volumeDir, `${name}-${volume.name}`);
    fs.mkdirSync(dir, { recursive: true });
    const mode = secret.defaultMode ?? 0o644;
    const items = secret.items ?? fs.readdirSync(secretDir).map((key) => ({ key, path: key }));
    for (const item of items) {
      const file = path.join(dir, item.path);
      fs.copyFileSync(path.join(secretDir, item.key), file);
      fs.chmodSync(file, item.mode ?? mode);
      if (fsGroup !== undefined) fs.chownSync(file, 0, fsGroup);
    }
    fs.chmodSync(dir, 0o755);
    doc.setIn(['spec', 'template', 'spec', 'volumes', i], {
      name: volume.name,
      hostPath: { path: dir, type: 'Directory' },
    });
    changed(
      `Deployment ${name}: volume ${volume.name} (Secret ${secret.secretName}) -> hostPath ${dir} ` +
        `(${items.map((it) => it.path).join(', ')}; mode 0${mode.toString(8)}` +
        `${fsGroup !== undefined ? `, group ${fsGroup}` : ''})`,
    );
  }

  if ((d.spec.replicas ?? 1) > 1) {
    for (const [i, container] of pod.containers.entries()) {
      if (!container.ports) continue;
      doc.deleteIn(['spec', 'template', 'spec', 'containers', i, 'ports']);
      changed(
        `Deployment ${name}: container ${container.name}: ports dropped (${d.spec.replicas} replicas; podman 4.3 would publish containerPort ${container.ports.map((p) => p.containerPort).join(', ')} on the host for each)`,
      );
    }
  }

  if (hostAlias) {
    const [host, list] = hostAlias.split('=');
    const ips = (list ?? '').split(',').filter(Boolean);
    const usesHost = pod.containers.some((c) => (c.env ?? []).some((e) => e.value === host));
    if (usesHost && ips.length > 0) {
      doc.setIn(
        ['spec', 'template', 'spec', 'hostAliases'],
        ips.map((ip) => ({ ip, hostnames: [host] })),
      );
      changed(
        `Deployment ${name}: hostAliases ${host} -> ${ips.join(', ')} (no Services in podman)`,
      );
    }
  }
}

const texts = docs.map((doc) => doc.toString());
fs.writeFileSync(
  output,
  texts.map((s, i) => (i === 0 || s.startsWith('---') ? s : `---\n${s}`)).join(''),
);
