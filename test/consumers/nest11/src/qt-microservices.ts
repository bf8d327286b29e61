import { INestApplication } from '@nestjs/common';
import { MicroserviceOptions } from '@nestjs/microservices';
import { ServerQt } from 'nestjs-qt-transport';

/** Where the app's two Qt microservices listen. */
export interface QtAddresses {
  /** TCP port on 127.0.0.1; 0 picks a free one. */
  port: number;
  /** Local socket name (a socket in this user's private socket directory). */
  name: string;
}

/** Connects the hybrid app's microservices: ServerQt on TCP and on a local socket. */
export function connectQtMicroservices(
  app: INestApplication,
  addresses: QtAddresses,
): { tcp: ServerQt; local: ServerQt } {
  const tcp = new ServerQt({
    transport: 'tcp',
    host: '127.0.0.1',
    port: addresses.port,
  });
  const local = new ServerQt({ transport: 'local', name: addresses.name });
  app.connectMicroservice<MicroserviceOptions>({ strategy: tcp });
  app.connectMicroservice<MicroserviceOptions>({ strategy: local });
  return { tcp, local };
}
