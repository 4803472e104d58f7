// "Issue an award when a player reaches a new level" (from the Sync Trigger docs), as a
// Node.js Lambda handler: the JavaScript twin of examples/award-on-level.
//
// When the user raises `level`, the trigger adds `award:level-N` for every level reached
// that has no award yet and updates `awards` (a count). A lowered or non-numeric level is
// left alone.

function level(value) {
  if (value === null || value === undefined) return null;
  const text = String(value).trim();
  return /^\+?\d+$/.test(text) ? Number(text) : null;
}

exports.handler = function (event, context, callback) {
  const records = event.datasetRecords;
  const record = records.level;
  const changed = record && (record.op === 'remove' || record.newValue !== record.oldValue);
  if (!changed) return callback(null, event);
  const current = record.op === 'remove' ? null : record.newValue;
  const reached = level(current);
  if (reached === null) {
    console.warn('level %j is not a number; no award', current);
    return callback(null, event);
  }
  let granted = 0;
  for (let n = (level(record.oldValue) || 0) + 1; n <= reached; n++) {
    const key = 'award:level-' + n;
    if (!(key in records)) {
      records[key] = { newValue: 'Reached level ' + n, op: 'replace' };
      granted++;
    }
  }
  if (granted > 0) {
    const total = Object.keys(records).filter((k) => {
      const r = records[k];
      return k.startsWith('award:level-') && r.op !== 'remove' && r.newValue != null;
    }).length;
    records.awards = Object.assign(records.awards || {}, { newValue: String(total), op: 'replace' });
    console.info('granted %d award(s) for reaching level %d', granted, reached);
  }
  callback(null, event);
};
