// Values that are links: keep the host only.
exports.handler = async (event) => {
  for (const r of Object.values(event.datasetRecords)) {
    if (typeof r.newValue === 'string' && /^https?:\/\//.test(r.newValue)) {
      const u = new URL(r.newValue);
      r.newValue = u.host + u.pathname + '?' + new URLSearchParams(u.search).get('id');
    }
  }
  return event;
};
