/**
 * Packet checks: what a server accepts (requests, events, cancels, draining) and what a client
 * accepts (replies). Every rejection is an InvalidPacketError ('QT_INVALID_PACKET') whose
 * message says why.
 */
import { InvalidPacketError, QtTransportError } from '../../../lib/transport/index.js';
import {
  checkReplyPacket,
  classifyServerPacket,
  isPingPacket,
  pingPacket,
  pongOf,
  pongPacket,
} from '../../../lib/transport/wire/packets.js';

function rejection(fn: () => unknown): InvalidPacketError {
  let caught: unknown = null;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(InvalidPacketError);
  expect(caught).toBeInstanceOf(QtTransportError);
  const err = caught as InvalidPacketError;
  expect(err.code).toBe('QT_INVALID_PACKET');
  expect(err.name).toBe('InvalidPacketError');
  return err;
}

describe('classifyServerPacket: accepted packets', () => {
  it('a request: { id, pattern, data } with a number id', () => {
    const packet = { id: 1, pattern: 'sum', data: [1, 2] };
    expect(classifyServerPacket(packet)).toEqual({ kind: 'request', packet });
  });

  it('a request with a string id, an object pattern and metadata', () => {
    const packet = { id: 'a-1', pattern: { cmd: 'sum' }, data: null, metadata: { trace: 'x' } };
    expect(classifyServerPacket(packet)).toEqual({ kind: 'request', packet });
  });

  it('a request with id 0 and one with an empty string id are requests, not events', () => {
    expect(classifyServerPacket({ id: 0, pattern: 'p' }).kind).toBe('request');
    expect(classifyServerPacket({ id: '', pattern: 'p' }).kind).toBe('request');
    expect(classifyServerPacket({ id: -1.5, pattern: 'p' }).kind).toBe('request');
  });

  it('an event: { pattern, data } without id', () => {
    const packet = { pattern: 'note', data: { a: 1 } };
    expect(classifyServerPacket(packet)).toEqual({ kind: 'event', packet });
    expect(classifyServerPacket({ pattern: { cmd: 'note' } }).kind).toBe('event');
  });

  it('a cancel: { id, cancel: true }, for a number or a string id', () => {
    expect(classifyServerPacket({ id: 5, cancel: true })).toEqual({
      kind: 'cancel',
      packet: { id: 5, cancel: true },
    });
    expect(classifyServerPacket({ id: 'x', cancel: true })).toEqual({
      kind: 'cancel',
      packet: { id: 'x', cancel: true },
    });
  });

  it('a draining packet: { draining: true } without id and pattern (unknown fields ignored)', () => {
    const draining = { kind: 'draining', packet: { draining: true } };
    expect(classifyServerPacket({ draining: true })).toEqual(draining);
    expect(classifyServerPacket({ draining: true, reason: 'leaving' })).toEqual(draining);
  });

  it('draining: true beside an id or a pattern is an unknown field of that packet', () => {
    expect(classifyServerPacket({ pattern: 'note', draining: true }).kind).toBe('event');
    expect(classifyServerPacket({ id: 1, pattern: 'p', draining: true }).kind).toBe('request');
    expect(classifyServerPacket({ id: 1, cancel: true, draining: true }).kind).toBe('cancel');
    expect(() => classifyServerPacket({ draining: false })).toThrow(InvalidPacketError);
  });
});

describe('classifyServerPacket: rejected packets', () => {
  it.each([
    ['null', null],
    ['a number', 42],
    ['a string', 'sum'],
    ['a boolean', true],
    ['undefined', undefined],
    ['a Buffer', Buffer.from('{}')],
  ])('%s is not a packet (must be a map/object)', (_what, value) => {
    expect(rejection(() => classifyServerPacket(value)).message).toMatch(/map\/object/);
  });

  it('an array is not a packet', () => {
    expect(rejection(() => classifyServerPacket([{ id: 1, pattern: 'p' }])).message).toMatch(
      /map\/object/,
    );
  });

  it.each([
    ['no pattern', { id: 1, data: 1 }],
    ['a null pattern', { id: 1, pattern: null }],
    ['a number pattern', { id: 1, pattern: 7 }],
    ['a boolean pattern', { pattern: true }],
    ['an array pattern', { pattern: ['sum'] }],
    ['an empty object', {}],
  ])('%s: a request or event must carry a pattern', (_what, value) => {
    expect(rejection(() => classifyServerPacket(value)).message).toMatch(/pattern/);
  });

  it.each([
    ['an object id', { id: { n: 1 }, pattern: 'p' }],
    ['an array id', { id: [1], pattern: 'p' }],
    ['a boolean id', { id: true, pattern: 'p' }],
    ['a null id', { id: null, pattern: 'p' }],
    ['a NaN id', { id: NaN, pattern: 'p' }],
    ['an infinite id', { id: Infinity, pattern: 'p' }],
  ])('%s: a request id must be a string or a number', (_what, value) => {
    expect(rejection(() => classifyServerPacket(value)).message).toMatch(/id/);
  });

  it.each([
    ['a reply with response', { id: 1, response: 3 }],
    ['a reply with err', { id: 1, err: 'x' }],
    ['a reply with isDisposed', { id: 1, isDisposed: true }],
    ['a reply that also names a pattern', { id: 1, pattern: 'p', response: 3, isDisposed: true }],
  ])('%s: a server does not accept replies', (_what, value) => {
    expect(rejection(() => classifyServerPacket(value)).message).toMatch(/does not accept replies/);
  });

  it.each([
    ['a string', 'trace'],
    ['an array', ['a']],
    ['null', null],
    ['a number', 1],
  ])('metadata that is %s: metadata must be a map/object', (_what, metadata) => {
    expect(
      rejection(() => classifyServerPacket({ id: 1, pattern: 'p', metadata })).message,
    ).toMatch(/metadata/);
  });

  it.each([
    ['no id', { cancel: true }],
    ['a null id', { id: null, cancel: true }],
    ['an object id', { id: {}, cancel: true }],
  ])('a cancel with %s: it must carry the id of a request', (_what, value) => {
    expect(rejection(() => classifyServerPacket(value)).message).toMatch(/cancel.*id/);
  });
});

