/** The Nest controller every transport in the benchmark serves: the same code behind each. */
import { Controller, Module } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';

let events = 0;

@Controller()
export class BenchController {
  @MessagePattern('echo')
  echo(@Payload() data: unknown): unknown {
    return data;
  }

  @EventPattern('count')
  count(@Payload() _data: unknown): void {
    events++;
  }

  @MessagePattern('stats')
  stats(): { events: number; rss: number } {
    return { events, rss: process.memoryUsage().rss };
  }

  @MessagePattern('reset')
  reset(): number {
    events = 0;
    return 0;
  }
}

@Module({ controllers: [BenchController] })
export class BenchModule {}
