export * from './qt-transport.module.js';
