// Validates a profile dataset before it is stored, as a Node.js Lambda handler: the
// JavaScript twin of examples/validate-input. It normalises what it can, rejects what it
// cannot (the update fails with the reason), and keeps reserved keys server-owned.
//
// - `email`: trimmed and lower-cased; rejected unless it looks like `a@b.c`;
// - `nickname`: trimmed; rejected when empty or longer than 32 characters;
// - `age`: rejected unless a whole number from 0 to 150;
// - `server:*`: users may not change these; their changes are dropped (left out).

exports.handler = async (event) => {
  const records = event.datasetRecords;
  // The records the user changed, in key order.
  const changed = Object.keys(records).sort().filter((key) => {
    const r = records[key];
    return r.op === 'remove' || r.newValue !== r.oldValue;
  });
  for (const key of changed) {
    const record = records[key];
    if (key.startsWith('server:')) {
      console.warn("dropping the user's change to reserved key %s", key);
      delete records[key];
      continue;
    }
    const value = record.op === 'remove' ? null : record.newValue;
    if (value === null || value === undefined) continue;
    if (key === 'email') {
      const email = value.trim().toLowerCase();
      const at = email.indexOf('@');
      const user = at < 0 ? '' : email.slice(0, at);
      const domain = at < 0 ? '' : email.slice(at + 1);
      if (!user || !domain.includes('.') || domain.startsWith('.')) {
        throw new Error('email ' + JSON.stringify(value) + ' is not a valid address');
      }
      record.newValue = email;
    } else if (key === 'nickname') {
      const nickname = value.trim();
      const length = [...nickname].length;
      if (length === 0 || length > 32) throw new Error('nickname must be 1 to 32 characters');
      record.newValue = nickname;
    } else if (key === 'age') {
      const text = value.trim();
      const age = /^\+?\d+$/.test(text) ? Number(text) : NaN;
      if (!(age <= 150)) throw new Error('age ' + JSON.stringify(value) + ' must be a whole number from 0 to 150');
      record.newValue = String(age);
    }
  }
  return event;
};
