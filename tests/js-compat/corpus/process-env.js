// Lambda's environment variables.
exports.handler = async (event) => {
  const env = process.env;
  event.datasetRecords.env = {
    newValue: [env.AWS_REGION, env.AWS_DEFAULT_REGION, env.AWS_LAMBDA_FUNCTION_NAME, env.AWS_LAMBDA_FUNCTION_VERSION, env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, env.TZ].join(','),
    op: 'replace',
  };
  return event;
};
