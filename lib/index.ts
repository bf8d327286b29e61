/**
 * nestjs-qt-transport: a NestJS microservice transport (ServerQt, ClientQt,
 * QtTransportModule) on a TypeScript port of Qt's socket classes, which is exported too
 * (and alone from 'nestjs-qt-transport/qtnetwork').
 */
export * from './qtnetwork/index.js';
export * from './transport/index.js';
export * from './module/index.js';
