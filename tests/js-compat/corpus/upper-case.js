// Upper-case every value (Unicode included).
exports.handler = function (event, context) {
  Object.values(event.datasetRecords).forEach((r) => {
    if (typeof r.newValue === 'string') r.newValue = r.newValue.toUpperCase();
  });
  context.done(null, event);
};
