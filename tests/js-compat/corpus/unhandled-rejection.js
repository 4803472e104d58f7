// An unhandled rejection fails the invocation (Node 20 on Lambda).
exports.handler = (event, context, callback) => {
  Promise.reject(new Error('nobody caught me'));
  setTimeout(() => callback(null, event), 5);
};
