/** A figure of the benchmark: the median of its repetitions with their spread, and its text. */
export interface Figure {
  median: number;
  min: number;
  max: number;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export function figure(values: number[]): Figure {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

export function fmt(n: number): string {
  if (n >= 1000) return Math.round(n).toLocaleString('en-US');
  if (n >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** "median (min–max)", or — when not measured. */
export function cell(f: Figure | undefined): string {
  if (!f) return '—';
  return `${fmt(f.median)} (${fmt(f.min)}–${fmt(f.max)})`;
}