describe('checkReplyPacket', () => {
  it('accepts replies: a value, a stream item, an error, a bare end of stream', () => {
    for (const reply of [
      { id: 1, response: 6, isDisposed: true },
      { id: 'a', response: { x: 1 } },
      { id: 2, err: 'nope', isDisposed: true, status: 'error' },
      { id: 3, isDisposed: true },
      { id: 0, response: null },
    ]) {
      expect(checkReplyPacket(reply)).toEqual(reply);
    }
  });

  it.each([
    ['null', null],
    ['a string', 'x'],
    ['an array', [{ id: 1 }]],
    ['a number', 1],
  ])('rejects %s (a packet must be a map/object)', (_what, value) => {
    expect(rejection(() => checkReplyPacket(value)).message).toMatch(/map\/object/);
  });

  it.each([
    ['a request', { id: 1, pattern: 'sum', data: [] }],
    ['an event', { pattern: 'note', data: 1 }],
  ])('rejects %s sent to a client', (_what, value) => {
    expect(rejection(() => checkReplyPacket(value)).message).toMatch(
      /does not accept requests or events/,
    );
  });

  it.each([
    ['no id', { response: 1, isDisposed: true }],
    ['a null id', { id: null, response: 1 }],
    ['an object id', { id: { a: 1 }, response: 1 }],
    ['a boolean id', { id: false, err: 'x' }],
  ])('rejects a reply with %s (it must carry the id of its request)', (_what, value) => {
    expect(rejection(() => checkReplyPacket(value)).message).toMatch(/id/);
  });
});

describe('ping and pong (docs/protocol.md, "Ping")', () => {
  it('a server takes { ping: n } without id and pattern as a ping; unknown fields are ignored', () => {
    expect(classifyServerPacket({ ping: 7 })).toEqual({ kind: 'ping', packet: { ping: 7 } });
    expect(classifyServerPacket({ ping: -3, extra: 'x' })).toEqual({
      kind: 'ping',
      packet: { ping: -3 },
    });
    // A float with an integral value is an integer (Qt may write one).
    expect(classifyServerPacket({ ping: 2.0 }).kind).toBe('ping');
    expect(isPingPacket({ ping: 7 })).toBe(true);
  });

  it('a packet with `ping` and an id or a pattern is a request or an event, not a ping', () => {
    expect(classifyServerPacket({ id: 1, pattern: 'p', ping: 1 }).kind).toBe('request');
    expect(classifyServerPacket({ pattern: 'p', ping: 1 }).kind).toBe('event');
    expect(isPingPacket({ pattern: 'p', ping: 1 })).toBe(false);
  });

  it.each([['x'], [1.5], [null], [Number.MAX_SAFE_INTEGER + 2], [{}]])(
    'a ping of %p is a protocol error',
    (ping) => {
      expect(rejection(() => classifyServerPacket({ ping })).message).toContain('integer');
      expect(isPingPacket({ ping })).toBe(false);
    },
  );

  it('a client takes { pong: n } without id and pattern as a pong, and nothing else', () => {
    expect(pongOf({ pong: 7 })).toEqual({ pong: 7 });
    expect(pongOf({ pong: 'x' })).toBeNull();
    expect(pongOf({ id: 1, pong: 7 })).toBeNull();
    expect(pongOf({ ping: 7 })).toBeNull();
    expect(pongOf([7])).toBeNull();
    expect(pingPacket(3)).toEqual({ ping: 3 });
    expect(pongPacket(3)).toEqual({ pong: 3 });
  });
});
