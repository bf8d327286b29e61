/** nestjs-qt-transport: the Qt socket port, and (as it lands) the Nest transport built on it. */
export * from './qtnetwork/index.js';
