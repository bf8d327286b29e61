import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import type { INestMicroservice } from '@nestjs/common';
import { firstValueFrom, from, lastValueFrom, toArray } from 'rxjs';

import { ClientQt, QtContext, ServerQt } from '../../lib/index.js';

const events: unknown[] = [];

@Controller()
class MathController {
  @MessagePattern('sum')
  sum(@Payload() data: number[]): number {
    return data.reduce((a, b) => a + b, 0);
  }

  @MessagePattern('stream')
  stream(@Payload() n: number) {
    return from(Array.from({ length: n }, (_, i) => i));
  }

  @MessagePattern('fail')
  fail(): never {
    throw new RpcException('nope');
  }

  @MessagePattern({ cmd: 'ctx' })
  ctx(@Ctx() ctx: QtContext): string {
    return `${ctx.getPattern()}|${typeof ctx.getId()}`;
  }

  @EventPattern('note')
  note(@Payload() data: unknown): void {
    events.push(data);
  }
}

@Module({ controllers: [MathController] })
class AppModule {}

describe.each([
  ['tcp', { transport: 'tcp' as const, port: 0 }],
  ['local', { transport: 'local' as const, name: `qt-smoke-${process.pid}` }],
])('transport smoke (%s)', (_kind, base) => {
  let app: INestMicroservice;
  let client: ClientQt;

  beforeAll(async () => {
    const strategy = new ServerQt(base);
    app = await NestFactory.createMicroservice(AppModule, { strategy, logger: false });
    await app.listen();
    const port =
      base.transport === 'tcp' ? (strategy.unwrap() as { serverPort(): number }).serverPort() : 0;
    client = new ClientQt(base.transport === 'tcp' ? { transport: 'tcp', port } : base);
  });

  afterAll(async () => {
    await client.close();
    await app.close();
  });

  it('answers a request, a stream, an RpcException, an object pattern and an event', async () => {
    expect(await firstValueFrom(client.send('sum', [1, 2, 3]))).toBe(6);
    expect(await lastValueFrom(client.send('stream', 4).pipe(toArray()))).toEqual([0, 1, 2, 3]);
    await expect(firstValueFrom(client.send('fail', {}))).rejects.toMatchObject({
      message: 'nope',
    });
    expect(await firstValueFrom(client.send({ cmd: 'ctx' }, {}))).toBe('{"cmd":"ctx"}|number');
    await expect(firstValueFrom(client.send('nothing', {}))).rejects.toBe(
      'There is no matching message handler defined in the remote service.',
    );
    await lastValueFrom(client.emit('note', { a: 1 }), { defaultValue: undefined });
    const deadline = Date.now() + 2000;
    while (events.length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(events.pop()).toEqual({ a: 1 });
  });
});
