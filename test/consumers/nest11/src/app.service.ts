import { Injectable } from '@nestjs/common';
import { Subject } from 'rxjs';

/** An event the app received: its text, its pattern and the transport it came on. */
export interface Note {
  text: string;
  pattern: string;
  transport: 'tcp' | 'local' | 'unknown';
}

@Injectable()
export class AppService {
  /** Each note as it arrives (an event has no reply: this is how it is observed). */
  readonly notes = new Subject<Note>();

  getHello(): string {
    return 'Hello World!';
  }

  sum(numbers: number[]): number {
    return numbers.reduce((total, n) => total + n, 0);
  }

  noted(note: Note): void {
    this.notes.next(note);
  }
}
