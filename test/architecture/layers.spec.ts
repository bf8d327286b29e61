/**
 * The layers of lib/ (README, "Architecture") are held by ESLint: an import that points up
 * a layer, or past a layer's public index, fails `npm run lint`. Each case lints one line
 * of code as if it stood in a file of that layer, with the project's own configuration.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from '@jest/globals';
import { ESLint } from 'eslint';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// The snippets are linted as files that do not exist, which the type-aware rule's project
// service cannot load: it is switched off here (the layer rules need no types).
const eslint = new ESLint({
  cwd: root,
  overrideConfig: {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: false } },
    rules: { '@typescript-eslint/no-misused-promises': 'off' },
  },
});

/** The no-restricted-imports messages for `code` placed at `file` (relative to the root). */
async function restricted(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(`${code}\nexport {};\n`, {
    filePath: path.join(root, file),
  });
  // A snippet ESLint could not parse would pass every "may" case without being checked.
  const fatal = result.messages.find((m) => m.fatal);
  if (fatal) throw new Error(`ESLint could not lint ${file}: ${fatal.message}`);
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('layer boundaries (eslint.config.js)', () => {
  it.each([
    ['lib/qtnetwork/core/x.ts', "import { QHostAddress } from '../kernel/qhost-address.js';"],
    ['lib/qtnetwork/core/x.ts', "import { QTcpSocket } from '../socket/qtcp-socket.js';"],
    ['lib/qtnetwork/kernel/x.ts', "import { QTcpSocket } from '../socket/qtcp-socket.js';"],
    ['lib/qtnetwork/kernel/x.ts', "import { QSslKey } from '../ssl/qssl-key.js';"],
    ['lib/qtnetwork/socket/x.ts', "import { QSslSocket } from '../ssl/qssl-socket.js';"],
    ['lib/qtnetwork/socket/proxy/x.ts', "import { QSslKey } from '../../ssl/qssl-key.js';"],
    ['lib/qtnetwork/ssl/x.ts', "import { ServerQt } from '../../transport/server-qt.js';"],
    ['lib/qtnetwork/ssl/x.ts', "import { Injectable } from '@nestjs/common';"],
    ['lib/qtnetwork/core/x.ts', "import { Subject } from 'rxjs';"],
    ['lib/transport/wire/x.ts', "import { Server } from '@nestjs/microservices';"],
    ['lib/transport/wire/x.ts', "import { map } from 'rxjs/operators';"],
    ['lib/transport/wire/x.ts', "import { ServerQt } from '../server-qt.js';"],
    [
      'lib/transport/wire/x.ts',
      "import { QTcpSocket } from '../../qtnetwork/socket/qtcp-socket.js';",
    ],
    ['lib/transport/telemetry/x.ts', "import { Server } from '@nestjs/microservices';"],
    ['lib/transport/telemetry/x.ts', "import { QtContext } from '../qt-context.js';"],
    ['lib/transport/x.ts', "import { ByteQueue } from '../qtnetwork/core/byte-queue.js';"],
    ['lib/transport/x.ts', "import { QtTransportModule } from '../module/index.js';"],
    ['lib/module/x.ts', "import { ClientQt } from '../transport/client-qt.js';"],
    ['lib/module/x.ts', "import { QTcpSocket } from '../qtnetwork/index.js';"],
  ])('%s may not: %s', async (file, code) => {
    expect(await restricted(file, code)).toHaveLength(1);
  });

  it.each([
    ['lib/qtnetwork/kernel/x.ts', "import { Signal } from '../core/signal.js';"],
    ['lib/qtnetwork/socket/x.ts', "import { QHostAddress } from '../kernel/qhost-address.js';"],
    [
      'lib/qtnetwork/socket/proxy/x.ts',
      "import { SocketError } from '../../kernel/socket-enums.js';",
    ],
    ['lib/qtnetwork/ssl/x.ts', "import { QTcpSocket } from '../socket/qtcp-socket.js';"],
    ['lib/transport/wire/x.ts', "import { ByteQueue } from '../../qtnetwork/index.js';"],
    ['lib/transport/wire/x.ts', "import { FrameDecoder } from './frame-decoder.js';"],
    ['lib/transport/x.ts', "import { QtConnection } from './wire/qt-connection.js';"],
    ['lib/transport/x.ts', "import { QtTelemetry } from './telemetry/qt-telemetry.js';"],
    ['lib/transport/telemetry/x.ts', "import type { Span } from '@opentelemetry/api';"],
    ['lib/transport/x.ts', "import { Server } from '@nestjs/microservices';"],
    ['lib/module/x.ts', "import { ClientQt } from '../transport/index.js';"],
  ])('%s may: %s', async (file, code) => {
    expect(await restricted(file, code)).toEqual([]);
  });
});
