/**
 * QAbstractSocket: tst_QAbstractSocket::getSetCheck, the enums (names and Qt's values, as
 * API.md lists them), socketErrorName, and socket options. Option values were recorded
 * from real Qt 5.15 (PyQt5) on this machine.
 */
import { execFileSync } from 'node:child_process';

import {
  NetworkLayerProtocol,
  OpenModeFlag,
  PauseMode,
  QAbstractSocket,
  QHostAddress,
  QIODevice,
  QTcpSocket,
  QtMsgType,
  SocketError,
  SocketOption,
  SocketState,
  SocketType,
  SpecialAddress,
  socketErrorName,
} from '../../../lib/qtnetwork/index.js';
import { Scope, captureQtMessages } from '../../helpers/qt-scope.js';
import { connectedPair } from '../../helpers/tcp-pair.js';

/** tst_QAbstractSocket's MyAbstractSocket: exposes the protected setters. */
class MyAbstractSocket extends QTcpSocket {
  override setSocketError(error: SocketError): void {
    super.setSocketError(error);
  }
  override setSocketState(state: SocketState): void {
    super.setSocketState(state);
  }
}

/** The enumerators of a TypeScript numeric enum, as name -> value. */
function members(e: Record<string, string | number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(e)) if (typeof v === 'number') out[k] = v;
  return out;
}

let scope: Scope;
let qt: ReturnType<typeof captureQtMessages>;

beforeEach(() => {
  scope = new Scope();
  qt = captureQtMessages();
});

afterEach(() => {
  scope.dispose();
  qt.restore();
});

