// Packet metadata from ClientQt to QtContext.getMetadata(), the same on Nest 11 (which has
// no dispatch hook of its own) and Nest 12: a dispatch hook for every packet
// (setOnDispatchHook), a QtRecord for one call, requests and events alike, connected or not,
// acknowledged or not. CI runs this file with each Nest major (.ci/run).
import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { firstValueFrom, lastValueFrom } from 'rxjs';

import { ClientQt, QtContext, QtRecord, ServerQt, type QtOutgoingPacket } from '../../lib/index.js';

const events: Array<{ data: unknown; metadata: unknown }> = [];

@Controller()
class MetadataController {
  @MessagePattern('meta')
  meta(@Payload() data: unknown, @Ctx() ctx: QtContext): unknown {
    return { data, metadata: ctx.getMetadata() ?? null };
  }

  @EventPattern('note')
  note(@Payload() data: unknown, @Ctx() ctx: unknown): void {
    events.push({ data, metadata: (ctx as QtContext).getMetadata() ?? null });
  }
}

@Module({ controllers: [MetadataController] })
class MetadataModule {}

async function nextEvent(): Promise<{ data: unknown; metadata: unknown }> {
  for (let i = 0; i < 400 && events.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  const event = events.shift();
  if (!event) throw new Error('no event arrived within 2 s');
  return event;
}

describe('packet metadata on this Nest major', () => {
  let app: INestMicroservice;
  let port: number;
  const clients: ClientQt[] = [];

  beforeAll(async () => {
    const server = new ServerQt({ transport: 'tcp', port: 0 });
    app = await NestFactory.createMicroservice(MetadataModule, { strategy: server, logger: false });
    await app.listen();
    port = server.unwrap<{ serverPort(): number }>().serverPort();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    events.length = 0;
  });

  afterAll(async () => {
    await app.close();
  });

  function client(options: ConstructorParameters<typeof ClientQt>[0] = {}): ClientQt {
    const c = new ClientQt({ port, ...options });
    clients.push(c);
    return c;
  }

  it('a request without metadata reaches the handler with none', async () => {
    expect(await firstValueFrom(client().send('meta', 1))).toEqual({ data: 1, metadata: null });
  });

  it('setOnDispatchHook sets metadata on every request and event; the handler reads it from QtContext.getMetadata()', async () => {
    const c = client();
    const seen: QtOutgoingPacket[] = [];
    c.setOnDispatchHook((packet) => {
      seen.push({ ...packet });
      packet.metadata = { traceId: 'abc-123' };
    });
    expect(await firstValueFrom(c.send('meta', [1, 2]))).toEqual({
      data: [1, 2],
      metadata: { traceId: 'abc-123' },
    });
    await lastValueFrom(c.emit('note', 'n1'), { defaultValue: undefined });
    expect(await nextEvent()).toEqual({ data: 'n1', metadata: { traceId: 'abc-123' } });
    // The hook saw each packet before it went out: pattern and data, no id.
    expect(seen).toEqual([
      { pattern: 'meta', data: [1, 2] },
      { pattern: 'note', data: 'n1' },
    ]);
  });

  it('a QtRecord gives one call its own metadata and its data as the payload; its keys win over the hook', async () => {
    const c = client();
    c.setOnDispatchHook((packet) => {
      packet.metadata = { ...packet.metadata, tenant: 'from-hook', region: 'eu' };
    });
    expect(
      await firstValueFrom(c.send('meta', new QtRecord({ order: 7 }, { tenant: 'acme' }))),
    ).toEqual({ data: { order: 7 }, metadata: { tenant: 'acme', region: 'eu' } });
    // The next call without a record has the hook's metadata only.
    expect(await firstValueFrom(c.send('meta', 2))).toEqual({
      data: 2,
      metadata: { tenant: 'from-hook', region: 'eu' },
    });
    await lastValueFrom(c.emit('note', new QtRecord('n2', { source: 'record' })), {
      defaultValue: undefined,
    });
    expect(await nextEvent()).toEqual({
      data: 'n2',
      metadata: { tenant: 'from-hook', region: 'eu', source: 'record' },
    });
  });

  it('an event emitted before the client is connected carries its metadata too', async () => {
    const c = client();
    c.setOnDispatchHook((packet) => {
      packet.metadata = { early: 'yes' };
    });
    // No connection yet: the emit connects first.
    await lastValueFrom(c.emit('note', new QtRecord('n3', { call: 'first' })), {
      defaultValue: undefined,
    });
    expect(await nextEvent()).toEqual({ data: 'n3', metadata: { early: 'yes', call: 'first' } });
  });

  it('acknowledged events carry their metadata', async () => {
    const c = client({ acknowledgedEvents: true });
    await lastValueFrom(c.emit('note', new QtRecord('n4', { acked: 'true' })), {
      defaultValue: undefined,
    });
    expect(await nextEvent()).toEqual({ data: 'n4', metadata: { acked: 'true' } });
  });

  it('a QtRecord without data is refused as Nest refuses a call without data', async () => {
    const c = client();
    await expect(
      firstValueFrom(c.send('meta', new QtRecord(undefined, { a: 'b' }))),
    ).rejects.toThrow(/data/i);
  });
});
