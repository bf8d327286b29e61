import { Controller, Get } from '@nestjs/common';
import {
  Ctx,
  EventPattern,
  MessagePattern,
  Payload,
  RpcException,
} from '@nestjs/microservices';
import { QtContext } from 'nestjs-qt-transport';
import { QLocalSocket, QTcpSocket } from 'nestjs-qt-transport/qtnetwork';
import { Observable, range } from 'rxjs';
import { AppService } from './app.service';

@Controller()
export class AppController {
  constructor(private readonly appService: AppService) {}

  @Get()
  getHello(): string {
    return this.appService.getHello();
  }

  @MessagePattern('sum')
  sum(@Payload() numbers: number[]): number {
    return this.appService.sum(numbers);
  }

  /** A stream: 1, 2, ..., n, one reply each. */
  @MessagePattern('count')
  count(@Payload() n: number): Observable<number> {
    return range(1, n);
  }

  @MessagePattern('refuse')
  refuse(@Payload() reason: string): never {
    throw new RpcException({ code: 'E_REFUSED', message: reason });
  }

  // The type argument lets `@Ctx() ctx: QtContext` compile under Nest 12's `strict` types.
  @EventPattern<string>('note')
  note(@Payload() text: string, @Ctx() ctx: QtContext): void {
    const socket = ctx.getSocket();
    const transport =
      socket instanceof QTcpSocket
        ? 'tcp'
        : socket instanceof QLocalSocket
          ? 'local'
          : 'unknown';
    this.appService.noted({ text, pattern: ctx.getPattern(), transport });
  }
}
