/**
 * QAbstractSocket, differential: each scenario of fidelity_socket.py runs on real Qt 5.15
 * (PyQt5, in a child process) and its twin in port-fidelity-socket.ts on the port, and the
 * two event lists must be equal (see differential.spec.ts for the method). What they prove:
 * bind's port-first overload (`bind(45454)` receives on 45454; a bound TCP socket connects
 * from its port), the SpecialAddress form, Qt's bind modes between two UDP sockets and two
 * TCP sockets (and overlapping addresses), a second bind, a bound socket keeping its port
 * through a refused connect, the protected setSocketState/setSocketError (no signals),
 * pauseMode and protocolTag.
 *
 * Each side gets its own ports (setup runs once per side): a port free for TCP and UDP,
 * found by a probe that binds without SO_REUSEADDR as Qt's sockets do (so a port held in
 * TIME_WAIT is never handed out), and a port nobody listens on.
 *
 * Skips (with a printed reason) when /usr/bin/python3 (or $QT_DIFF_PYTHON) cannot import
 * PyQt5.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { jest } from '@jest/globals';

import { closedPort, pyqt5MissingReason } from './peers.js';
import { SOCKET_SCENARIOS, type SocketParams } from './port-fidelity-socket.js';
import { makeRunner, type Case } from './runner.js';

jest.setTimeout(60000);

const PYTHON = process.env.QT_DIFF_PYTHON ?? '/usr/bin/python3';
const here = path.dirname(fileURLToPath(import.meta.url));
const DRIVER = path.join(here, 'fidelity_socket.py');
const PREFIX = 'fidelity-socket:';

const pyqtMissing = pyqt5MissingReason(PYTHON);
if (pyqtMissing) console.log(`${PREFIX} every scenario skipped: ${pyqtMissing}`);

const { check, listQt } = makeRunner({ python: PYTHON, driver: DRIVER, table: SOCKET_SCENARIOS });

/**
 * A port that a TCP and a UDP socket can each bind on every address (the IPv6 any-address,
 * dual-stack), picked by the kernel for sockets without SO_REUSEADDR.
 */
const PROBE = `
import socket
while True:
    t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    t.bind(('::', 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    try:
        u.bind(('::', port))
    except OSError:
        t.close()
        u.close()
        continue
    t.close()
    u.close()
    print(port)
    break
`;

function freePort(): number {
  return Number(execFileSync(PYTHON, ['-c', PROBE], { encoding: 'utf8', timeout: 15000 }).trim());
}

async function socketParams(): Promise<{ params: SocketParams }> {
  return { params: { bindPort: freePort(), refusedPort: await closedPort() } };
}

const CASES: Case[] = [
  {
    scenario: 'socket.udp.bindPort',
    title: 'QUdpSocket.bind(port) binds Any on that port: a datagram sent there arrives',
    setup: socketParams,
  },
  {
    scenario: 'socket.udp.bindSpecialAddress',
    title: 'QUdpSocket.bind(SpecialAddress.AnyIPv4, port, ShareAddress) binds 0.0.0.0:port',
    setup: socketParams,
  },
  {
    scenario: 'socket.udp.bindModes',
    title:
      'two QUdpSockets on one port: both bound only when both have ShareAddress or ReuseAddressHint, else AddressInUseError',
    setup: socketParams,
  },
  {
    scenario: 'socket.udp.bindTwice',
    title: "a bound QUdpSocket's second bind: Qt's warning, UnknownSocketError, still bound",
    setup: socketParams,
  },
  {
    scenario: 'socket.bindNullAddress',
    title:
      'bind(QHostAddress()) and bind(SpecialAddress.Null, port) bind the IPv4 any-address, for TCP and UDP',
    setup: socketParams,
  },
  {
    scenario: 'socket.tcp.bindPortConnect',
    title: 'QTcpSocket.bind(port) then connectToHost: the peer sees the bound port as the source',
    setup: socketParams,
  },
  {
    scenario: 'socket.tcp.bindModes',
    title:
      'two QTcpSockets bound to one port: both only when both have ShareAddress or ReuseAddressHint, else AddressInUseError',
    setup: socketParams,
  },
  {
    scenario: 'socket.tcp.bindAddresses',
    title: 'two QTcpSockets on one port: distinct addresses coexist, overlapping ones conflict',
    setup: socketParams,
  },
  {
    scenario: 'socket.tcp.bindTwice',
    title: "a bound QTcpSocket's second bind: Qt's warning, UnknownSocketError, still bound",
    setup: socketParams,
  },
  {
    scenario: 'socket.tcp.bindKeptAfterFailedConnect',
    title: 'a bound QTcpSocket keeps its port through a refused connect and connects from it next',
    setup: socketParams,
  },
  {
    scenario: 'socket.subclass.setSocketStateError',
    title:
      "a subclass's setSocketState and setSocketError change state() and error() only: no signal, errorString kept",
    setup: socketParams,
  },
  {
    scenario: 'socket.pauseMode',
    title:
      'pauseMode: PauseNever by default, set and cleared; resume() on an unconnected socket does nothing',
    setup: socketParams,
  },
  {
    scenario: 'socket.protocolTag',
    title: 'protocolTag: "" by default, stored per socket',
    setup: socketParams,
  },
];

const describeQt = pyqtMissing ? describe.skip : describe;

describeQt('QAbstractSocket: Qt 5.15 (PyQt5) and the port, scenario by scenario', () => {
  it('the Qt driver and the port know the same scenarios', async () => {
    const listed = await listQt();
    expect(Object.keys(SOCKET_SCENARIOS).sort()).toEqual(listed);
    expect(CASES.map((c) => c.scenario).sort()).toEqual(listed);
  });

  describe.each(CASES.map((c) => [c.scenario, c] as const))('%s', (_name, c) => {
    it(c.title, () => check(c));
  });
});

if (pyqtMissing) {
  it('socket fidelity scenarios are skipped: real Qt is not available', () => {
    console.log(`${PREFIX} ${pyqtMissing}`);
    expect(pyqtMissing).not.toBeNull();
  });
}
