// Type-checked with the project (tsc --noEmit), never run: proves that the package's types
// resolve to real types, not `any`. Each @ts-expect-error must meet an error; if a type
// silently became `any`, that directive would be unused, which is itself an error.
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import {
  ClientQt,
  QtConnectionError,
  QtContext,
  ServerQt,
} from 'nestjs-qt-transport';
import {
  QLocalSocket,
  QTcpSocket,
  SocketState,
} from 'nestjs-qt-transport/qtnetwork';
import { Observable } from 'rxjs';

export function packageTypes(ctx: QtContext, client: ClientQt): void {
  // @ts-expect-error: 'udp' is not a transport
  new ServerQt({ transport: 'udp' });
  // @ts-expect-error: a port is a number
  new ClientQt({ port: '4000' });
  // @ts-expect-error: a pattern is a string
  const pattern: number = ctx.getPattern();
  // @ts-expect-error: send (ClientProxy's, from Nest) takes a pattern and data
  client.send();
  const replies: Observable<number> = client.send<number, number[]>('sum', [1]);
  const state: SocketState = new QTcpSocket().state();
  // @ts-expect-error: the socket is a QTcpSocket or a QLocalSocket
  const other: Date = ctx.getSocket();
  const socket: QTcpSocket | QLocalSocket = ctx.getSocket();
  const error: Error = new QtConnectionError(
    'ConnectionRefusedError',
    'refused',
  );
  void [pattern, replies, state, other, socket, error];
}

// Nest 12 under `strict` types an untyped @EventPattern's handler as
// (data, ...args: unknown[]): `@Ctx() ctx: QtContext` does not fit it (TS1241), and
// `@EventPattern<string>` (the README's form) does.
export class EventHandlers {
  // @ts-expect-error: TS1241, unknown is not assignable to QtContext
  @EventPattern('note')
  untyped(@Payload() text: string, @Ctx() ctx: QtContext): void {
    void [text, ctx];
  }

  @EventPattern<string>('note')
  typed(@Payload() text: string, @Ctx() ctx: QtContext): void {
    void [text, ctx];
  }
}
