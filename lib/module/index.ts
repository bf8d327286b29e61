export * from './qt-transport.module.js';
export * from './qt-health.indicator.js';
