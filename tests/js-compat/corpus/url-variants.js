// URLs: resolution, ports, dot segments, query edits, bad input.
exports.handler = async (event) => {
  const out = [];
  const base = 'https://Example.COM:443/a/b/c?x=1#frag';
  for (const input of ['../d?y=2', '/root', '?q=a b', '#h', '//other.org/p', 'http://h:8080/./x/../y', 'https://u:p@h/é?ü=1']) {
    const u = new URL(input, base);
    out.push([u.href, u.origin, u.host, u.pathname, u.search, u.hash].join(' '));
  }
  const u = new URL('https://example.com/?a=1&b=2&a=3');
  u.searchParams.append('c', 'x y');
  u.searchParams.delete('b');
  u.searchParams.set('a', '9');
  out.push(u.href, u.searchParams.getAll('a').join(','), String(new URLSearchParams({ k: 'v&w', e: '' })));
  for (const bad of ['not a url', 'http://', 'https://exa mple.com']) {
    try { new URL(bad); out.push('parsed ' + bad); } catch (e) { out.push(e.name + ':' + e.message + ':' + e.code); }
  }
  event.datasetRecords.urls = { newValue: out.join('\n'), op: 'replace' };
  return event;
};
