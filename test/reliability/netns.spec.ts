/**
 * A real network cut between two network namespaces joined by a veth pair (root and `ip`
 * needed; otherwise the suite is skipped with the reason printed). The server-app runs in
 * one namespace, listening on its veth address; a ClientQt process (fixtures/netns-client.ts,
 * keepAlive on, requestTimeout 1500 ms) in the other sends one request every 200 ms. Then
 * `ip link set <veth> down`:
 *
 * - the established connection stays established (TCP retransmits) and nothing tells the
 *   client: its requests fail with RequestTimeoutError, within requestTimeout; keepalive
 *   cannot help in a test's time (the idle time before the first probe is the kernel's,
 *   2 hours: Node's setKeepAlive(true) without a delay leaves it unchanged);
 * - when the link comes back, requests succeed again (the same connection recovers);
 * - if the server was restarted while the link was down, the old connection is reset when
 *   the link returns, and the client reconnects by itself;
 * - mid-stream, with socketOptions.keepAliveIdle 1000 ms on the client: a second client
 *   process receiving the server's endless 'ticker' stream detects the cut by keepalive
 *   (Node sets 10 probes 1 s apart on the socket, whatever the system's defaults, so the
 *   cut is known about keepAliveIdle + 10 s after the last byte), reports it (the stream
 *   fails with NetworkError "Connection timed out", then `disconnect`), retries while the
 *   link is down, and reconnects and streams again when it returns.
 *
 * Addresses are 10.200.<n>.1/30 and .2/30, inside the two namespaces only. The namespaces
 * (and with them the veth pair) are deleted in afterAll, whatever happened.
 *
 * Figures are printed as `[reliability] <test>: {...}` lines.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { nodeWithTsArgs, startChild, type ChildRun } from '../helpers/child-process.js';
import { serverArgs, sleep, waitEvent } from '../e2e/helpers.js';

import { RELIABILITY_FIXTURES, figures } from './reliability-helpers.js';

const tag = process.pid;
const NS_SERVER = `qtrel-a-${tag}`;
const NS_CLIENT = `qtrel-b-${tag}`;
// Interface names are at most 15 bytes.
const VETH_SERVER = `qra${tag}`.slice(0, 15);
const VETH_CLIENT = `qrb${tag}`.slice(0, 15);
const NET = `10.200.${tag % 256}`;
const SERVER_ADDRESS = `${NET}.1`;
const CLIENT_ADDRESS = `${NET}.2`;
const PORT = 4000;
const REQUEST_TIMEOUT = 1500;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Why this suite cannot run here, or null. Creates and deletes a probe namespace and veth. */
function unavailable(): string | null {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return 'not running as root (ip netns needs it)';
  try {
    ip('-V');
  } catch {
    return 'the `ip` command (iproute2) is not installed';
  }
  const ns = `qtrel-probe-${tag}`;
  const veth = `qrp${tag}`.slice(0, 15);
  try {
    ip('netns', 'add', ns);
    ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}x`.slice(0, 15));
    ip('link', 'set', veth, 'netns', ns);
    return null;
  } catch (err) {
    return `network namespaces or veth pairs are not usable here: ${(err as Error).message.trim()}`;
  } finally {
    for (const cmd of [
      ['link', 'del', veth],
      ['netns', 'del', ns],
    ]) {
      try {
        ip(...cmd);
      } catch {
        // not created, or already gone with its namespace
      }
    }
  }
}

const skipReason = unavailable();
if (skipReason) console.log(`[reliability] netns suite skipped: ${skipReason}`);
const describeNetns = skipReason ? describe.skip : describe;

interface ClientLine {
  event: string;
  at: number;
  seq?: number;
  ok?: boolean;
  error?: string;
  code?: string;
  ms?: number;
  keepAlive?: number;
  keepAliveIdle?: number;
  localPort?: number;
  message?: string;
  n?: number;
}

/** Follows the client process's lines into `lines` as they come. */
function follow(run: ChildRun, lines: ClientLine[]): Promise<void> {
  return (async () => {
    for (;;) {
      let line: string;
      try {
        line = await run.nextLine(120000);
      } catch {
        return;
      }
      try {
        lines.push(JSON.parse(line) as ClientLine);
      } catch {
        // not a JSON line
      }
    }
  })();
}

/** Waits until `find` matches a line after index `from`; returns it, or throws after `ms`. */
async function lineAfter(
  lines: ClientLine[],
  from: number,
  find: (l: ClientLine) => boolean,
  ms: number,
  what: string,
): Promise<ClientLine> {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = lines.slice(from).find(find);
    if (hit) return hit;
    if (Date.now() > deadline) {
      throw new Error(
        `${what}: not within ${ms} ms; last lines ${JSON.stringify(lines.slice(-5))}`,
      );
    }
    await sleep(50);
  }
}

const isResult = (l: ClientLine): boolean => l.event === 'result';
const isOk = (l: ClientLine): boolean => isResult(l) && l.ok === true;
const isFailure = (l: ClientLine): boolean => isResult(l) && l.ok === false;
const isClearFailure = (l: ClientLine): boolean =>
  isFailure(l) && (l.error === 'RequestTimeoutError' || l.error === 'QtConnectionError');

describeNetns('a network cut between two namespaces (veth link down, then up)', () => {
  let server: ChildRun | null = null;
  let client: ChildRun | null = null;
  const lines: ClientLine[] = [];
  let following: Promise<void> = Promise.resolve();

  const startServerInNamespace = async (): Promise<ChildRun> => {
    const args = serverArgs({
      transport: 'tcp',
      port: PORT,
      name: '',
      options: { host: SERVER_ADDRESS },
    });
    const run = startChild('ip', ['netns', 'exec', NS_SERVER, process.execPath, ...args]);
    const ready = await waitEvent(run, 'ready', 20000);
    // `ip netns exec` execs the command: the pid is node's own, so stop() reaches it.
    expect(ready.pid).toBe(run.proc.pid);
    return run;
  };

  /** A netns-client process in the client namespace, calling the server's address. */
  const startClientInNamespace = (...args: string[]): ChildRun =>
    startChild('ip', [
      'netns',
      'exec',
      NS_CLIENT,
      process.execPath,
      ...nodeWithTsArgs(
        path.join(RELIABILITY_FIXTURES, 'netns-client.ts'),
        ...['--host', SERVER_ADDRESS, '--port', String(PORT)],
        ...args,
      ),
    ]);

  beforeAll(async () => {
    ip('netns', 'add', NS_SERVER);
    ip('netns', 'add', NS_CLIENT);
    ip('link', 'add', VETH_SERVER, 'type', 'veth', 'peer', 'name', VETH_CLIENT);
    ip('link', 'set', VETH_SERVER, 'netns', NS_SERVER);
    ip('link', 'set', VETH_CLIENT, 'netns', NS_CLIENT);
    ip('-n', NS_SERVER, 'addr', 'add', `${SERVER_ADDRESS}/30`, 'dev', VETH_SERVER);
    ip('-n', NS_CLIENT, 'addr', 'add', `${CLIENT_ADDRESS}/30`, 'dev', VETH_CLIENT);
    for (const [ns, dev] of [
      [NS_SERVER, VETH_SERVER],
      [NS_CLIENT, VETH_CLIENT],
    ] as const) {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'link', 'set', dev, 'up');
    }
    server = await startServerInNamespace();
    client = startClientInNamespace(
      '--request-timeout',
      String(REQUEST_TIMEOUT),
      '--interval',
      '200',
    );
    following = follow(client, lines);
  }, 40000);

  afterAll(async () => {
    const problems: string[] = [];
    for (const run of [client, server]) {
      try {
        await run?.stop();
      } catch (err) {
        problems.push(String(err));
      }
    }
    await following;
    for (const ns of [NS_SERVER, NS_CLIENT]) {
      // Anything still running in a namespace was started by this suite: end it by pid.
      try {
        for (const pid of ip('netns', 'pids', ns).split(/\s+/).filter(Boolean)) {
          process.kill(Number(pid), 'SIGKILL');
        }
      } catch {
        // the namespace does not exist
      }
      try {
        ip('netns', 'del', ns);
      } catch {
        // never created
      }
    }
    // A veth left in the root namespace if setup stopped half-way.
    for (const dev of [VETH_SERVER, VETH_CLIENT]) {
      try {
        ip('link', 'del', dev);
      } catch {
        // gone with its namespace
      }
    }
    const left = ip('netns', 'list');
    if (left.includes(NS_SERVER) || left.includes(NS_CLIENT)) {
      problems.push(`namespaces left behind: ${left}`);
    }
    if (problems.length > 0) throw new Error(problems.join('; '));
  }, 30000);

  const linkDown = (): string => ip('-n', NS_CLIENT, 'link', 'set', VETH_CLIENT, 'down');
  const linkUp = (): string => ip('-n', NS_CLIENT, 'link', 'set', VETH_CLIENT, 'up');

  it(`link down under a steady request stream: requests fail (RequestTimeoutError) within requestTimeout (${REQUEST_TIMEOUT} ms), the connection is not reported lost; link up: requests succeed again; keepalive is on, with the kernel's 2-hour idle time, so it detects nothing in a test's time`, async () => {
    const connected = await lineAfter(lines, 0, (l) => l.event === 'connect', 20000, 'connect');
    const firstOk = lines.findIndex(isOk);
    await lineAfter(lines, Math.max(firstOk, 0) + 5, isOk, 10000, '5 successful requests');
    const socketsLine = ip('netns', 'exec', NS_CLIENT, 'ss', '-tno', 'state', 'established');
    const keepaliveTimer = /timer:\(keepalive,[^)]*\)/.exec(socketsLine)?.[0] ?? null;
    const keepaliveTime = ip(
      'netns',
      'exec',
      NS_CLIENT,
      'cat',
      '/proc/sys/net/ipv4/tcp_keepalive_time',
    ).trim();

    const cutIndex = lines.length;
    const cutAt = Date.now();
    linkDown();
    const firstFailure = await lineAfter(
      lines,
      cutIndex,
      isFailure,
      // A request in flight at the cut times out at most requestTimeout after the cut.
      REQUEST_TIMEOUT + 3000,
      'a failed request after the cut',
    );
    const detectedMs = firstFailure.at - cutAt;
    await sleep(4000);
    const upIndex = lines.length;
    const upAt = Date.now();
    linkUp();
    const recovered = await lineAfter(lines, upIndex, isOk, 30000, 'a successful request');
    const recoveredMs = recovered.at - upAt;
    const duringCut = lines.slice(cutIndex, upIndex).filter(isResult);
    const events = lines.slice(cutIndex).filter((l) => l.event !== 'result');
    const failureKinds: Record<string, number> = {};
    for (const l of lines.slice(cutIndex).filter(isFailure)) {
      const k = `${l.error}:${l.code}`;
      failureKinds[k] = (failureKinds[k] ?? 0) + 1;
    }
    figures('netns link down/up', {
      keepAliveOption: connected.keepAlive,
      kernelKeepaliveTimer: keepaliveTimer,
      tcpKeepaliveTimeSeconds: Number(keepaliveTime),
      requestTimeoutMs: REQUEST_TIMEOUT,
      firstFailureAfterCutMs: detectedMs,
      resultsWhileDown: duringCut.length,
      okWhileDown: duringCut.filter(isOk).length,
      failureKinds,
      clientEventsAfterCut: events.map((e) => e.event),
      firstSuccessAfterUpMs: recoveredMs,
    });
    expect(connected.keepAlive).toBe(1);
    expect(isClearFailure(firstFailure)).toBe(true);
    // Requests issued while the link is down fail, each with a clear error.
    expect(duringCut.length).toBeGreaterThan(0);
    expect(duringCut.filter(isFailure).every(isClearFailure)).toBe(true);
    // The last ones were issued well after the cut: none of them can have succeeded.
    expect(duringCut.slice(-2).every(isFailure)).toBe(true);
    expect(
      Object.keys(failureKinds).every((k) => /^(RequestTimeoutError|QtConnectionError):/.test(k)),
    ).toBe(true);
    // Nothing reported the connection lost: it stayed established through the cut.
    expect(events.filter((e) => e.event === 'disconnect')).toEqual([]);
    expect(recovered.ok).toBe(true);
  }, 60000);

  it('link down, server restarted meanwhile (kill -9, started again on the same address), link up: the old connection is reset when the link returns and the client reconnects by itself; requests succeed again', async () => {
    await lineAfter(lines, Math.max(lines.length - 1, 0), isOk, 20000, 'a successful request');
    const cutIndex = lines.length;
    const cutAt = Date.now();
    linkDown();
    await lineAfter(lines, cutIndex, isFailure, REQUEST_TIMEOUT + 5000, 'a failure after the cut');
    await server!.stop('SIGKILL');
    server = await startServerInNamespace();
    await sleep(1000);
    const upIndex = lines.length;
    const upAt = Date.now();
    linkUp();
    const reconnected = await lineAfter(
      lines,
      upIndex,
      (l) => l.event === 'connect',
      30000,
      'a reconnect after the link came back',
    );
    const recovered = await lineAfter(lines, upIndex, isOk, 30000, 'a successful request');
    const after = lines.slice(cutIndex);
    const failureKinds: Record<string, number> = {};
    for (const l of after.filter(isFailure)) {
      const k = `${l.error}:${l.code}`;
      failureKinds[k] = (failureKinds[k] ?? 0) + 1;
    }
    const events = after.filter((l) => l.event !== 'result');
    figures('netns link down + server restart', {
      downForMs: upAt - cutAt,
      failureKinds,
      clientEvents: events.map((e) => e.event),
      reconnectedAfterUpMs: reconnected.at - upAt,
      firstSuccessAfterUpMs: recovered.at - upAt,
    });
    // The loss is noticed only once the link is back (the new server resets the old connection).
    const lost = events.find((e) => e.event === 'disconnect');
    expect(lost).toBeDefined();
    expect(lost!.at).toBeGreaterThanOrEqual(upAt);
    expect(reconnected.at).toBeGreaterThanOrEqual(lost!.at);
    expect(after.filter(isFailure).every(isClearFailure)).toBe(true);
    expect(recovered.ok).toBe(true);
  }, 60000);

  it('mid-stream, socketOptions.keepAliveIdle 1000 ms (Node then probes 10 times, 1 s apart): a client receiving an endless stream detects the cut by keepalive (the stream fails with NetworkError "Connection timed out", then disconnect), retries while the link is down, and reconnects and streams again when it returns', async () => {
    const streamLines: ClientLine[] = [];
    const streamClient = startClientInNamespace('--stream', '--keepalive-idle', '1000');
    const followingStream = follow(streamClient, streamLines);
    try {
      const connected = await lineAfter(
        streamLines,
        0,
        (l) => l.event === 'connect',
        20000,
        'the stream client to connect',
      );
      await lineAfter(streamLines, 0, (l) => l.event === 'tick' && l.n! >= 50, 10000, '50 ticks');
      const ss = ip('netns', 'exec', NS_CLIENT, 'ss', '-tnoH', 'state', 'established');
      const timer =
        ss
          .split('\n')
          .find((l) => l.includes(`:${connected.localPort} `))
          ?.match(/timer:\(keepalive,[^)]*\)/)?.[0] ?? null;
      const cutIndex = streamLines.length;
      const cutAt = Date.now();
      linkDown();
      const failed = await lineAfter(
        streamLines,
        cutIndex,
        (l) => l.event === 'stream-error',
        20000,
        'the stream to fail after the cut',
      );
      const lost = await lineAfter(
        streamLines,
        cutIndex,
        (l) => l.event === 'disconnect',
        5000,
        'the connection reported lost',
      );
      const ticksBeforeDetection = streamLines
        .slice(cutIndex)
        .filter((l) => l.event === 'tick' && l.at > cutAt + 500).length;
      await sleep(2000);
      const upIndex = streamLines.length;
      const upAt = Date.now();
      linkUp();
      const reconnected = await lineAfter(
        streamLines,
        upIndex,
        (l) => l.event === 'connect',
        30000,
        'a reconnect after the link came back',
      );
      const lastTick = streamLines.filter((l) => l.event === 'tick').at(-1)?.n ?? 0;
      const streamingAgain = await lineAfter(
        streamLines,
        upIndex,
        (l) => l.event === 'tick' && l.n! > lastTick,
        10000,
        'ticks after the reconnect',
      );
      const retriesWhileDown = streamLines
        .slice(cutIndex, upIndex)
        .filter((l) => l.event === 'reconnecting').length;
      figures('netns keepalive mid-stream', {
        keepAliveIdleMs: connected.keepAliveIdle,
        kernelKeepaliveTimerBeforeCut: timer,
        namespaceKeepaliveSysctls: ['intvl', 'probes'].map((k) =>
          ip('netns', 'exec', NS_CLIENT, 'cat', `/proc/sys/net/ipv4/tcp_keepalive_${k}`).trim(),
        ),
        detectedAfterCutMs: failed.at - cutAt,
        streamError: `${failed.error}:${failed.code}: ${failed.message}`,
        disconnectAfterCutMs: lost.at - cutAt,
        ticksAfterCut: ticksBeforeDetection,
        reconnectAttemptsWhileDown: retriesWhileDown,
        reconnectedAfterUpMs: reconnected.at - upAt,
        ticksAgainAfterUpMs: streamingAgain.at - upAt,
      });
      expect(connected.keepAlive).toBe(1);
      expect(connected.keepAliveIdle).toBe(1000);
      expect(timer).not.toBeNull();
      expect(failed.code).toBe('NetworkError');
      expect(failed.message).toContain('Connection timed out');
      // Idle 1 s, then 10 probes 1 s apart (about 11 s): long before the 2-hour default
      // idle time, or a retransmission timeout, could have told.
      expect(failed.at - cutAt).toBeLessThan(25000);
      expect(ticksBeforeDetection).toBe(0);
      expect(retriesWhileDown).toBeGreaterThan(0);
      expect(reconnected.at).toBeGreaterThanOrEqual(upAt);
    } finally {
      await streamClient.stop();
      await followingStream;
    }
  }, 90000);
});
