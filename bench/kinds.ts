/** The transports the benchmark compares, and how each one's server and client are made. */
export type Kind = 'qt-tcp' | 'qt-local' | 'nest-tcp' | 'raw-net';

export const KINDS: Kind[] = ['qt-tcp', 'qt-local', 'nest-tcp', 'raw-net'];

export const LABELS: Record<Kind, string> = {
  'qt-tcp': 'this transport, TCP',
  'qt-local': 'this transport, local socket',
  'nest-tcp': "Nest's Transport.TCP",
  'raw-net': 'raw net, length-prefixed echo',
};
