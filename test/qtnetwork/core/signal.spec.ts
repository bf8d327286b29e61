import { jest } from '@jest/globals';
import { Signal } from '../../../lib/qtnetwork/index.js';

describe('Signal', () => {
  it('calls slots in connection order with the emitted arguments', () => {
    const s = new Signal<[number, string]>('test');
    const calls: string[] = [];
    s.connect((n, t) => calls.push(`a${n}${t}`));
    s.connect((n, t) => calls.push(`b${n}${t}`));
    s.emit(1, 'x');
    expect(calls).toEqual(['a1x', 'b1x']);
  });

  it('connect returns a function that removes only that connection', () => {
    const s = new Signal<[]>();
    const calls: string[] = [];
    const slot = () => calls.push('x');
    const off1 = s.connect(slot);
    s.connect(slot);
    off1();
    s.emit();
    expect(calls).toEqual(['x']);
    expect(s.receivers()).toBe(1);
  });

  it('disconnect(slot) removes every connection of that slot; disconnect() removes all', () => {
    const s = new Signal<[]>();
    const a = jest.fn();
    const b = jest.fn();
    s.connect(a);
    s.connect(a);
    s.connect(b);
    expect(s.disconnect(a)).toBe(true);
    expect(s.disconnect(a)).toBe(false);
    s.emit();
    expect(a).not.toHaveBeenCalled();
    expect(b).toHaveBeenCalledTimes(1);
    s.disconnect();
    s.emit();
    expect(b).toHaveBeenCalledTimes(1);
  });

  it('a slot connected during emission runs from the next emission; one disconnected during emission is skipped', () => {
    const s = new Signal<[]>();
    const calls: string[] = [];
    const late = () => calls.push('late');
    const victim = () => calls.push('victim');
    s.connect(() => {
      calls.push('first');
      s.connect(late);
      s.disconnect(victim);
    });
    s.connect(victim);
    s.emit();
    expect(calls).toEqual(['first']);
    s.emit();
    expect(calls).toEqual(['first', 'first', 'late']);
  });

  it('a throwing slot does not stop later slots and goes to the slot error handler', () => {
    const seen: unknown[] = [];
    Signal.setSlotErrorHandler((err, name) => seen.push([name, (err as Error).message]));
    try {
      const s = new Signal<[]>('boom');
      const after = jest.fn();
      s.connect(() => {
        throw new Error('bad slot');
      });
      s.connect(after);
      s.emit();
      expect(after).toHaveBeenCalled();
      expect(seen).toEqual([['boom', 'bad slot']]);
    } finally {
      Signal.setSlotErrorHandler(null);
    }
  });
});