describe('QAbstractSocket', () => {
  describe('getSetCheck', () => {
    it('readBufferSize / setReadBufferSize: 0, small, large', () => {
      const obj1 = scope.socket(new MyAbstractSocket());
      expect(obj1.readBufferSize()).toBe(0); // default: unbounded
      obj1.setReadBufferSize(0);
      expect(obj1.readBufferSize()).toBe(0);
      obj1.setReadBufferSize(1);
      expect(obj1.readBufferSize()).toBe(1);
      obj1.setReadBufferSize(65536);
      expect(obj1.readBufferSize()).toBe(65536);
      obj1.setReadBufferSize(2 ** 40);
      expect(obj1.readBufferSize()).toBe(2 ** 40);
      obj1.setReadBufferSize(Number.MAX_SAFE_INTEGER);
      expect(obj1.readBufferSize()).toBe(Number.MAX_SAFE_INTEGER);
      obj1.setReadBufferSize(0);
      expect(obj1.readBufferSize()).toBe(0);
    });

    it.each([-1, -(2 ** 53), 1.5, Number.NaN, Infinity])(
      'setReadBufferSize(%d) throws RangeError and keeps the old value',
      (bad) => {
        const obj1 = scope.socket(new MyAbstractSocket());
        obj1.setReadBufferSize(4096);
        expect(() => obj1.setReadBufferSize(bad)).toThrow(RangeError);
        expect(obj1.readBufferSize()).toBe(4096);
      },
    );

    it('error() / setSocketError', () => {
      const obj1 = scope.socket(new MyAbstractSocket());
      expect(obj1.error()).toBe(SocketError.UnknownSocketError);
      obj1.setSocketError(SocketError.ConnectionRefusedError);
      expect(obj1.error()).toBe(SocketError.ConnectionRefusedError);
      obj1.setSocketError(SocketError.RemoteHostClosedError);
      expect(obj1.error()).toBe(SocketError.RemoteHostClosedError);
      obj1.setSocketError(SocketError.HostNotFoundError);
      expect(obj1.error()).toBe(SocketError.HostNotFoundError);
      obj1.setSocketError(SocketError.SocketAccessError);
      expect(obj1.error()).toBe(SocketError.SocketAccessError);
      obj1.setSocketError(SocketError.SocketResourceError);
      expect(obj1.error()).toBe(SocketError.SocketResourceError);
      obj1.setSocketError(SocketError.SocketTimeoutError);
      expect(obj1.error()).toBe(SocketError.SocketTimeoutError);
      obj1.setSocketError(SocketError.DatagramTooLargeError);
      expect(obj1.error()).toBe(SocketError.DatagramTooLargeError);
      obj1.setSocketError(SocketError.NetworkError);
      expect(obj1.error()).toBe(SocketError.NetworkError);
      obj1.setSocketError(SocketError.AddressInUseError);
      expect(obj1.error()).toBe(SocketError.AddressInUseError);
      obj1.setSocketError(SocketError.SocketAddressNotAvailableError);
      expect(obj1.error()).toBe(SocketError.SocketAddressNotAvailableError);
      obj1.setSocketError(SocketError.UnsupportedSocketOperationError);
      expect(obj1.error()).toBe(SocketError.UnsupportedSocketOperationError);
      obj1.setSocketError(SocketError.UnknownSocketError);
      expect(obj1.error()).toBe(SocketError.UnknownSocketError);
    });

    it('state() / setSocketState, which emits nothing (as Qt 5.15 and 6.4)', () => {
      const obj1 = scope.socket(new MyAbstractSocket());
      expect(obj1.state()).toBe(SocketState.UnconnectedState);
      const seen: SocketState[] = [];
      obj1.stateChanged.connect((s) => seen.push(s));
      const all = [
        SocketState.UnconnectedState,
        SocketState.HostLookupState,
        SocketState.ConnectingState,
        SocketState.ConnectedState,
        SocketState.BoundState,
        SocketState.ListeningState,
        SocketState.ClosingState,
      ];
      for (const s of all) {
        obj1.setSocketState(s);
        expect(obj1.state()).toBe(s);
      }
      expect(seen).toEqual([]);
      obj1.setSocketState(SocketState.UnconnectedState);
    });

    it('setSocketError emits nothing and keeps errorString() (as Qt 5.15 and 6.4)', () => {
      const obj1 = scope.socket(new MyAbstractSocket());
      const seen: SocketError[] = [];
      obj1.errorOccurred.connect((e) => seen.push(e));
      obj1.setSocketError(SocketError.ConnectionRefusedError);
      expect(obj1.error()).toBe(SocketError.ConnectionRefusedError);
      expect(obj1.errorString()).toBe('Unknown error');
      expect(seen).toEqual([]);
    });

    it('pauseMode / setPauseMode: PauseNever by default, PauseMode flags stored', () => {
      const obj1 = scope.socket(new MyAbstractSocket());
      expect(obj1.pauseMode()).toBe(PauseMode.PauseNever);
      obj1.setPauseMode(QAbstractSocket.PauseMode.PauseOnSslErrors);
      expect(obj1.pauseMode()).toBe(PauseMode.PauseOnSslErrors);
      // A plain socket never pauses: resume() changes nothing.
      obj1.resume();
      expect(obj1.state()).toBe(SocketState.UnconnectedState);
      obj1.setPauseMode(PauseMode.PauseNever);
      expect(obj1.pauseMode()).toBe(PauseMode.PauseNever);
    });

    it('protocolTag / setProtocolTag: "" by default, stored per socket', () => {
      const obj1 = scope.socket(new MyAbstractSocket());
      const other = scope.socket(new MyAbstractSocket());
      expect(obj1.protocolTag()).toBe('');
      obj1.setProtocolTag('mqtt');
      expect(obj1.protocolTag()).toBe('mqtt');
      expect(other.protocolTag()).toBe('');
    });

    it('resume() on a connected plain socket leaves reading on (Qt 6; Qt 5.15 stops it)', async () => {
      const { client, peer } = await connectedPair(scope);
      client.resume();
      peer.write('hello');
      expect(await client.waitForReadyRead(5000)).toBe(true);
      expect(client.readAll().toString()).toBe('hello');
    });

    it('a new QTcpSocket: TcpSocket, unconnected, invalid, null addresses, not open', () => {
      const s = scope.socket();
      expect(s).toBeInstanceOf(QAbstractSocket);
      expect(s).toBeInstanceOf(QIODevice);
      expect(s.socketType()).toBe(SocketType.TcpSocket);
      expect(s.state()).toBe(SocketState.UnconnectedState);
      expect(s.error()).toBe(SocketError.UnknownSocketError);
      expect(s.errorString()).toBe('Unknown error');
      expect(s.isValid()).toBe(false);
      expect(s.socketDescriptor()).toBe(-1);
      expect(s.localAddress().isNull()).toBe(true);
      expect(s.localPort()).toBe(0);
      expect(s.peerAddress().isNull()).toBe(true);
      expect(s.peerPort()).toBe(0);
      expect(s.peerName()).toBe('');
      expect(s.openMode()).toBe(OpenModeFlag.NotOpen);
      expect(s.bytesToWrite()).toBe(0);
      expect(s.bytesAvailable()).toBe(0);
    });
  });

  describe('enums: Qt names and values (API.md)', () => {
    it('SocketState', () => {
      expect(members(SocketState)).toEqual({
        UnconnectedState: 0,
        HostLookupState: 1,
        ConnectingState: 2,
        ConnectedState: 3,
        BoundState: 4,
        ListeningState: 5,
        ClosingState: 6,
      });
    });

    it('SocketError', () => {
      expect(members(SocketError)).toEqual({
        ConnectionRefusedError: 0,
        RemoteHostClosedError: 1,
        HostNotFoundError: 2,
        SocketAccessError: 3,
        SocketResourceError: 4,
        SocketTimeoutError: 5,
        DatagramTooLargeError: 6,
        NetworkError: 7,
        AddressInUseError: 8,
        SocketAddressNotAvailableError: 9,
        UnsupportedSocketOperationError: 10,
        UnfinishedSocketOperationError: 11,
        ProxyAuthenticationRequiredError: 12,
        SslHandshakeFailedError: 13,
        ProxyConnectionRefusedError: 14,
        ProxyConnectionClosedError: 15,
        ProxyConnectionTimeoutError: 16,
        ProxyNotFoundError: 17,
        ProxyProtocolError: 18,
        OperationError: 19,
        SslInternalError: 20,
        SslInvalidUserDataError: 21,
        TemporaryError: 22,
        UnknownSocketError: -1,
      });
    });

    it('SocketType', () => {
      expect(members(SocketType)).toEqual({
        TcpSocket: 0,
        UdpSocket: 1,
        SctpSocket: 2,
        UnknownSocketType: -1,
      });
    });

    it('NetworkLayerProtocol', () => {
      expect(members(NetworkLayerProtocol)).toEqual({
        IPv4Protocol: 0,
        IPv6Protocol: 1,
        AnyIPProtocol: 2,
        UnknownNetworkLayerProtocol: -1,
      });
    });

    it('SocketOption', () => {
      expect(members(SocketOption)).toEqual({
        LowDelayOption: 0,
        KeepAliveOption: 1,
        MulticastTtlOption: 2,
        MulticastLoopbackOption: 3,
        TypeOfServiceOption: 4,
        SendBufferSizeSocketOption: 5,
        ReceiveBufferSizeSocketOption: 6,
        PathMtuSocketOption: 7,
      });
    });

    it('PauseMode, also as QAbstractSocket.PauseMode', () => {
      expect(members(PauseMode)).toEqual({ PauseNever: 0, PauseOnSslErrors: 1 });
      expect(QAbstractSocket.PauseMode).toBe(PauseMode);
    });

    it('OpenModeFlag', () => {
      expect(members(OpenModeFlag)).toEqual({
        NotOpen: 0,
        ReadOnly: 1,
        WriteOnly: 2,
        ReadWrite: 3,
        Append: 4,
        Truncate: 8,
        Text: 16,
        Unbuffered: 32,
        NewOnly: 64,
        ExistingOnly: 128,
      });
    });

    it('SpecialAddress', () => {
      expect(members(SpecialAddress)).toEqual({
        Null: 0,
        Broadcast: 1,
        LocalHost: 2,
        LocalHostIPv6: 3,
        Any: 4,
        AnyIPv6: 5,
        AnyIPv4: 6,
      });
    });

    it('value -> name lookups give the enumerator names', () => {
      expect(SocketError[0]).toBe('ConnectionRefusedError');
      expect(SocketError[-1]).toBe('UnknownSocketError');
      expect(SocketState[6]).toBe('ClosingState');
      expect(SocketOption[7]).toBe('PathMtuSocketOption');
      expect(NetworkLayerProtocol[2]).toBe('AnyIPProtocol');
      expect(SocketType[-1]).toBe('UnknownSocketType');
      expect(SpecialAddress[6]).toBe('AnyIPv4');
      expect(OpenModeFlag[32]).toBe('Unbuffered');
    });

    it('each enum is reachable from its class, and from QTcpSocket as in Qt', () => {
      expect(QAbstractSocket.SocketError).toBe(SocketError);
      expect(QAbstractSocket.SocketState).toBe(SocketState);
      expect(QAbstractSocket.SocketOption).toBe(SocketOption);
      expect(QAbstractSocket.SocketType).toBe(SocketType);
      expect(QAbstractSocket.NetworkLayerProtocol).toBe(NetworkLayerProtocol);
      expect(QHostAddress.SpecialAddress).toBe(SpecialAddress);
      expect(QIODevice.OpenModeFlag).toBe(OpenModeFlag);
      expect(QTcpSocket.SocketError).toBe(SocketError);
      expect(QTcpSocket.OpenModeFlag).toBe(OpenModeFlag);

      expect(QAbstractSocket.SocketError.ConnectionRefusedError).toBe(0);
      expect(QAbstractSocket.SocketError.ConnectionRefusedError).toBe(
        SocketError.ConnectionRefusedError,
      );
      expect(QAbstractSocket.SocketState.ConnectedState).toBe(3);
      expect(QAbstractSocket.SocketOption.KeepAliveOption).toBe(1);
      expect(QTcpSocket.SocketState.ListeningState).toBe(5);
      expect(QHostAddress.SpecialAddress.LocalHostIPv6).toBe(3);
      expect(QIODevice.OpenModeFlag.ReadWrite).toBe(3);
    });
  });

  describe('socketErrorName', () => {
    it.each(
      Object.entries(members(SocketError)).map(
        ([name, value]) => [value, name] as [number, string],
      ),
    )('socketErrorName(%d) is %j', (value, name) => {
      expect(socketErrorName(value)).toBe(name);
    });

    it('an unknown value is named UnknownSocketError', () => {
      expect(socketErrorName(999 as SocketError)).toBe('UnknownSocketError');
    });
  });

  describe('setSocketOption / socketOption', () => {
    const allOptions = Object.values(members(SocketOption)) as SocketOption[];

    it.each(allOptions)(
      'option %d is undefined (an invalid QVariant) without a connection',
      (opt) => {
        const s = scope.socket();
        expect(s.socketOption(opt)).toBeUndefined();
        // Qt ignores options set before a connection exists.
        s.setSocketOption(opt, 1);
        expect(s.socketOption(opt)).toBeUndefined();
      },
    );

    it('LowDelayOption and KeepAliveOption are 0 on a new connection and round-trip 0/1', async () => {
      const { client, peer } = await connectedPair(scope);
      for (const s of [client, peer]) {
        expect(s.socketOption(SocketOption.LowDelayOption)).toBe(0);
        expect(s.socketOption(SocketOption.KeepAliveOption)).toBe(0);
        s.setSocketOption(SocketOption.LowDelayOption, 1);
        s.setSocketOption(SocketOption.KeepAliveOption, 1);
        expect(s.socketOption(SocketOption.LowDelayOption)).toBe(1);
        expect(s.socketOption(SocketOption.KeepAliveOption)).toBe(1);
        s.setSocketOption(SocketOption.LowDelayOption, 0);
        expect(s.socketOption(SocketOption.LowDelayOption)).toBe(0);
        expect(s.socketOption(SocketOption.KeepAliveOption)).toBe(1);
        s.setSocketOption(SocketOption.KeepAliveOption, 0);
        expect(s.socketOption(SocketOption.KeepAliveOption)).toBe(0);
      }
      expect(qt.messages).toEqual([]);
    });

    it('setKeepAliveIdleTime (a port extension: TCP_KEEPIDLE) sets the idle time before the first probe, as the kernel reports it (ss), before or after KeepAliveOption is turned on', async () => {
      const { client, server } = await connectedPair(scope);
      const keepaliveTimer = (): number | null => {
        const out = execFileSync(
          'ss',
          ['-tnoH', 'state', 'established', `( sport = :${client.localPort()} )`],
          { encoding: 'utf8' },
        );
        const m = /timer:\(keepalive,(?:(\d+)min)?(\d+)sec/.exec(out);
        return m ? Number(m[1] ?? 0) * 60 + Number(m[2]) : null;
      };
      expect(client.keepAliveIdleTime()).toBe(0);
      client.setKeepAliveIdleTime(60000);
      expect(client.keepAliveIdleTime()).toBe(60000);
      // Off: no keepalive timer at all.
      expect(keepaliveTimer()).toBeNull();
      client.setSocketOption(SocketOption.KeepAliveOption, 1);
      let seconds = keepaliveTimer();
      expect(seconds).not.toBeNull();
      expect(seconds!).toBeGreaterThan(50);
      expect(seconds!).toBeLessThanOrEqual(60);
      // Changed while on: applied at once.
      client.setKeepAliveIdleTime(20000);
      seconds = keepaliveTimer();
      expect(seconds!).toBeGreaterThan(10);
      expect(seconds!).toBeLessThanOrEqual(20);
      expect(() => client.setKeepAliveIdleTime(-1)).toThrow(RangeError);
      void server;
    });

    it('non-zero values and booleans are normalized to 1 (as Qt reads them back)', async () => {
      const { client } = await connectedPair(scope);
      client.setSocketOption(SocketOption.LowDelayOption, 5);
      expect(client.socketOption(SocketOption.LowDelayOption)).toBe(1);
      client.setSocketOption(SocketOption.KeepAliveOption, true);
      expect(client.socketOption(SocketOption.KeepAliveOption)).toBe(1);
      client.setSocketOption(SocketOption.KeepAliveOption, false);
      expect(client.socketOption(SocketOption.KeepAliveOption)).toBe(0);
    });

    it('options belong to the connection: after abort they are undefined, a new connection starts at 0', async () => {
      const { server, client } = await connectedPair(scope);
      client.setSocketOption(SocketOption.LowDelayOption, 1);
      client.setSocketOption(SocketOption.KeepAliveOption, 1);
      expect(client.socketOption(SocketOption.LowDelayOption)).toBe(1);
      client.abort();
      expect(client.socketOption(SocketOption.LowDelayOption)).toBeUndefined();
      client.connectToHost('127.0.0.1', server.serverPort());
      expect(await client.waitForConnected(5000)).toBe(true);
      // Recorded from Qt 5.15: a new connection reports the new socket's options (0).
      expect(client.socketOption(SocketOption.LowDelayOption)).toBe(0);
      expect(client.socketOption(SocketOption.KeepAliveOption)).toBe(0);
    });

    it.each([
      SocketOption.MulticastTtlOption,
      SocketOption.MulticastLoopbackOption,
      SocketOption.TypeOfServiceOption,
      SocketOption.SendBufferSizeSocketOption,
      SocketOption.ReceiveBufferSizeSocketOption,
      SocketOption.PathMtuSocketOption,
    ])('unsupported option %d: setSocketOption warns, socketOption returns -1', async (opt) => {
      const { client } = await connectedPair(scope);
      expect(client.socketOption(opt)).toBe(-1);
      client.setSocketOption(opt, 16);
      expect(qt.messages.length).toBe(1);
      expect(qt.types).toEqual([QtMsgType.QtWarningMsg]);
      expect(qt.messages[0]).toContain('QAbstractSocket::setSocketOption');
      expect(qt.messages[0]).toContain(SocketOption[opt]);
      expect(client.socketOption(opt)).toBe(-1);
      // The connection is unaffected.
      expect(client.state()).toBe(SocketState.ConnectedState);
      expect(client.socketOption(SocketOption.LowDelayOption)).toBe(0);
    });
  });
});
