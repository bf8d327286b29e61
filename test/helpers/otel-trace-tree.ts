// The trace-tree helpers live with the sample, which prints one with `npm start -- --verbose`.
export * from '../../sample/common/trace-tree.js';
