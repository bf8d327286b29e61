/**
 * The headers of an HTTP proxy (QNetworkProxy.setRawHeader / setHeader) go out with the
 * CONNECT request, as Qt's QHttpSocketEngine sends them (checked with Qt 5.15 and 6.4
 * against a recording proxy: Proxy-Connection, Host, a User-Agent unless the proxy's headers
 * have one, then the proxy's headers in their order, a name Qt also writes sent twice). A
 * scripted proxy on loopback records the request head exactly.
 *
 * The port's documented differences in this request (docs/qt-differences.md, "Proxies"):
 * `Host` carries the port, credentials go with the first request; a header Node refuses to
 * write fails the attempt before anything is sent.
 */
import { jest } from '@jest/globals';

import {
  KnownHeaders,
  ProxyType,
  QNetworkProxy,
  QTcpSocket,
  SocketError,
  SocketState,
} from '../../../../lib/qtnetwork/index.js';
import { Resources } from '../../../helpers/resources.js';
import {
  readHttpRequest,
  startScriptedProxy,
  type HttpRequest,
} from '../../../helpers/scripted-proxy.js';
import { nextEmission } from '../../../helpers/signals.js';

jest.setTimeout(10000);

const res = new Resources();
afterEach(() => {
  res.dispose();
  QNetworkProxy.setApplicationProxy(new QNetworkProxy(ProxyType.NoProxy));
});

const TARGET = 'qt-proxy-headers.invalid';
const TARGET_PORT = 4242;

/** An HTTP proxy that records the first CONNECT's head and answers 200. */
async function recordingProxy(): Promise<{ port: number; request: Promise<HttpRequest> }> {
  let deliver: (r: HttpRequest) => void = () => undefined;
  const request = new Promise<HttpRequest>((resolve) => (deliver = resolve));
  const proxy = await startScriptedProxy(async (conn) => {
    const req = await readHttpRequest(conn);
    deliver(req);
    conn.write('HTTP/1.1 200 Connection established\r\n\r\n');
  });
  res.add(() => proxy.close());
  return { port: proxy.port, request };
}

/** Connects a socket through `proxy` (its own, or the application's with `viaApplication`). */
async function connectThrough(proxy: QNetworkProxy, viaApplication = false): Promise<QTcpSocket> {
  const socket = res.socket(new QTcpSocket());
  if (viaApplication) QNetworkProxy.setApplicationProxy(proxy);
  else socket.setProxy(proxy);
  const connected = nextEmission(socket.connected, 5000);
  socket.connectToHost(TARGET, TARGET_PORT);
  await connected;
  return socket;
}

const AUTHORITY = `${TARGET}:${TARGET_PORT}`;

describe('HTTP CONNECT carries the proxy headers', () => {
  it('without headers: Proxy-Connection, Host, User-Agent (no Connection: close of Node)', async () => {
    const rec = await recordingProxy();
    await connectThrough(new QNetworkProxy(ProxyType.HttpProxy, '127.0.0.1', rec.port));
    const req = await rec.request;
    expect(req.requestLine).toBe(`CONNECT ${AUTHORITY} HTTP/1.1`);
    expect(req.headerLines).toEqual([
      'Proxy-Connection: keep-alive',
      `Host: ${AUTHORITY}`,
      'User-Agent: Mozilla/5.0',
    ]);
  });

  it("raw and known headers follow Qt's own, in the order set, with their spelling and bytes", async () => {
    const rec = await recordingProxy();
    const proxy = new QNetworkProxy(ProxyType.HttpProxy, '127.0.0.1', rec.port);
    proxy.setRawHeader('X-Trace', 'abc');
    proxy.setRawHeader('x-empty', '');
    proxy.setRawHeader('X-Latin', Buffer.from([0x66, 0xfc, 0x72]));
    proxy.setHeader(KnownHeaders.ContentLengthHeader, 0);
    proxy.setRawHeader('X-Trace', 'def'); // replaces, and moves to the end, as in Qt
    await connectThrough(proxy);
    const req = await rec.request;
    expect(req.headerLines).toEqual([
      'Proxy-Connection: keep-alive',
      `Host: ${AUTHORITY}`,
      'User-Agent: Mozilla/5.0',
      'x-empty: ',
      'X-Latin: f\u00fcr',
      'Content-Length: 0',
      'X-Trace: def',
    ]);
  });

  it("a User-Agent among the proxy's headers (any case) replaces Mozilla/5.0, at its place", async () => {
    const rec = await recordingProxy();
    const proxy = new QNetworkProxy(ProxyType.HttpProxy, '127.0.0.1', rec.port);
    proxy.setRawHeader('X-First', '1');
    proxy.setRawHeader('user-agent', 'agent/2');
    await connectThrough(proxy);
    expect((await rec.request).headerLines).toEqual([
      'Proxy-Connection: keep-alive',
      `Host: ${AUTHORITY}`,
      'X-First: 1',
      'user-agent: agent/2',
    ]);
  });

  it('the application proxy keeps its headers (setApplicationProxy copies them)', async () => {
    const rec = await recordingProxy();
    const proxy = new QNetworkProxy(ProxyType.HttpProxy, '127.0.0.1', rec.port);
    proxy.setHeader(KnownHeaders.UserAgentHeader, 'app/1');
    await connectThrough(proxy, true);
    expect((await rec.request).headerLines).toEqual([
      'Proxy-Connection: keep-alive',
      `Host: ${AUTHORITY}`,
      'User-Agent: app/1',
    ]);
  });

  it('credentials come after the proxy headers', async () => {
    const rec = await recordingProxy();
    const proxy = new QNetworkProxy(ProxyType.HttpProxy, '127.0.0.1', rec.port, 'u', 'p');
    proxy.setRawHeader('X-A', '1');
    await connectThrough(proxy);
    expect((await rec.request).headerLines.slice(-2)).toEqual([
      'X-A: 1',
      `Proxy-Authorization: Basic ${Buffer.from('u:p').toString('base64')}`,
    ]);
  });

  it('a header with a line break fails the connect (ProxyProtocolError) and nothing reaches the proxy', async () => {
    let connections = 0;
    const proxy = await startScriptedProxy(() => {
      connections += 1;
    });
    res.add(() => proxy.close());
    const p = new QNetworkProxy(ProxyType.HttpProxy, '127.0.0.1', proxy.port);
    p.setRawHeader('X-Bad', 'a\r\nInjected: 1');
    const socket = res.socket(new QTcpSocket());
    socket.setProxy(p);
    const failed = nextEmission(socket.errorOccurred, 5000);
    socket.connectToHost(TARGET, TARGET_PORT);
    expect(await failed).toEqual([SocketError.ProxyProtocolError]);
    expect(socket.errorString()).toBe('Error communicating with HTTP proxy');
    expect(socket.state()).toBe(SocketState.UnconnectedState);
    expect(connections).toBe(0);
  });
});
