// A module that cannot exist in a trigger: loading fails, naming it.
const AWS = require('aws-sdk-not-installed');
exports.handler = async (event) => event;
